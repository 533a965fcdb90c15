import pg from 'pg';
import { decodeCursor, pageSize, type CallRecord, type CallRecordQuery, type CallRecordStore } from './call-record.js';
import { normalizeTime } from './sqlite-store.js';

/**
 * Versioned migrations: index i brings the schema from version i to i + 1 (table wagw_schema_version). Never edit one
 * that shipped. Several gateway instances may share one database: an advisory lock serialises their migrations.
 */
const MIGRATIONS = [
  `CREATE TABLE call_records (
     id TEXT PRIMARY KEY,
     direction TEXT NOT NULL,
     outcome TEXT NOT NULL,
     offered_at TIMESTAMPTZ NOT NULL,
     ended_at TIMESTAMPTZ NOT NULL,
     wa_call_id TEXT,
     sip_call_id TEXT,
     user_wa_id TEXT,
     phone_number_id TEXT,
     business_number TEXT,
     tenant TEXT,
     record JSONB NOT NULL
   );
   CREATE INDEX call_records_offered ON call_records (offered_at DESC, id DESC);
   CREATE INDEX call_records_tenant ON call_records (tenant, offered_at DESC);
   CREATE INDEX call_records_user ON call_records (user_wa_id);
   CREATE INDEX call_records_business ON call_records (business_number);
   CREATE INDEX call_records_wa_call ON call_records (wa_call_id);`,
];

export const POSTGRES_SCHEMA_VERSION = MIGRATIONS.length;
/** Arbitrary constant naming this schema's migration lock (pg_advisory_xact_lock). */
const MIGRATION_LOCK = 0x77616777;

const WRITE_RETRY_DELAYS_MS = [250, 1000];
/** How often an idle store checks that the database still answers (readiness follows it). */
const HEALTH_CHECK_MS = 5000;

/** Errors after which the same statement may succeed on a new connection (SQLSTATE class 08, 57P0x, socket errors). */
function isConnectionError(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  if (typeof code !== 'string') return /Connection terminated|connect ECONNREFUSED|timeout/i.test(String((err as Error).message));
  return code.startsWith('08') || code.startsWith('57P0') || ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT'].includes(code);
}

export interface PostgresStoreOptions {
  connectionString: string;
  /** Pool size; calls end at most a few per second per instance, the admin API reads in pages. */
  maxConnections?: number;
  /** Period of the reachability check behind isOpen (and /readyz), in ms; 0 = none. Default 5000. */
  healthCheckMs?: number;
}

/** PostgreSQL behind the same interface as SQLite, for several gateway instances sharing their records. */
export class PostgresCallRecordStore implements CallRecordStore {
  readonly kind = 'postgres';
  private readonly pool: pg.Pool;
  private closed = false;
  /** Whether the database answered the last query or health check: /readyz says not ready while it does not. */
  private reachable = true;
  private healthTimer: NodeJS.Timeout | null = null;

  private constructor(pool: pg.Pool, healthCheckMs: number) {
    this.pool = pool;
    if (healthCheckMs > 0) {
      this.healthTimer = setInterval(() => void this.checkHealth(), healthCheckMs);
      this.healthTimer.unref();
    }
  }

  /** Connects and migrates; rejects (without the URL, which may hold a password) when the database is unusable. */
  static async open(opts: PostgresStoreOptions): Promise<PostgresCallRecordStore> {
    const pool = new pg.Pool({ connectionString: opts.connectionString, max: opts.maxConnections ?? 5, connectionTimeoutMillis: 10_000 });
    // An idle client whose server went away emits 'error' on the pool; unhandled, it would crash the process.
    pool.on('error', () => { /* the next query or health check reconnects or fails visibly */ });
    const store = new PostgresCallRecordStore(pool, opts.healthCheckMs ?? HEALTH_CHECK_MS);
    try {
      await store.migrate();
    } catch (err) {
      store.closed = true;
      if (store.healthTimer) clearInterval(store.healthTimer);
      await pool.end().catch(() => undefined);
      throw new Error(`PostgreSQL call-record store unusable: ${(err as Error).message}`);
    }
    return store;
  }

  /** Open, and the database answered its last query or health check. */
  get isOpen(): boolean {
    return !this.closed && this.reachable;
  }

  private async checkHealth(): Promise<void> {
    if (this.closed) return;
    try {
      await this.pool.query('SELECT 1');
      this.reachable = true;
    } catch {
      this.reachable = false;
    }
  }

  async schemaVersion(): Promise<number> {
    const r = await this.pool.query<{ version: number }>('SELECT version FROM wagw_schema_version');
    return r.rows[0]?.version ?? 0;
  }

  private async migrate(): Promise<void> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      await client.query('CREATE TABLE IF NOT EXISTS wagw_schema_version (version INTEGER NOT NULL)');
      const r = await client.query<{ version: number }>('SELECT version FROM wagw_schema_version');
      let version = r.rows[0]?.version;
      if (version === undefined) {
        await client.query('INSERT INTO wagw_schema_version (version) VALUES (0)');
        version = 0;
      }
      for (let v = version; v < MIGRATIONS.length; v++) {
        await client.query(MIGRATIONS[v]!);
        await client.query('UPDATE wagw_schema_version SET version = $1', [v + 1]);
      }
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  /**
   * A call's only record: a connection lost (database restart, failover) is retried twice before the caller logs the
   * record whole. Retrying is safe because the insert is idempotent.
   */
  async write(r: CallRecord): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.insert(r);
      } catch (err) {
        if (attempt >= WRITE_RETRY_DELAYS_MS.length || this.closed || !isConnectionError(err)) throw err;
        await new Promise((res) => setTimeout(res, WRITE_RETRY_DELAYS_MS[attempt]));
      }
    }
  }

  private async insert(r: CallRecord): Promise<void> {
    // ON CONFLICT DO NOTHING: a record is written exactly once; a second write of the same call id cannot replace it.
    await this.pool.query(
      `INSERT INTO call_records
         (id, direction, outcome, offered_at, ended_at, wa_call_id, sip_call_id, user_wa_id, phone_number_id, business_number, tenant, record)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
       ON CONFLICT (id) DO NOTHING`,
      [r.id, r.direction, r.outcome, normalizeTime(r.offeredAt), normalizeTime(r.endedAt), r.waCallId ?? null, r.sipCallId ?? null,
        r.userWaId, r.phoneNumberId, r.businessNumber, r.tenant, JSON.stringify(r)],
    );
  }

  async get(id: string): Promise<CallRecord | undefined> {
    const r = await this.pool.query<{ record: CallRecord }>('SELECT record FROM call_records WHERE id = $1', [id]);
    return r.rows[0]?.record;
  }

  async list(q: CallRecordQuery = {}): Promise<CallRecord[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    const arg = (v: unknown): string => { args.push(v); return `$${args.length}`; };
    if (q.since) where.push(`offered_at >= ${arg(normalizeTime(q.since))}`);
    if (q.until) where.push(`offered_at < ${arg(normalizeTime(q.until))}`);
    if (q.direction) where.push(`direction = ${arg(q.direction)}`);
    if (q.outcome) where.push(`outcome = ${arg(q.outcome)}`);
    if (q.tenant !== undefined) where.push(`tenant = ${arg(q.tenant)}`);
    if (q.number) {
      const n = arg(q.number);
      where.push(`(user_wa_id = ${n} OR business_number = ${n})`);
    }
    if (q.cursor) {
      const c = decodeCursor(q.cursor);
      where.push(`(offered_at, id) < (${arg(normalizeTime(c.offeredAt))}::timestamptz, ${arg(c.id)})`);
    }
    const sql = `SELECT record FROM call_records ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY offered_at DESC, id DESC LIMIT ${arg(pageSize(q.limit))}`;
    const r = await this.pool.query<{ record: CallRecord }>(sql, args);
    return r.rows.map((row) => row.record);
  }

  async amendByWaCallId(waCallId: string, revise: (r: CallRecord) => CallRecord | undefined): Promise<CallRecord | undefined> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      // FOR UPDATE: another instance amending the same call waits, then sees this one's change.
      const r = await client.query<{ id: string; record: CallRecord }>(
        'SELECT id, record FROM call_records WHERE wa_call_id = $1 ORDER BY offered_at DESC LIMIT 1 FOR UPDATE', [waCallId]);
      const row = r.rows[0];
      const revised = row ? revise(row.record) : undefined;
      if (row && revised) await client.query('UPDATE call_records SET record = $2 WHERE id = $1', [row.id, JSON.stringify(revised)]);
      await client.query('COMMIT');
      return revised;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  async deleteOfferedBefore(cutoff: string): Promise<number> {
    const r = await this.pool.query('DELETE FROM call_records WHERE offered_at < $1', [normalizeTime(cutoff)]);
    return r.rowCount ?? 0;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.healthTimer) clearInterval(this.healthTimer);
    await this.pool.end();
  }
}
