/**
 * The same record tests on both stores: SQLite (embedded) and PostgreSQL (a throwaway cluster started from the
 * machine's PostgreSQL binaries; skipped loudly when there are none). Records are made by a real Call, so the fields
 * checked are the ones the gateway writes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Call, type CallContext, type CallState, type EndReason } from '../calls/call.js';
import { createLogger } from '../observability/logger.js';
import { createMetrics } from '../observability/metrics.js';
import { recordCursor, OUTCOMES, type CallRecord, type CallRecordStore, type Outcome, type QualitySummary } from './call-record.js';
import { SqliteCallRecordStore, SQLITE_SCHEMA_VERSION } from './sqlite-store.js';
import { PostgresCallRecordStore, POSTGRES_SCHEMA_VERSION } from './postgres-store.js';
import { RetentionSweeper } from './retention.js';
import { configSchema } from '../config/schema.js';
import { startGateway } from '../gateway.js';
import { freePort } from '../../test/peers/sip/ports.js';
import { noteSkipped } from '../../test/peers/drachtio.js';
import { postgresAvailable, startPostgres, type PostgresServer } from '../../test/peers/postgres.js';

const logger = createLogger('silent');
const pgAvail = postgresAvailable();
const PG_TESTS = 12;
if (!pgAvail.ok) noteSkipped(pgAvail.reason, PG_TESTS, 'call records on PostgreSQL');

const ctx: CallContext = {
  direction: 'user_initiated', tenant: 'acme', phoneNumberId: '436666719526789', businessNumber: '13175551399',
  userWaId: '16315553602', userName: 'Jane "JD" Doe', sipTarget: 'sip:queue@pbx.example.com', ctaPayload: 'order=42',
};
const quality: QualitySummary = {
  whatsapp: { packetsIn: 1500, packetsOut: 1498, lost: 2, late: 1, jitterMs: 3.25, mos: 4.31 },
  sip: { packetsIn: 1499, packetsOut: 1500, lost: 0, late: 0, jitterMs: 0.5, mos: 4.4 },
};

interface Scenario {
  outcome: Outcome;
  reach: CallState[];
  end: EndReason;
  expect: Partial<CallRecord>;
}

/** One realistic way to reach each outcome (user-initiated flow, user-initiated.ts). */
const SCENARIOS: Scenario[] = [
  { outcome: 'answered', reach: ['offered', 'pre_accepted', 'ringing', 'answered'], end: { by: 'whatsapp', outcome: 'answered', cause: 'whatsapp_hangup' }, expect: { endedBy: 'whatsapp', cause: 'whatsapp_hangup' } },
  { outcome: 'rejected', reach: ['offered'], end: { by: 'gateway', outcome: 'rejected', cause: 'capacity' }, expect: { endedBy: 'gateway', cause: 'capacity' } },
  { outcome: 'busy', reach: ['offered', 'pre_accepted', 'ringing'], end: { by: 'sip', outcome: 'busy', cause: 'sip_486', sipStatus: 486 }, expect: { endedBy: 'sip', sipStatus: 486 } },
  { outcome: 'no_answer', reach: ['offered', 'pre_accepted', 'ringing'], end: { by: 'sip', outcome: 'no_answer', cause: 'sip_408', sipStatus: 408 }, expect: { endedBy: 'sip', sipStatus: 408 } },
  { outcome: 'cancelled', reach: ['offered', 'pre_accepted', 'ringing'], end: { by: 'whatsapp', outcome: 'cancelled', cause: 'whatsapp_hangup' }, expect: { endedBy: 'whatsapp' } },
  { outcome: 'failed', reach: ['offered', 'pre_accepted'], end: { by: 'gateway', outcome: 'failed', cause: 'graph_accept_138006', graphCode: 138006 }, expect: { endedBy: 'gateway', graphCode: 138006 } },
];

async function runCall(store: CallRecordStore, s: Scenario, callCtx: CallContext = ctx): Promise<CallRecord> {
  const call = new Call(callCtx, logger, createMetrics(), (r) => store.write(r));
  call.bindIds({ waCallId: `wacid.${s.outcome}.${call.id}` });
  for (const st of s.reach) {
    if (st === 'ringing') call.bindIds({ sipCallId: `sip-${call.id}@127.0.0.1` });
    if (st === 'answered') {
      call.sipAgent = 'sip:agent7@10.0.0.7:5060';
      call.quality = quality;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(call.transition(st, `to_${st}`)).toBe(true);
  }
  if (s.outcome === 'answered') await new Promise((r) => setTimeout(r, 30));
  return call.end(s.end);
}

/** A record with chosen times and numbers, for filters and pagination. */
function synthetic(i: number, over: Partial<CallRecord> = {}): CallRecord {
  const offered = new Date(Date.UTC(2025, 0, 1, 0, 0, 0) + Math.floor(i / 2) * 60_000); // two records share each minute
  return {
    id: `rec-${String(i).padStart(5, '0')}`, direction: i % 3 === 0 ? 'business_initiated' : 'user_initiated',
    tenant: i % 2 === 0 ? 'acme' : 'globex', phoneNumberId: '1', businessNumber: i % 2 === 0 ? '13175551399' : '13175550000',
    userWaId: `1631555${String(i % 10).padStart(4, '0')}`, offeredAt: offered.toISOString(), endedAt: new Date(offered.getTime() + 5000).toISOString(),
    durationSeconds: 0, billablePulses: 0, outcome: OUTCOMES[i % OUTCOMES.length]!, endedBy: 'gateway', cause: 'test', ...over,
  };
}

function storeSuite(name: string, open: () => Promise<CallRecordStore>): void {
  let store: CallRecordStore;
  beforeAll(async () => { store = await open(); });
  afterAll(async () => { await store?.close(); });

  it.each(SCENARIOS.map((s) => [s.outcome, s] as const))(`${name}: a %s call leaves one record with the right fields`, async (_o, s) => {
    const ended = await runCall(store, s);
    const r = await store.get(ended.id);
    expect(r).toEqual(JSON.parse(JSON.stringify(ended)));
    expect(r).toMatchObject({
      ...s.expect, outcome: s.outcome, direction: 'user_initiated', tenant: 'acme', phoneNumberId: ctx.phoneNumberId,
      businessNumber: ctx.businessNumber, userWaId: ctx.userWaId, userName: ctx.userName, sipTarget: ctx.sipTarget, ctaPayload: 'order=42',
      waCallId: `wacid.${s.outcome}.${ended.id}`, billablePulses: 0, estimatedCost: 0,
    });
    expect(Date.parse(r!.endedAt)).toBeGreaterThanOrEqual(Date.parse(r!.offeredAt));
    if (s.outcome === 'answered') {
      expect(r!.answeredAt).toBeDefined();
      expect(r!.durationSeconds).toBeGreaterThan(0.01);
      expect(r!.sipAgent).toBe('sip:agent7@10.0.0.7:5060');
      expect(r!.quality).toEqual(quality);
    } else {
      expect(r!.answeredAt).toBeUndefined();
      expect(r!.durationSeconds).toBe(0);
      expect(r!.quality).toBeUndefined();
    }
    if (s.reach.includes('ringing')) expect(r!.sipCallId).toBe(`sip-${ended.id}@127.0.0.1`);
    else expect(r!.sipCallId).toBeUndefined();
  });

  it(`${name}: a record is written once; a second write of the same id changes nothing`, async () => {
    const first = synthetic(90_001, { cause: 'first' });
    await store.write(first);
    await store.write({ ...first, cause: 'second', outcome: 'failed' });
    expect(await store.get(first.id)).toMatchObject({ cause: 'first' });
    expect((await store.list({ number: first.userWaId, since: first.offeredAt })).filter((r) => r.id === first.id)).toHaveLength(1);
  });

  it(`${name}: amendByWaCallId rewrites the newest record of that WhatsApp call, or nothing when revise declines`, async () => {
    const older = synthetic(91_000, { id: 'amend-older', waCallId: 'wacid.amend', cause: 'older' });
    const newer = synthetic(91_010, { id: 'amend-newer', waCallId: 'wacid.amend', cause: 'newer' });
    await store.write(older);
    await store.write(newer);
    const seen: string[] = [];
    const amended = await store.amendByWaCallId('wacid.amend', (r) => {
      seen.push(r.id);
      return { ...r, metaDurationSeconds: 13, billablePulses: 3 };
    });
    expect(seen).toEqual(['amend-newer']);
    expect(amended).toMatchObject({ id: 'amend-newer', metaDurationSeconds: 13, billablePulses: 3 });
    expect(await store.get('amend-newer')).toEqual(amended);
    expect(await store.get('amend-older')).toEqual(older);
    // Listing reads the amended record too (it is the stored one, not a copy beside it).
    expect((await store.list({ number: newer.userWaId, since: newer.offeredAt })).find((r) => r.id === 'amend-newer')).toMatchObject({ metaDurationSeconds: 13 });
    expect(await store.amendByWaCallId('wacid.amend', () => undefined)).toBeUndefined();
    expect(await store.get('amend-newer')).toEqual(amended);
    expect(await store.amendByWaCallId('wacid.nobody', () => { throw new Error('must not be called'); })).toBeUndefined();
  });

  it(`${name}: filters by time, direction, outcome, tenant and number; cursors walk every record once, newest first`, async () => {
    const all = Array.from({ length: 57 }, (_, i) => synthetic(i));
    for (const r of all) await store.write(r);
    const window = { since: '2025-01-01T00:00:00Z', until: '2025-01-02T00:00:00Z' };
    const sorted = [...all].sort((a, b) => (a.offeredAt === b.offeredAt ? (a.id < b.id ? 1 : -1) : a.offeredAt < b.offeredAt ? 1 : -1));

    const seen: string[] = [];
    let cursor: string | undefined;
    for (let pages = 0; pages < 20; pages++) {
      const page = await store.list({ ...window, limit: 10, cursor });
      seen.push(...page.map((r) => r.id));
      if (page.length < 10) break;
      cursor = recordCursor(page.at(-1)!);
    }
    expect(seen).toEqual(sorted.map((r) => r.id));

    const ids = async (q: Parameters<CallRecordStore['list']>[0]) => (await store.list({ ...window, limit: 1000, ...q })).map((r) => r.id).sort();
    const want = (f: (r: CallRecord) => boolean) => all.filter(f).map((r) => r.id).sort();
    expect(await ids({ direction: 'business_initiated' })).toEqual(want((r) => r.direction === 'business_initiated'));
    expect(await ids({ outcome: 'busy' })).toEqual(want((r) => r.outcome === 'busy'));
    expect(await ids({ tenant: 'globex' })).toEqual(want((r) => r.tenant === 'globex'));
    expect(await ids({ number: '16315550003' })).toEqual(want((r) => r.userWaId === '16315550003'));
    expect(await ids({ number: '13175550000' })).toEqual(want((r) => r.businessNumber === '13175550000'));
    expect(await ids({ since: '2025-01-01T00:10:00Z', until: '2025-01-01T00:12:00+00:00' })).toEqual(want((r) => r.offeredAt >= '2025-01-01T00:10:00.000Z' && r.offeredAt < '2025-01-01T00:12:00.000Z'));
    expect(await ids({ tenant: 'acme', outcome: 'answered', direction: 'user_initiated' })).toEqual(want((r) => r.tenant === 'acme' && r.outcome === 'answered' && r.direction === 'user_initiated'));
    await expect(store.list({ cursor: 'not-a-cursor' })).rejects.toThrow(/cursor/);
  });

  it(`${name}: retention deletes records offered before the cutoff, and only those`, async () => {
    const old = synthetic(80_000, { id: 'old-one', offeredAt: '2020-01-01T00:00:00.000Z', endedAt: '2020-01-01T00:01:00.000Z' });
    const recent = synthetic(80_001, { id: 'recent-one', offeredAt: new Date(Date.now() - 86_400_000).toISOString(), endedAt: new Date().toISOString() });
    await store.write(old);
    await store.write(recent);
    const sweeper = new RetentionSweeper(store, { days: 30, intervalMs: 60_000, logger });
    const deleted = await sweeper.sweep();
    expect(deleted).toBeGreaterThanOrEqual(1);
    expect(await store.get('old-one')).toBeUndefined();
    expect(await store.get('recent-one')).toBeDefined();
    // Records made by the other tests (offered 2025-01-01) are older than 30 days too, unless the clock says otherwise.
    expect(await store.list({ until: new Date(Date.now() - 30 * 86_400_000).toISOString() })).toEqual([]);
  });
}

describe('call records on SQLite', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wagw-store-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  storeSuite('sqlite', async () => new SqliteCallRecordStore(join(dir, 'records.sqlite')));

  it('sqlite: migrates a version-1 database in place, old records still readable and filterable by number', async () => {
    const path = join(dir, 'v1.sqlite');
    const db = new Database(path);
    db.exec(`CREATE TABLE call_records (id TEXT PRIMARY KEY, direction TEXT NOT NULL, outcome TEXT NOT NULL, offered_at TEXT NOT NULL,
      ended_at TEXT NOT NULL, wa_call_id TEXT, sip_call_id TEXT, user_wa_id TEXT, phone_number_id TEXT, tenant TEXT, record TEXT NOT NULL);
      CREATE INDEX call_records_offered ON call_records (offered_at);`);
    const old = synthetic(1, { id: 'from-v1' });
    db.prepare('INSERT INTO call_records VALUES (?,?,?,?,?,?,?,?,?,?,?)').run(old.id, old.direction, old.outcome, old.offeredAt, old.endedAt, null, null, old.userWaId, old.phoneNumberId, old.tenant, JSON.stringify(old));
    db.pragma('user_version = 1');
    db.close();
    const store = new SqliteCallRecordStore(path);
    expect(store.schemaVersion).toBe(SQLITE_SCHEMA_VERSION);
    expect(await store.get('from-v1')).toEqual(old);
    expect((await store.list({ number: old.businessNumber })).map((r) => r.id)).toEqual(['from-v1']);
    await store.close();
    const again = new SqliteCallRecordStore(path);
    expect(again.schemaVersion).toBe(SQLITE_SCHEMA_VERSION);
    await again.close();
  });
});

describe.skipIf(!pgAvail.ok)('call records on PostgreSQL', () => {
  let server: PostgresServer | undefined;
  let url = '';
  beforeAll(async () => {
    server = await startPostgres();
    url = await server.createDatabase('wagw_records');
  }, 60_000);
  afterAll(async () => { await server?.stop(); }, 30_000);
  storeSuite('postgres', () => PostgresCallRecordStore.open({ connectionString: url }));

  it('postgres: migrations are versioned and run once, also when two instances start together', async () => {
    const fresh = await server!.createDatabase('wagw_migrate');
    const [a, b] = await Promise.all([PostgresCallRecordStore.open({ connectionString: fresh }), PostgresCallRecordStore.open({ connectionString: fresh })]);
    expect(await a.schemaVersion()).toBe(POSTGRES_SCHEMA_VERSION);
    await a.write(synthetic(7));
    await a.close();
    await b.close();
    const c = await PostgresCallRecordStore.open({ connectionString: fresh });
    expect(await c.schemaVersion()).toBe(POSTGRES_SCHEMA_VERSION);
    expect(await c.get(synthetic(7).id)).toEqual(synthetic(7));
    await c.close();
  });

  it('postgres: the gateway uses it when store.databaseUrl is set, sweeps old records at start, and closes it on stop', async () => {
    const db = await server!.createDatabase('wagw_gateway');
    const seed = await PostgresCallRecordStore.open({ connectionString: db });
    await seed.write(synthetic(1, { id: 'ancient', offeredAt: '2019-05-01T00:00:00.000Z', endedAt: '2019-05-01T00:01:00.000Z' }));
    await seed.write(synthetic(2, { id: 'fresh', offeredAt: new Date().toISOString(), endedAt: new Date().toISOString() }));
    await seed.close();
    const config = configSchema.parse({
      http: { host: '127.0.0.1', port: 0 }, log: { level: 'silent' },
      sip: { drachtioHost: '127.0.0.1', drachtioPort: await freePort({ udp: false }) },
      store: { sqlitePath: ':memory:', databaseUrl: db, retentionDays: 30 },
    });
    const gw = await startGateway(config, { graphToken: 't', appSecret: 'a', verifyToken: 'v', drachtioSecret: 'c', adminKeys: new Map([['pg-admin-key', 'ops:admin']]) });
    try {
      expect(gw.store.kind).toBe('postgres');
      const auth = { authorization: 'Bearer pg-admin-key' };
      const status = (await (await fetch(`http://127.0.0.1:${gw.http.port}/v1/status`, { headers: auth })).json()) as { store: unknown };
      expect(status.store).toEqual({ kind: 'postgres', open: true });
      const deadline = Date.now() + 10_000;
      while ((await gw.store.get('ancient')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(await gw.store.get('ancient')).toBeUndefined();
      const listed = (await (await fetch(`http://127.0.0.1:${gw.http.port}/v1/records`, { headers: auth })).json()) as { records: CallRecord[] };
      expect(listed.records.map((r) => r.id)).toEqual(['fresh']);
      const deleted = await gw.metrics.registry.getSingleMetric('wagw_call_records_deleted_total')!.get();
      expect(deleted.values[0]?.value).toBe(1);
    } finally {
      await gw.drainAndStop();
    }
    expect(gw.store.isOpen).toBe(false);
  });

  it('postgres: isOpen (and so /readyz) follows the database: a server that goes away makes the store not ready', async () => {
    const own = await startPostgres();
    let store: PostgresCallRecordStore | undefined;
    try {
      store = await PostgresCallRecordStore.open({ connectionString: await own.createDatabase('wagw_health'), healthCheckMs: 200 });
      await new Promise((r) => setTimeout(r, 500));
      expect(store.isOpen).toBe(true);
      await own.stop();
      const deadline = Date.now() + 10_000;
      while (store.isOpen && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect(store.isOpen).toBe(false);
    } finally {
      await store?.close().catch(() => undefined);
      await own.stop();
    }
  }, 60_000);

  it('postgres: an unreachable database is a clear error that does not show the URL', async () => {
    const err = await PostgresCallRecordStore.open({ connectionString: `postgres://wagw:s3cret-pw@127.0.0.1:1/none` }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/PostgreSQL call-record store unusable/);
    expect((err as Error).message).not.toContain('s3cret-pw');
  });
});
