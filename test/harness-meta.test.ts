/**
 * Self-tests of the Meta double (test/peers/meta) against the fact sheet /work/shared/whatsapp-calling.md.
 * The HMAC is recomputed here with node:crypto, independently of webhook-sender.ts.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { afterEach, describe, expect, test } from 'vitest';
import { MetaDouble } from './peers/meta/meta-double.js';
import { WaUser } from './peers/meta/wa-user.js';
import { startWebhookReceiver, type ReceivedWebhook, type WebhookReceiver } from './peers/meta/webhook-receiver.js';
import { verifyHandshake, withTimestamp, type WebhookEnvelope } from './peers/meta/webhook-sender.js';
import { staticMetaAnswer, staticMetaOffer, validateBusinessSdp } from './peers/meta/sdp.js';
import { detectTone } from './audio/goertzel.js';

const APP_SECRET = 'app-secret-123';
const TOKEN = 'EAAG-test-token';
const PNID = '436666719526789';
const WABA = '366634483210360';

interface GraphResult {
  status: number;
  json: Record<string, unknown>;
}

function errorOf(r: GraphResult): { code: number; message: string; type: string; error_data?: { details: string }; fbtrace_id: string } {
  return r.json['error'] as { code: number; message: string; type: string; error_data?: { details: string }; fbtrace_id: string };
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(opts: { display?: string; clock?: () => number; dailyConnectedCallLimit?: number } = {}): Promise<{
  meta: MetaDouble;
  rx: WebhookReceiver;
  base: string;
  post: (body: unknown, token?: string) => Promise<GraphResult>;
  get: (path: string) => Promise<GraphResult>;
}> {
  const rx = await startWebhookReceiver({ verifyToken: 'vt' });
  const metaOpts: ConstructorParameters<typeof MetaDouble>[0] = {
    appSecret: APP_SECRET,
    accessToken: TOKEN,
    phoneNumberId: PNID,
    displayPhoneNumber: opts.display ?? '13175551399',
    wabaId: WABA,
    webhookUrl: rx.url,
    webhookDelayMs: 5,
  };
  if (opts.clock) metaOpts.clock = opts.clock;
  if (opts.dailyConnectedCallLimit !== undefined) metaOpts.dailyConnectedCallLimit = opts.dailyConnectedCallLimit;
  const meta = new MetaDouble(metaOpts);
  const { graphBaseUrl } = await meta.start();
  cleanups.push(async () => {
    await meta.stop();
    await rx.close();
  });
  const base = `${graphBaseUrl}/v21.0/${PNID}`;
  const post = async (body: unknown, token = TOKEN): Promise<GraphResult> => {
    const path = (body as { _path?: string })._path ?? 'calls';
    const res = await fetch(`${base}/${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify(body),
    });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  };
  const get = async (path: string): Promise<GraphResult> => {
    const res = await fetch(`${base}/${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  };
  return { meta, rx, base, post, get };
}

function hmacOk(w: ReceivedWebhook, secret = APP_SECRET): boolean {
  const header = w.headers['x-hub-signature-256'];
  if (typeof header !== 'string' || !header.startsWith('sha256=')) return false;
  const mine = createHmac('sha256', secret).update(Buffer.from(w.rawBody, 'utf8')).digest();
  const theirs = Buffer.from(header.slice('sha256='.length), 'hex');
  return theirs.length === mine.length && timingSafeEqual(theirs, mine);
}

const callEvent = (w: ReceivedWebhook) => w.json?.entry[0]?.changes[0]?.value.calls?.[0];
const statusEvent = (w: ReceivedWebhook) => w.json?.entry[0]?.changes[0]?.value.statuses?.[0];

describe('webhooks (§1)', () => {
  test('connect offer webhook: documented envelope, string timestamp, valid HMAC over the raw body', async () => {
    const { meta, rx } = await setup();
    const { callId, offerSdp } = await meta.userCalls({ waId: '16315553602', name: 'Jane Doe' }, { ctaPayload: 'order-42' });
    const w = await rx.waitFor((x) => callEvent(x)?.id === callId);
    expect(w.headers['content-type']).toBe('application/json');
    expect(hmacOk(w)).toBe(true);
    expect(hmacOk(w, 'other-secret')).toBe(false);
    const env = w.json!;
    expect(env.object).toBe('whatsapp_business_account');
    expect(env.entry[0]!.id).toBe(WABA);
    const ch = env.entry[0]!.changes[0]!;
    expect(ch.field).toBe('calls');
    expect(ch.value.messaging_product).toBe('whatsapp');
    expect(ch.value.metadata).toEqual({ display_phone_number: '13175551399', phone_number_id: PNID });
    expect(ch.value.contacts).toEqual([{ profile: { name: 'Jane Doe' }, wa_id: '16315553602' }]);
    const c = ch.value.calls![0]!;
    expect(c).toMatchObject({ from: '16315553602', to: '13175551399', event: 'connect', direction: 'USER_INITIATED', cta_payload: 'order-42' });
    expect(c.id).toMatch(/^wacid\./);
    expect(c.timestamp).toMatch(/^\d{10}$/);
    expect(Math.abs(Number(c.timestamp) - Date.now() / 1000)).toBeLessThan(5);
    expect(c.session).toEqual({ sdp_type: 'offer', sdp: offerSdp });
    expect(offerSdp).toContain('\r\n');
    expect(offerSdp).toContain('m=audio 3480 UDP/TLS/RTP/SAVPF 111 126');
  });

  test('wrong / missing signature, duplicates, stale timestamps, reordering', async () => {
    const { meta, rx } = await setup();
    const { envelope, callId } = await meta.userCalls({ waId: '16315553602' }, { deliver: false });
    await meta.webhooks.send(envelope, { signature: 'wrong' });
    await meta.webhooks.send(envelope, { signature: 'missing' });
    await meta.webhooks.send(envelope, { duplicates: 2 });
    await meta.webhooks.send(withTimestamp(envelope, 1_600_000_000));
    expect(rx.received).toHaveLength(6);
    expect(hmacOk(rx.received[0]!)).toBe(false);
    expect(rx.received[1]!.headers['x-hub-signature-256']).toBeUndefined();
    expect(rx.received.slice(2, 5).every((w) => hmacOk(w) && w.rawBody === rx.received[2]!.rawBody)).toBe(true);
    expect(callEvent(rx.received[5]!)?.timestamp).toBe('1600000000');
    expect(hmacOk(rx.received[5]!)).toBe(true);

    // terminate before connect
    rx.received.length = 0;
    meta.webhooks.hold();
    const first = meta.webhooks.send(envelope);
    const hang = meta.userHangsUp(callId);
    await new Promise((r) => setTimeout(r, 20));
    expect(meta.webhooks.heldCount).toBe(2);
    await meta.webhooks.release('lifo');
    await Promise.all([first, hang]);
    expect(rx.received.map((w) => callEvent(w)?.event)).toEqual(['terminate', 'connect']);
  });

  test('GET verify handshake helper', async () => {
    const { rx } = await setup();
    const ok = await verifyHandshake(rx.url, { verifyToken: 'vt', challenge: '1158201444' });
    expect(ok).toMatchObject({ status: 200, body: '1158201444', ok: true });
    const bad = await verifyHandshake(rx.url, { verifyToken: 'nope' });
    expect(bad.ok).toBe(false);
    expect(bad.status).toBeGreaterThanOrEqual(400);
  });
});

describe('Graph API double (§2)', () => {
  test('auth: wrong token -> 401 code 190; wrong phone-number-id -> 100', async () => {
    const { post, base, meta } = await setup();
    const r = await post({ messaging_product: 'whatsapp', action: 'terminate', call_id: 'wacid.x' }, 'bad');
    expect(r.status).toBe(401);
    expect(errorOf(r)).toMatchObject({ code: 190, type: 'OAuthException' });
    expect(typeof errorOf(r).fbtrace_id).toBe('string');
    const res = await fetch(base.replace(PNID, '999') + '/calls', { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: '{}' });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: number } }).error.code).toBe(100);
    expect(meta.requests.map((x) => x.status)).toEqual([401, 400]);
  });

  test('user-initiated: pre_accept -> accept must carry the same SDP (code 100), action order and terminate webhook', async () => {
    const { meta, rx, post } = await setup();
    const { callId, offerSdp } = await meta.userCalls({ waId: '16315553602', name: 'Jane' });
    const answer = staticMetaAnswer(offerSdp);
    const pre = await post({ messaging_product: 'whatsapp', call_id: callId, action: 'pre_accept', session: { sdp_type: 'answer', sdp: answer } });
    expect(pre).toEqual({ status: 200, json: { messaging_product: 'whatsapp', success: true } });
    const mismatch = await post({ messaging_product: 'whatsapp', call_id: callId, action: 'accept', session: { sdp_type: 'answer', sdp: answer.replace('a=sendrecv', 'a=sendrecv\r\na=ptime:20') } });
    expect(mismatch.status).toBe(400);
    expect(errorOf(mismatch).code).toBe(100);
    expect(errorOf(mismatch).error_data?.details).toMatch(/pre_accept/);
    const acc = await post({ messaging_product: 'whatsapp', call_id: callId, action: 'accept', session: { sdp_type: 'answer', sdp: answer }, biz_opaque_callback_data: 'leg-1' });
    expect(acc.status).toBe(200);
    const again = await post({ messaging_product: 'whatsapp', call_id: callId, action: 'accept', session: { sdp_type: 'answer', sdp: answer } });
    expect(errorOf(again).code).toBe(100);
    const preLate = await post({ messaging_product: 'whatsapp', call_id: callId, action: 'pre_accept', session: { sdp_type: 'answer', sdp: answer } });
    expect(errorOf(preLate).code).toBe(100);
    const rej = await post({ messaging_product: 'whatsapp', call_id: callId, action: 'reject' });
    expect(errorOf(rej).code).toBe(100);
    const term = await post({ messaging_product: 'whatsapp', call_id: callId, action: 'terminate' });
    expect(term.status).toBe(200);
    const tw = await rx.waitFor((w) => callEvent(w)?.event === 'terminate');
    const t = callEvent(tw)!;
    expect(hmacOk(tw)).toBe(true);
    expect(t).toMatchObject({ id: callId, status: 'COMPLETED', direction: 'USER_INITIATED', biz_opaque_callback_data: 'leg-1' });
    expect(t.start_time).toMatch(/^\d+$/);
    expect(t.end_time).toMatch(/^\d+$/);
    expect(typeof t.duration).toBe('number');
    const afterEnd = await post({ messaging_product: 'whatsapp', call_id: callId, action: 'accept', session: { sdp_type: 'answer', sdp: answer } });
    expect(errorOf(afterEnd).code).toBe(100);
    const ops = meta.graph.actionsFor(callId).map((r) => `${r.op}:${r.status}`);
    expect(ops).toEqual(['pre_accept:200', 'accept:400', 'accept:200', 'accept:400', 'pre_accept:400', 'reject:400', 'terminate:200', 'accept:400']);
    expect((await meta.waitForAction(callId, 'terminate')).status).toBe(200);
  });

  test('unknown call id, bad SDP, reject -> terminate webhook without start_time', async () => {
    const { meta, rx, post } = await setup();
    const unknown = await post({ messaging_product: 'whatsapp', call_id: 'wacid.nope', action: 'accept', session: { sdp_type: 'answer', sdp: staticMetaOffer() } });
    expect(unknown.status).toBe(400);
    expect(errorOf(unknown).code).toBe(100);
    const { callId, offerSdp } = await meta.userCalls({ waId: '16315553602' });
    const noFp = staticMetaAnswer(offerSdp).split('\r\n').filter((l) => !l.startsWith('a=fingerprint')).join('\r\n');
    const bad = await post({ messaging_product: 'whatsapp', call_id: callId, action: 'pre_accept', session: { sdp_type: 'answer', sdp: noFp } });
    expect(errorOf(bad).code).toBe(100);
    expect(errorOf(bad).error_data?.details).toMatch(/fingerprint/);
    const dbl = await post({ messaging_product: 'whatsapp', call_id: callId, action: 'pre_accept', session: { sdp_type: 'answer', sdp: JSON.stringify(staticMetaAnswer(offerSdp)) } });
    expect(errorOf(dbl).code).toBe(100);
    expect((await post({ messaging_product: 'whatsapp', call_id: callId, action: 'reject' })).status).toBe(200);
    const tw = await rx.waitFor((w) => callEvent(w)?.event === 'terminate');
    expect(callEvent(tw)!.start_time).toBeUndefined();
    expect(callEvent(tw)!.duration).toBeUndefined();
  });

  test('SDP lint warnings are recorded (setup, ice-lite) and become errors when strict', () => {
    const v = validateBusinessSdp(staticMetaOffer(), { role: 'answer' });
    expect(v.errors).toEqual([]);
    expect(v.warnings.join()).toMatch(/setup:active/);
    expect(v.warnings.join()).toMatch(/ice-lite/);
  });

  test('injected failure and delay apply to the next request of that action only', async () => {
    const { meta, post } = await setup();
    const { callId, offerSdp } = await meta.userCalls({ waId: '16315553602' });
    meta.graph.injectFailure('pre_accept', { status: 500, code: 138004, message: 'Connection error' });
    meta.graph.injectDelay('pre_accept', 150);
    const body = { messaging_product: 'whatsapp', call_id: callId, action: 'pre_accept', session: { sdp_type: 'answer', sdp: staticMetaAnswer(offerSdp) } };
    const t0 = Date.now();
    const f = await post(body);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
    expect(f.status).toBe(500);
    expect(errorOf(f).code).toBe(138004);
    expect((await post(body)).status).toBe(200);
  });
});

describe('business-initiated calls and permissions (§1.3, §1.4, §2.5, §3.1, §3.4)', () => {
  test('US business number -> 138013', async () => {
    const { meta, post } = await setup({ display: '13175551399' });
    meta.addUser({ waId: '447700900123' }, { permission: 'permanent' });
    const r = await post({ messaging_product: 'whatsapp', to: '447700900123', action: 'connect', session: { sdp_type: 'offer', sdp: staticMetaOffer() } });
    expect(r.status).toBe(400);
    expect(errorOf(r).code).toBe(138013);
  });

  test('connect checks (138001, 138006, 138003, 138012), answer webhook, RINGING/ACCEPTED/REJECTED, call_permissions', async () => {
    const { meta, rx, post, get } = await setup({ display: '447700900555', dailyConnectedCallLimit: 1 });
    const offer = staticMetaOffer().replace('a=ice-lite\r\n', '');
    const connect = (to: string, opaque?: string): Promise<GraphResult> =>
      post({ messaging_product: 'whatsapp', to, action: 'connect', session: { sdp_type: 'offer', sdp: offer }, ...(opaque ? { biz_opaque_callback_data: opaque } : {}) });
    expect(errorOf(await connect('14085550000')).code).toBe(138001);
    meta.addUser({ waId: '14085551234', name: 'Bob' }, { callable: false, permission: 'permanent' });
    expect(errorOf(await connect('14085551234')).code).toBe(138001);
    meta.addUser({ waId: '14085551234', name: 'Bob' }, { callable: true, permission: 'no_permission' });
    const noPerm = await connect('14085551234');
    expect(noPerm.status).toBe(401);
    expect(errorOf(noPerm).code).toBe(138006);
    let perms = await get('call_permissions?user_wa_id=14085551234');
    expect(perms.json).toMatchObject({ messaging_product: 'whatsapp', permission: { status: 'no_permission' } });
    meta.addUser({ waId: '14085551234', name: 'Bob' }, { permission: 'temporary' });
    perms = await get('call_permissions?user_wa_id=14085551234');
    expect(perms.json).toMatchObject({
      permission: { status: 'temporary' },
      actions: [
        { action_name: 'send_call_permission_request', can_perform_action: true, limits: [{ time_period: 'PT24H', max_allowed: 1, current_usage: 0 }, { time_period: 'P7D', max_allowed: 2, current_usage: 0 }] },
        { action_name: 'start_call', can_perform_action: true, limits: [{ time_period: 'PT24H', max_allowed: 1, current_usage: 0 }] },
      ],
    });
    expect(typeof (perms.json['permission'] as { expiration_time: number }).expiration_time).toBe('number');

    const ok = await connect('14085551234', 'sip-call-id-1');
    expect(ok.status).toBe(200);
    const callId = ((ok.json['calls'] as Array<{ id: string }>)[0]!).id;
    expect(ok.json['messaging_product']).toBe('whatsapp');
    expect(errorOf(await connect('14085551234')).code).toBe(138003);
    const ans = await rx.waitFor((w) => callEvent(w)?.event === 'connect' && callEvent(w)?.id === callId);
    expect(callEvent(ans)).toMatchObject({ direction: 'BUSINESS_INITIATED', from: '447700900555', to: '14085551234', biz_opaque_callback_data: 'sip-call-id-1' });
    expect(callEvent(ans)!.session?.sdp_type).toBe('answer');
    expect(ans.json!.entry[0]!.changes[0]!.value.contacts).toEqual([{ wa_id: '14085551234' }]);
    const ringing = await rx.waitFor((w) => statusEvent(w)?.status === 'RINGING');
    expect(statusEvent(ringing)).toMatchObject({ id: callId, type: 'call', recipient_id: '14085551234', biz_opaque_callback_data: 'sip-call-id-1' });
    expect(ringing.at).toBeGreaterThanOrEqual(ans.at);
    await meta.userAnswers(callId);
    expect(statusEvent(rx.received.at(-1)!)?.status).toBe('ACCEPTED');
    expect((await post({ messaging_product: 'whatsapp', call_id: callId, action: 'terminate' })).status).toBe(200);
    const term = await rx.waitFor((w) => callEvent(w)?.event === 'terminate');
    expect(callEvent(term)).toMatchObject({ direction: 'BUSINESS_INITIATED', status: 'COMPLETED' });
    expect(callEvent(term)!.duration).toBeTypeOf('number');

    // one connected call per 24 h allowed in this setup -> 138012 with the next allowed time
    const limited = await connect('14085551234');
    expect(errorOf(limited).code).toBe(138012);
    expect(errorOf(limited).error_data?.details).toMatch(/\d{10}/);
    perms = await get('call_permissions?user_wa_id=14085551234');
    const startCall = (perms.json['actions'] as Array<{ action_name: string; can_perform_action: boolean; limits: Array<{ limit_expiration_time?: number }> }>)[1]!;
    expect(startCall.can_perform_action).toBe(false);
    expect(startCall.limits[0]!.limit_expiration_time).toBeTypeOf('number');
  });

  test('user declines -> REJECTED then terminate without start_time', async () => {
    const { meta, rx, post } = await setup({ display: '447700900555' });
    meta.addUser({ waId: '14085551234' }, { permission: 'permanent' });
    const ok = await post({ messaging_product: 'whatsapp', to: '14085551234', action: 'connect', session: { sdp_type: 'offer', sdp: staticMetaOffer().replace('a=ice-lite\r\n', '') } });
    const callId = ((ok.json['calls'] as Array<{ id: string }>)[0]!).id;
    await rx.waitFor((w) => statusEvent(w)?.status === 'RINGING');
    await meta.userDeclines(callId);
    const last = rx.received.slice(-2);
    expect(statusEvent(last[0]!)?.status).toBe('REJECTED');
    expect(callEvent(last[1]!)).toMatchObject({ event: 'terminate', id: callId });
    expect(callEvent(last[1]!)!.start_time).toBeUndefined();
  });

  test('4 consecutive unanswered business calls revoke the permission (automatic reject reply, §3.1/§1.6)', async () => {
    const { meta, rx, post, get } = await setup({ display: '447700900555' });
    meta.addUser({ waId: '14085551234' }, { permission: 'temporary' });
    for (let i = 0; i < 4; i++) {
      const ok = await post({ messaging_product: 'whatsapp', to: '14085551234', action: 'connect', session: { sdp_type: 'offer', sdp: staticMetaOffer().replace('a=ice-lite\r\n', '') } });
      expect(ok.status).toBe(200);
      await meta.userDeclines(((ok.json['calls'] as Array<{ id: string }>)[0]!).id);
    }
    const revoke = await rx.waitFor((w) => w.json?.entry[0]?.changes[0]?.field === 'messages');
    const m = revoke.json!.entry[0]!.changes[0]!.value.messages![0]!;
    expect(m.interactive.call_permission_reply).toMatchObject({ response: 'reject', response_source: 'automatic' });
    expect(m.context).toBeUndefined();
    expect(((await get('call_permissions?user_wa_id=14085551234')).json['permission'] as { status: string }).status).toBe('no_permission');
    const denied = await post({ messaging_product: 'whatsapp', to: '14085551234', action: 'connect', session: { sdp_type: 'offer', sdp: staticMetaOffer() } });
    expect(errorOf(denied).code).toBe(138006);
  });

  test('permission requests: 1 per 24 h and 2 per 7 days -> 138009; reset after a connected call; reply webhook', async () => {
    let now = Date.UTC(2026, 0, 5, 12);
    const { meta, rx, post } = await setup({ display: '447700900555', clock: () => now });
    const req = (): Promise<GraphResult> =>
      post({ _path: 'messages', messaging_product: 'whatsapp', recipient_type: 'individual', to: '14085551234', type: 'interactive',
        interactive: { type: 'call_permission_request', action: { name: 'call_permission_request' }, body: { text: 'May we call you?' } } });
    const first = await req();
    expect(first.status).toBe(200);
    expect(first.json).toMatchObject({ messaging_product: 'whatsapp', contacts: [{ input: '14085551234', wa_id: '14085551234' }] });
    const wamid = ((first.json['messages'] as Array<{ id: string }>)[0]!).id;
    expect(wamid).toMatch(/^wamid\./);
    const second = await req();
    expect(second.status).toBe(400);
    expect(errorOf(second).code).toBe(138009);
    now += 25 * 3600 * 1000;
    expect((await req()).status).toBe(200);
    now += 25 * 3600 * 1000;
    expect(errorOf(await req()).code).toBe(138009); // 2 in 7 days
    // user accepts -> reply webhook on field messages
    await meta.userRepliesToPermission('14085551234', { response: 'accept' });
    const reply = rx.received.at(-1)!;
    expect(hmacOk(reply)).toBe(true);
    const ch = reply.json!.entry[0]!.changes[0]!;
    expect(ch.field).toBe('messages');
    const m = ch.value.messages![0]!;
    expect(m).toMatchObject({ from: '14085551234', type: 'interactive', interactive: { type: 'call_permission_reply', call_permission_reply: { response: 'accept', is_permanent: false, response_source: 'user_action' } } });
    expect(m.context?.id).toMatch(/^wamid\./);
    expect(m.interactive.call_permission_reply.expiration_timestamp).toBe(String(Math.floor(now / 1000) + 7 * 86400));
    // a connected call resets both windows
    const c = await post({ messaging_product: 'whatsapp', to: '14085551234', action: 'connect', session: { sdp_type: 'offer', sdp: staticMetaOffer().replace('a=ice-lite\r\n', '') } });
    const callId = ((c.json['calls'] as Array<{ id: string }>)[0]!).id;
    await meta.userAnswers(callId);
    expect((await req()).status).toBe(200);
    // permanent permission -> 138017
    await meta.userRepliesToPermission('14085551234', { response: 'accept', isPermanent: true });
    now += 8 * 86400 * 1000;
    expect(errorOf(await req()).code).toBe(138017);
  });
});

describe('wrtc WhatsApp user (§4)', () => {
  test('Meta-like offer; 1 kHz tone reaches a second wrtc peer and is found by Goertzel; answer applied after pre_accept', async () => {
    const { meta, rx, post } = await setup();
    const user = new WaUser({ waId: '16315553602', name: 'Jane Doe' });
    const far = new WaUser({ waId: 'gateway-side', iceLite: false }); // plain answerer standing in for the gateway's media
    cleanups.push(async () => {
      await user.close();
      await far.close();
    });
    rx.onWebhook = (w) => {
      const c = callEvent(w);
      if (c?.event !== 'connect' || !c.session) return;
      void (async () => {
        const answer = await far.answerOffer(c.session!.sdp);
        await post({ messaging_product: 'whatsapp', call_id: c.id, action: 'pre_accept', session: { sdp_type: 'answer', sdp: answer } });
        await post({ messaging_product: 'whatsapp', call_id: c.id, action: 'accept', session: { sdp_type: 'answer', sdp: answer } });
      })();
    };
    const { callId, offerSdp } = await meta.userCalls(user);
    const lines = offerSdp.split('\r\n');
    expect(lines.filter((l) => l.startsWith('m='))).toEqual([expect.stringMatching(/^m=audio \d+ UDP\/TLS\/RTP\/SAVPF 111 126$/)]);
    expect(lines).toContain('a=rtpmap:111 opus/48000/2');
    expect(lines).toContain('a=fmtp:111 minptime=10;useinbandfec=1');
    expect(lines).toContain('a=rtpmap:126 telephone-event/8000');
    expect(lines).toContain('a=rtcp-mux');
    expect(lines).toContain('a=group:BUNDLE audio');
    expect(lines).toContain('a=setup:actpass');
    expect(lines.some((l) => /^a=fingerprint:sha-256 /.test(l))).toBe(true);
    expect(lines.filter((l) => l.startsWith('a=candidate:'))).toEqual([expect.stringMatching(/ udp \d+ 127\.0\.0\.1 \d+ typ host/)]);

    const acc = await meta.waitForAction(callId, 'accept');
    expect(acc.status).toBe(200);
    const pre = await meta.waitForAction(callId, 'pre_accept');
    expect(pre.seq).toBeLessThan(acc.seq);
    await user.waitConnected(5000);
    await far.waitForMedia(5000);
    await user.waitForMedia(5000);

    const h = user.play({ toneHz: 1000, levelDbfs: -12, durationMs: 1200 });
    const started = await h.startedAt;
    far.play({ toneHz: 440, levelDbfs: -12, durationMs: 1200 });
    await h.done;
    await new Promise((r) => setTimeout(r, 200));
    const rec = far.recording();
    const from = rec.indexAt(started + 400);
    const seg = rec.samples.subarray(from, from + 24000);
    expect(seg.length).toBe(24000);
    const d = detectTone(seg, rec.sampleRate, 1000);
    expect(d.detected).toBe(true);
    expect(d.levelDbfs).toBeGreaterThan(-25);
    expect(detectTone(seg, rec.sampleRate, 440).detected).toBe(false);
    const back = user.recording();
    const i = back.indexAt(started + 400);
    expect(detectTone(back.samples.subarray(i, i + 24000), 48000, 440).detected).toBe(true);

    await meta.userHangsUp(callId);
    const term = await rx.waitFor((w) => callEvent(w)?.event === 'terminate');
    expect(callEvent(term)!.start_time).toMatch(/^\d+$/);
    expect(user.connectionState).toBe('closed');
    expect(meta.errors).toEqual([]);
  });
});
