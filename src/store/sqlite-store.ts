import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { CallRecord, CallRecordQuery, CallRecordStore } from './call-record.js';

/** Versioned migrations: index i brings the schema from user_version i to i + 1. */
const MIGRATIONS = [
  `CREATE TABLE call_records (
     id TEXT PRIMARY KEY,
     direction TEXT NOT NULL,
     outcome TEXT NOT NULL,
     offered_at TEXT NOT NULL,
     ended_at TEXT NOT NULL,
     wa_call_id TEXT,
     sip_call_id TEXT,
     user_wa_id TEXT,
     phone_number_id TEXT,
     tenant TEXT,
     record TEXT NOT NULL
   );
   CREATE INDEX call_records_offered ON call_records (offered_at);`,
];

export class SqliteCallRecordStore implements CallRecordStore {
  private readonly db: Database.Database;
  private readonly insert: Database.Statement;

  constructor(path: string) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    const version = this.db.pragma('user_version', { simple: true }) as number;
    for (let v = version; v < MIGRATIONS.length; v++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[v]!);
        this.db.pragma(`user_version = ${v + 1}`);
      })();
    }
    // OR IGNORE: a record is written exactly once; a second write of the same call id cannot replace the first.
    this.insert = this.db.prepare(`INSERT OR IGNORE INTO call_records
      (id, direction, outcome, offered_at, ended_at, wa_call_id, sip_call_id, user_wa_id, phone_number_id, tenant, record)
      VALUES (@id, @direction, @outcome, @offeredAt, @endedAt, @waCallId, @sipCallId, @userWaId, @phoneNumberId, @tenant, @record)`);
  }

  get isOpen(): boolean {
    return this.db.open;
  }

  write(r: CallRecord): void {
    this.insert.run({
      id: r.id, direction: r.direction, outcome: r.outcome, offeredAt: r.offeredAt, endedAt: r.endedAt,
      waCallId: r.waCallId ?? null, sipCallId: r.sipCallId ?? null, userWaId: r.userWaId, phoneNumberId: r.phoneNumberId,
      tenant: r.tenant, record: JSON.stringify(r),
    });
  }

  get(id: string): CallRecord | undefined {
    const row = this.db.prepare('SELECT record FROM call_records WHERE id = ?').get(id) as { record: string } | undefined;
    return row ? (JSON.parse(row.record) as CallRecord) : undefined;
  }

  list(q: CallRecordQuery = {}): CallRecord[] {
    const where: string[] = [];
    const args: Record<string, string | number> = { limit: Math.min(q.limit ?? 100, 1000) };
    if (q.since) { where.push('offered_at >= @since'); args.since = q.since; }
    if (q.until) { where.push('offered_at < @until'); args.until = q.until; }
    if (q.direction) { where.push('direction = @direction'); args.direction = q.direction; }
    if (q.outcome) { where.push('outcome = @outcome'); args.outcome = q.outcome; }
    const sql = `SELECT record FROM call_records ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY offered_at DESC LIMIT @limit`;
    return (this.db.prepare(sql).all(args) as { record: string }[]).map((row) => JSON.parse(row.record) as CallRecord);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
