import type Database from 'better-sqlite3';
import { openSqlite } from './sqlite-open.js';
import { decodeCursor, pageSize, type CallRecord, type CallRecordQuery, type CallRecordStore } from './call-record.js';

/** Versioned migrations: index i brings the schema from user_version i to i + 1. Never edit one that shipped. */
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
  // The admin API filters by number and tenant and walks pages by (offered_at, id).
  `ALTER TABLE call_records ADD COLUMN business_number TEXT;
   UPDATE call_records SET business_number = json_extract(record, '$.businessNumber');
   DROP INDEX call_records_offered;
   CREATE INDEX call_records_offered ON call_records (offered_at, id);
   CREATE INDEX call_records_tenant ON call_records (tenant, offered_at);
   CREATE INDEX call_records_user ON call_records (user_wa_id);
   CREATE INDEX call_records_business ON call_records (business_number);`,
  // Meta's terminate webhook can name an ended call (amendByWaCallId).
  'CREATE INDEX call_records_wa_call ON call_records (wa_call_id);',
];

export const SQLITE_SCHEMA_VERSION = MIGRATIONS.length;

/** ISO 8601 in UTC with milliseconds, the form offered_at is stored in, so that text order is time order. */
export function normalizeTime(t: string): string {
  const ms = Date.parse(t);
  if (Number.isNaN(ms)) throw new RangeError(`not a time: ${t}`);
  return new Date(ms).toISOString();
}

/** The embedded default store (better-sqlite3: synchronous underneath, async at the interface). */
export class SqliteCallRecordStore implements CallRecordStore {
  readonly kind = 'sqlite';
  private readonly db: Database.Database;
  private readonly insert: Database.Statement;

  constructor(path: string) {
    this.db = openSqlite(path);
    const version = this.db.pragma('user_version', { simple: true }) as number;
    for (let v = version; v < MIGRATIONS.length; v++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[v]!);
        this.db.pragma(`user_version = ${v + 1}`);
      })();
    }
    // OR IGNORE: a record is written exactly once; a second write of the same call id cannot replace the first.
    this.insert = this.db.prepare(`INSERT OR IGNORE INTO call_records
      (id, direction, outcome, offered_at, ended_at, wa_call_id, sip_call_id, user_wa_id, phone_number_id, tenant, business_number, record)
      VALUES (@id, @direction, @outcome, @offeredAt, @endedAt, @waCallId, @sipCallId, @userWaId, @phoneNumberId, @tenant, @businessNumber, @record)`);
  }

  get isOpen(): boolean {
    return this.db.open;
  }

  get schemaVersion(): number {
    return this.db.pragma('user_version', { simple: true }) as number;
  }

  async write(r: CallRecord): Promise<void> {
    this.insert.run({
      id: r.id, direction: r.direction, outcome: r.outcome, offeredAt: normalizeTime(r.offeredAt), endedAt: r.endedAt,
      waCallId: r.waCallId ?? null, sipCallId: r.sipCallId ?? null, userWaId: r.userWaId, phoneNumberId: r.phoneNumberId,
      tenant: r.tenant, businessNumber: r.businessNumber, record: JSON.stringify(r),
    });
  }

  async get(id: string): Promise<CallRecord | undefined> {
    const row = this.db.prepare('SELECT record FROM call_records WHERE id = ?').get(id) as { record: string } | undefined;
    return row ? (JSON.parse(row.record) as CallRecord) : undefined;
  }

  async list(q: CallRecordQuery = {}): Promise<CallRecord[]> {
    const where: string[] = [];
    const args: Record<string, string | number> = { limit: pageSize(q.limit) };
    if (q.since) { where.push('offered_at >= @since'); args.since = normalizeTime(q.since); }
    if (q.until) { where.push('offered_at < @until'); args.until = normalizeTime(q.until); }
    if (q.direction) { where.push('direction = @direction'); args.direction = q.direction; }
    if (q.outcome) { where.push('outcome = @outcome'); args.outcome = q.outcome; }
    if (q.tenant !== undefined) { where.push('tenant = @tenant'); args.tenant = q.tenant; }
    if (q.number) { where.push('(user_wa_id = @number OR business_number = @number)'); args.number = q.number; }
    if (q.cursor) {
      const c = decodeCursor(q.cursor);
      where.push('(offered_at < @cOffered OR (offered_at = @cOffered AND id < @cId))');
      args.cOffered = normalizeTime(c.offeredAt);
      args.cId = c.id;
    }
    const sql = `SELECT record FROM call_records ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY offered_at DESC, id DESC LIMIT @limit`;
    return (this.db.prepare(sql).all(args) as { record: string }[]).map((row) => JSON.parse(row.record) as CallRecord);
  }

  async amendByWaCallId(waCallId: string, revise: (r: CallRecord) => CallRecord | undefined): Promise<CallRecord | undefined> {
    // Synchronous underneath: nothing else runs between the read and the write.
    const row = this.db.prepare('SELECT id, record FROM call_records WHERE wa_call_id = ? ORDER BY offered_at DESC LIMIT 1').get(waCallId) as { id: string; record: string } | undefined;
    const revised = row ? revise(JSON.parse(row.record) as CallRecord) : undefined;
    if (!row || !revised) return undefined;
    this.db.prepare('UPDATE call_records SET record = ? WHERE id = ?').run(JSON.stringify(revised), row.id);
    return revised;
  }

  async deleteOfferedBefore(cutoff: string): Promise<number> {
    return this.db.prepare('DELETE FROM call_records WHERE offered_at < ?').run(normalizeTime(cutoff)).changes;
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}
