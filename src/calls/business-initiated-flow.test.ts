import { describe, expect, it, vi } from 'vitest';
import { createLogger } from '../observability/logger.js';
import { createMetrics } from '../observability/metrics.js';
import { configSchema } from '../config/schema.js';
import type { ConnectEvent, StatusEvent, TerminateEvent } from '../whatsapp/events.js';
import type { SipDialog, SipInboundInvite } from '../sip/agent.js';
import type { CallRecord } from '../store/call-record.js';
import { CallRegistry } from './registry.js';
import type { CallDeps } from './deps.js';
import { businessInviteHandler, deliverBusinessConnect, deliverBusinessStatus, deliverBusinessTerminate, handleBusinessInvite } from './business-initiated.js';
import { dispatchEvent } from './dispatch.js';
import { GraphError } from '../whatsapp/graph-client.js';

/**
 * The PBX-originated flow against fakes of the SIP invite, the media session and Graph, so that webhook events can be
 * put exactly where a real network only rarely puts them (between our 200 OK and the PBX's ACK, ACCEPTED before the
 * answer SDP).
 */
const PNID = '106540352242922';
const USER = '447700900123';
const WACID = 'wacid.FLOW';
const G711_OFFER = 'v=0\r\no=pbx 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=ptime:20\r\na=sendrecv\r\n';

function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => { resolve = r; });
  return { promise, resolve };
}

function setUp() {
  const logger = createLogger('silent');
  const registry = new CallRegistry(10, logger);
  const written: CallRecord[] = [];
  const graph = { connect: vi.fn(async (): Promise<string | undefined> => WACID), terminate: vi.fn(async () => ({})) };
  // The agent side (agent-side.ts) listens on the dialog for BYE and REFER.
  const dialog = { callId: 'sip-call-1', bye: vi.fn(async () => undefined), once: vi.fn(), on: vi.fn(), active: true, sendInfo: vi.fn(async () => 200) };
  const answered = deferred<SipDialog>();
  const invite = {
    callId: 'sip-call-1', requestUri: `sip:+${USER}@gw.example.com`, from: { uri: 'sip:+15550001111@10.0.0.5' },
    source: { address: '127.0.0.1', port: 5060, protocol: 'udp' }, sdp: G711_OFFER, signal: new AbortController().signal,
    responded: false, header: () => undefined, ringing: vi.fn(), reject: vi.fn(() => true),
    answer: vi.fn(() => answered.promise),
  };
  const media = {
    offerWhatsApp: vi.fn(async () => 'v=0\r\n'), answerSip: vi.fn(async () => 'v=0\r\n'),
    applyWhatsAppAnswer: vi.fn(async () => undefined), bridgeSip: vi.fn(), setSipInfoSender: vi.fn(),
    startWhatsAppMedia: vi.fn(), close: vi.fn(async () => undefined),
  };
  const config = configSchema.parse({
    whatsapp: { numbers: [{ phoneNumberId: PNID, displayNumber: '447700900555', sipTarget: 'sip:agent@127.0.0.1' }] },
  });
  const deps = {
    config, logger, metrics: createMetrics(), registry, graph,
    store: { write: (r: CallRecord) => { written.push(r); } },
    routing: { numberFor: (id: string) => config.whatsapp.numbers.find((n) => n.phoneNumberId === id) },
    media: { create: () => media },
    pbxGuard: { check: () => ({ pass: true }) },
  } as unknown as CallDeps;
  const base = { phoneNumberId: PNID, displayNumber: '447700900555', timestamp: Math.floor(Date.now() / 1000), callId: WACID };
  const status = (s: StatusEvent['status']): StatusEvent => ({ ...base, kind: 'status', status: s, recipientId: USER });
  const connect: ConnectEvent = { ...base, kind: 'connect', direction: 'BUSINESS_INITIATED', from: '447700900555', to: USER, sdpType: 'answer', sdp: 'v=0\r\n' };
  const terminate = (extra: Partial<TerminateEvent> = {}): TerminateEvent => ({ ...base, kind: 'terminate', status: 'COMPLETED', errorCodes: [], ...extra });
  const start = async () => {
    void handleBusinessInvite(deps, invite as unknown as SipInboundInvite);
    await vi.waitFor(() => expect(graph.connect).toHaveBeenCalled());
    await vi.waitFor(() => expect(registry.byWhatsAppId(WACID)).toBeDefined());
  };
  return { deps, registry, written, graph, dialog, answered, invite, media, status, connect, terminate, start };
}

describe('business-initiated flow: webhook events in awkward places', () => {
  it('a terminate between our 200 OK and the PBX ACK: the call is recorded answered and the PBX gets its BYE', async () => {
    const t = setUp();
    await t.start();
    deliverBusinessConnect(t.deps, t.connect);
    deliverBusinessStatus(t.deps, t.status('RINGING'));
    deliverBusinessStatus(t.deps, t.status('ACCEPTED'));
    // The 200 OK is on its way (drachtio has not confirmed it; the PBX has not ACKed): Meta's terminate lands now.
    await vi.waitFor(() => expect(t.invite.answer).toHaveBeenCalledTimes(1));
    const now = Math.floor(Date.now() / 1000);
    expect(deliverBusinessTerminate(t.deps, t.terminate({ startTime: now, endTime: now, duration: 0 }))).toBe(true);
    t.answered.resolve(t.dialog as unknown as SipDialog);
    await vi.waitFor(() => expect(t.written).toHaveLength(1));
    expect(t.written[0]).toMatchObject({ outcome: 'answered', endedBy: 'whatsapp', cause: 'whatsapp_hangup', waCallId: WACID });
    expect(t.written[0]!.answeredAt).toBeDefined();
    await vi.waitFor(() => expect(t.dialog.bye).toHaveBeenCalled());
    expect(t.invite.reject).not.toHaveBeenCalled();
    expect(t.graph.terminate).not.toHaveBeenCalled();
  });

  it('ACCEPTED before the connect webhook with the answer SDP: pick-up waits for the SDP, then answers the PBX once', async () => {
    const t = setUp();
    await t.start();
    deliverBusinessStatus(t.deps, t.status('ACCEPTED'));
    await new Promise((r) => setTimeout(r, 200));
    expect(t.invite.answer).not.toHaveBeenCalled();
    deliverBusinessConnect(t.deps, t.connect);
    deliverBusinessConnect(t.deps, t.connect);
    deliverBusinessStatus(t.deps, t.status('ACCEPTED'));
    deliverBusinessStatus(t.deps, t.status('RINGING'));
    await vi.waitFor(() => expect(t.invite.answer).toHaveBeenCalledTimes(1));
    t.answered.resolve(t.dialog as unknown as SipDialog);
    const call = t.registry.byWhatsAppId(WACID)!;
    await vi.waitFor(() => expect(call.state).toBe('answered'));
    expect(t.media.applyWhatsAppAnswer).toHaveBeenCalledTimes(1);
    expect(t.invite.ringing).not.toHaveBeenCalled();
    deliverBusinessTerminate(t.deps, t.terminate({ startTime: 1, endTime: 2, duration: 1 }));
    await vi.waitFor(() => expect(t.written).toHaveLength(1));
    expect(t.written[0]).toMatchObject({ outcome: 'answered', endedBy: 'whatsapp' });
    expect(t.invite.answer).toHaveBeenCalledTimes(1);
  });

  it('the answered PBX dialog gets the agent side every direction shares: offers, offerless re-INVITEs, REFER and BYE are handled', async () => {
    const t = setUp();
    await t.start();
    deliverBusinessConnect(t.deps, t.connect);
    deliverBusinessStatus(t.deps, t.status('ACCEPTED'));
    await vi.waitFor(() => expect(t.invite.answer).toHaveBeenCalledTimes(1));
    t.answered.resolve(t.dialog as unknown as SipDialog);
    const call = t.registry.byWhatsAppId(WACID)!;
    await vi.waitFor(() => expect(call.state).toBe('answered'));
    const d = t.dialog as unknown as SipDialog;
    expect(d.reinviteHandler).toBeTypeOf('function');
    expect(d.offerlessHandler).toBeDefined();
    expect(t.dialog.on.mock.calls.map((c: unknown[]) => c[0])).toEqual(expect.arrayContaining(['ended', 'refer']));
    // The agent's BYE ends the call through the agent side.
    const ended = t.dialog.on.mock.calls.find((c: unknown[]) => c[0] === 'ended')![1] as (e: { by: string; reason: string }) => void;
    t.dialog.active = false;
    ended({ by: 'remote', reason: 'normal release' });
    // Our Graph terminate is answered by Meta's terminate webhook; its duration (Meta's bill) goes into the record.
    await vi.waitFor(() => expect(t.graph.terminate).toHaveBeenCalledTimes(1));
    expect(t.written).toHaveLength(0);
    expect(deliverBusinessTerminate(t.deps, t.terminate({ startTime: 100, endTime: 107, duration: 7 }))).toBe(true);
    await vi.waitFor(() => expect(t.written).toHaveLength(1));
    expect(t.written[0]).toMatchObject({ outcome: 'answered', endedBy: 'sip', cause: 'agent_hangup', metaDurationSeconds: 7, billablePulses: 2 });
    expect(t.dialog.bye).not.toHaveBeenCalled();
  });

  it('a terminate with start_time whose ACCEPTED never came counts as answered; without start_time it is not_answered (480)', async () => {
    const picked = setUp();
    await picked.start();
    deliverBusinessConnect(picked.deps, picked.connect);
    deliverBusinessTerminate(picked.deps, picked.terminate({ startTime: 100, endTime: 110, duration: 10 }));
    await vi.waitFor(() => expect(picked.written).toHaveLength(1));
    expect(picked.written[0]).toMatchObject({ outcome: 'answered', endedBy: 'whatsapp', cause: 'whatsapp_hangup' });
    expect(picked.invite.answer).not.toHaveBeenCalled();
    expect(picked.invite.reject).toHaveBeenCalledWith(480, expect.anything());

    const missed = setUp();
    await missed.start();
    deliverBusinessConnect(missed.deps, missed.connect);
    deliverBusinessTerminate(missed.deps, missed.terminate());
    await vi.waitFor(() => expect(missed.written).toHaveLength(1));
    expect(missed.written[0]).toMatchObject({ outcome: 'no_answer', cause: 'not_answered', sipStatus: 480 });
  });

  it('REJECTED is answered 486 to the PBX (§6 item 3; 486 = user declined in Meta SIP mode), record rejected', async () => {
    const t = setUp();
    await t.start();
    deliverBusinessStatus(t.deps, t.status('RINGING'));
    deliverBusinessStatus(t.deps, t.status('REJECTED'));
    await vi.waitFor(() => expect(t.written).toHaveLength(1));
    expect(t.invite.reject).toHaveBeenCalledWith(486, expect.objectContaining({ reasonHeader: expect.objectContaining({ cause: 486 }) }));
    expect(t.written[0]).toMatchObject({ outcome: 'rejected', endedBy: 'whatsapp', cause: 'user_declined', sipStatus: 486 });
    expect(t.graph.terminate).not.toHaveBeenCalled();
  });

  it('a terminate without biz_opaque_callback_data that beats the Graph connect response still ends the call once connect names it', async () => {
    const t = setUp();
    const connected = deferred<string | undefined>();
    t.graph.connect.mockImplementation(() => connected.promise);
    void handleBusinessInvite(t.deps, t.invite as unknown as SipInboundInvite);
    await vi.waitFor(() => expect(t.graph.connect).toHaveBeenCalled());
    dispatchEvent(t.deps, t.terminate());
    connected.resolve(WACID);
    await vi.waitFor(() => expect(t.written).toHaveLength(1), { timeout: 3000 });
    expect(t.written[0]).toMatchObject({ outcome: 'no_answer', endedBy: 'whatsapp', cause: 'not_answered', sipStatus: 480, waCallId: WACID });
    expect(t.invite.reject).toHaveBeenCalledWith(480, expect.anything());
    expect(t.graph.terminate).not.toHaveBeenCalled();
  });

  it('connect carries the SIP Call-ID as biz_opaque_callback_data, and a RINGING that beats the connect response finds the call by it', async () => {
    const t = setUp();
    const connected = deferred<string | undefined>();
    t.graph.connect.mockImplementation(() => connected.promise);
    void handleBusinessInvite(t.deps, t.invite as unknown as SipInboundInvite);
    await vi.waitFor(() => expect(t.graph.connect).toHaveBeenCalled());
    expect(t.graph.connect).toHaveBeenCalledWith(PNID, USER, 'v=0\r\n', 'sip-call-1');
    dispatchEvent(t.deps, { ...t.status('RINGING'), bizOpaque: 'sip-call-1' });
    await vi.waitFor(() => expect(t.invite.ringing).toHaveBeenCalled());
    expect(t.registry.byWhatsAppId(WACID)?.sipCallId).toBe('sip-call-1');
    connected.resolve(WACID);
    dispatchEvent(t.deps, t.terminate());
    await vi.waitFor(() => expect(t.written).toHaveLength(1), { timeout: 3000 });
  });

  it('138006 from connect although the ledger had a permission: 403 to the PBX and, with the setting on, a permission request', async () => {
    const t = setUp();
    t.graph.connect.mockImplementation(async () => { throw new GraphError('connect', 401, 138006, undefined, 'no permission'); });
    const request = vi.fn(async () => ({ sent: true as const, messageId: 'wamid.1' }));
    const ledger = { clock: () => Date.now(), markNoPermission: vi.fn(), businessCallUnanswered: vi.fn(), view: () => ({}) };
    t.deps.config.businessCalls.requestPermissionOnRefusal = true;
    Object.assign(t.deps, { permissions: { current: async () => ({ status: 'temporary' }), request, ledger } });
    await handleBusinessInvite(t.deps, t.invite as unknown as SipInboundInvite);
    await vi.waitFor(() => expect(t.invite.reject).toHaveBeenCalled());
    expect(t.invite.reject).toHaveBeenCalledWith(403, expect.objectContaining({
      reasonHeader: expect.objectContaining({ text: 'No WhatsApp call permission from the user; a call permission request was sent' }),
    }));
    expect(request).toHaveBeenCalledWith(PNID, USER, expect.anything());
    expect(ledger.markNoPermission).toHaveBeenCalledWith(PNID, USER);
  });

  it('Meta\'s call limit (GET call_permissions start_call refused, or an earlier 138012): 403 with Retry-After, no connect', async () => {
    const t = setUp();
    const now = Date.now();
    Object.assign(t.deps, { permissions: { current: async () => ({ status: 'permanent', callsBlockedUntil: now + 3_600_000 }), ledger: { clock: () => now } } });
    await handleBusinessInvite(t.deps, t.invite as unknown as SipInboundInvite);
    await vi.waitFor(() => expect(t.written).toHaveLength(1));
    expect(t.invite.reject).toHaveBeenCalledWith(403, expect.objectContaining({ headers: expect.objectContaining({ 'Retry-After': '3600' }) }));
    expect(t.graph.connect).not.toHaveBeenCalled();
    expect(t.written[0]).toMatchObject({ cause: 'call_limit', sipStatus: 403 });
  });

  it('a saturated media loop: the PBX gets 503 "Media capacity reached" with Retry-After, and nothing goes to Meta', async () => {
    const t = setUp();
    t.registry.mediaSaturated = () => true;
    await handleBusinessInvite(t.deps, t.invite as unknown as SipInboundInvite);
    expect(t.invite.reject).toHaveBeenCalledWith(503, expect.objectContaining({ headers: expect.objectContaining({ 'Retry-After': '30' }) }));
    expect(JSON.stringify(t.invite.reject.mock.calls[0])).toContain('Media capacity reached');
    expect(t.graph.connect).not.toHaveBeenCalled();
    expect(t.registry.size).toBe(0);
  });

  it('the offer to WhatsApp uses the number\'s own key exchange when it has one (Meta sets SDES/DTLS per number)', async () => {
    const t = setUp();
    t.deps.config.whatsapp.numbers[0]!.whatsappKeyExchange = 'sdes';
    await t.start();
    expect(t.media.offerWhatsApp).toHaveBeenCalledWith('sdes');
    dispatchEvent(t.deps, t.terminate());
    await vi.waitFor(() => expect(t.written).toHaveLength(1), { timeout: 3000 });
  });

  it('a key exchange Meta announced for the number (account_settings_update) wins over the config\'s', async () => {
    const t = setUp();
    t.deps.config.whatsapp.numbers[0]!.whatsappKeyExchange = 'dtls';
    Object.assign(t.deps, { metaSettings: { keyExchange: (pn: string) => (pn === PNID ? 'sdes' : undefined) } });
    await t.start();
    expect(t.media.offerWhatsApp).toHaveBeenCalledWith('sdes');
    dispatchEvent(t.deps, t.terminate());
    await vi.waitFor(() => expect(t.written).toHaveLength(1), { timeout: 3000 });
  });

  it('Graph requests for the number go through its own app\'s client (token), not the default one', async () => {
    const t = setUp();
    const own = { connect: vi.fn(async (): Promise<string | undefined> => WACID), terminate: vi.fn(async () => ({})) };
    const forNumber = vi.fn(() => own);
    Object.assign(t.deps, { graphs: { forNumber } });
    void handleBusinessInvite(t.deps, t.invite as unknown as SipInboundInvite);
    await vi.waitFor(() => expect(own.connect).toHaveBeenCalled());
    expect(forNumber).toHaveBeenCalledWith(PNID);
    expect(t.graph.connect).not.toHaveBeenCalled();
    dispatchEvent(t.deps, t.terminate());
    await vi.waitFor(() => expect(t.written).toHaveLength(1), { timeout: 3000 });
  });

  it('a flow that throws after admitting its call (a ledger error) ends the call: 500 to the PBX, a record, nothing left live', async () => {
    const t = setUp();
    (t.deps as { permissions?: unknown }).permissions = { current: async () => { throw new Error('database is locked'); } };
    await businessInviteHandler(t.deps)(t.invite as unknown as SipInboundInvite);
    await vi.waitFor(() => expect(t.written).toHaveLength(1));
    expect(t.written[0]).toMatchObject({ direction: 'business_initiated', outcome: 'failed', cause: 'internal_error' });
    expect(t.registry.size).toBe(0);
    expect(t.invite.reject).toHaveBeenCalledWith(500, expect.anything());
    expect(t.graph.connect).not.toHaveBeenCalled();
  });
});
