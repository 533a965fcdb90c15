import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type { CallRecord, CallRecordStore } from '../store/call-record.js';
import { SqliteCallRecordStore } from '../store/sqlite-store.js';
import { KEYS, startAdminFixture, type AdminFixture } from './admin-fixture.js';
import { CSV_HEADER, csvField } from './records-csv.js';
import { openApiDocument } from './openapi.js';

type Who = 'admin' | 'supervisor' | 'reporting' | 'reportingAll' | 'none' | 'wrong';
const WHO: Who[] = ['admin', 'supervisor', 'reporting', 'reportingAll', 'none', 'wrong'];

function authHeader(who: Who): Record<string, string> {
  if (who === 'none') return {};
  if (who === 'wrong') return { authorization: 'Bearer not-a-key' };
  return { authorization: `Bearer ${KEYS[who]}` };
}

function record(i: number, over: Partial<CallRecord> = {}): CallRecord {
  const offered = new Date(Date.UTC(2025, 5, 1) + i * 1000);
  return {
    id: `r${String(i).padStart(6, '0')}`, direction: 'user_initiated', tenant: i % 2 ? 'globex' : 'acme', phoneNumberId: '1',
    businessNumber: '13175551399', userWaId: '16315553602', userName: i === 1 ? '=HYPERLINK("x")' : 'Jane, "JD"', offeredAt: offered.toISOString(),
    endedAt: new Date(offered.getTime() + 3000).toISOString(), durationSeconds: 3, billablePulses: 0, estimatedCost: 0,
    outcome: 'answered', endedBy: 'whatsapp', cause: 'whatsapp_hangup', ...over,
  };
}

describe('admin API', () => {
  let fx: AdminFixture;
  beforeAll(async () => {
    fx = await startAdminFixture();
    for (let i = 0; i < 10; i++) await fx.store.write(record(i));
  });
  afterAll(async () => { await fx?.close(); });

  const get = (path: string, who: Who) => fetch(`${fx.base}${path}`, { headers: authHeader(who) });

  // Expected status per caller: admin, supervisor, reporting (tenant acme), reporting (no tenant), no key, unknown key.
  type Row = [name: string, method: string, path: () => string, expect: Record<Who, number>];
  const R = (a: number, s: number, r: number, ra: number, n = 401, w = 401): Record<Who, number> => ({ admin: a, supervisor: s, reporting: r, reportingAll: ra, none: n, wrong: w });
  const MATRIX: Row[] = [
    ['OpenAPI description', 'GET', () => '/v1/openapi.json', R(200, 200, 200, 200, 200, 200)],
    ['list records', 'GET', () => '/v1/records', R(200, 200, 200, 200)],
    ['list records of another tenant', 'GET', () => '/v1/records?tenant=globex', R(200, 200, 403, 200)],
    ['CSV export', 'GET', () => '/v1/records.csv', R(200, 200, 200, 200)],
    ['one record of its tenant', 'GET', () => '/v1/records/r000000', R(200, 200, 200, 200)],
    ['one record of another tenant', 'GET', () => '/v1/records/r000001', R(200, 200, 404, 200)],
    ['live calls', 'GET', () => '/v1/calls', R(200, 200, 403, 403)],
    ['one live call', 'GET', () => `/v1/calls/${fx.liveCall().id}`, R(200, 200, 403, 403)],
    ['hang up (POST)', 'POST', () => `/v1/calls/${fx.liveCall().id}/hangup`, R(200, 200, 403, 403)],
    ['hang up (DELETE)', 'DELETE', () => `/v1/calls/${fx.liveCall().id}`, R(200, 200, 403, 403)],
    ['status summary', 'GET', () => '/v1/status', R(200, 200, 403, 403)],
  ];
  const cases = MATRIX.flatMap(([name, method, path, expect]) => WHO.map((who) => [name, who, method, path, expect[who]] as const));

  it.each(cases)('%s as %s → %s', async (_name, who, method, path, status, _x = undefined) => {
    const p = path();
    const res = await fetch(`${fx.base}${p}`, { method, headers: authHeader(who) });
    expect(res.status).toBe(status);
    if (status === 401) expect(res.headers.get('www-authenticate')).toBe('Bearer');
    if (status >= 400) expect((await res.json()) as object).toHaveProperty('error');
    else await res.arrayBuffer();
    const callId = /\/v1\/calls\/([^/]+)/.exec(p)?.[1];
    if (callId && method !== 'GET') {
      // Only an allowed hang-up ends the call; a refused one leaves it live.
      expect(fx.registry.get(callId) === undefined).toBe(status === 200);
    }
  });

  it.each([
    ['admin', 101], ['supervisor', 101], ['reporting', 403], ['reportingAll', 403], ['none', 401], ['wrong', 401],
  ] as const)('event feed (WebSocket upgrade) as %s → %s', async (who, status) => {
    const ws = new WebSocket(`${fx.wsBase}/v1/events`, { headers: authHeader(who) });
    const got = await new Promise<number>((resolve) => {
      ws.once('open', () => resolve(101));
      ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.once('error', () => resolve(-1));
    });
    ws.terminate();
    expect(got).toBe(status);
  });

  it('a reporting key sees its own tenant only, whatever it asks for', async () => {
    const body = (await (await get('/v1/records?limit=1000', 'reporting')).json()) as { records: CallRecord[] };
    const all = (await (await get('/v1/records?limit=1000', 'supervisor')).json()) as { records: CallRecord[] };
    const acme = all.records.filter((r) => r.tenant === 'acme').length;
    expect(acme).toBeGreaterThanOrEqual(5);
    expect(all.records.length).toBeGreaterThan(acme);
    expect(body.records.length).toBe(acme);
    expect(new Set(body.records.map((r) => r.tenant))).toEqual(new Set(['acme']));
    const csv = await (await get('/v1/records.csv', 'reporting')).text();
    expect(csv.trim().split('\r\n')).toHaveLength(1 + acme);
  });

  it("a supervisor key given a tenant sees and hangs up that tenant's calls and records only", async () => {
    const h = { authorization: `Bearer ${KEYS.supervisorAcme}` };
    const at = (path: string, init: RequestInit = {}) => fetch(`${fx.base}${path}`, { ...init, headers: h });
    const records = ((await (await at('/v1/records?limit=1000')).json()) as { records: CallRecord[] }).records;
    expect(records.length).toBeGreaterThan(0);
    expect(new Set(records.map((r) => r.tenant))).toEqual(new Set(['acme']));
    expect((await at('/v1/records?tenant=globex')).status).toBe(403);
    expect((await at('/v1/records/r000001')).status).toBe(404);
    expect((await (await at('/v1/records.csv')).text()).trim().split('\r\n')).toHaveLength(1 + records.length);
    const own = fx.liveCall('answered');
    const other = fx.liveCall('answered', { tenant: 'globex' });
    const live = ((await (await at('/v1/calls')).json()) as { calls: { id: string; tenant: string }[] }).calls;
    expect(live.map((c) => c.id)).toContain(own.id);
    expect(live.filter((c) => c.tenant !== 'acme')).toEqual([]);
    expect((await at(`/v1/calls/${other.id}`)).status).toBe(404);
    expect((await at(`/v1/calls/${other.id}/hangup`, { method: 'POST' })).status).toBe(404);
    expect(other.isEnded).toBe(false);
    expect((await at(`/v1/calls/${own.id}/hangup`, { method: 'POST' })).status).toBe(200);
  });

  it('mutating requests are audit-logged with the key name, never the key; reads are not', async () => {
    const call = fx.liveCall('ringing');
    const before = fx.logLines().length;
    const res = await fetch(`${fx.base}/v1/calls/${call.id}/hangup`, { method: 'POST', headers: authHeader('supervisor') });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { record: CallRecord };
    expect(body.record).toMatchObject({ outcome: 'cancelled', cause: 'admin_hangup', endedBy: 'gateway' });
    await get('/v1/records', 'admin');
    const lines = fx.logLines().slice(before);
    const audit = lines.filter((l) => l.audit === true);
    expect(audit).toEqual([expect.objectContaining({ key: 'floor-lead', role: 'supervisor', method: 'POST', path: `/v1/calls/${call.id}/hangup` })]);
    expect(JSON.stringify(fx.logLines())).not.toContain(KEYS.supervisor);
    // A refused attempt is audited too, still by name only.
    const other = fx.liveCall('answered');
    const n = fx.logLines().length;
    expect((await fetch(`${fx.base}/v1/calls/${other.id}/hangup`, { method: 'POST', headers: authHeader('reporting') })).status).toBe(403);
    expect(fx.logLines().slice(n).filter((l) => l.audit === true)).toEqual([expect.objectContaining({ denied: true, key: 'acme-bi', role: 'reporting', method: 'POST' })]);
    expect(JSON.stringify(fx.logLines())).not.toContain(KEYS.reporting);
    expect(await fx.store.get(call.id)).toMatchObject({ cause: 'admin_hangup' });
  });

  it('hanging up an answered call records outcome answered; an unknown or ended call is 404', async () => {
    const call = fx.liveCall('answered');
    const res = await fetch(`${fx.base}/v1/calls/${call.waCallId}`, { method: 'DELETE', headers: authHeader('admin') });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { record: CallRecord }).record).toMatchObject({ outcome: 'answered', cause: 'admin_hangup' });
    expect((await fetch(`${fx.base}/v1/calls/${call.id}/hangup`, { method: 'POST', headers: authHeader('admin') })).status).toBe(404);
    expect((await get('/v1/calls/nope', 'admin')).status).toBe(404);
  });

  it('a broken percent-escape in a path parameter is 400 with a clear error, not a 500', async () => {
    for (const path of ['/v1/calls/%E0%A4%A', '/v1/records/%', '/v1/calls/%ZZ/hangup']) {
      const res = await fetch(`${fx.base}${path}`, { method: path.endsWith('hangup') ? 'POST' : 'GET', headers: authHeader('admin') });
      expect(res.status, path).toBe(400);
      expect(((await res.json()) as { error: string }).error, path).toMatch(/percent-encoding/);
    }
    // A well-formed escape still decodes: an unknown id is 404.
    expect((await get('/v1/calls/%E0%A4%A4', 'admin')).status).toBe(404);
  });

  it('live calls carry state and current quality', async () => {
    const call = fx.liveCall('answered', { userWaId: '4915112345678' });
    const q = { whatsapp: { packetsIn: 10, packetsOut: 11, lost: 1, late: 0, jitterMs: 2, mos: 4.2 }, sip: { packetsIn: 11, packetsOut: 10, lost: 0, late: 0, jitterMs: 1, mos: 4.4 } };
    call.setQualitySource(() => q);
    const body = (await (await get('/v1/calls', 'supervisor')).json()) as { calls: { id: string; state: string; quality: unknown; userWaId: string }[] };
    expect(body.calls.find((c) => c.id === call.id)).toMatchObject({ state: 'answered', quality: q, userWaId: '4915112345678' });
    const status = (await (await get('/v1/status', 'admin')).json()) as { liveCalls: { total: number; byState: Record<string, number> }; store: { kind: string }; metaNotices: unknown[] };
    expect(status.liveCalls.byState.answered).toBeGreaterThanOrEqual(1);
    expect(status.store).toEqual({ kind: 'sqlite', open: true });
    // Meta's account notices: account-wide, so shown to keys without a tenant only.
    expect(status.metaNotices).toEqual([expect.objectContaining({ kind: 'ACCOUNT_RESTRICTION', details: { restrictionType: 'RESTRICTED_BUSINESS_INITIATED_CALLING', expiration: '1795700000' } })]);
    const scoped = (await (await fetch(`${fx.base}/v1/status`, { headers: { authorization: `Bearer ${KEYS.supervisorAcme}` } })).json()) as Record<string, unknown>;
    expect(scoped).not.toHaveProperty('metaNotices');
    expect(scoped).toHaveProperty('liveCalls');
    await call.end({ by: 'gateway', outcome: 'answered', cause: 'test' });
  });

  it('filters and cursor pagination through the API; bad filters are 400', async () => {
    const ids: string[] = [];
    let next: string | null = null;
    do {
      const q: string = `/v1/records?limit=3${next ? `&cursor=${encodeURIComponent(next)}` : ''}&since=2025-06-01T00:00:00Z&until=2025-06-02T00:00:00Z`;
      const body = (await (await get(q, 'admin')).json()) as { records: CallRecord[]; nextCursor: string | null };
      ids.push(...body.records.map((r) => r.id));
      next = body.nextCursor;
    } while (next);
    expect(ids).toEqual(Array.from({ length: 10 }, (_, i) => `r${String(9 - i).padStart(6, '0')}`));
    const busy = (await (await get('/v1/records?outcome=busy', 'admin')).json()) as { records: CallRecord[] };
    expect(busy.records).toEqual([]);
    const byNumber = (await (await get('/v1/records?number=%2B13175551399&direction=user_initiated&limit=1000', 'admin')).json()) as { records: CallRecord[] };
    expect(byNumber.records.length).toBeGreaterThanOrEqual(10);
    for (const bad of ['direction=sideways', 'outcome=maybe', 'since=yesterday', 'limit=0', 'cursor=zzz']) {
      const res = await get(`/v1/records?${bad}`, 'admin');
      expect(res.status, bad).toBe(400);
    }
  });

  it('the CSV has a header, one row per record, RFC 4180 quoting and no spreadsheet formulas', async () => {
    const res = await get('/v1/records.csv?tenant=globex', 'admin');
    expect(res.headers.get('content-type')).toMatch(/^text\/csv/);
    const lines = (await res.text()).split('\r\n');
    expect(lines[0]).toBe(CSV_HEADER);
    expect(lines.filter(Boolean)).toHaveLength(6);
    expect(csvField('=HYPERLINK("x")')).toBe(`"'=HYPERLINK(""x"")"`);
    expect(lines.some((l) => l.includes(`"'=HYPERLINK(""x"")"`))).toBe(true);
    expect(lines.some((l) => l.includes('"Jane, ""JD"""'))).toBe(true);
  });

  it('the OpenAPI document lists the error statuses the business-call routes answer', () => {
    const paths = (openApiDocument() as { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> }).paths;
    const codes = (path: string, method: string): string[] => Object.keys(paths[path]![method]!.responses);
    // business-routes.ts: a busy user (486) → 409, Graph failure → 502, SIP down / draining / capacity → 503.
    expect(codes('/v1/calls', 'post')).toEqual(expect.arrayContaining(['400', '403', '404', '409', '502', '503']));
    // numberFor: an unknown phoneNumberId → 404; no permission ledger → 503.
    expect(codes('/v1/permission-requests', 'post')).toEqual(expect.arrayContaining(['404', '409', '429', '502', '503']));
    expect(codes('/v1/permissions/{waId}', 'get')).toEqual(expect.arrayContaining(['400', '404', '503']));
  });

  it('the OpenAPI document describes every route', () => {
    const paths = Object.keys((openApiDocument() as { paths: Record<string, unknown> }).paths);
    for (const p of ['/v1/records', '/v1/records.csv', '/v1/records/{id}', '/v1/calls', '/v1/calls/{id}', '/v1/calls/{id}/hangup', '/v1/status', '/v1/events', '/v1/openapi.json']) {
      expect(paths).toContain(p);
    }
  });
});

/** A store that holds back page `gate` until released: shows whether rows reach the client before later pages are read. */
class GatedStore implements CallRecordStore {
  readonly kind = 'gated';
  pagesRead = 0;
  release!: () => void;
  private readonly gate = new Promise<void>((r) => { this.release = r; });
  constructor(private readonly inner: CallRecordStore, private readonly gatePage: number) {}
  get isOpen() { return this.inner.isOpen; }
  write(r: CallRecord) { return this.inner.write(r); }
  get(id: string) { return this.inner.get(id); }
  async list(q?: Parameters<CallRecordStore['list']>[0]) {
    this.pagesRead++;
    if (this.pagesRead === this.gatePage) await this.gate;
    return this.inner.list(q);
  }
  deleteOfferedBefore(c: string) { return this.inner.deleteOfferedBefore(c); }
  amendByWaCallId(w: string, f: Parameters<CallRecordStore['amendByWaCallId']>[1]) { return this.inner.amendByWaCallId(w, f); }
  close() { return this.inner.close(); }
}

describe('CSV export streams', () => {
  const TOTAL = 5000;
  const PAGE = 200;
  let fx: AdminFixture;
  let gated: GatedStore;
  beforeAll(async () => {
    const inner = new SqliteCallRecordStore(':memory:');
    for (let i = 0; i < TOTAL; i++) await inner.write(record(i, { tenant: 'acme' }));
    gated = new GatedStore(inner, 3);
    fx = await startAdminFixture({ store: gated, csvPageSize: PAGE });
  });
  afterAll(async () => { await fx?.close(); });

  it(`${TOTAL} records: the first rows arrive while later pages are still unread, and every record arrives once`, async () => {
    const res = await fetch(`${fx.base}/v1/records.csv`, { headers: authHeader('reporting') });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    // Page 3 is held back: rows of pages 1–2 must reach us before it is read, or this never completes.
    while (text.split('\r\n').length - 1 < 1 + 2 * PAGE) {
      const { value, done } = await reader.read();
      if (done) throw new Error('stream ended early');
      text += decoder.decode(value, { stream: true });
    }
    expect(gated.pagesRead).toBe(3);
    gated.release();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    const rows = text.split('\r\n').filter(Boolean);
    expect(rows[0]).toBe(CSV_HEADER);
    expect(rows).toHaveLength(1 + TOTAL);
    expect(new Set(rows.slice(1).map((r) => r.split(',')[0])).size).toBe(TOTAL);
    expect(gated.pagesRead).toBe(Math.ceil(TOTAL / PAGE) + (TOTAL % PAGE === 0 ? 1 : 0));
  });
});
