/**
 * Every way a user-initiated call can end other than a normal conversation, with real SIP (sipp through
 * drachtio-server) and the Meta double enforcing Graph's rules. Each path must end the call exactly once, with the
 * right Graph action and SIP message, a call record, and nothing left behind.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { drachtioAvailable, noteSkipped, firstMissing } from '../peers/drachtio.js';
import { sippAvailable, startSipp, type SippRun, type SippScenario } from '../peers/sip/sipp.js';
import { freePort } from '../peers/sip/ports.js';
import { recordOf, records, startE2E, waitFor, waitNoLiveCalls, type E2E } from './harness.js';
import { terminateWebhook } from '../peers/meta/webhook-sender.js';
import type { CallRecord } from '../../src/store/call-record.js';

const drachtio = drachtioAvailable();
const sipp = sippAvailable();
const skipReason = firstMissing(drachtio, sipp);
const TESTS = 15;
if (skipReason) noteSkipped(skipReason, TESTS, 'user-initiated call paths');

const user = { waId: '16315553602', name: 'Jane Doe' };

describe.skipIf(skipReason !== undefined)('user-initiated call: failure and hang-up paths', () => {
  let e2e: E2E;
  let agentPort: number;
  let agent: SippRun | undefined;

  const startAgent = async (scenario: SippScenario, keys?: Record<string, string>, durationMs?: number) => {
    agent = await startSipp({ scenario, port: agentPort, service: 'agent', keys, durationMs, timeoutSec: 20 });
    return agent;
  };
  const actions = (callId: string) => e2e.meta.requests.filter((r) => r.callId === callId).map((r) => `${r.op}:${r.status}`);
  const recordFor = async (callId: string): Promise<CallRecord> => {
    await waitNoLiveCalls(e2e.gateway);
    return recordOf(e2e.gateway, callId);
  };

  beforeAll(async () => {
    agentPort = await freePort({ tcp: false });
    e2e = await startE2E({ sipTarget: `sip:agent@127.0.0.1:${agentPort}`, config: { sip: { ringTimeoutMs: 2500 } } });
  }, 60_000);
  afterEach(async () => {
    await agent?.stop();
    agent = undefined;
    expect(e2e.gateway.registry.size).toBe(0);
  });
  afterAll(async () => {
    await e2e?.stop();
  });

  it.each([
    ['486', 'Busy Here', 'busy'],
    ['603', 'Decline', 'rejected'],
    ['480', 'Temporarily Unavailable', 'no_answer'],
    ['503', 'Service Unavailable', 'failed'],
  ])('SIP %s %s → Graph reject, outcome %s', async (status, reason, outcome) => {
    await startAgent('uas-refuse', { status, reason });
    const { callId } = await e2e.meta.userCalls(user);
    const reject = await e2e.meta.waitForAction(callId, 'reject');
    expect(reject.status).toBe(200);
    const record = await recordFor(callId);
    expect(record).toMatchObject({ outcome, cause: `sip_${status}`, sipStatus: Number(status), endedBy: 'sip' });
    expect(actions(callId)).toEqual(['pre_accept:200', 'reject:200']);
  });

  it('an agent that rings past the ring timeout is cancelled, and the WhatsApp call rejected', async () => {
    const run = await startAgent('uas-ring-cancel');
    const { callId } = await e2e.meta.userCalls(user);
    await e2e.meta.waitForAction(callId, 'reject');
    const record = await recordFor(callId);
    expect(record).toMatchObject({ outcome: 'no_answer', cause: 'sip_408' });
    await waitFor(() => run.messages().includes('CANCEL sip:') || undefined, 'CANCEL at the agent');
    expect(run.messages()).toMatch(/CANCEL sip:[\s\S]*Reason: Q\.850;cause=19;text="ring timeout"/);
    expect(actions(callId)).toEqual(['pre_accept:200', 'reject:200']);
  });

  it('a terminate webhook while the agent rings sends CANCEL and no Graph action', async () => {
    const run = await startAgent('uas-ring-cancel');
    const { callId } = await e2e.meta.userCalls(user);
    await waitFor(() => run.messages().includes('180 Ringing') || undefined, 'agent ringing');
    await e2e.meta.userHangsUp(callId);
    const record = await recordFor(callId);
    expect(record).toMatchObject({ outcome: 'cancelled', endedBy: 'whatsapp' });
    await waitFor(() => run.messages().includes('CANCEL sip:') || undefined, 'CANCEL at the agent');
    expect(run.messages()).toMatch(/CANCEL sip:[\s\S]*Reason: Q\.850;cause=16;text="WhatsApp user hung up"/);
    expect(actions(callId)).toEqual(['pre_accept:200']);
  });

  it('an agent BYE after answer sends Graph terminate', async () => {
    await startAgent('uas-answer-hangup', undefined, 1500);
    const { callId } = await e2e.meta.userCalls(user);
    await e2e.meta.waitForAction(callId, 'accept');
    await e2e.meta.waitForAction(callId, 'terminate');
    const record = await recordFor(callId);
    expect(record).toMatchObject({ outcome: 'answered', endedBy: 'sip', cause: 'agent_hangup' });
    expect(record.durationSeconds).toBeGreaterThan(1);
    expect(actions(callId)).toEqual(['pre_accept:200', 'accept:200', 'terminate:200']);
  });

  it('a terminate webhook after answer sends BYE to the agent', async () => {
    const run = await startAgent('uas-answer', undefined, 20_000);
    const { callId } = await e2e.meta.userCalls(user);
    await e2e.meta.waitForAction(callId, 'accept');
    await e2e.meta.userHangsUp(callId);
    const record = await recordFor(callId);
    expect(record).toMatchObject({ outcome: 'answered', endedBy: 'whatsapp' });
    await waitFor(() => run.messages().includes('BYE sip:') || undefined, 'BYE at the agent');
    expect(run.messages()).toMatch(/BYE sip:[\s\S]*Reason: Q\.850;cause=16;text="WhatsApp user hung up"/);
    expect(actions(callId)).toEqual(['pre_accept:200', 'accept:200']);
  });

  it('a terminate whose timestamp is older than webhookMaxAgeSeconds (a late Meta retry) still ends the live call; its duplicate is a no-op', async () => {
    const run = await startAgent('uas-answer', undefined, 20_000);
    const { callId } = await e2e.meta.userCalls(user);
    await e2e.meta.waitForAction(callId, 'accept');
    await waitFor(() => e2e.gateway.registry.byWhatsAppId(callId)?.state === 'answered' || undefined, 'call answered');
    const old = Math.floor(Date.now() / 1000) - 2 * e2e.config.whatsapp.webhookMaxAgeSeconds;
    const term = terminateWebhook(e2e.meta.ctx, {
      callId, from: user.waId, to: e2e.meta.ctx.displayPhoneNumber, direction: 'USER_INITIATED', timestamp: old, startTime: old - 60, endTime: old, duration: 60,
    });
    const [first] = await e2e.meta.sendWebhook(term, { duplicates: 1 });
    expect(first?.status).toBe(200);
    const record = await recordFor(callId);
    expect(record).toMatchObject({ outcome: 'answered', endedBy: 'whatsapp', cause: 'whatsapp_hangup' });
    await waitFor(() => run.messages().includes('BYE sip:') || undefined, 'BYE at the agent');
    await e2e.meta.sendWebhook(term);
    await new Promise((r) => setTimeout(r, 300));
    expect((await records(e2e.gateway)).filter((r) => r.waCallId === callId)).toHaveLength(1);
    expect(run.messages().match(/^BYE sip:/gm)).toHaveLength(1);
    expect(actions(callId)).toEqual(['pre_accept:200', 'accept:200']);
  });

  it('a Graph error on accept hangs up the agent and logs the Graph code', async () => {
    const run = await startAgent('uas-answer', undefined, 20_000);
    e2e.meta.graph.injectFailure('accept', { status: 400, code: 138004, message: 'Connection error' });
    const { callId } = await e2e.meta.userCalls(user);
    const record = await recordFor(callId);
    expect(record).toMatchObject({ outcome: 'failed', graphCode: 138004, cause: 'graph_accept_138004' });
    await waitFor(() => run.messages().includes('BYE sip:') || undefined, 'BYE at the agent');
    expect(actions(callId)[0]).toBe('pre_accept:200');
    expect(actions(callId)).toContain('accept:400');
  });

  it('an accept Meta carried out but whose answer was lost (5xx): the retry is refused, and the call ends with terminate, not reject', async () => {
    const run = await startAgent('uas-answer', undefined, 20_000);
    e2e.meta.graph.injectFailure('accept', { status: 500, code: 1, message: 'An unknown error occurred', afterProcessing: true });
    const { callId } = await e2e.meta.userCalls(user);
    const record = await recordFor(callId);
    expect(record).toMatchObject({ outcome: 'failed' });
    await waitFor(() => run.messages().includes('BYE sip:') || undefined, 'BYE at the agent');
    // The double took the first accept (answered 500) and refused the retry: the call was accepted at Meta's end.
    await waitFor(() => actions(callId).includes('terminate:200') || undefined, 'Graph terminate');
    expect(actions(callId).slice(0, 3)).toEqual(['pre_accept:200', 'accept:500', 'accept:400']);
    expect(actions(callId).filter((a) => a.startsWith('reject'))).toEqual([]);
  });

  it('a Graph error on pre_accept never rings the agent', async () => {
    const run = await startAgent('uas-answer', undefined, 20_000);
    e2e.meta.graph.injectFailure('pre_accept', { status: 400, code: 100, message: 'Invalid parameter' });
    const { callId } = await e2e.meta.userCalls(user);
    const record = await recordFor(callId);
    expect(record).toMatchObject({ outcome: 'failed', graphCode: 100 });
    expect(run.messages()).not.toContain('INVITE sip:');
  });

  it('a pre_accept Meta carried out but whose answer was lost (5xx): the refused retry does not drop the caller, accept connects the call', async () => {
    await startAgent('uas-answer', undefined, 20_000);
    e2e.meta.graph.injectFailure('pre_accept', { status: 500, code: 1, message: 'An unknown error occurred', afterProcessing: true });
    const { callId } = await e2e.meta.userCalls(user);
    await waitFor(() => actions(callId).includes('accept:200') || undefined, 'Graph accept');
    expect(actions(callId).slice(0, 3)).toEqual(['pre_accept:500', 'pre_accept:400', 'accept:200']);
    await e2e.meta.userHangsUp(callId);
    expect(await recordFor(callId)).toMatchObject({ outcome: 'answered' });
  });

  it('a terminate delivered before its connect means the call is never started, only recorded as missed', async () => {
    await startAgent('uas-answer', undefined, 20_000);
    const { callId, envelope } = await e2e.meta.userCalls(user, { deliver: false });
    await e2e.meta.userHangsUp(callId);
    await e2e.meta.sendWebhook(envelope);
    await new Promise((r) => setTimeout(r, 300));
    expect(actions(callId)).toEqual([]);
    expect((await records(e2e.gateway)).filter((r) => r.waCallId === callId)).toEqual([
      expect.objectContaining({ direction: 'user_initiated', outcome: 'cancelled', endedBy: 'whatsapp', cause: 'terminated_before_connect', userWaId: user.waId }),
    ]);
    expect(agent!.messages()).not.toContain('INVITE sip:');
  });

  it('a connect delivered after Meta\'s ring window rings nobody and is recorded as a missed call', async () => {
    await startAgent('uas-answer', undefined, 20_000);
    const { callId, envelope } = await e2e.meta.userCalls(user, { deliver: false });
    const late = JSON.parse(JSON.stringify(envelope).replace(/"timestamp":"\d+"/g, `"timestamp":"${Math.floor(Date.now() / 1000) - 120}"`)) as typeof envelope;
    await e2e.meta.sendWebhook(late);
    await new Promise((r) => setTimeout(r, 300));
    expect(actions(callId)).toEqual([]);
    expect((await records(e2e.gateway)).filter((r) => r.waCallId === callId)).toEqual([
      expect.objectContaining({ outcome: 'no_answer', endedBy: 'gateway', cause: 'connect_past_ring_window' }),
    ]);
    expect(agent!.messages()).not.toContain('INVITE sip:');
    await e2e.meta.userHangsUp(callId);
  });

  it('a connect delivered three times makes one call', async () => {
    const run = await startAgent('uas-refuse', { status: '486', reason: 'Busy Here' });
    const { callId } = await e2e.meta.userCalls(user, { duplicate: 2 });
    await e2e.meta.waitForAction(callId, 'reject');
    await recordFor(callId);
    await new Promise((r) => setTimeout(r, 300));
    expect((await records(e2e.gateway)).filter((r) => r.waCallId === callId)).toHaveLength(1);
    expect(actions(callId).filter((a) => a.startsWith('pre_accept'))).toHaveLength(1);
    expect((await run.done).messages.match(/INVITE sip:/g)).toHaveLength(1);
  });
});
