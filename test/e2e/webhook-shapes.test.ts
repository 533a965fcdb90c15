/**
 * Webhook shapes Meta really sends that our own double does not (whatsapp-calling.md §1.1, §1.2, §1.5): callers
 * without a phone number, no contacts/direction, several calls in one delivery, LF-only SDP, mixed-case status,
 * terminate before connect in the same batch, a connect re-delivered while the call is up. Each call must ring the
 * agent or end cleanly, with the right Graph actions and a call record.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { drachtioAvailable, noteSkipped, firstMissing } from '../peers/drachtio.js';
import { sippAvailable, startSipp, type SippRun, type SippScenario } from '../peers/sip/sipp.js';
import { freePort } from '../peers/sip/ports.js';
import type { WebhookEnvelope } from '../peers/meta/webhook-sender.js';
import { DISPLAY_NUMBER, PHONE_NUMBER_ID, recordOf, startE2E, waitFor, waitNoLiveCalls, type E2E } from './harness.js';

const drachtio = drachtioAvailable();
const sipp = sippAvailable();
const skipReason = firstMissing(drachtio, sipp);
const TESTS = 10;
if (skipReason) noteSkipped(skipReason, TESTS, 'webhook shapes');

const user = { waId: '16315553602', name: 'Jane Doe' };
type CallItem = Record<string, unknown>;
const callOf = (env: WebhookEnvelope): CallItem => env.entry[0]!.changes[0]!.value.calls![0] as unknown as CallItem;

describe.skipIf(skipReason !== undefined)('webhook shapes from Meta\'s documentation', () => {
  let e2e: E2E;
  let agentPort: number;
  let agent: SippRun | undefined;

  const startAgent = async (scenario: SippScenario, keys?: Record<string, string>, calls = 1) => {
    agent = await startSipp({ scenario, port: agentPort, service: 'agent', keys, calls, timeoutSec: 20 });
    return agent;
  };
  const actions = (callId: string) => e2e.meta.requests.filter((r) => r.callId === callId).map((r) => `${r.op}:${r.status}`);

  beforeAll(async () => {
    agentPort = await freePort({ tcp: false });
    e2e = await startE2E({ sipTarget: `sip:agent@127.0.0.1:${agentPort}`, config: { sip: { ringTimeoutMs: 4000 } }, adminKeys: { 'e2e-ops-key': 'ops:admin' } });
  }, 60_000);
  afterEach(async () => {
    await agent?.stop();
    agent = undefined;
    await waitNoLiveCalls(e2e.gateway);
    expect(e2e.gateway.registry.size).toBe(0);
  });
  afterAll(async () => {
    await e2e?.stop();
  });

  it.each([
    ['LB.946123456789', 'sip:LB.946123456789@'],
    ['', 'sip:anonymous@'],
  ])('a caller whose from is %j (no contacts, no direction) still rings the agent with a sane From', async (from, fromUri) => {
    const run = await startAgent('uas-answer');
    const { callId, envelope } = await e2e.meta.userCalls(user, { deliver: false });
    const value = envelope.entry[0]!.changes[0]!.value;
    delete value.contacts;
    const call = callOf(envelope);
    call.from = from;
    delete call.direction;
    await e2e.meta.sendWebhook(envelope);
    expect((await e2e.meta.waitForAction(callId, 'accept')).status).toBe(200);
    const invite = await waitFor(() => /INVITE sip:[\s\S]*?\r?\n\r?\n/.exec(run.messages())?.[0], 'INVITE at the agent');
    expect(invite).toMatch(new RegExp(`^From:.*<${fromUri.replace(/\./g, '\\.')}`, 'mi'));
    await e2e.meta.userHangsUp(callId);
    const record = await recordOf(e2e.gateway, callId);
    expect(record).toMatchObject({ outcome: 'answered', endedBy: 'whatsapp' });
    expect(actions(callId)).toEqual(['pre_accept:200', 'accept:200']);
  });

  it('one delivery with two connects (two entries) rings the agent for both; LF-only SDP is answered in CRLF', async () => {
    await startAgent('uas-refuse', { status: '486', reason: 'Busy Here' }, 2);
    const a = await e2e.meta.userCalls(user, { deliver: false });
    const b = await e2e.meta.userCalls({ waId: '447700900123', name: 'Joe' }, { deliver: false });
    const callB = callOf(b.envelope);
    callB.session = { sdp_type: 'offer', sdp: String((callB.session as { sdp: string }).sdp).replace(/\r\n/g, '\n') };
    const batch: WebhookEnvelope = { object: 'whatsapp_business_account', entry: [...a.envelope.entry, ...b.envelope.entry] };
    await e2e.meta.sendWebhook(batch);
    for (const { callId } of [a, b]) {
      await e2e.meta.waitForAction(callId, 'reject');
      expect(actions(callId)).toEqual(['pre_accept:200', 'reject:200']);
      expect(await recordOf(e2e.gateway, callId)).toMatchObject({ outcome: 'busy', cause: 'sip_486' });
    }
    const preAccept = e2e.meta.requests.find((r) => r.callId === b.callId && r.op === 'pre_accept')!;
    const session = (preAccept.body as { session: { sdp_type: string; sdp: string } }).session;
    expect(session.sdp_type).toBe('answer');
    expect(session.sdp).toMatch(/^v=0\r\n/);
    expect(session.sdp.replace(/\r\n/g, '')).not.toContain('\n');
  });

  it('a terminate with status "Completed" while the agent rings cancels the INVITE and sends no Graph action', async () => {
    const run = await startAgent('uas-ring-cancel');
    const { callId } = await e2e.meta.userCalls(user);
    await waitFor(() => run.messages().includes('180 Ringing') || undefined, 'agent ringing');
    await e2e.meta.sendWebhook(terminate(callId, 'Completed'));
    await waitFor(() => run.messages().includes('CANCEL sip:') || undefined, 'CANCEL at the agent');
    expect(await recordOf(e2e.gateway, callId)).toMatchObject({ outcome: 'cancelled', endedBy: 'whatsapp' });
    expect(actions(callId)).toEqual(['pre_accept:200']);
  });

  it('terminate before connect in the same delivery: the call is never started', async () => {
    const { callId, envelope } = await e2e.meta.userCalls(user, { deliver: false });
    const term = terminate(callId, 'COMPLETED');
    const batch: WebhookEnvelope = { object: 'whatsapp_business_account', entry: [...term.entry, ...envelope.entry] };
    const [delivery] = await e2e.meta.sendWebhook(batch);
    expect(delivery?.status).toBe(200);
    await new Promise((r) => setTimeout(r, 500));
    expect(actions(callId)).toEqual([]);
    expect(e2e.gateway.registry.byWhatsAppId(callId)).toBeUndefined();
  });

  it('a connect delivered again while the call rings (Meta retry) rings the agent once', async () => {
    const run = await startAgent('uas-ring-cancel');
    const { callId, envelope } = await e2e.meta.userCalls(user);
    await waitFor(() => run.messages().includes('180 Ringing') || undefined, 'agent ringing');
    await e2e.meta.sendWebhook(envelope);
    await new Promise((r) => setTimeout(r, 500));
    expect(run.messages().match(/^INVITE sip:/gm)?.length).toBe(1);
    await e2e.meta.userHangsUp(callId);
    await recordOf(e2e.gateway, callId);
    expect(actions(callId)).toEqual(['pre_accept:200']);
  });

  it('the agent hangs up while Graph accept is still in flight: terminate after the accept, never a reject (§2.1)', async () => {
    await startAgent('uas-answer-hangup');
    e2e.meta.graph.injectDelay('accept', 2000);
    const { callId } = await e2e.meta.userCalls(user);
    await e2e.meta.waitForAction(callId, 'terminate', 15_000);
    expect(await recordOf(e2e.gateway, callId)).toMatchObject({ endedBy: 'sip' });
    expect(actions(callId)).toEqual(['pre_accept:200', 'accept:200', 'terminate:200']);
  });

  it('a user-initiated connect without any SDP is rejected through Graph with a record, not left ringing', async () => {
    const { callId, envelope } = await e2e.meta.userCalls(user, { deliver: false });
    delete callOf(envelope).session;
    await e2e.meta.sendWebhook(envelope);
    expect((await e2e.meta.waitForAction(callId, 'reject')).status).toBe(200);
    expect(await recordOf(e2e.gateway, callId)).toMatchObject({ outcome: 'failed', cause: 'unanswerable_offer' });
    expect(actions(callId)).toEqual(['reject:200']);
  });

  it('a connect without metadata.phone_number_id is answered 200 and dropped: no call, no Graph request, a metric', async () => {
    const before = e2e.meta.requests.length;
    const { callId, envelope } = await e2e.meta.userCalls(user, { deliver: false });
    delete (envelope.entry[0]!.changes[0]!.value.metadata as { phone_number_id?: string }).phone_number_id;
    const [delivery] = await e2e.meta.sendWebhook(envelope);
    expect(delivery?.status).toBe(200);
    await new Promise((r) => setTimeout(r, 500));
    expect(e2e.meta.requests.slice(before).map((r) => `${r.method} ${r.path}`)).toEqual([]);
    expect(e2e.gateway.registry.byWhatsAppId(callId)).toBeUndefined();
    const metrics = await (await fetch(`http://127.0.0.1:${e2e.gateway.http.port}/metrics`)).text();
    expect(metrics).toMatch(/^wagw_webhook_malformed_items_total\{reason="no_phone_number_id"\} [1-9]/m);
  });

  it('an account_update restriction (§1.7) is answered 200 and shows in the admin status with its expiration', async () => {
    const [delivery] = await e2e.meta.sendWebhook({
      object: 'whatsapp_business_account',
      entry: [{
        id: '366634483210360',
        changes: [{ field: 'account_update', value: { event: 'ACCOUNT_RESTRICTION', restriction_info: { restriction_type: 'RESTRICTED_BUSINESS_INITIATED_CALLING', expiration: 1795700000 } } }],
      }],
    } as unknown as WebhookEnvelope);
    expect(delivery?.status).toBe(200);
    const status = (await (await fetch(`http://127.0.0.1:${e2e.gateway.http.port}/v1/status`, { headers: { authorization: 'Bearer e2e-ops-key' } })).json()) as { metaNotices?: unknown[] };
    expect(status.metaNotices).toEqual([expect.objectContaining({
      field: 'account_update', kind: 'ACCOUNT_RESTRICTION', details: { restrictionType: 'RESTRICTED_BUSINESS_INITIATED_CALLING', expiration: '1795700000' },
    })]);
  });

  function terminate(callId: string, status: string): WebhookEnvelope {
    return {
      object: 'whatsapp_business_account',
      entry: [{
        id: '366634483210360',
        changes: [{
          field: 'calls',
          value: {
            messaging_product: 'whatsapp',
            metadata: { display_phone_number: DISPLAY_NUMBER, phone_number_id: PHONE_NUMBER_ID },
            calls: [{ id: callId, from: user.waId, to: DISPLAY_NUMBER, event: 'terminate', direction: 'USER_INITIATED', timestamp: String(Math.floor(Date.now() / 1000)), status }],
          },
        }],
      }],
    } as unknown as WebhookEnvelope;
  }
});
