/**
 * Routing for several brands with real peers (sipp agents through drachtio-server, two Meta doubles = two Meta apps
 * with their own secrets and tokens): two numbers to two agents, failover after a 503, routing by CTA payload,
 * business hours with an injected clock (inside, outside, holiday), the HTTP routing hook (answer, timeout, error),
 * and a configuration reload while a call is live.
 */
import dgram from 'node:dgram';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { drachtioAvailable, noteSkipped, firstMissing } from '../peers/drachtio.js';
import { sippAvailable, startSipp, type SippRun, type SippScenario } from '../peers/sip/sipp.js';
import { freePort } from '../peers/sip/ports.js';
import { MetaDouble } from '../peers/meta/index.js';
import { configSchema } from '../../src/config/schema.js';
import { DISPLAY_NUMBER, PHONE_NUMBER_ID, recordOf, startE2E, waitFor, waitNoLiveCalls, type E2E } from './harness.js';
import { startGraphFront, startHookServer, type TestServer } from './routing-helpers.js';

const drachtio = drachtioAvailable();
const sipp = sippAvailable();
const skipReason = firstMissing(drachtio, sipp);
const TESTS = 9;
if (skipReason) noteSkipped(skipReason, TESTS, 'routing');

const PNID_B = '555000111222';
const DISPLAY_B = '442071234567';
const user = { waId: '447700900123', name: 'Sam Roe' };
const MONDAY_10_LONDON = new Date('2026-07-06T09:00:00Z');

describe.skipIf(skipReason !== undefined)('routing for several brands', () => {
  let e2e: E2E;
  let metaB: MetaDouble;
  let front: TestServer;
  let hook: Awaited<ReturnType<typeof startHookServer>>;
  const ports: Record<'a' | 'sales' | 'b' | 'refuser', number> = { a: 0, sales: 0, b: 0, refuser: 0 };
  const uri = (k: keyof typeof ports) => `sip:${k}@127.0.0.1:${ports[k]}`;
  const running: SippRun[] = [];
  const agent = async (k: keyof typeof ports, scenario: SippScenario = 'uas-answer', keys?: Record<string, string>) => {
    const run = await startSipp({ scenario, port: ports[k], service: k, keys, durationMs: 30_000, timeoutSec: 40 });
    running.push(run);
    return run;
  };
  const routingConfig = (extra: Record<string, unknown> = {}) => ({
    schedules: { office: { timeZone: 'Europe/London', weekly: { mon: ['09:00-17:00'] }, holidays: ['2026-07-13'] } },
    routes: {
      support: { targets: [uri('refuser'), uri('a')], hours: 'office' },
      sales: { targets: [uri('sales')], codecs: ['PCMA'] },
      'brand-b': { targets: [uri('b')] },
    },
    ...extra,
  });
  const numbers = [
    { phoneNumberId: PHONE_NUMBER_ID, displayNumber: DISPLAY_NUMBER, tenant: 'brand-a', route: 'support', rules: [{ ctaPayload: 'sales', route: 'sales' }] },
    { phoneNumberId: PNID_B, displayNumber: DISPLAY_B, tenant: 'brand-b', app: 'brand-b', route: 'brand-b' },
  ];
  const reload = (routing: Record<string, unknown>) =>
    e2e.gateway.reload(configSchema.parse({ ...e2e.gateway.deps.config, routing }));
  const hangUp = async (meta: MetaDouble, callId: string) => {
    // The double logs `accept` when it answered it; the gateway is answered once that answer reached it.
    await waitFor(() => e2e.gateway.registry.byWhatsAppId(callId)?.state === 'answered' || undefined, 'call answered');
    await meta.userHangsUp(callId);
    await waitNoLiveCalls(e2e.gateway);
    return recordOf(e2e.gateway, callId);
  };

  beforeAll(async () => {
    for (const k of Object.keys(ports) as (keyof typeof ports)[]) ports[k] = await freePort({ tcp: false });
    metaB = new MetaDouble({ appSecret: 'secret-brand-b', accessToken: 'token-brand-b', phoneNumberId: PNID_B, displayPhoneNumber: DISPLAY_B, wabaId: '777' });
    const { graphBaseUrl: bUrl } = await metaB.start();
    let aUrl = '';
    front = await startGraphFront((pnid) => (pnid === PNID_B ? bUrl : aUrl));
    hook = await startHookServer();
    e2e = await startE2E({
      sipTarget: 'sip:unused@127.0.0.1:9',
      config: { whatsapp: { graphBaseUrl: front.url, numbers, apps: [{ name: 'brand-b' }] }, routing: routingConfig(), sip: { ringTimeoutMs: 3000 },
        // Below the ephemeral range (32768+) where peers pick their free ports, and apart from other suites' gateways.
        media: { rtpPortMin: 21000, rtpPortMax: 21099, webrtcPortMin: 21200, webrtcPortMax: 21399 } },
      appSecrets: new Map([['brand-b', { appSecret: 'secret-brand-b', graphToken: 'token-brand-b' }]]),
    });
    aUrl = e2e.meta.graph.baseUrl;
    metaB.webhookUrl = `http://127.0.0.1:${e2e.gateway.http.port}/webhooks/whatsapp/brand-b`;
    e2e.gateway.deps.routing.clock = () => MONDAY_10_LONDON;
  }, 60_000);
  afterEach(async () => {
    await Promise.all(running.splice(0).map((r) => r.stop()));
    e2e.gateway.deps.routing.clock = () => MONDAY_10_LONDON;
  });
  afterAll(async () => {
    await e2e?.stop();
    await metaB?.stop();
    await front?.close();
    await hook?.close();
  });

  it('two business numbers of two apps ring two different agents, each with its own Graph token', async () => {
    const a = await agent('a');
    const b = await agent('b');
    const callA = await e2e.meta.userCalls(user);
    expect((await e2e.meta.waitForAction(callA.callId, 'accept')).status).toBe(200);
    const callB = await metaB.userCalls(user);
    expect((await metaB.waitForAction(callB.callId, 'accept')).status).toBe(200);
    // Only B's double saw B's call: the gateway used B's token (the double answers 401 to any other).
    expect(metaB.requests.filter((r) => r.callId === callB.callId).map((r) => `${r.op}:${r.status}`)).toEqual(['pre_accept:200', 'accept:200']);
    expect(e2e.meta.requests.some((r) => r.callId === callB.callId)).toBe(false);
    expect(a.messages()).toContain(`X-WA-Route: support`);
    expect(b.messages()).toContain(`X-WA-Route: brand-b`);
    expect(b.messages()).not.toContain(callA.callId);
    await waitFor(() => e2e.gateway.registry.byWhatsAppId(callB.callId)?.state === 'answered' || undefined, 'call B answered');
    await metaB.userHangsUp(callB.callId);
    const recA = await hangUp(e2e.meta, callA.callId);
    const recB = await recordOf(e2e.gateway, callB.callId);
    expect(recA).toMatchObject({ tenant: 'brand-a', outcome: 'answered', sipTarget: uri('a') });
    expect(recB).toMatchObject({ tenant: 'brand-b', outcome: 'answered', sipTarget: uri('b'), businessNumber: DISPLAY_B });
  });

  it('a webhook signed with the other app\'s secret on the other app\'s URL is refused', async () => {
    const { envelope } = await metaB.userCalls(user, { deliver: false });
    const wrongUrl = `http://127.0.0.1:${e2e.gateway.http.port}/webhooks/whatsapp/brand-a-does-not-exist`;
    const res = await fetch(wrongUrl, { method: 'POST', body: JSON.stringify(envelope) });
    expect(res.status).toBe(404);
    metaB.webhookUrl = `http://127.0.0.1:${e2e.gateway.http.port}/webhooks/whatsapp`; // every secret tried: B's matches
    try {
      const b = await agent('b', 'uas-refuse', { status: '486', reason: 'Busy Here' });
      const { callId } = await metaB.userCalls(user);
      await metaB.waitForAction(callId, 'reject');
      await waitFor(() => b.messages().includes('INVITE sip:') || undefined, 'INVITE at agent b');
    } finally {
      metaB.webhookUrl = `http://127.0.0.1:${e2e.gateway.http.port}/webhooks/whatsapp/brand-b`;
    }
  });

  it('fails over to the second target when the first answers 503', async () => {
    const refuser = await agent('refuser', 'uas-refuse', { status: '503', reason: 'Service Unavailable' });
    const a = await agent('a');
    const failoversBefore = (await e2e.gateway.metrics.sipFailovers.get()).values[0]?.value ?? 0;
    const { callId } = await e2e.meta.userCalls(user);
    expect((await e2e.meta.waitForAction(callId, 'accept')).status).toBe(200);
    expect(refuser.messages()).toMatch(/SIP\/2.0 503/);
    expect(a.messages()).toContain('INVITE sip:');
    expect((await e2e.gateway.metrics.sipFailovers.get()).values[0]?.value).toBe(failoversBefore + 1);
    expect(await hangUp(e2e.meta, callId)).toMatchObject({ outcome: 'answered', sipTarget: uri('a') });
  });

  it('a first target that answers nothing is given up after sip.responseTimeoutMs, well before the ring timeout', async () => {
    // A PBX that is down but whose address still swallows datagrams (no ICMP): only a timer can tell. Its own port:
    // drachtio-server retransmits the INVITE there for 32 s (no CANCEL without a provisional, RFC 3261 §9.1).
    const silent = dgram.createSocket('udp4');
    let invites = 0;
    silent.on('message', (m) => { if (m.toString('latin1').startsWith('INVITE ')) invites++; });
    await new Promise<void>((r) => silent.bind(0, '127.0.0.1', () => r()));
    const a = await agent('a');
    const sip = e2e.gateway.deps.config.sip;
    sip.responseTimeoutMs = 800;
    reload(routingConfig({ routes: { support: { targets: [`sip:down@127.0.0.1:${silent.address().port}`, uri('a')] }, sales: { targets: [uri('sales')] }, 'brand-b': { targets: [uri('b')] } } }));
    try {
      const t0 = Date.now();
      const { callId } = await e2e.meta.userCalls(user);
      await waitFor(() => a.messages().includes('INVITE sip:') || undefined, 'INVITE at the second target');
      // The route rings each target for sip.ringTimeoutMs (3 s here): without the response timer the second target
      // would get its INVITE only after that.
      expect(Date.now() - t0).toBeLessThan(2500);
      expect(invites).toBeGreaterThanOrEqual(1);
      expect((await e2e.meta.waitForAction(callId, 'accept')).status).toBe(200);
      expect(await hangUp(e2e.meta, callId)).toMatchObject({ outcome: 'answered', sipTarget: uri('a') });
    } finally {
      reload(routingConfig());
      e2e.gateway.deps.config.sip.responseTimeoutMs = 8000;
      silent.close();
    }
  });

  it('follows a 302 from the first target (call forwarding) to its Contact, ahead of the route\'s next target', async () => {
    const forwarder = await agent('refuser', 'uas-redirect' as SippScenario, { contact: uri('sales') });
    const sales = await agent('sales');
    const a = await agent('a');
    const { callId } = await e2e.meta.userCalls(user);
    expect((await e2e.meta.waitForAction(callId, 'accept')).status).toBe(200);
    expect(forwarder.messages()).toMatch(/SIP\/2.0 302/);
    expect(sales.messages()).toContain('INVITE sip:');
    expect(a.messages()).not.toContain('INVITE sip:');
    expect(await hangUp(e2e.meta, callId)).toMatchObject({ outcome: 'answered', sipTarget: uri('sales') });
  });

  it('never sends an INVITE to a user=phone target (§3.6: no PSTN on any leg): the next target takes the call', async () => {
    const gateway = await agent('refuser'); // a phone gateway that would answer
    const a = await agent('a');
    reload(routingConfig({ routes: { support: { targets: [`sip:+442071234567@127.0.0.1:${ports.refuser};user=phone`, uri('a')] }, sales: { targets: [uri('sales')] }, 'brand-b': { targets: [uri('b')] } } }));
    try {
      const { callId } = await e2e.meta.userCalls(user);
      expect((await e2e.meta.waitForAction(callId, 'accept')).status).toBe(200);
      expect(a.messages()).toContain('INVITE sip:');
      expect(gateway.messages()).not.toContain('INVITE sip:');
      expect(await hangUp(e2e.meta, callId)).toMatchObject({ outcome: 'answered', sipTarget: uri('a') });
    } finally {
      reload(routingConfig());
    }
  });

  it('routes by CTA payload: the "sales" button rings the sales agent, with the sales route\'s codec', async () => {
    const sales = await agent('sales', 'uas-answer', { codec: 'PCMA', pt: '8' });
    const { callId } = await e2e.meta.userCalls(user, { ctaPayload: 'sales' });
    expect((await e2e.meta.waitForAction(callId, 'accept')).status).toBe(200);
    const invite = sales.messages();
    expect(invite).toContain('X-WA-Route: sales');
    expect(invite).toMatch(/m=audio \d+ RTP\/AVP 8 101/);
    expect(await hangUp(e2e.meta, callId)).toMatchObject({ outcome: 'answered', sipTarget: uri('sales'), ctaPayload: 'sales' });
  });

  it('business hours with an injected clock: inside rings, outside and on a holiday the call is rejected', async () => {
    const a = await agent('a');
    e2e.gateway.deps.routing.clock = () => new Date('2026-07-06T19:30:00Z'); // Monday 20:30 in London
    const outside = await e2e.meta.userCalls(user);
    await e2e.meta.waitForAction(outside.callId, 'reject');
    expect(await recordOf(e2e.gateway, outside.callId)).toMatchObject({ outcome: 'rejected', cause: 'outside_hours' });
    e2e.gateway.deps.routing.clock = () => new Date('2026-07-13T09:00:00Z'); // a Monday, but a holiday
    const holiday = await e2e.meta.userCalls(user);
    await e2e.meta.waitForAction(holiday.callId, 'reject');
    expect(await recordOf(e2e.gateway, holiday.callId)).toMatchObject({ outcome: 'rejected', cause: 'outside_hours' });
    expect(e2e.meta.requests.filter((r) => r.callId === holiday.callId).map((r) => r.op)).toEqual(['reject']);
    expect(a.messages()).not.toContain('INVITE sip:');
    e2e.gateway.deps.routing.clock = () => new Date('2026-07-20T15:59:00Z'); // Monday 16:59 in London
    await agent('refuser', 'uas-refuse', { status: '503', reason: 'Service Unavailable' });
    const inside = await e2e.meta.userCalls(user);
    expect((await e2e.meta.waitForAction(inside.callId, 'accept')).status).toBe(200);
    expect(await hangUp(e2e.meta, inside.callId)).toMatchObject({ outcome: 'answered', sipTarget: uri('a') });
  });

  it('the routing hook: its answer wins; on timeout or error the static rule is used', async () => {
    reload(routingConfig({ hook: { url: hook.url, timeoutMs: 300 } }));
    try {
      hook.behaviour = { kind: 'answer', body: { target: uri('sales') } };
      const sales = await agent('sales');
      const answered = await e2e.meta.userCalls(user);
      expect((await e2e.meta.waitForAction(answered.callId, 'accept')).status).toBe(200);
      expect(hook.requests.at(-1)).toMatchObject({ waCallId: answered.callId, phoneNumberId: PHONE_NUMBER_ID, tenant: 'brand-a', from: user.waId, staticRoute: 'support' });
      expect(sales.messages()).toContain('INVITE sip:');
      expect(await hangUp(e2e.meta, answered.callId)).toMatchObject({ sipTarget: uri('sales') });

      for (const behaviour of [{ kind: 'slow', ms: 1500 }, { kind: 'error', status: 500 }] as const) {
        hook.behaviour = behaviour;
        await agent('refuser', 'uas-refuse', { status: '503', reason: 'Service Unavailable' });
        await agent('a');
        const t0 = Date.now();
        const { callId } = await e2e.meta.userCalls(user);
        expect((await e2e.meta.waitForAction(callId, 'accept')).status).toBe(200);
        if (behaviour.kind === 'slow') expect(Date.now() - t0).toBeLessThan(1500);
        expect(await hangUp(e2e.meta, callId)).toMatchObject({ sipTarget: uri('a') });
        await Promise.all(running.splice(0).map((r) => r.stop()));
      }
      // A slow hook does not hold pre_accept back (§6 item 2): WhatsApp's media is set up while it decides; its
      // late reject then ends the call with Graph reject.
      reload(routingConfig({ hook: { url: hook.url, timeoutMs: 4000 } }));
      hook.behaviour = { kind: 'slow', ms: 1500 };
      const t0 = Date.now();
      const late = await e2e.meta.userCalls(user);
      const rejected = await e2e.meta.waitForAction(late.callId, 'reject', 10_000);
      const ops = e2e.meta.requests.filter((r) => r.callId === late.callId);
      expect(ops.map((r) => `${r.op}:${r.status}`)).toEqual(['pre_accept:200', 'reject:200']);
      expect(ops[0]!.receivedAt - t0).toBeLessThan(1500);
      expect(rejected.receivedAt - t0).toBeGreaterThanOrEqual(1500);
      await waitNoLiveCalls(e2e.gateway);
      const hookMetric = (await e2e.gateway.metrics.routingHook.get()).values;
      for (const result of ['ok', 'timeout', 'error']) expect(hookMetric.find((v) => v.labels.result === result)?.value).toBeGreaterThan(0);
    } finally {
      reload(routingConfig());
    }
  });

  it('a configuration reload keeps a live call up and applies to the next call', async () => {
    const a = await agent('a');
    await agent('refuser', 'uas-refuse', { status: '503', reason: 'Service Unavailable' });
    const live = await e2e.meta.userCalls(user);
    await e2e.meta.waitForAction(live.callId, 'accept');
    // The support route now goes straight to the sales agent.
    reload({ ...routingConfig(), routes: { ...routingConfig().routes, support: { targets: [uri('sales')] } } });
    const sales = await agent('sales');
    const next = await e2e.meta.userCalls(user);
    await e2e.meta.waitForAction(next.callId, 'accept');
    expect(sales.messages()).toContain('INVITE sip:');
    await new Promise((r) => setTimeout(r, 500));
    expect(e2e.gateway.registry.byWhatsAppId(live.callId)?.state).toBe('answered');
    expect(a.messages()).not.toContain('BYE sip:');
    await e2e.meta.userHangsUp(next.callId);
    const rec = await hangUp(e2e.meta, live.callId);
    expect(rec).toMatchObject({ outcome: 'answered', endedBy: 'whatsapp', sipTarget: uri('a') });
    expect((await e2e.gateway.metrics.configReloads.get()).values.find((v) => v.labels.result === 'applied')?.value).toBeGreaterThan(0);
    reload(routingConfig());
  });
});
