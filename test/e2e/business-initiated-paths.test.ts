/**
 * Business-initiated calls end to end with real SIP (sipp as the PBX, through drachtio-server) and the Meta double
 * enforcing Meta's permission rules on its own: the toll-fraud guard, the permission check before any `connect`, the
 * local permission-request limits, the reset by a connected call, the auto-revoke after 4 unanswered calls, and every
 * Graph `connect` error mapped to its SIP response.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { encoderLoadGovernor } from '../../src/media/encoder-load-governor.js';
import { drachtioAvailable, noteSkipped, firstMissing } from '../peers/drachtio.js';
import { sippAvailable, startSipp, type SippRun, type SippScenario } from '../peers/sip/sipp.js';
import { records, startE2E, waitFor, waitNoLiveCalls, type E2E } from './harness.js';
import type { CallRecord } from '../../src/store/call-record.js';

const drachtio = drachtioAvailable();
const sipp = sippAvailable();
const skipReason = firstMissing(drachtio, sipp);
const TESTS = 28;
if (skipReason) noteSkipped(skipReason, TESTS, 'business-initiated call paths');

const HOUR = 3600_000;
const ADMIN_KEY = 'e2e-admin-key';
let userSeq = 0;
/** A fresh UK user per test: the double's per-user state (active call, limits) never leaks between tests. */
const newUser = (): string => `4477009${String(100 + userSeq++).padStart(5, '0')}`;

async function waitAsync<T>(fn: () => Promise<T | undefined>, what: string, timeoutMs = 10_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.skipIf(skipReason !== undefined)('business-initiated call paths (sipp PBX → gateway → Meta double)', () => {
  let e2e: E2E;
  let now = Date.now();
  let run: SippRun | undefined;

  const dial = async (waId: string, scenario: SippScenario = 'uac-invite', keys: Record<string, string> = {}, durationMs = 1000): Promise<SippRun> => {
    run = await startSipp({ scenario, service: waId, remote: `127.0.0.1:${e2e.drachtio.sipPort}`, keys, durationMs, timeoutSec: 25 });
    return run;
  };
  const connects = (waId: string) => e2e.meta.requests.filter((r) => r.op === 'connect' && (r.body as { to?: string } | undefined)?.to === waId);
  const messagesTo = (waId: string) => e2e.meta.requests.filter((r) => r.op === 'messages' && (r.body as { to?: string } | undefined)?.to === waId);
  const recordTo = async (waId: string): Promise<CallRecord> => {
    await waitNoLiveCalls(e2e.gateway);
    return waitAsync(async () => (await records(e2e.gateway)).find((r) => r.userWaId === waId), `call record to ${waId}`);
  };
  const finalOf = async (r: SippRun) => {
    const result = await r.done;
    return result.messages;
  };
  const admin = (method: string, path: string, body?: unknown) => fetch(`http://127.0.0.1:${e2e.gateway.http.port}${path}`, {
    method, headers: { authorization: `Bearer ${ADMIN_KEY}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const metric = async (name: string, labels: Record<string, string>): Promise<number> => {
    const text = await (await fetch(`http://127.0.0.1:${e2e.gateway.http.port}/metrics`)).text();
    const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
    const line = text.split('\n').find((l) => l.startsWith(name) && want.every((w) => l.includes(w)));
    return line ? Number(line.split(' ').pop()) : 0;
  };

  beforeAll(async () => {
    e2e = await startE2E({
      sipTarget: 'sip:unused@127.0.0.1:5999',
      displayNumber: '447700900555',
      clock: () => now,
      adminKeys: { [ADMIN_KEY]: 'ops:admin' },
      config: { businessCalls: { allowedSources: ['127.0.0.1'], ratesPerMinute: { '44': 0.06 }, currency: 'GBP' } },
    });
  }, 60_000);
  afterEach(async () => {
    await run?.stop();
    run = undefined;
    await waitNoLiveCalls(e2e.gateway);
    e2e.meta.businessRingTimeoutMs = 60_000;
    e2e.meta.webhookDelayMs = 30;
    e2e.meta.graph.clearInjected();
  });
  afterAll(async () => {
    await e2e?.stop();
  });

  it('with permission: connect with the SIP Call-ID as biz_opaque_callback_data, 180 on RINGING, 200 on ACCEPTED, PBX BYE → Graph terminate; record with cost', async () => {
    const waId = newUser();
    e2e.meta.addUser({ waId, name: 'Bob' }, { permission: 'temporary' });
    const sip = await dial(`+${waId}`, 'uac-invite', {}, 2500);
    const placed = await e2e.meta.waitForConnect(waId);
    await waitFor(() => sip.messages().includes('SIP/2.0 180') || undefined, '180 Ringing at the PBX');
    expect(sip.messages()).not.toContain('SIP/2.0 200');
    await e2e.meta.userAnswers(placed.id);
    await e2e.meta.waitForAction(placed.id, 'terminate', 15_000);
    const result = await sip.done;
    expect(result.successful).toBe(1);
    const record = await recordTo(waId);
    expect(record).toMatchObject({ direction: 'business_initiated', outcome: 'answered', endedBy: 'sip', cause: 'agent_hangup', waCallId: placed.id, businessNumber: '447700900555', currency: 'GBP' });
    expect(record.sipCallId).toBeTruthy();
    expect(placed.bizOpaqueCallbackData).toBe(record.sipCallId);
    // Meta's terminate, which answers our own, still brings its duration (what it bills by) into the record. (This
    // file's double runs on a test clock: its duration may be 0 s, and then so is the bill.)
    const atMeta = e2e.meta.graph.calls.get(placed.id)!;
    const metaSeconds = Math.floor(atMeta.endedAt! / 1000) - Math.floor(atMeta.acceptedAt! / 1000);
    expect(record).toMatchObject({ metaDurationSeconds: metaSeconds, billablePulses: Math.ceil(metaSeconds / 6) });
    expect(record.estimatedCost).toBeCloseTo(record.billablePulses * 0.006, 6);
    // One GET call_permissions (the ledger knew nothing), one connect, one terminate.
    expect(e2e.meta.requests.filter((r) => r.query.user_wa_id === waId || r.callId === placed.id || connects(waId).includes(r)).map((r) => r.op))
      .toEqual(['call_permissions', 'connect', 'terminate']);
  });

  it("Meta's terminate that comes after the record was written still brings its duration: the stored record is amended", async () => {
    const waId = newUser();
    e2e.meta.addUser({ waId, name: 'Late' }, { permission: 'temporary' });
    const amendedBefore = await metric('wagw_call_records_total', { result: 'amended' });
    const sip = await dial(`+${waId}`, 'uac-invite', {}, 1500);
    const placed = await e2e.meta.waitForConnect(waId);
    await e2e.meta.userAnswers(placed.id);
    // Meta answers our Graph terminate 3.5 s late, past the 2 s the teardown waits for it.
    e2e.meta.webhookDelayMs = 3500;
    await e2e.meta.waitForAction(placed.id, 'terminate', 15_000);
    expect((await sip.done).successful).toBe(1);
    const written = await recordTo(waId);
    expect(written).toMatchObject({ outcome: 'answered', endedBy: 'sip', waCallId: placed.id });
    expect(written.metaDurationSeconds).toBeUndefined();
    const amended = await waitAsync(async () => (await records(e2e.gateway)).find((r) => r.userWaId === waId && r.metaDurationSeconds !== undefined), 'the amended record', 10_000);
    const atMeta = e2e.meta.graph.calls.get(placed.id)!;
    const metaSeconds = Math.floor(atMeta.endedAt! / 1000) - Math.floor(atMeta.acceptedAt! / 1000);
    expect(amended).toMatchObject({ id: written.id, metaDurationSeconds: metaSeconds, billablePulses: Math.ceil(metaSeconds / 6), durationSeconds: written.durationSeconds });
    expect(amended.estimatedCost).toBeCloseTo(amended.billablePulses * 0.006, 6);
    expect(await metric('wagw_call_records_total', { result: 'amended' })).toBe(amendedBefore + 1);
  }, 40_000);

  it('a saturated media loop: 503 (Warning "Media capacity reached") with Retry-After and no Graph request; once it clears the next INVITE is placed', async () => {
    const waId = newUser();
    e2e.meta.addUser({ waId, name: 'Sat' }, { permission: 'temporary' });
    const saturated = vi.spyOn(encoderLoadGovernor(), 'saturatedAbove').mockReturnValue(true);
    try {
      const messages = await finalOf(await dial(`+${waId}`));
      expect(messages).toMatch(/SIP\/2\.0 503/);
      expect(messages).toMatch(/Warning: 399 wa-sip-gateway \\?"Media capacity reached/);
      expect(messages).toMatch(/Retry-After: 30/i);
      expect(e2e.meta.requests.filter((r) => r.query.user_wa_id === waId)).toEqual([]);
      expect(connects(waId)).toEqual([]);
      expect(await metric('wagw_sip_invites_refused_total', { reason: 'media_overload' })).toBe(1);
      expect(saturated).toHaveBeenCalledWith(0.95); // media.saturationBusyPercent's default
    } finally {
      saturated.mockRestore();
    }
    const sip = await dial(`+${waId}`, 'uac-invite', {}, 1000);
    const placed = await e2e.meta.waitForConnect(waId);
    await e2e.meta.userAnswers(placed.id);
    // The live call's encoder is the governor's: that is how saturation is seen at all.
    await waitFor(() => encoderLoadGovernor().size > 0 || undefined, "the call's encoder under the load governor");
    expect((await sip.done).successful).toBe(1);
    expect(await recordTo(waId)).toMatchObject({ outcome: 'answered' });
    expect(encoderLoadGovernor().size).toBe(0);
  });

  it('without permission: 403 with the reason, GET call_permissions only, no connect reaches the double', async () => {
    const waId = newUser();
    e2e.meta.addUser({ waId }, { permission: 'no_permission' });
    const messages = await finalOf(await dial(waId, 'uac-invite-refused', { status: '403' }));
    expect(messages).toMatch(/SIP\/2.0 403/);
    expect(messages).toMatch(/Reason: SIP;cause=403;text="No WhatsApp call permission from the user"/i);
    expect(messages).toMatch(/Warning: 399 wa-sip-gateway "No WhatsApp call permission/i);
    expect(connects(waId)).toHaveLength(0);
    expect(e2e.meta.requests.filter((r) => r.query.user_wa_id === waId).map((r) => r.op)).toEqual(['call_permissions']);
    expect(await recordTo(waId)).toMatchObject({ outcome: 'rejected', cause: 'no_permission', sipStatus: 403 });

    // The user grants it at once (Meta's "no permission" also said start_call could not be performed): the agent's
    // redial a few seconds later reaches the user, not a call-limit refusal.
    await e2e.meta.userRepliesToPermission(waId, { response: 'accept' });
    await waitAsync(async () => ((await (await admin('GET', `/v1/permissions/${waId}`)).json()) as { status: string }).status === 'temporary' || undefined, 'ledger temporary');
    const sip = await dial(waId, 'uac-invite', {}, 500);
    const placed = await e2e.meta.waitForConnect(waId);
    await e2e.meta.userAnswers(placed.id);
    const result = await sip.done;
    expect(result.successful).toBe(1);
  });

  it('without permission and the tenant setting on: 403 says a permission request was sent; the next INVITE sends none', async () => {
    const waId = newUser();
    e2e.meta.addUser({ waId }, { permission: 'no_permission' });
    e2e.config.businessCalls.requestPermissionOnRefusalByTenant = { default: true };
    try {
      const first = await finalOf(await dial(waId, 'uac-invite-refused', { status: '403' }));
      expect(first).toMatch(/text="No WhatsApp call permission from the user; a call permission request was sent"/);
      expect(messagesTo(waId)).toHaveLength(1);
      const second = await finalOf(await dial(waId, 'uac-invite-refused', { status: '403' }));
      expect(second).toMatch(/no permission request sent \(one call permission request per 24 hours already sent\)/);
      expect(messagesTo(waId)).toHaveLength(1);
    } finally {
      e2e.config.businessCalls.requestPermissionOnRefusalByTenant = {};
    }
  });

  it('GET call_permissions failing is not "no permission": connect asks Meta instead, the call is answered, no permission request is spent', async () => {
    const waId = newUser();
    e2e.meta.addUser({ waId, name: 'Cleo' }, { permission: 'temporary' });
    // Every try of the refresh fails (the first and the client's retries).
    e2e.meta.graph.injectFailure('call_permissions', { status: 500, code: 1, message: 'An unknown error occurred', times: 10 });
    e2e.config.businessCalls.requestPermissionOnRefusalByTenant = { default: true };
    try {
      const sip = await dial(`+${waId}`, 'uac-invite', {}, 1500);
      const placed = await e2e.meta.waitForConnect(waId);
      await e2e.meta.userAnswers(placed.id);
      await e2e.meta.waitForAction(placed.id, 'terminate', 15_000);
      expect((await sip.done).successful).toBe(1);
      expect(await recordTo(waId)).toMatchObject({ outcome: 'answered', waCallId: placed.id });
      expect(messagesTo(waId)).toHaveLength(0);
      expect(await metric('wagw_permission_events_total', { event: 'refresh_failed' })).toBeGreaterThanOrEqual(1);
    } finally {
      e2e.config.businessCalls.requestPermissionOnRefusalByTenant = {};
    }
  });

  it('a connect Meta carried out but whose answer was lost: the PBX gets 500, and the call Meta placed is terminated once its webhooks name it', async () => {
    const waId = newUser();
    e2e.meta.addUser({ waId }, { permission: 'temporary' });
    const before = await metric('wagw_uncertain_connects_terminated_total', {});
    e2e.meta.graph.injectFailure('connect', { status: 500, code: 1, message: 'An unknown error occurred', afterProcessing: true });
    const messages = await finalOf(await dial(waId, 'uac-invite-refused', { status: '500' }));
    expect(messages).toMatch(/SIP\/2.0 500/);
    // The user's phone rang all the same; without the fix nothing ever ends it.
    const placed = await waitFor(() => [...e2e.meta.graph.calls.values()].find((c) => c.userWaId === waId && c.direction === 'BUSINESS_INITIATED'), 'the call Meta placed');
    await waitFor(() => e2e.meta.requests.some((r) => r.op === 'terminate' && r.callId === placed.id) || undefined, 'Graph terminate of the placed call');
    expect(placed.state).toBe('ended');
    expect(await metric('wagw_uncertain_connects_terminated_total', {})).toBe(before + 1);
    expect(await recordTo(waId)).toMatchObject({ outcome: 'failed', sipStatus: 500 });
  });

  it('a delayed-offer INVITE (no SDP, CUCM\'s default): our 200 OK carries the offer, the ACK\'s answer is applied and RTP flows to it', async () => {
    const waId = newUser();
    e2e.meta.addUser({ waId, name: 'Dee' }, { permission: 'temporary' });
    run = await startSipp({ scenario: 'uac-invite-delayed-offer' as SippScenario, service: `+${waId}`, remote: `127.0.0.1:${e2e.drachtio.sipPort}`, durationMs: 2000, timeoutSec: 25, rtpEcho: true });
    const placed = await e2e.meta.waitForConnect(waId);
    await e2e.meta.userAnswers(placed.id);
    await e2e.meta.waitForAction(placed.id, 'terminate', 15_000);
    expect((await run.done).successful).toBe(1);
    expect(run.messages()).toMatch(/SIP\/2.0 200 OK[\s\S]*m=audio \d+ RTP\/AVP 0 8 101/);
    const record = await recordTo(waId);
    expect(record).toMatchObject({ outcome: 'answered', endedBy: 'sip', cause: 'agent_hangup' });
    // sipp echoes what reaches the port its ACK named: packets back mean the gateway sent there.
    expect(record.quality?.sip?.packetsIn).toBeGreaterThan(20);
  });

  it('a PBX whose INVITE starts on hold (c=0.0.0.0) gets no RTP from us and is answered recvonly', async () => {
    const waId = newUser();
    e2e.meta.addUser({ waId, name: 'Held' }, { permission: 'temporary' });
    run = await startSipp({ scenario: 'uac-invite-held' as SippScenario, service: `+${waId}`, remote: `127.0.0.1:${e2e.drachtio.sipPort}`, durationMs: 1500, timeoutSec: 25 });
    const placed = await e2e.meta.waitForConnect(waId);
    await e2e.meta.userAnswers(placed.id);
    await e2e.meta.waitForAction(placed.id, 'terminate', 15_000);
    expect((await run.done).successful).toBe(1);
    expect(run.messages()).toMatch(/SIP\/2.0 200 OK[\s\S]*a=recvonly/);
    const record = await recordTo(waId);
    expect(record).toMatchObject({ outcome: 'answered' });
    expect(record.quality?.sip?.packetsOut ?? 0).toBe(0);
  });

  it('an INVITE from a source not allowed gets 403 and causes no Graph request at all', async () => {
    const waId = newUser();
    e2e.meta.addUser({ waId }, { permission: 'permanent' });
    const before = e2e.meta.requests.length;
    const refusedBefore = await metric('wagw_sip_invites_refused_total', { reason: 'source_not_allowed' });
    e2e.config.businessCalls.allowedSources = ['10.0.0.0/8'];
    try {
      const messages = await finalOf(await dial(waId, 'uac-invite-refused', { status: '403' }));
      expect(messages).toMatch(/text="Source not allowed to place WhatsApp calls"/);
    } finally {
      e2e.config.businessCalls.allowedSources = ['127.0.0.1'];
    }
    expect(e2e.meta.requests.length).toBe(before);
    expect(await metric('wagw_sip_invites_refused_total', { reason: 'source_not_allowed' })).toBe(refusedBefore + 1);
    expect((await records(e2e.gateway)).find((r) => r.userWaId === waId)).toBeUndefined();
  });

  it('the user declines: REJECTED → 486 (§6, Meta SIP mode) and the call counts as unanswered', async () => {
    const waId = newUser();
    e2e.meta.addUser({ waId }, { permission: 'permanent' });
    const sip = await dial(waId, 'uac-invite-refused', { status: '486' });
    const placed = await e2e.meta.waitForConnect(waId);
    await waitFor(() => sip.messages().includes('SIP/2.0 180') || undefined, '180 at the PBX');
    await e2e.meta.userDeclines(placed.id);
    expect(await finalOf(sip)).toMatch(/SIP\/2.0 486/);
    expect(await recordTo(waId)).toMatchObject({ outcome: 'rejected', endedBy: 'whatsapp', sipStatus: 486, cause: 'user_declined' });
    const view = await (await admin('GET', `/v1/permissions/${waId}`)).json() as { consecutiveUnanswered: number; status: string };
    expect(view).toMatchObject({ status: 'permanent', consecutiveUnanswered: 1 });
  });

  it('no answer: terminate without start_time → 480', async () => {
    const waId = newUser();
    e2e.meta.addUser({ waId }, { permission: 'permanent' });
    e2e.meta.businessRingTimeoutMs = 1500;
    const messages = await finalOf(await dial(waId, 'uac-invite-refused', { status: '480' }));
    expect(messages).toMatch(/SIP\/2.0 480/);
    expect(await recordTo(waId)).toMatchObject({ outcome: 'no_answer', endedBy: 'whatsapp', sipStatus: 480, billablePulses: 0, estimatedCost: 0 });
  });

  it('CANCEL from the PBX while the user rings → Graph terminate', async () => {
    const waId = newUser();
    e2e.meta.addUser({ waId }, { permission: 'permanent' });
    const sip = await dial(waId, 'uac-cancel', {}, 300);
    const placed = await e2e.meta.waitForConnect(waId);
    const terminate = await e2e.meta.waitForAction(placed.id, 'terminate', 15_000);
    expect(terminate.status).toBe(200);
    expect((await sip.done).successful).toBe(1);
    expect(await recordTo(waId)).toMatchObject({ outcome: 'cancelled', endedBy: 'sip', cause: 'pbx_cancel' });
  });

  it('the user hangs up after answering → BYE to the PBX, no Graph terminate', async () => {
    const waId = newUser();
    e2e.meta.addUser({ waId }, { permission: 'permanent' });
    const sip = await dial(waId, 'uac-invite', {}, 20_000);
    const placed = await e2e.meta.waitForConnect(waId);
    await waitFor(() => sip.messages().includes('SIP/2.0 180') || undefined, '180 at the PBX');
    await e2e.meta.userAnswers(placed.id);
    await waitFor(() => sip.messages().includes('SIP/2.0 200') || undefined, '200 at the PBX');
    await waitFor(() => e2e.gateway.registry.byWhatsAppId(placed.id)?.state === 'answered' || undefined, 'call answered');
    await e2e.meta.userHangsUp(placed.id);
    await waitFor(() => /BYE sip:/.test(sip.messages()) || undefined, 'BYE at the PBX');
    // Meta's terminate carries its own duration (whole seconds from start_time to end_time), which it bills by.
    const atMeta = e2e.meta.graph.calls.get(placed.id)!;
    const metaSeconds = Math.floor(atMeta.endedAt! / 1000) - Math.floor(atMeta.acceptedAt! / 1000);
    expect(await recordTo(waId)).toMatchObject({
      outcome: 'answered', endedBy: 'whatsapp', cause: 'whatsapp_hangup', metaDurationSeconds: metaSeconds, billablePulses: Math.ceil(metaSeconds / 6),
    });
    expect(e2e.meta.requests.filter((r) => r.callId === placed.id && r.op === 'terminate')).toHaveLength(0);
  });

  it('the user hangs up after our 200 OK but before the PBX ACKed it: BYE to the PBX, the record says answered', async () => {
    const waId = newUser();
    e2e.meta.addUser({ waId }, { permission: 'permanent' });
    const sip = await dial(waId, 'uac-invite-late-ack');
    const placed = await e2e.meta.waitForConnect(waId);
    await waitFor(() => sip.messages().includes('SIP/2.0 180') || undefined, '180 at the PBX');
    await e2e.meta.userAnswers(placed.id);
    await waitFor(() => sip.messages().includes('SIP/2.0 200') || undefined, '200 at the PBX');
    await e2e.meta.userHangsUp(placed.id);
    const result = await sip.done;
    expect(result.messages).toMatch(/^BYE sip:/m);
    expect(result.messages).not.toMatch(/^ACK sip:/m);
    const record = await recordTo(waId);
    expect(record).toMatchObject({ outcome: 'answered', endedBy: 'whatsapp', cause: 'whatsapp_hangup' });
    expect(record.answeredAt).toBeDefined();
    expect(e2e.meta.requests.filter((r) => r.callId === placed.id && r.op === 'terminate')).toHaveLength(0);
    const view = await (await admin('GET', `/v1/permissions/${waId}`)).json() as { consecutiveUnanswered: number };
    expect(view.consecutiveUnanswered).toBe(0);
  });

  it.each([
    [138006, 401, '403', /No WhatsApp call permission/],
    [138012, 400, '403', /Daily business-initiated call limit reached; next call allowed at 20\d\d-/],
    [138003, 400, '403', /already ongoing/],
    [131044, 400, '403', /payment method/],
    [138001, 400, '404', /cannot be called/],
    [138013, 400, '403', /not available in this country/],
    [138002, 429, '503', /Concurrent call limit/],
    [138005, 429, '503', /Call rate limit/],
    [138004, 500, '500', /Graph connect failed \(code 138004\)/],
  ])('Graph connect error %i (HTTP %i) → SIP %s', async (code, httpStatus, sipStatus, text) => {
    const waId = newUser();
    e2e.meta.addUser({ waId }, { permission: 'permanent' });
    const next = Math.floor((now + 5 * HOUR) / 1000);
    e2e.meta.graph.injectFailure('connect', { status: httpStatus, code, details: code === 138012 ? `Next call allowed after ${next} (unix seconds)` : undefined });
    const messages = await finalOf(await dial(waId, 'uac-invite-refused', { status: sipStatus }));
    expect(messages).toMatch(new RegExp(`SIP/2.0 ${sipStatus}`));
    expect(messages).toMatch(text);
    expect(messages).toMatch(new RegExp(`X-WA-Graph-Error: ${code}`, 'i'));
    if (sipStatus === '503') expect(messages).toMatch(/Retry-After: \d+/i);
    if (code === 138012) expect(messages).toMatch(/Retry-After: 1(7999|8000)\b/i);
    expect(connects(waId)).toHaveLength(1);
    expect(await recordTo(waId)).toMatchObject({ outcome: code === 138003 ? 'busy' : 'failed', graphCode: code, sipStatus: Number(sipStatus) });
  });

  it('a third permission request inside 7 days is refused locally and never reaches the double; a connected call resets the limits', async () => {
    const waId = newUser();
    e2e.meta.addUser({ waId }, { permission: 'no_permission' });
    const first = await admin('POST', '/v1/permission-requests', { to: waId, body: 'May we call you about order 12?' });
    expect(first.status).toBe(202);
    const tooSoon = await admin('POST', '/v1/permission-requests', { to: waId });
    expect(tooSoon.status).toBe(429);
    expect(await tooSoon.json()).toMatchObject({ refusal: 'daily_limit' });
    now += 25 * HOUR;
    expect((await admin('POST', '/v1/permission-requests', { to: `+${waId}` })).status).toBe(202);
    now += 25 * HOUR;
    const third = await admin('POST', '/v1/permission-requests', { to: waId });
    expect(third.status).toBe(429);
    const body = await third.json() as { refusal: string; nextRequestAt: string };
    expect(body.refusal).toBe('weekly_limit');
    expect(Date.parse(body.nextRequestAt)).toBeGreaterThan(now + 4 * 24 * HOUR);
    expect(messagesTo(waId).map((r) => r.status)).toEqual([200, 200]);
    expect((messagesTo(waId)[0]!.body as { interactive: { body: { text: string } } }).interactive.body.text).toBe('May we call you about order 12?');

    // The user grants the permission; a connected call resets both windows here and at the double.
    await e2e.meta.userRepliesToPermission(waId, { response: 'accept' });
    await waitAsync(async () => ((await (await admin('GET', `/v1/permissions/${waId}`)).json()) as { status: string }).status === 'temporary' || undefined, 'ledger temporary');
    const sip = await dial(waId, 'uac-invite', {}, 1000);
    const placed = await e2e.meta.waitForConnect(waId);
    await waitFor(() => sip.messages().includes('SIP/2.0 180') || undefined, '180 at the PBX');
    await e2e.meta.userAnswers(placed.id);
    await sip.done;
    await recordTo(waId);
    const after = await admin('POST', '/v1/permission-requests', { to: waId });
    // The double has its own ledger: it must agree that the windows were reset (202, not 138009 → 502).
    expect(after.status).toBe(202);
    expect(messagesTo(waId)).toHaveLength(3);
  });

  it('a request that names neither body nor template: the template while the service window is closed, free-form once the user replied', async () => {
    const waId = newUser();
    e2e.meta.addUser({ waId }, { permission: 'no_permission' });
    e2e.config.businessCalls.permissionRequestTemplate = 'call_permission_v1';
    try {
      expect((await admin('POST', '/v1/permission-requests', { to: waId })).status).toBe(202);
      expect(messagesTo(waId)[0]!.body).toMatchObject({ type: 'template', template: { name: 'call_permission_v1' } });
      // The user's reply is a message of theirs: it opens the 24 h customer-service window (§3.5).
      now += HOUR;
      await e2e.meta.userRepliesToPermission(waId, { response: 'reject' });
      const view = async () => (await (await admin('GET', `/v1/permissions/${waId}`)).json()) as { serviceWindowUntil: string | null };
      await waitAsync(async () => (await view()).serviceWindowUntil ?? undefined, 'service window open');
      expect(Date.parse((await view()).serviceWindowUntil!)).toBe(Math.floor(now / 1000) * 1000 + 24 * HOUR);
      now += 23 * HOUR + 60_000; // past the daily request limit, still inside the window
      expect((await admin('POST', '/v1/permission-requests', { to: waId })).status).toBe(202);
      expect(messagesTo(waId)[1]!.body).toMatchObject({ type: 'interactive', interactive: { type: 'call_permission_request' } });
    } finally {
      e2e.config.businessCalls.permissionRequestTemplate = '';
    }
  });

  it('click-to-call to a user who never answers: Graph terminate after businessCalls.ringTimeoutMs, not that plus the agent ring time', async () => {
    const waId = newUser();
    e2e.meta.addUser({ waId }, { permission: 'permanent' });
    e2e.config.businessCalls.ringTimeoutMs = 5000;
    try {
      const res = await admin('POST', '/v1/calls', { to: waId, agent: 'sip:agent@127.0.0.1:5999' });
      expect(res.status).toBe(202);
      const placed = await e2e.meta.waitForConnect(waId);
      const started = Date.now();
      const terminate = await e2e.meta.waitForAction(placed.id, 'terminate', 15_000);
      expect(terminate.status).toBe(200);
      expect(Date.now() - started).toBeLessThan(8000);
      expect(await recordTo(waId)).toMatchObject({ outcome: 'no_answer', endedBy: 'gateway', cause: 'ring_timeout' });
    } finally {
      e2e.config.businessCalls.ringTimeoutMs = 60_000;
    }
  }, 30_000);

  it('four unanswered calls: a warning after two, the permission revoked after four, the fifth INVITE refused without connect', async () => {
    const waId = newUser();
    e2e.meta.addUser({ waId }, { permission: 'permanent' });
    e2e.meta.businessRingTimeoutMs = 1000;
    const warningsBefore = await metric('wagw_permission_events_total', { event: 'unanswered_warning' });
    for (let i = 1; i <= 4; i++) {
      const messages = await finalOf(await dial(waId, 'uac-invite-refused', { status: '480' }));
      expect(messages).toMatch(/SIP\/2.0 480/);
      await waitNoLiveCalls(e2e.gateway);
      if (i === 2) expect(await metric('wagw_permission_events_total', { event: 'unanswered_warning' })).toBe(warningsBefore + 1);
    }
    expect(connects(waId)).toHaveLength(4);
    const view = await (await admin('GET', `/v1/permissions/${waId}`)).json() as { status: string };
    expect(view.status).toBe('none');
    const fifth = await finalOf(await dial(waId, 'uac-invite-refused', { status: '403' }));
    expect(fifth).toMatch(/No WhatsApp call permission/);
    expect(connects(waId)).toHaveLength(4);
  });

  it('a temporary permission expires silently: the next INVITE is refused with no connect', async () => {
    const waId = newUser();
    e2e.meta.addUser({ waId }, { permission: 'temporary', permissionExpiresAt: now + HOUR });
    const sip = await dial(waId, 'uac-invite-refused', { status: '486' });
    const placed = await e2e.meta.waitForConnect(waId);
    await waitFor(() => sip.messages().includes('SIP/2.0 180') || undefined, '180 at the PBX');
    await e2e.meta.userDeclines(placed.id);
    await sip.done;
    await recordTo(waId);
    const view = await (await admin('GET', `/v1/permissions/${waId}`)).json() as { status: string; expiresAt: string };
    expect(view.status).toBe('temporary');
    expect(Date.parse(view.expiresAt)).toBe(Math.floor((now + HOUR) / 1000) * 1000);
    now += 2 * HOUR;
    const messages = await finalOf(await dial(waId, 'uac-invite-refused', { status: '403' }));
    expect(messages).toMatch(/No WhatsApp call permission/);
    expect(connects(waId)).toHaveLength(1);
  });

  it('a permanent permission still places calls a month later', async () => {
    const waId = newUser();
    e2e.meta.addUser({ waId }, { permission: 'permanent' });
    expect((await (await admin('GET', `/v1/permissions/${waId}?refresh=1`)).json() as { status: string }).status).toBe('permanent');
    now += 30 * 24 * HOUR;
    e2e.meta.businessRingTimeoutMs = 1000;
    const messages = await finalOf(await dial(waId, 'uac-invite-refused', { status: '480' }));
    expect(messages).toMatch(/SIP\/2.0 180/);
    expect(connects(waId)).toHaveLength(1);
  });

  it('GET /v1/permissions with refresh asks Meta; an unknown business number is 404', async () => {
    const waId = newUser();
    e2e.meta.addUser({ waId }, { permission: 'permanent' });
    const res = await admin('GET', `/v1/permissions/${waId}?refresh=1`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ waId, status: 'permanent', stale: false, expiresAt: null });
    expect((await admin('GET', `/v1/permissions/${waId}?phoneNumberId=999`)).status).toBe(404);
    expect((await admin('POST', '/v1/permission-requests', { to: 'nobody' })).status).toBe(400);
  });
});
