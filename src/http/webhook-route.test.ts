import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createHmac } from 'node:crypto';
import { createLogger } from '../observability/logger.js';
import { createMetrics } from '../observability/metrics.js';
import type { CallingEvent, PermissionReplyEvent } from '../whatsapp/events.js';
import { startHttpServer, type RunningHttpServer } from './server.js';
import { WebhookReceiver } from './webhook-route.js';
import { WebhookApps } from '../whatsapp/webhook-apps.js';

const appSecret = 'test-app-secret';
const verifyToken = 'verify-me';
const events: CallingEvent[] = [];
/** wacids the receiver is told are live calls (isLiveCall). */
const liveCalls = new Set<string>();
const metrics = createMetrics();
let server: RunningHttpServer;
let base: string;

const sign = (body: string, secret = appSecret) => `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;

function connectBody(callId: string, timestamp = Math.floor(Date.now() / 1000)): string {
  return JSON.stringify({
    object: 'whatsapp_business_account',
    entry: [{ id: '1', changes: [{ field: 'calls', value: {
      messaging_product: 'whatsapp',
      metadata: { display_phone_number: '13175551399', phone_number_id: '436666719526789' },
      contacts: [{ profile: { name: 'Jane Doe' }, wa_id: '16315553602' }],
      calls: [{ id: callId, from: '16315553602', to: '13175551399', event: 'connect', direction: 'USER_INITIATED',
        timestamp: String(timestamp), session: { sdp_type: 'offer', sdp: 'v=0\r\n' } }],
    } }] }],
  });
}

interface PermissionReplyOptions {
  phoneNumberId?: string;
  /** undefined = a message without `id`. */
  wamid?: string | undefined;
  timestamp?: number;
  response?: 'accept' | 'reject';
  permanent?: boolean;
  expiresAt?: number;
}

/** §1.6: a call_permission_reply on field `messages`. */
function permissionReplyBody(o: PermissionReplyOptions): string {
  const now = Math.floor(Date.now() / 1000);
  const permanent = o.permanent ?? false;
  return JSON.stringify({
    object: 'whatsapp_business_account',
    entry: [{ id: '1', changes: [{ field: 'messages', value: {
      messaging_product: 'whatsapp',
      metadata: { display_phone_number: '13175551399', phone_number_id: o.phoneNumberId ?? '436666719526789' },
      contacts: [{ profile: { name: 'Jane Doe' }, wa_id: '16315553602' }],
      messages: [{
        from: '16315553602', ...(o.wamid !== undefined ? { id: o.wamid } : {}), timestamp: String(o.timestamp ?? now), type: 'interactive',
        interactive: { type: 'call_permission_reply', call_permission_reply: {
          response: o.response ?? 'accept', is_permanent: permanent,
          ...(permanent ? {} : { expiration_timestamp: String(o.expiresAt ?? now + 7 * 86_400) }), response_source: 'user_action',
        } },
      }],
    } }] }],
  });
}

const permissionReplies = (phoneNumberId: string): PermissionReplyEvent[] =>
  events.filter((e): e is PermissionReplyEvent => e.kind === 'permission_reply' && e.phoneNumberId === phoneNumberId);

const post = (body: string, signature?: string) => fetch(`${base}/webhooks/whatsapp`, {
  method: 'POST', body, headers: { 'content-type': 'application/json', ...(signature ? { 'x-hub-signature-256': signature } : {}) },
});

async function counter(result: string): Promise<number> {
  const m = await metrics.webhooks.get();
  return m.values.find((v) => v.labels.result === result)?.value ?? 0;
}

beforeAll(async () => {
  const logger = createLogger('silent');
  const webhook = new WebhookReceiver({ appSecret, verifyToken, maxAgeSeconds: 600, userConnectMaxAgeSeconds: 60, logger, metrics, onEvent: (ev) => events.push(ev), isLiveCall: (id) => liveCalls.has(id) });
  server = await startHttpServer({ host: '127.0.0.1', port: 0, logger, metrics, webhook, readiness: () => ({ ok: true }) });
  base = `http://127.0.0.1:${server.port}`;
});
afterAll(() => server.close());

describe('GET /webhooks/whatsapp (verify handshake)', () => {
  it('echoes the raw challenge when the token matches', async () => {
    const res = await fetch(`${base}/webhooks/whatsapp?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=${verifyToken}`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('1158201444');
  });
  it('refuses a wrong token with a 4xx', async () => {
    const res = await fetch(`${base}/webhooks/whatsapp?hub.mode=subscribe&hub.challenge=1&hub.verify_token=nope`);
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
  });
  it('answers a per-app URL with the right token by the app: the challenge for a configured app, 404 for another', async () => {
    const logger = createLogger('silent');
    const apps = new WebhookApps([{ name: 'brand-b', secret: 'b-secret', phoneNumberIds: new Set(['2']) }]);
    const webhook = new WebhookReceiver({ appSecret, verifyToken, maxAgeSeconds: 600, logger, metrics, onEvent: () => undefined, isLiveCall: () => false, apps: () => apps });
    const multi = await startHttpServer({ host: '127.0.0.1', port: 0, logger, metrics, webhook, readiness: () => ({ ok: true }) });
    try {
      const url = (app: string) => `http://127.0.0.1:${multi.port}/webhooks/whatsapp/${app}?hub.mode=subscribe&hub.challenge=77&hub.verify_token=${verifyToken}`;
      const known = await fetch(url('brand-b'));
      expect(known.status).toBe(200);
      expect(await known.text()).toBe('77');
      const before = await counter('unknown_app');
      expect((await fetch(url('brand-x'))).status).toBe(404);
      expect(await counter('unknown_app')).toBe(before + 1);
    } finally {
      await multi.close();
    }
  });
});

describe('POST /webhooks/whatsapp', () => {
  it('accepts a correctly signed delivery and hands its event on', async () => {
    const body = connectBody('wacid.ok1');
    const res = await post(body, sign(body));
    expect(res.status).toBe(200);
    const ev = events.find((e) => e.kind === 'connect' && e.callId === 'wacid.ok1');
    expect(ev).toMatchObject({ kind: 'connect', profileName: 'Jane Doe', userWaId: '16315553602', sdpType: 'offer' });
  });

  it.each([
    ['missing', undefined],
    ['wrong prefix', (b: string) => sign(b).replace('sha256=', 'sha1=')],
    ['wrong secret', (b: string) => sign(b, 'another-secret')],
  ])('answers 401 to a %s signature and counts it', async (_name, make) => {
    const before = await counter('bad_signature');
    const body = connectBody(`wacid.bad-${_name}`);
    const res = await post(body, make?.(body));
    expect(res.status).toBe(401);
    expect(await counter('bad_signature')).toBe(before + 1);
    expect(events.some((e) => e.kind === 'connect' && e.callId === `wacid.bad-${_name}`)).toBe(false);
  });

  it('counts a signed account_update (a calling restriction) as an operator notice and answers 200', async () => {
    const body = JSON.stringify({ object: 'whatsapp_business_account', entry: [{ id: 'W', changes: [{ field: 'account_update', value: { event: 'ACCOUNT_RESTRICTION', restriction_info: { restriction_type: 'RESTRICTED_USER_INITIATED_CALLING' } } }] }] });
    const before = (await metrics.accountNotices.get()).values.find((v) => v.labels.field === 'account_update')?.value ?? 0;
    expect((await post(body, sign(body))).status).toBe(200);
    expect((await metrics.accountNotices.get()).values.find((v) => v.labels.field === 'account_update')?.value).toBe(before + 1);
  });

  it('answers 401 when the body changed by one byte after signing', async () => {
    const body = connectBody('wacid.tampered');
    const res = await post(body.replace('Jane', 'Jone'), sign(body));
    expect(res.status).toBe(401);
  });

  it('answers 400 to signed bytes that are not JSON', async () => {
    const body = '{"object": "whatsapp_business_account", ';
    const res = await post(body, sign(body));
    expect(res.status).toBe(400);
    expect(await counter('malformed')).toBeGreaterThan(0);
  });

  it('processes a duplicated delivery once', async () => {
    const body = connectBody('wacid.dup');
    await post(body, sign(body));
    await post(body, sign(body));
    expect(events.filter((e) => e.kind === 'connect' && e.callId === 'wacid.dup')).toHaveLength(1);
  });

  it('a value-level error webhook without calls (131044, §1.5) is answered 200, counted and hands on no event', async () => {
    const before = events.length;
    const body = JSON.stringify({ object: 'whatsapp_business_account', entry: [{ id: '1', changes: [{ field: 'calls', value: {
      messaging_product: 'whatsapp', metadata: { display_phone_number: '13175551399', phone_number_id: '436666719526789' },
      errors: [{ code: 131044, message: 'Payment method missing', error_data: { details: 'add a payment method' } }],
    } }] }] });
    expect((await post(body, sign(body))).status).toBe(200);
    expect(events.length).toBe(before);
    const m = await metrics.webhookEvents.get();
    expect(m.values.find((v) => v.labels.event === 'error' && v.labels.result === 'logged')?.value).toBe(1);
  });

  it('hands on every call of a delivery with several entries, changes and calls', async () => {
    const one = JSON.parse(connectBody('wacid.b1')) as { entry: Array<{ changes: Array<{ value: { calls: Array<Record<string, unknown>> } }> }> };
    const two = JSON.parse(connectBody('wacid.b2')) as typeof one;
    const three = JSON.parse(connectBody('wacid.b3')) as typeof one;
    two.entry[0]!.changes[0]!.value.calls.push({ ...three.entry[0]!.changes[0]!.value.calls[0], event: 'Terminate', status: 'Completed' });
    const body = JSON.stringify({ object: 'whatsapp_business_account', entry: [...one.entry, { ...two.entry[0], changes: [...two.entry[0]!.changes, ...three.entry[0]!.changes] }] });
    expect((await post(body, sign(body))).status).toBe(200);
    const got = events.filter((e) => 'callId' in e && /^wacid\.b\d$/.test(e.callId)).map((e) => `${e.kind}:${'callId' in e ? e.callId : ''}`);
    expect(got).toEqual(['connect:wacid.b1', 'connect:wacid.b2', 'terminate:wacid.b3', 'connect:wacid.b3']);
  });

  it('takes a batch of 1000 connects with full-size SDP offers (§1.1: up to 1000 updates per delivery)', async () => {
    const one = JSON.parse(connectBody('wacid.big0')) as { entry: Array<{ changes: Array<{ value: { calls: Array<Record<string, unknown>> } }> }> };
    const offer = 'v=0\r\n' + 'a=candidate:1 1 udp 2113937151 31.13.65.60 40012 typ host generation 0\r\n'.repeat(40);
    const template = one.entry[0]!.changes[0]!.value.calls[0]!;
    one.entry[0]!.changes[0]!.value.calls = Array.from({ length: 1000 }, (_, i) => ({ ...template, id: `wacid.big${i}`, session: { sdp_type: 'offer', sdp: offer } }));
    const body = JSON.stringify(one);
    expect(body.length).toBeGreaterThan(2 * 1024 * 1024);
    expect((await post(body, sign(body))).status).toBe(200);
    expect(events.filter((e) => e.kind === 'connect' && e.callId.startsWith('wacid.big'))).toHaveLength(1000);
  });

  it('hands on a stale terminate for a call still live here, once however often it is delivered; drops it for any other call', async () => {
    const terminateBody = (callId: string) => {
      const env = JSON.parse(connectBody(callId, Math.floor(Date.now() / 1000) - 7200)) as { entry: Array<{ changes: Array<{ value: { calls: Array<Record<string, unknown>> } }> }> };
      Object.assign(env.entry[0]!.changes[0]!.value.calls[0]!, { event: 'terminate', status: 'COMPLETED' });
      delete env.entry[0]!.changes[0]!.value.calls[0]!.session;
      return JSON.stringify(env);
    };
    liveCalls.add('wacid.live-old');
    const live = terminateBody('wacid.live-old');
    for (let i = 0; i < 2; i++) expect((await post(live, sign(live))).status).toBe(200);
    expect(events.filter((e) => e.kind === 'terminate' && e.callId === 'wacid.live-old')).toHaveLength(1);
    const m = await metrics.webhookEvents.get();
    expect(m.values.find((v) => v.labels.event === 'terminate' && v.labels.result === 'accepted_stale')?.value).toBe(1);
    const gone = terminateBody('wacid.gone-old');
    expect((await post(gone, sign(gone))).status).toBe(200);
    expect(events.some((e) => e.kind === 'terminate' && e.callId === 'wacid.gone-old')).toBe(false);
  });

  it('a calls change without metadata.phone_number_id: 200 to Meta, counted as malformed, no event handed on', async () => {
    const env = JSON.parse(connectBody('wacid.nopnid')) as { entry: Array<{ changes: Array<{ value: { metadata: Record<string, string> } }> }> };
    delete env.entry[0]!.changes[0]!.value.metadata.phone_number_id;
    const body = JSON.stringify(env);
    const res = await post(body, sign(body));
    expect(res.status).toBe(200);
    expect(events.some((e) => 'callId' in e && e.callId === 'wacid.nopnid')).toBe(false);
    const m = await metrics.webhookMalformedItems.get();
    expect(m.values.find((v) => v.labels.reason === 'no_phone_number_id')?.value).toBe(1);
  });

  it('hands on a permission reply older than the age limit: a grant holds until its expiration_timestamp (§1.6)', async () => {
    const now = Math.floor(Date.now() / 1000);
    const grant = permissionReplyBody({ phoneNumberId: 'pn-late', wamid: 'wamid.late-grant', timestamp: now - 3 * 86_400, expiresAt: now + 4 * 86_400 });
    expect((await post(grant, sign(grant))).status).toBe(200);
    const permanent = permissionReplyBody({ phoneNumberId: 'pn-late', wamid: 'wamid.late-permanent', timestamp: now - 6 * 86_400, permanent: true });
    expect((await post(permanent, sign(permanent))).status).toBe(200);
    expect(permissionReplies('pn-late').map((e) => e.messageId)).toEqual(['wamid.late-grant', 'wamid.late-permanent']);
  });

  it('still knows a permission reply retried hours later (Meta retries for days): it is not handed on twice', async () => {
    const now = Math.floor(Date.now() / 1000);
    const body = permissionReplyBody({ phoneNumberId: 'pn-retry', wamid: 'wamid.retried', timestamp: now, permanent: true });
    expect((await post(body, sign(body))).status).toBe(200);
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(Date.now() + 2 * 3600_000); // past the one-hour memory of call events
      expect((await post(body, sign(body))).status).toBe(200);
    } finally {
      vi.useRealTimers();
    }
    expect(permissionReplies('pn-retry')).toHaveLength(1);
  });

  it('drops a temporary grant delivered after its expiration_timestamp, counted as stale', async () => {
    const staleBefore = (await metrics.webhookEvents.get()).values.find((v) => v.labels.event === 'permission_reply' && v.labels.result === 'stale')?.value ?? 0;
    const now = Math.floor(Date.now() / 1000);
    const body = permissionReplyBody({ phoneNumberId: 'pn-expired', wamid: 'wamid.expired', timestamp: now - 8 * 86_400, expiresAt: now - 86_400 });
    expect((await post(body, sign(body))).status).toBe(200);
    expect(permissionReplies('pn-expired')).toEqual([]);
    const m = await metrics.webhookEvents.get();
    expect(m.values.find((v) => v.labels.event === 'permission_reply' && v.labels.result === 'stale')?.value).toBe(staleBefore + 1);
  });

  it('hands on the same user\'s replies to two business numbers within one second; a redelivery once', async () => {
    const ts = Math.floor(Date.now() / 1000);
    const a = permissionReplyBody({ phoneNumberId: 'pn-two-a', wamid: 'wamid.two-a', timestamp: ts });
    const b = permissionReplyBody({ phoneNumberId: 'pn-two-b', wamid: 'wamid.two-b', timestamp: ts });
    for (const body of [a, b, a]) expect((await post(body, sign(body))).status).toBe(200);
    expect(permissionReplies('pn-two-a')).toHaveLength(1);
    expect(permissionReplies('pn-two-b')).toHaveLength(1);
    // Without a wamid the business number still tells them apart.
    const c = permissionReplyBody({ phoneNumberId: 'pn-two-c', wamid: undefined, timestamp: ts });
    const d = permissionReplyBody({ phoneNumberId: 'pn-two-d', wamid: undefined, timestamp: ts });
    for (const body of [c, d, c]) expect((await post(body, sign(body))).status).toBe(200);
    expect(permissionReplies('pn-two-c')).toHaveLength(1);
    expect(permissionReplies('pn-two-d')).toHaveLength(1);
  });

  it('drops an event whose timestamp is stale', async () => {
    const body = connectBody('wacid.stale', Math.floor(Date.now() / 1000) - 3600);
    expect((await post(body, sign(body))).status).toBe(200);
    expect(events.some((e) => e.kind === 'connect' && e.callId === 'wacid.stale')).toBe(false);
  });

  it('a user-initiated connect past Meta\'s ring window (§3.2) is counted stale and handed on once, only to be recorded as missed', async () => {
    const staleBefore = (await metrics.webhookEvents.get()).values.find((v) => v.labels.event === 'connect' && v.labels.result === 'stale')?.value ?? 0;
    const now = Math.floor(Date.now() / 1000);
    const late = connectBody('wacid.past-ring', now - 90);
    const inTime = connectBody('wacid.in-ring', now - 30);
    for (const body of [late, inTime]) expect((await post(body, sign(body))).status).toBe(200);
    // Handed on once, marked, to be recorded as a missed call; the one in time is an ordinary connect.
    expect(events.filter((e) => e.kind === 'connect' && e.callId === 'wacid.past-ring')).toEqual([expect.objectContaining({ pastRingWindow: true })]);
    expect((await post(late, sign(late))).status).toBe(200);
    expect(events.filter((e) => e.kind === 'connect' && e.callId === 'wacid.past-ring')).toHaveLength(1);
    expect(events.find((e) => e.kind === 'connect' && e.callId === 'wacid.in-ring')).not.toHaveProperty('pastRingWindow');
    const m = await metrics.webhookEvents.get();
    expect(m.values.find((v) => v.labels.event === 'connect' && v.labels.result === 'stale')?.value).toBe(staleBefore + 2); // each delivery is stale; only the first is handed on
  });
});
