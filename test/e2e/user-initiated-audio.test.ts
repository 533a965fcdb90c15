/**
 * The first whole call, end to end with real peers: a WhatsApp user (libwebrtc) calls the business through the Meta
 * double, the gateway rings a baresip desk phone through drachtio-server, and audio is checked as audio both ways.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { drachtioAvailable, noteSkipped, firstMissing } from '../peers/drachtio.js';
import { baresipAvailable, startBaresip, type BaresipAgent } from '../peers/sip/baresip.js';
import { WaUser } from '../peers/meta/index.js';
import { recordOf, startE2E, waitNoLiveCalls, waitFor, toneHeardByAgent, userTalksAndHearsAgent, type E2E } from './harness.js';

const drachtio = drachtioAvailable();
const baresip = baresipAvailable();
const skipReason = firstMissing(drachtio, baresip);
if (skipReason) noteSkipped(skipReason, 1, 'user-initiated audio');

describe.skipIf(skipReason !== undefined)('user-initiated call with two-way audio (baresip agent)', () => {
  let agent: BaresipAgent;
  let e2e: E2E;
  let udpBefore: number;

  beforeAll(async () => {
    agent = await startBaresip({ toneHz: 440 });
    udpBefore = process.getActiveResourcesInfo().filter((r) => r === 'UDPWrap').length;
    e2e = await startE2E({ sipTarget: agent.uri });
  }, 60_000);
  afterAll(async () => {
    await e2e?.stop();
    await agent?.stop();
  });

  it('carries 1 kHz from the user to the agent and 440 Hz from the agent to the user', async () => {
    const { meta, gateway } = e2e;
    const user = new WaUser({ waId: '16315553602', name: 'Jane Doe' });
    try {
      const established = agent.waitEvent('CALL_ESTABLISHED', 15_000);
      const { callId } = await meta.userCalls(user, { ctaPayload: 'sales' });
      const accept = await meta.waitForAction(callId, 'accept');
      expect(accept.status).toBe(200);
      const actions = meta.requests.filter((r) => r.callId === callId).map((r) => r.op);
      expect(actions.slice(0, 2)).toEqual(['pre_accept', 'accept']);
      expect((await established).peeruri).toContain('+16315553602');
      await userTalksAndHearsAgent(user);

      const live = gateway.registry.list()[0];
      expect(live?.state).toBe('answered');
      const closed = agent.waitEvent('CALL_CLOSED', 10_000);
      await meta.userHangsUp(callId);
      await closed;
      await waitNoLiveCalls(gateway);

      const k1 = await toneHeardByAgent(agent, 1000);
      expect(k1.detected).toBe(true);

      const record = await recordOf(gateway, callId);
      expect(record).toMatchObject({ direction: 'user_initiated', outcome: 'answered', endedBy: 'whatsapp', waCallId: callId, ctaPayload: 'sales', userName: 'Jane Doe' });
      expect(record!.sipCallId).toBeTruthy();
      expect(record!.quality?.whatsapp?.packetsIn).toBeGreaterThan(100);
      expect(record!.quality?.sip?.packetsIn).toBeGreaterThan(100);
    } finally {
      await user.close();
    }
  }, 60_000);

  it('leaves no live call, no RTP port taken and no UDP socket open', async () => {
    const { gateway } = e2e;
    expect(gateway.registry.size).toBe(0);
    await waitFor(() => process.getActiveResourcesInfo().filter((r) => r === 'UDPWrap').length <= udpBefore || undefined, 'UDP sockets to close', 5000);
  });
});
