/**
 * A business-initiated call with real media both ways: a baresip desk phone dials the WhatsApp user's number through
 * drachtio-server, the gateway places the call with the Meta double (a libwebrtc user with a permission), the user
 * picks up, and tones are checked as audio on both sides.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { drachtioAvailable, noteSkipped, firstMissing } from '../peers/drachtio.js';
import { baresipAvailable, startBaresip, type BaresipAgent } from '../peers/sip/baresip.js';
import { WaUser } from '../peers/meta/index.js';
import { records, startE2E, waitFor, waitNoLiveCalls, toneHeardByAgent, toneHeardByUser, userTalksAndHearsAgent, type E2E } from './harness.js';

const drachtio = drachtioAvailable();
const baresip = baresipAvailable();
const skipReason = firstMissing(drachtio, baresip);
if (skipReason) noteSkipped(skipReason, 3, 'business-initiated audio');

describe.skipIf(skipReason !== undefined)('business-initiated call with two-way audio (baresip desk phone dials out)', () => {
  let agent: BaresipAgent;
  let e2e: E2E;

  beforeAll(async () => {
    agent = await startBaresip({ toneHz: 440 });
    e2e = await startE2E({
      sipTarget: agent.uri,
      displayNumber: '447700900555',
      adminKeys: { 'e2e-admin-key': 'crm:supervisor' },
      config: { businessCalls: { allowedSources: ['127.0.0.1'], ratesPerMinute: { '44': 0.06 } } },
    });
  }, 60_000);
  afterAll(async () => {
    await e2e?.stop();
    await agent?.stop();
  });

  it('the agent dials the user: 1 kHz reaches the agent, 440 Hz reaches the user, BYE from the desk phone ends it', async () => {
    const { meta, gateway, drachtio: d } = e2e;
    const user = new WaUser({ waId: '447700900123', name: 'Bob' });
    try {
      meta.addUser(user, { permission: 'temporary' });
      const established = agent.waitEvent('CALL_ESTABLISHED', 20_000);
      await agent.dial(`sip:+447700900123@127.0.0.1:${d.sipPort}`);
      const placed = await meta.waitForConnect('447700900123');
      await waitFor(() => gateway.registry.list()[0]?.state === 'ringing' || undefined, 'RINGING reached the call');
      await meta.userAnswers(placed.id);
      await established;
      await waitFor(() => gateway.registry.list()[0]?.state === 'answered' || undefined, 'call answered');
      await userTalksAndHearsAgent(user);

      const closed = agent.waitEvent('CALL_CLOSED', 10_000);
      await agent.hangup();
      await closed;
      const terminate = await meta.waitForAction(placed.id, 'terminate');
      expect(terminate.status).toBe(200);
      await waitNoLiveCalls(gateway);

      const k1 = await toneHeardByAgent(agent, 1000);
      expect(k1.detected).toBe(true);

      const record = (await records(gateway)).find((r) => r.waCallId === placed.id);
      expect(record).toMatchObject({ direction: 'business_initiated', outcome: 'answered', endedBy: 'sip', userWaId: '447700900123', currency: 'USD' });
      expect(record!.billablePulses).toBeGreaterThanOrEqual(1);
      expect(record!.estimatedCost).toBeGreaterThan(0);
      // The desk phone hung up, so Meta's terminate (with its billing duration) came after ours: still in the record.
      const atMeta = meta.graph.calls.get(placed.id)!;
      const metaSeconds = Math.floor(atMeta.endedAt! / 1000) - Math.floor(atMeta.acceptedAt! / 1000);
      expect(metaSeconds).toBeGreaterThan(0);
      expect(record).toMatchObject({ metaDurationSeconds: metaSeconds, billablePulses: Math.ceil(metaSeconds / 6) });
      expect(record!.quality?.whatsapp?.packetsIn).toBeGreaterThan(100);
      expect(record!.quality?.sip?.packetsIn).toBeGreaterThan(100);
      expect(meta.errors).toEqual([]);
    } finally {
      await user.close();
    }
  }, 60_000);

  it('click-to-call: POST /v1/calls rings the user, then the agent when the user answers; tones both ways', async () => {
    const { meta, gateway } = e2e;
    const user = new WaUser({ waId: '447700900456', name: 'Carol' });
    try {
      meta.addUser(user, { permission: 'permanent' });
      const establishedCount = () => agent.seenEvents().filter((e) => e.type === 'CALL_ESTABLISHED').length;
      const before = establishedCount();
      const res = await fetch(`http://127.0.0.1:${gateway.http.port}/v1/calls`, {
        method: 'POST', headers: { authorization: 'Bearer e2e-admin-key', 'content-type': 'application/json' },
        body: JSON.stringify({ to: '+447700900456', agent: agent.uri }),
      });
      expect(res.status).toBe(202);
      const { callId } = await res.json() as { callId: string };
      const placed = await meta.waitForConnect('447700900456');
      expect(placed.bizOpaqueCallbackData).toBe(callId);
      await new Promise((r) => setTimeout(r, 300));
      // Nobody rings the agent before the user picked up.
      expect(establishedCount()).toBe(before);
      expect(gateway.registry.get(callId)?.sipCallId).toBeUndefined();
      await meta.userAnswers(placed.id);
      await waitFor(() => establishedCount() > before || undefined, 'agent answered (baresip)', 15_000);
      await waitFor(() => gateway.registry.get(callId)?.state === 'answered' || undefined, 'agent answered');
      await user.waitForMedia();
      user.play({ toneHz: 1000, levelDbfs: -12 });
      await new Promise((r) => setTimeout(r, 3000));
      expect(toneHeardByUser(user, 440, 'click-to-call: user').detected).toBe(true);

      const closed = agent.waitEvent('CALL_CLOSED', 10_000);
      await meta.userHangsUp(placed.id);
      await closed;
      await waitNoLiveCalls(gateway);
      const k1 = await toneHeardByAgent(agent, 1000, 'click-to-call: agent');
      expect(k1.detected).toBe(true);
      const record = (await records(gateway)).find((r) => r.id === callId);
      expect(record).toMatchObject({ direction: 'business_initiated', outcome: 'answered', endedBy: 'whatsapp', sipTarget: agent.uri, waCallId: placed.id });
      expect(meta.errors).toEqual([]);
    } finally {
      await user.close();
    }
  }, 60_000);

  it('click-to-call: while the agent still rings after the user picked up, the user hears the ringing music, not dead air', async () => {
    const { meta, gateway } = e2e;
    const slowAgent = await startBaresip({ toneHz: 440, answerMode: 'manual' });
    const user = new WaUser({ waId: '447700900789', name: 'Dana' });
    try {
      meta.addUser(user, { permission: 'permanent' });
      const incoming = slowAgent.waitEvent('CALL_INCOMING', 15_000);
      const res = await fetch(`http://127.0.0.1:${gateway.http.port}/v1/calls`, {
        method: 'POST', headers: { authorization: 'Bearer e2e-admin-key', 'content-type': 'application/json' },
        body: JSON.stringify({ to: '+447700900789', agent: slowAgent.uri }),
      });
      expect(res.status).toBe(202);
      const { callId } = await res.json() as { callId: string };
      const placed = await meta.waitForConnect('447700900789');
      await meta.userAnswers(placed.id);
      await incoming;
      // Meta's client hangs up after 20 s without business media (§3.2): packets must flow while the agent rings.
      await user.waitForMedia();
      await new Promise((r) => setTimeout(r, 1500));
      expect(gateway.registry.get(callId)?.state).not.toBe('answered');
      const ringing = user.recording().samples;
      const lastSecond = ringing.subarray(Math.max(0, ringing.length - 48_000));
      let energy = 0;
      for (const v of lastSecond) energy += v * v;
      const rmsDbfs = 10 * Math.log10(Math.max(energy / Math.max(1, lastSecond.length), 1e-9) / 32768 ** 2);
      console.log(`click-to-call while the agent rings: the user hears ${rmsDbfs.toFixed(1)} dBFS`);
      expect(rmsDbfs).toBeGreaterThan(-40);

      const established = slowAgent.waitEvent('CALL_ESTABLISHED', 10_000);
      await slowAgent.accept();
      await established;
      await waitFor(() => gateway.registry.get(callId)?.state === 'answered' || undefined, 'agent answered');
      await new Promise((r) => setTimeout(r, 2000));
      expect(toneHeardByUser(user, 440, 'click-to-call, after the agent answered: user').detected).toBe(true);

      const closed = slowAgent.waitEvent('CALL_CLOSED', 10_000);
      await meta.userHangsUp(placed.id);
      await closed;
      await waitNoLiveCalls(gateway);
      const record = (await records(gateway)).find((r) => r.id === callId);
      expect(record).toMatchObject({ outcome: 'answered', endedBy: 'whatsapp', sipTarget: slowAgent.uri });
    } finally {
      await user.close();
      await slowAgent.stop();
    }
  }, 60_000);
});
