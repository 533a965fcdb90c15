import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../observability/logger.js';
import { createMetrics } from '../observability/metrics.js';
import { SqlitePermissionStore } from '../store/permission-store.js';
import { SqliteCallRecordStore } from '../store/sqlite-store.js';
import { PermissionLedger, PermissionService, PRODUCTION_LIMITS, SANDBOX_LIMITS, permissionRequestContent } from './permissions.js';
import { GraphError, parseCallPermissions, type GraphClient } from './graph-client.js';
import type { PermissionReplyEvent } from './events.js';

const HOUR = 3600_000;
const DAY = 24 * HOUR;
const PN = '106540352242922';
const USER = '14085551234';
const T0 = Date.UTC(2026, 0, 5, 12, 0, 0);

const reply = (over: Partial<PermissionReplyEvent>): PermissionReplyEvent => ({
  kind: 'permission_reply', phoneNumberId: PN, displayNumber: '447700900555', timestamp: Math.floor(T0 / 1000),
  userWaId: USER, response: 'accept', isPermanent: false, ...over,
});

describe('PermissionLedger', () => {
  let now: number;
  let store: SqlitePermissionStore;
  let ledger: PermissionLedger;
  let metrics: ReturnType<typeof createMetrics>;

  beforeEach(() => {
    now = T0;
    store = new SqlitePermissionStore(':memory:');
    metrics = createMetrics();
    ledger = new PermissionLedger({ store, logger: createLogger('silent'), metrics, clock: () => now, defaultExpiryMs: 7 * DAY, staleAfterMs: 15 * 60_000 });
  });
  afterEach(() => store.close());

  it('knows nothing of a new pair: no permission, stale, requests allowed', () => {
    const v = ledger.view(PN, USER);
    expect(v).toMatchObject({ status: 'none', stale: true, requestsLast24h: 0, requestsLast7d: 0, unanswered: 0 });
    expect(ledger.requestRefusal(PN, USER)).toBeUndefined();
  });

  it('a temporary grant lasts until its expiration_timestamp, then expires silently', () => {
    ledger.applyReply(reply({ expiresAt: Math.floor((T0 + 3 * DAY) / 1000) }));
    expect(ledger.view(PN, USER)).toMatchObject({ status: 'temporary', expiresAt: T0 + 3 * DAY, stale: false });
    now = T0 + 3 * DAY - 1000;
    expect(ledger.hasPermission(PN, USER)).toBe(true);
    now = T0 + 3 * DAY;
    expect(ledger.view(PN, USER).status).toBe('none');
  });

  it('a temporary grant without expiration_timestamp gets the default expiry (7 days)', () => {
    ledger.applyReply(reply({}));
    expect(ledger.view(PN, USER).expiresAt).toBe(T0 + 7 * DAY);
    now = T0 + 7 * DAY + 1;
    expect(ledger.hasPermission(PN, USER)).toBe(false);
  });

  it('a permanent grant never expires; a reject revokes it', () => {
    ledger.applyReply(reply({ isPermanent: true }));
    now = T0 + 400 * DAY;
    expect(ledger.view(PN, USER).status).toBe('permanent');
    expect(ledger.requestRefusal(PN, USER)).toBe('permanent_permission');
    ledger.applyReply(reply({ response: 'reject' }));
    expect(ledger.view(PN, USER).status).toBe('none');
  });

  it('allows one request per 24 h and two per 7 days', () => {
    ledger.recordRequest(PN, USER, 'wamid.1');
    expect(ledger.requestRefusal(PN, USER)).toBe('daily_limit');
    expect(ledger.view(PN, USER).nextRequestAt).toBe(T0 + DAY);
    now = T0 + DAY + 1;
    expect(ledger.requestRefusal(PN, USER)).toBeUndefined();
    ledger.recordRequest(PN, USER, 'wamid.2');
    now = T0 + 3 * DAY;
    expect(ledger.requestRefusal(PN, USER)).toBe('weekly_limit');
    expect(ledger.view(PN, USER)).toMatchObject({ requestsLast7d: 2, nextRequestAt: T0 + 7 * DAY, lastRequestId: 'wamid.2' });
    now = T0 + 7 * DAY + 1;
    expect(ledger.requestRefusal(PN, USER)).toBeUndefined();
  });

  it('a sandbox number has Meta\'s test limits: 25 requests a day, 100 a week, revoke after 10 unanswered calls', () => {
    const SANDBOX_PN = '999000111';
    const sandbox = new PermissionLedger({ store, logger: createLogger('silent'), clock: () => now, limitsFor: (id) => (id === SANDBOX_PN ? SANDBOX_LIMITS : PRODUCTION_LIMITS) });
    for (let i = 0; i < 25; i++) {
      expect(sandbox.requestRefusal(SANDBOX_PN, USER)).toBeUndefined();
      sandbox.recordRequest(SANDBOX_PN, USER, `wamid.${i}`);
      now += 60_000;
    }
    expect(sandbox.requestRefusal(SANDBOX_PN, USER)).toBe('daily_limit');
    // The 25th newest request leaves the window first: the first one, sent at T0.
    expect(sandbox.view(SANDBOX_PN, USER).nextRequestAt).toBe(T0 + DAY);
    // The production number beside it keeps 1 a day.
    sandbox.recordRequest(PN, USER, 'wamid.p');
    expect(sandbox.requestRefusal(PN, USER)).toBe('daily_limit');

    sandbox.applyReply(reply({ isPermanent: true, phoneNumberId: SANDBOX_PN }));
    for (let i = 1; i < 10; i++) expect(sandbox.businessCallUnanswered(SANDBOX_PN, USER)).toBe(i);
    expect(sandbox.hasPermission(SANDBOX_PN, USER)).toBe(true);
    sandbox.businessCallUnanswered(SANDBOX_PN, USER);
    expect(sandbox.hasPermission(SANDBOX_PN, USER)).toBe(false);
  });

  it("keeps the user's 24 h customer-service window: their call, their acceptance of ours, their reply", () => {
    expect(ledger.view(PN, USER).serviceWindowUntil).toBeUndefined();
    ledger.userReachedOut(PN, USER, T0 - HOUR);
    expect(ledger.view(PN, USER).serviceWindowUntil).toBe(T0 + 23 * HOUR);
    now = T0 + 23 * HOUR;
    expect(ledger.view(PN, USER).serviceWindowUntil).toBeUndefined();
    ledger.callConnected(PN, USER, 'business_initiated');
    expect(ledger.view(PN, USER).serviceWindowUntil).toBe(now + DAY);
    ledger.userReachedOut(PN, USER, T0); // an older contact never shortens it
    expect(ledger.view(PN, USER).serviceWindowUntil).toBe(now + DAY);
    ledger.applyReply(reply({ response: 'reject', timestamp: Math.floor((now + HOUR) / 1000) }));
    expect(ledger.view(PN, USER).serviceWindowUntil).toBe(now + HOUR + DAY);

    const freeForm = { bodyText: 'May we call you?' };
    expect(permissionRequestContent(ledger.view(PN, USER), 'tmpl', freeForm)).toBe(freeForm);
    expect(permissionRequestContent(ledger.view(PN, '19998887777'), 'tmpl', freeForm)).toEqual({ templateName: 'tmpl' });
    expect(permissionRequestContent(ledger.view(PN, '19998887777'), '', freeForm)).toBe(freeForm);
  });

  it('any connected call resets both request windows, either direction', () => {
    ledger.recordRequest(PN, USER, 'wamid.1');
    now += 2 * DAY;
    ledger.recordRequest(PN, USER, 'wamid.2');
    expect(ledger.requestRefusal(PN, USER)).toBe('daily_limit');
    ledger.callConnected(PN, USER, 'user_initiated');
    expect(ledger.requestRefusal(PN, USER)).toBeUndefined();
    ledger.recordRequest(PN, USER, 'wamid.3');
    ledger.callConnected(PN, USER, 'business_initiated');
    expect(ledger.view(PN, USER).requestsLast7d).toBe(0);
  });

  it('2 unanswered business calls warn, 4 revoke; an answered one starts the run again', async () => {
    ledger.applyReply(reply({ isPermanent: true }));
    expect(ledger.businessCallUnanswered(PN, USER)).toBe(1);
    expect(ledger.businessCallUnanswered(PN, USER)).toBe(2);
    ledger.callConnected(PN, USER, 'business_initiated');
    expect(ledger.view(PN, USER).unanswered).toBe(0);
    for (let i = 0; i < 3; i++) ledger.businessCallUnanswered(PN, USER);
    expect(ledger.hasPermission(PN, USER)).toBe(true);
    expect(ledger.businessCallUnanswered(PN, USER)).toBe(4);
    expect(ledger.view(PN, USER)).toMatchObject({ status: 'none', unanswered: 0 });
    const text = await metrics.registry.getSingleMetricAsString('wagw_permission_events_total');
    expect(text).toContain('unanswered_warning');
    expect(text).toContain('auto_revoked');
  });

  it('takes status, expiry and Meta-side request usage from GET call_permissions', () => {
    const remote = parseCallPermissions({
      messaging_product: 'whatsapp',
      permission: { status: 'temporary', expiration_time: Math.floor((T0 + DAY) / 1000) },
      actions: [{ action_name: 'send_call_permission_request', can_perform_action: false,
        limits: [{ time_period: 'PT24H', max_allowed: 1, current_usage: 1, limit_expiration_time: Math.floor((T0 + HOUR) / 1000) }, { time_period: 'P7D', max_allowed: 2, current_usage: 1 }] }],
    });
    expect(remote).toMatchObject({ status: 'temporary', expiresAt: T0 + DAY });
    ledger.applyRemote(PN, USER, remote);
    expect(ledger.view(PN, USER)).toMatchObject({ status: 'temporary', expiresAt: T0 + DAY, stale: false, requestsLast24h: 1 });
    expect(ledger.requestRefusal(PN, USER)).toBe('daily_limit');
    now += 16 * 60_000;
    expect(ledger.view(PN, USER).stale).toBe(true);
  });

  it('start_call refused by GET call_permissions blocks calls until its limit expires; a later can_perform_action lifts it', () => {
    const refused = parseCallPermissions({
      messaging_product: 'whatsapp', permission: { status: 'permanent' },
      actions: [{ action_name: 'start_call', can_perform_action: false,
        limits: [{ time_period: 'PT24H', max_allowed: 100, current_usage: 100, limit_expiration_time: Math.floor((T0 + 2 * HOUR) / 1000) }] }],
    });
    ledger.applyRemote(PN, USER, refused);
    expect(ledger.view(PN, USER)).toMatchObject({ status: 'permanent', callsBlockedUntil: T0 + 2 * HOUR });
    now += 2 * HOUR;
    expect(ledger.view(PN, USER).callsBlockedUntil).toBeUndefined();
    ledger.applyRemote(PN, USER, refused);
    expect(ledger.view(PN, USER).callsBlockedUntil).toBe(now + 60_000); // the expiry is past: asked again in a minute
    ledger.applyRemote(PN, USER, parseCallPermissions({ permission: { status: 'permanent' }, actions: [{ action_name: 'start_call', can_perform_action: true, limits: [] }] }));
    expect(ledger.view(PN, USER).callsBlockedUntil).toBeUndefined();
  });

  it("start_call refused only for lack of permission blocks nothing: the user's grant makes the next call possible at once", () => {
    ledger.applyRemote(PN, USER, parseCallPermissions({
      permission: { status: 'no_permission' },
      actions: [{ action_name: 'start_call', can_perform_action: false, limits: [{ time_period: 'PT24H', max_allowed: 100, current_usage: 0 }] }],
    }));
    expect(ledger.view(PN, USER)).toMatchObject({ status: 'none' });
    expect(ledger.view(PN, USER).callsBlockedUntil).toBeUndefined();
    ledger.applyReply(reply({ expiresAt: Math.floor((T0 + 7 * DAY) / 1000), timestamp: Math.floor(T0 / 1000) }));
    expect(ledger.view(PN, USER)).toMatchObject({ status: 'temporary' });
    expect(ledger.view(PN, USER).callsBlockedUntil).toBeUndefined();
    // Without permission and at its limit: the limit still holds once permission comes.
    ledger.applyRemote(PN, USER, parseCallPermissions({
      permission: { status: 'no_permission' },
      actions: [{ action_name: 'start_call', can_perform_action: false, limits: [{ time_period: 'PT24H', max_allowed: 100, current_usage: 100 }] }],
    }));
    expect(ledger.view(PN, USER).callsBlockedUntil).toBe(now + 60_000);
  });

  it('a revoke followed by an older grant (delivered out of order) keeps the revoke', async () => {
    const at = Math.floor(T0 / 1000);
    ledger.applyReply(reply({ response: 'reject', timestamp: at }));
    ledger.applyReply(reply({ isPermanent: true, timestamp: at - 60 }));
    ledger.applyReply(reply({ expiresAt: at + 7 * 86_400, timestamp: at - 30 }));
    expect(ledger.view(PN, USER).status).toBe('none');
    expect(await metrics.registry.getSingleMetricAsString('wagw_permission_events_total')).toMatch(/event="reply_out_of_order"} 2/);
    ledger.applyReply(reply({ isPermanent: true, timestamp: at + 1 }));
    expect(ledger.view(PN, USER).status).toBe('permanent');
  });

  it('orders replies per business number: an older reply to one number still applies after a newer one to another', () => {
    const at = Math.floor(T0 / 1000);
    ledger.applyReply(reply({ phoneNumberId: '999', isPermanent: true, timestamp: at }));
    ledger.applyReply(reply({ isPermanent: true, timestamp: at - 60 }));
    expect(ledger.hasPermission(PN, USER)).toBe(true);
    expect(ledger.hasPermission('999', USER)).toBe(true);
  });

  it('a late temporary grant without expiration_timestamp runs 7 days from its timestamp, not from arrival', () => {
    now = T0 + 5 * DAY;
    ledger.applyReply(reply({ timestamp: Math.floor(T0 / 1000) }));
    expect(ledger.view(PN, USER)).toMatchObject({ status: 'temporary', expiresAt: T0 + 7 * DAY });
  });

  it('keeps each business number separate', () => {
    ledger.applyReply(reply({ isPermanent: true }));
    expect(ledger.hasPermission('999', USER)).toBe(false);
  });

  it('lives in the same SQLite file as the call records, without touching them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wagw-ledger-'));
    try {
      const file = join(dir, 'gw.sqlite');
      const records = new SqliteCallRecordStore(file);
      const perms = new SqlitePermissionStore(file);
      const l = new PermissionLedger({ store: perms, logger: createLogger('silent'), clock: () => now });
      l.applyReply(reply({ isPermanent: true }));
      perms.close();
      await records.close();
      const again = new SqlitePermissionStore(file);
      expect(again.get(PN, USER)).toMatchObject({ status: 'permanent', lastReplyAt: T0 });
      // The order of replies survives a restart: an older revoke delivered now changes nothing.
      new PermissionLedger({ store: again, logger: createLogger('silent'), clock: () => now })
        .applyReply(reply({ response: 'reject', timestamp: Math.floor(T0 / 1000) - 1 }));
      expect(again.get(PN, USER)?.status).toBe('permanent');
      again.close();
      const records2 = new SqliteCallRecordStore(file);
      expect(await records2.list()).toEqual([]);
      await records2.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('SqlitePermissionStore', () => {
  it('adds last_reply_at to a ledger written before it existed, keeping its rows', () => {
    const dir = mkdtempSync(join(tmpdir(), 'wagw-ledger-'));
    try {
      const file = join(dir, 'gw.sqlite');
      const old = new Database(file);
      old.exec(`CREATE TABLE permission_ledger_version (version INTEGER NOT NULL); INSERT INTO permission_ledger_version VALUES (1);
        CREATE TABLE permission_ledger (phone_number_id TEXT NOT NULL, wa_id TEXT NOT NULL, status TEXT NOT NULL, expires_at INTEGER,
          requests TEXT NOT NULL, last_request_id TEXT, unanswered INTEGER NOT NULL DEFAULT 0, synced_at INTEGER, updated_at INTEGER NOT NULL,
          PRIMARY KEY (phone_number_id, wa_id));
        INSERT INTO permission_ledger (phone_number_id, wa_id, status, requests, unanswered, updated_at) VALUES ('${PN}', '${USER}', 'permanent', '[]', 1, ${T0});`);
      old.close();
      const store = new SqlitePermissionStore(file);
      const e = store.get(PN, USER);
      expect(e).toMatchObject({ status: 'permanent', unanswered: 1 });
      expect(e).not.toHaveProperty('lastReplyAt');
      store.put({ ...e!, lastReplyAt: T0 + 1000 });
      expect(store.get(PN, USER)?.lastReplyAt).toBe(T0 + 1000);
      store.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('PermissionService', () => {
  const make = (graph: Partial<GraphClient>) => {
    let now = T0;
    const store = new SqlitePermissionStore(':memory:');
    const ledger = new PermissionLedger({ store, logger: createLogger('silent'), clock: () => now });
    const svc = new PermissionService(ledger, graph as GraphClient, createLogger('silent'));
    return { svc, ledger, advance: (ms: number) => { now += ms; } };
  };

  it('asks Meta through the client of the business number (its own app\'s token)', async () => {
    const asked: string[] = [];
    const clientOf = (pn: string) => ({ sendCallPermissionRequest: async () => { asked.push(pn); return `wamid.${pn}`; } }) as unknown as GraphClient;
    const ledger = new PermissionLedger({ store: new SqlitePermissionStore(':memory:'), logger: createLogger('silent'), clock: () => T0 });
    const svc = new PermissionService(ledger, clientOf, createLogger('silent'));
    expect(await svc.request('222', USER, { bodyText: 'hi' })).toEqual({ sent: true, messageId: 'wamid.222' });
    expect(asked).toEqual(['222']);
  });

  it('never asks Meta when the local limits refuse', async () => {
    let sent = 0;
    const { svc } = make({ sendCallPermissionRequest: async () => `wamid.${++sent}` });
    expect(await svc.request(PN, USER, { bodyText: 'hi' })).toEqual({ sent: true, messageId: 'wamid.1' });
    const second = await svc.request(PN, USER, { bodyText: 'hi' });
    expect(second).toMatchObject({ sent: false, refusal: 'daily_limit', nextRequestAt: T0 + DAY });
    expect(sent).toBe(1);
  });

  it('a 138009 from Meta closes the windows locally', async () => {
    const { svc, ledger } = make({ sendCallPermissionRequest: async () => { throw new GraphError('messages', 400, 138009, undefined, 'limit'); } });
    expect(await svc.request(PN, USER, {})).toMatchObject({ sent: false, refusal: 'graph_error', graphCode: 138009 });
    expect(ledger.requestRefusal(PN, USER)).toBe('daily_limit');
  });

  it('refreshes an unknown pair from GET call_permissions and uses the ledger when that fails', async () => {
    let gets = 0;
    let fail = false;
    const { svc, advance } = make({
      callPermissions: async () => {
        gets++;
        if (fail) throw new GraphError('call_permissions', 429, 613, undefined, 'rate');
        return { status: 'permanent', actions: [] };
      },
    });
    expect((await svc.current(PN, USER)).status).toBe('permanent');
    expect((await svc.current(PN, USER)).status).toBe('permanent');
    expect(gets).toBe(1);
    advance(HOUR);
    fail = true;
    expect((await svc.current(PN, USER)).status).toBe('permanent');
    expect(gets).toBe(2);
  });
});
