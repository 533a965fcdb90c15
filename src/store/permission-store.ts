import type Database from 'better-sqlite3';
import { openSqlite } from './sqlite-open.js';

export type PermissionStatus = 'none' | 'temporary' | 'permanent';

/** One business number + WhatsApp user pair of the permission ledger (whatsapp-calling.md §3.1). Times are ms epoch. */
export interface PermissionEntry {
  phoneNumberId: string;
  waId: string;
  status: PermissionStatus;
  /** Temporary permissions only. */
  expiresAt?: number;
  /** Times our call permission requests were accepted by Meta, since the last connected call (pruned to 7 days). */
  requests: number[];
  /** wamid of the last request sent. */
  lastRequestId?: string;
  /** Consecutive business-initiated calls the user did not answer (or rejected). */
  unanswered: number;
  /** Last time the status came from Meta (GET call_permissions or a reply webhook); undefined = never. */
  syncedAt?: number;
  /** `timestamp` of the newest call_permission_reply applied: webhooks arrive in any order (§1.1). */
  lastReplyAt?: number;
  /** End of the user's 24 h customer-service window, as far as the gateway saw the user reach out (§3.5). */
  serviceWindowUntil?: number;
  updatedAt: number;
}

/** Where the ledger lives; one interface so that SQLite and PostgreSQL stores are interchangeable. */
export interface PermissionStore {
  get(phoneNumberId: string, waId: string): PermissionEntry | undefined;
  put(entry: PermissionEntry): void;
  close(): void;
}

/**
 * The ledger's own table in the gateway's SQLite file. It keeps its version in a table of its own (not user_version,
 * which belongs to the call-record store), so the two stores migrate independently on one file.
 */
const MIGRATIONS = [
  `CREATE TABLE permission_ledger (
     phone_number_id TEXT NOT NULL,
     wa_id TEXT NOT NULL,
     status TEXT NOT NULL,
     expires_at INTEGER,
     requests TEXT NOT NULL,
     last_request_id TEXT,
     unanswered INTEGER NOT NULL DEFAULT 0,
     synced_at INTEGER,
     updated_at INTEGER NOT NULL,
     PRIMARY KEY (phone_number_id, wa_id)
   );`,
  'ALTER TABLE permission_ledger ADD COLUMN last_reply_at INTEGER;',
  'ALTER TABLE permission_ledger ADD COLUMN service_window_until INTEGER;',
];

interface Row {
  phone_number_id: string;
  wa_id: string;
  status: string;
  expires_at: number | null;
  requests: string;
  last_request_id: string | null;
  unanswered: number;
  synced_at: number | null;
  updated_at: number;
  last_reply_at: number | null;
  service_window_until: number | null;
}

export class SqlitePermissionStore implements PermissionStore {
  private readonly db: Database.Database;
  private readonly upsert: Database.Statement;
  private readonly select: Database.Statement;

  constructor(path: string) {
    this.db = openSqlite(path);
    this.db.pragma('busy_timeout = 2000');
    this.db.exec('CREATE TABLE IF NOT EXISTS permission_ledger_version (version INTEGER NOT NULL)');
    const row = this.db.prepare('SELECT version FROM permission_ledger_version').get() as { version: number } | undefined;
    if (!row) this.db.prepare('INSERT INTO permission_ledger_version (version) VALUES (0)').run();
    for (let v = row?.version ?? 0; v < MIGRATIONS.length; v++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[v]!);
        this.db.prepare('UPDATE permission_ledger_version SET version = ?').run(v + 1);
      })();
    }
    this.upsert = this.db.prepare(`INSERT INTO permission_ledger
      (phone_number_id, wa_id, status, expires_at, requests, last_request_id, unanswered, synced_at, updated_at, last_reply_at, service_window_until)
      VALUES (@phoneNumberId, @waId, @status, @expiresAt, @requests, @lastRequestId, @unanswered, @syncedAt, @updatedAt, @lastReplyAt, @serviceWindowUntil)
      ON CONFLICT (phone_number_id, wa_id) DO UPDATE SET status = excluded.status, expires_at = excluded.expires_at,
        requests = excluded.requests, last_request_id = excluded.last_request_id, unanswered = excluded.unanswered,
        synced_at = excluded.synced_at, updated_at = excluded.updated_at, last_reply_at = excluded.last_reply_at,
        service_window_until = excluded.service_window_until`);
    this.select = this.db.prepare('SELECT * FROM permission_ledger WHERE phone_number_id = ? AND wa_id = ?');
  }

  get(phoneNumberId: string, waId: string): PermissionEntry | undefined {
    const row = this.select.get(phoneNumberId, waId) as Row | undefined;
    if (!row) return undefined;
    const status: PermissionStatus = row.status === 'temporary' || row.status === 'permanent' ? row.status : 'none';
    const entry: PermissionEntry = {
      phoneNumberId: row.phone_number_id, waId: row.wa_id, status, requests: parseTimes(row.requests),
      unanswered: row.unanswered, updatedAt: row.updated_at,
    };
    if (row.expires_at !== null) entry.expiresAt = row.expires_at;
    if (row.last_request_id !== null) entry.lastRequestId = row.last_request_id;
    if (row.synced_at !== null) entry.syncedAt = row.synced_at;
    if (row.last_reply_at !== null) entry.lastReplyAt = row.last_reply_at;
    if (row.service_window_until !== null) entry.serviceWindowUntil = row.service_window_until;
    return entry;
  }

  put(e: PermissionEntry): void {
    this.upsert.run({
      phoneNumberId: e.phoneNumberId, waId: e.waId, status: e.status, expiresAt: e.expiresAt ?? null,
      requests: JSON.stringify(e.requests), lastRequestId: e.lastRequestId ?? null, unanswered: e.unanswered,
      syncedAt: e.syncedAt ?? null, updatedAt: e.updatedAt, lastReplyAt: e.lastReplyAt ?? null,
      serviceWindowUntil: e.serviceWindowUntil ?? null,
    });
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

function parseTimes(json: string): number[] {
  try {
    const v: unknown = JSON.parse(json);
    return Array.isArray(v) ? v.filter((t): t is number => typeof t === 'number' && Number.isFinite(t)) : [];
  } catch {
    return [];
  }
}
