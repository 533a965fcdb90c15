import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configSchema } from '../../config/schema.js';
import { isOpen, localTime } from './business-hours.js';
import { RoutingTable } from './routing-table.js';
import { dialTargets, DialFailure, shouldFailOver, targetOrder } from './dial-targets.js';
import { askRoutingHook, parseHookAnswer } from './routing-hook.js';
import { SipCallFailure, TargetNotAllowed, type SipDialog } from '../../sip/agent.js';
import { scheduleSchema } from '../../config/routing-schema.js';

const office = scheduleSchema.parse({
  timeZone: 'Europe/London',
  weekly: { mon: ['09:00-17:00'], tue: ['09:00-12:00', '13:00-17:00'], sat: ['10:00-24:00'] },
  holidays: ['2026-12-25', { date: '2026-12-24', closed: '12:00-24:00' }],
});

describe('business hours', () => {
  it('reads local wall-clock time in the schedule zone, across DST', () => {
    expect(localTime(new Date('2026-07-06T08:30:00Z'), 'Europe/London')).toEqual({ date: '2026-07-06', weekday: 'mon', minute: 9 * 60 + 30 });
    expect(localTime(new Date('2026-01-05T08:30:00Z'), 'Europe/London').minute).toBe(8 * 60 + 30);
    expect(localTime(new Date('2026-01-04T23:30:00Z'), 'Asia/Tokyo')).toEqual({ date: '2026-01-05', weekday: 'mon', minute: 8 * 60 + 30 });
  });
  it('is open inside a weekly range and closed outside, on unlisted days and on holidays', () => {
    expect(isOpen(office, new Date('2026-07-06T08:30:00Z'))).toBe(true); // Mon 09:30 BST
    expect(isOpen(office, new Date('2026-07-06T07:30:00Z'))).toBe(false); // Mon 08:30 BST
    expect(isOpen(office, new Date('2026-07-07T11:30:00Z'))).toBe(false); // Tue 12:30 lunch
    expect(isOpen(office, new Date('2026-07-08T10:00:00Z'))).toBe(false); // Wednesday not listed
    expect(isOpen(office, new Date('2026-07-11T22:59:00Z'))).toBe(true); // Sat 23:59 within 10:00-24:00
    expect(isOpen(office, new Date('2026-12-21T10:00:00Z'))).toBe(true); // Monday before Christmas
    expect(isOpen(office, new Date('2026-12-25T10:00:00Z'))).toBe(false); // holiday (a Friday anyway)
    expect(isOpen(office, new Date('2026-12-28T10:00:00Z'))).toBe(true);
  });
  it('a partial holiday closes only its range', () => {
    const s = scheduleSchema.parse({ timeZone: 'UTC', weekly: { thu: ['09:00-17:00'] }, holidays: [{ date: '2026-12-24', closed: '12:00-24:00' }] });
    expect(isOpen(s, new Date('2026-12-24T10:00:00Z'))).toBe(true);
    expect(isOpen(s, new Date('2026-12-24T13:00:00Z'))).toBe(false);
  });
});

function config(extra: Record<string, unknown> = {}) {
  return configSchema.parse({
    whatsapp: {
      numbers: [
        { phoneNumberId: '111', displayNumber: '+441111111111', tenant: 'a', sipTarget: 'sip:legacy@pbx' },
        {
          phoneNumberId: '222', displayNumber: '+442222222222', tenant: 'b', route: 'support',
          rules: [{ ctaPayload: 'sales', route: 'sales' }, { deeplinkPayload: 'vip', route: 'vip' }],
        },
      ],
    },
    routing: {
      schedules: { office: { timeZone: 'UTC', weekly: { mon: ['09:00-17:00'] }, holidays: ['2026-07-13'] } },
      routes: {
        support: { targets: ['sip:s1@pbx', 'sip:s2@pbx'], hours: 'office', outsideHours: { action: 'route', route: 'overflow' } },
        sales: { targets: ['sip:sales@pbx'], hours: 'office', codecs: ['PCMA'], ringTimeoutMs: 9000 },
        vip: { targets: ['sip:vip@pbx'], strategy: 'round_robin' },
        overflow: { targets: ['sip:voicemail@pbx'] },
      },
    },
    ...extra,
  });
}

describe('routing table', () => {
  const t = new RoutingTable(config());
  const monday10 = new Date('2026-07-06T10:00:00Z');
  const monday20 = new Date('2026-07-06T20:00:00Z');
  const holiday = new Date('2026-07-13T10:00:00Z');

  it('keeps the legacy single sipTarget as a route of its own', () => {
    const n = t.number('111')!;
    const picked = t.staticRoute(n, {});
    expect(t.decide(picked.route, picked.via, monday20)).toMatchObject({ action: 'route', via: 'default', targets: ['sip:legacy@pbx'], codecs: ['PCMU', 'PCMA'], ringTimeoutMs: 25_000 });
  });
  it('routes by CTA payload and deep-link payload, else the number default', () => {
    const n = t.number('222')!;
    expect(t.staticRoute(n, { ctaPayload: 'sales' })).toEqual({ route: 'sales', via: 'rule' });
    expect(t.staticRoute(n, { deeplinkPayload: 'vip' })).toEqual({ route: 'vip', via: 'rule' });
    expect(t.staticRoute(n, { ctaPayload: 'other' })).toEqual({ route: 'support', via: 'default' });
  });
  it('applies hours: open → the route, closed → overflow route or reject, holiday → closed', () => {
    expect(t.decide('support', 'default', monday10)).toMatchObject({ action: 'route', route: 'support', targets: ['sip:s1@pbx', 'sip:s2@pbx'] });
    expect(t.decide('support', 'default', monday20)).toMatchObject({ action: 'route', via: 'overflow', route: 'overflow' });
    expect(t.decide('sales', 'rule', monday10)).toMatchObject({ action: 'route', codecs: ['PCMA'], ringTimeoutMs: 9000 });
    expect(t.decide('sales', 'rule', monday20)).toEqual({ action: 'reject', via: 'rule', cause: 'outside_hours' });
    expect(t.decide('sales', 'rule', holiday)).toEqual({ action: 'reject', via: 'rule', cause: 'outside_hours' });
  });
});

describe('config validation of routing', () => {
  const problems = (numbers: unknown[], routing: unknown = {}, apps: unknown[] = []) => {
    const r = configSchema.safeParse({ whatsapp: { numbers, apps }, routing });
    return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  };
  it('reports every dangling name at once', () => {
    const p = problems(
      [{ phoneNumberId: '1', displayNumber: '+441111111111', route: 'nope', app: 'ghost', rules: [{ ctaPayload: 'x', route: 'gone' }] }],
      { routes: { r: { targets: ['sip:a@b'], hours: 'never', outsideHours: { action: 'route', route: 'missing' } } } },
    );
    expect(p.some((l) => l.startsWith('whatsapp.numbers.0.route'))).toBe(true);
    expect(p.some((l) => l.startsWith('whatsapp.numbers.0.app'))).toBe(true);
    expect(p.some((l) => l.startsWith('whatsapp.numbers.0.rules.0.route'))).toBe(true);
    expect(p.some((l) => l.startsWith('routing.routes.r.hours'))).toBe(true);
    expect(p.some((l) => l.startsWith('routing.routes.r.outsideHours.route'))).toBe(true);
  });
  it('refuses a bad time zone, a bad range and a number with neither sipTarget nor route', () => {
    const p = problems([{ phoneNumberId: '1', displayNumber: '+441111111111' }], {
      schedules: { s: { timeZone: 'Mars/Olympus', weekly: { mon: ['17:00-09:00'] } } },
    });
    expect(p.some((l) => l.startsWith('routing.schedules.s.timeZone'))).toBe(true);
    expect(p.some((l) => l.startsWith('routing.schedules.s.weekly.mon.0'))).toBe(true);
    expect(p.some((l) => l.startsWith('whatsapp.numbers.0.route'))).toBe(true);
  });
});

describe('dialling targets', () => {
  const fakeDialog = { callId: 'x' } as unknown as SipDialog;
  it('fails over on 5xx and 408, stops on busy', async () => {
    expect([503, 500, 408].every(shouldFailOver)).toBe(true);
    expect([486, 603, 404].some(shouldFailOver)).toBe(false);
    const tried: string[] = [];
    const r = await dialTargets(async (o) => {
      tried.push(o.uri);
      if (o.uri === 'sip:a@x') throw new SipCallFailure(503, 'Service Unavailable');
      if (o.uri === 'sip:b@x') throw new SipCallFailure(408, 'Request Timeout');
      return fakeDialog;
    }, ['sip:a@x', 'sip:b@x', 'sip:c@x'], { from: { user: '+1' }, sdp: '' } as never);
    expect(tried).toEqual(['sip:a@x', 'sip:b@x', 'sip:c@x']);
    expect(r.target).toBe('sip:c@x');
    expect(r.failed.map((f) => f.status)).toEqual([503, 408]);
    const busy = dialTargets(async () => { throw new SipCallFailure(486, 'Busy Here'); }, ['sip:a@x', 'sip:b@x'], { from: { user: '+1' }, sdp: '' } as never);
    await expect(busy).rejects.toBeInstanceOf(DialFailure);
    await expect(busy).rejects.toMatchObject({ status: 486, attempts: [{ target: 'sip:a@x', status: 486 }] });
  });
  it('follows a 3xx to its Contact URIs before the next target, never back to a tried one, at most three times', async () => {
    const base = { from: { user: '+1' }, sdp: '' } as never;
    const tried: string[] = [];
    const busy = dialTargets(async (o) => {
      tried.push(o.uri);
      if (o.uri === 'sip:a@x') throw new SipCallFailure(302, 'Moved Temporarily', undefined, ['sip:fwd@y', 'sip:a@x']);
      throw new SipCallFailure(486, 'Busy Here');
    }, ['sip:a@x', 'sip:b@x'], base);
    // The forwarded-to phone is busy: that is the answer, the route's next target is not rung.
    await expect(busy).rejects.toMatchObject({ status: 486 });
    expect(tried).toEqual(['sip:a@x', 'sip:fwd@y']);
    tried.length = 0;
    const r = await dialTargets(async (o) => {
      tried.push(o.uri);
      const hop = /^sip:r(\d)@y$/.exec(o.uri);
      if (o.uri === 'sip:a@x' || hop) throw new SipCallFailure(302, 'Moved Temporarily', undefined, [`sip:r${hop ? Number(hop[1]) + 1 : 1}@y`]);
      return fakeDialog;
    }, ['sip:a@x', 'sip:b@x'], base);
    expect(tried).toEqual(['sip:a@x', 'sip:r1@y', 'sip:r2@y', 'sip:r3@y', 'sip:b@x']);
    expect(r.target).toBe('sip:b@x');
  });
  it('marks the attempts our target policy refused, apart from the ones a PBX answered', async () => {
    const failure = dialTargets(async (o) => {
      if (o.uri === 'sip:a@x') throw new SipCallFailure(503, 'Service Unavailable');
      throw new TargetNotAllowed('host y is not in sip.allowedTargetHosts');
    }, ['sip:a@x', 'sip:b@y'], { from: { user: '+1' }, sdp: '' } as never);
    await expect(failure).rejects.toMatchObject({ attempts: [{ target: 'sip:a@x', status: 503 }, { target: 'sip:b@y', status: 403, policy: true }] });
    await expect(failure).rejects.toSatisfy((e: DialFailure) => e.attempts[0]!.policy === undefined);
  });
  it('round-robin starts one further each call', () => {
    const route = { route: 'rr-test', targets: ['a', 'b', 'c'], strategy: 'round_robin' as const };
    expect([targetOrder(route)[0], targetOrder(route)[0], targetOrder(route)[0], targetOrder(route)[0]]).toEqual(['a', 'b', 'c', 'a']);
    expect(targetOrder({ ...route, route: 'fo', strategy: 'failover' })).toEqual(['a', 'b', 'c']);
  });
});

describe('routing hook', () => {
  let server: Server;
  let url: string;
  let mode: 'target' | 'slow' | 'error' | 'garbage' = 'target';
  let lastBody: unknown;
  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => { body += c.toString(); });
      req.on('end', () => {
        lastBody = JSON.parse(body);
        if (mode === 'slow') { setTimeout(() => res.end('{"target":"sip:late@x"}'), 500); return; }
        if (mode === 'error') { res.statusCode = 500; res.end('oops'); return; }
        if (mode === 'garbage') { res.end('{"foo":1}'); return; }
        res.setHeader('content-type', 'application/json');
        res.end('{"target":"sip:hooked@pbx"}');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/route`;
  });
  afterAll(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));
  const ctx = { waCallId: 'wacid.1', phoneNumberId: '1', displayNumber: '+44', tenant: 't', from: '4477', ctaPayload: 'sales', staticRoute: 'support' };

  it('parses every answer shape', () => {
    expect(parseHookAnswer({ target: 'sip:a@b' })).toEqual({ kind: 'targets', targets: ['sip:a@b'] });
    expect(parseHookAnswer({ targets: ['sip:a@b', 'sip:c@d'] })).toEqual({ kind: 'targets', targets: ['sip:a@b', 'sip:c@d'] });
    expect(parseHookAnswer({ route: 'sales' })).toEqual({ kind: 'route', route: 'sales' });
    expect(parseHookAnswer({ action: 'reject' })).toEqual({ kind: 'reject' });
    expect(parseHookAnswer({ target: 'tel:123' })).toBeUndefined();
  });
  it('answer, timeout, error, unusable answer', async () => {
    mode = 'target';
    expect(await askRoutingHook({ url, timeoutMs: 1000 }, ctx)).toEqual({ ok: true, decision: { kind: 'targets', targets: ['sip:hooked@pbx'] } });
    expect(lastBody).toEqual(ctx);
    mode = 'slow';
    const t0 = Date.now();
    expect(await askRoutingHook({ url, timeoutMs: 100 }, ctx)).toMatchObject({ ok: false, reason: 'timeout' });
    expect(Date.now() - t0).toBeLessThan(400);
    mode = 'error';
    expect(await askRoutingHook({ url, timeoutMs: 1000 }, ctx)).toMatchObject({ ok: false, reason: 'error', detail: 'HTTP 500' });
    mode = 'garbage';
    expect(await askRoutingHook({ url, timeoutMs: 1000 }, ctx)).toMatchObject({ ok: false, reason: 'bad_answer' });
    expect(await askRoutingHook({ url: 'http://127.0.0.1:1/x', timeoutMs: 1000 }, ctx)).toMatchObject({ ok: false, reason: 'error' });
  });
});
