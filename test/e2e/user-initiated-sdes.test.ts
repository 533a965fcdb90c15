/**
 * A user-initiated call on a number set to SDES (whatsapp-calling.md §4.5): Meta's connect webhook carries an
 * RTP/SAVP offer with a=crypto and no ICE or DTLS. The WhatsApp user is a real SRTP peer on a UDP socket (SdesUser,
 * Opus tone), the agent a baresip desk phone; audio is checked as audio both ways, and the call ends with a record
 * and nothing left behind. A relay behind NAT is followed; a malformed a=crypto offer is refused cleanly.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectTone } from '../audio/goertzel.js';
import { drachtioAvailable, noteSkipped, firstMissing } from '../peers/drachtio.js';
import { baresipAvailable, startBaresip, type BaresipAgent } from '../peers/sip/baresip.js';
import { SdesUser, readGatewaySdes } from '../peers/meta/index.js';
import { recordOf, startE2E, waitNoLiveCalls, waitFor, toneHeardByAgent, type E2E } from './harness.js';

const drachtio = drachtioAvailable();
const baresip = baresipAvailable();
const skipReason = firstMissing(drachtio, baresip);
if (skipReason) noteSkipped(skipReason, 4, 'user-initiated SDES');

const profile = { waId: '16315553602', name: 'Jane Doe' };
const udpHandles = (): number => process.getActiveResourcesInfo().filter((r) => r === 'UDPWrap').length;

describe.skipIf(skipReason !== undefined)('user-initiated call with an SDES offer (RTP/SAVP + a=crypto)', () => {
  let agent: BaresipAgent;
  let e2e: E2E;
  let udpBefore: number;

  beforeAll(async () => {
    agent = await startBaresip({ toneHz: 440 });
    udpBefore = udpHandles();
    // sdes: the Graph double holds pre_accept/accept to the SDES rules (RTP/SAVP + a=crypto instead of a fingerprint).
    e2e = await startE2E({ sipTarget: agent.uri, meta: { sdes: true } });
  }, 60_000);
  afterAll(async () => {
    await e2e?.stop();
    await agent?.stop();
  });

  it('answers with SDES and carries 1 kHz to the agent and 440 Hz to the user over real SRTP', async () => {
    const { meta, gateway } = e2e;
    const user = await SdesUser.create();
    try {
      const established = agent.waitEvent('CALL_ESTABLISHED', 20_000);
      const { callId } = await meta.userCalls(profile, { offerSdp: user.offerSdp });
      expect((await meta.waitForAction(callId, 'pre_accept', 20_000)).status).toBe(200);
      const answer = meta.graph.calls.get(callId)!.preAcceptSdp!;
      // Our answer: RTP/SAVP on one of the WhatsApp-side ports, our own key under Meta's tag, no ICE/DTLS lines.
      const ours = readGatewaySdes(answer);
      expect(ours.address).toBe('127.0.0.1');
      expect(ours.port).toBeGreaterThanOrEqual(e2e.config.media.webrtcPortMin);
      expect(ours.port).toBeLessThanOrEqual(e2e.config.media.webrtcPortMax);
      expect(ours).toMatchObject({ tag: 1, opusPt: 111, dtmfPt: 126 });
      expect(answer).toMatch(/^a=rtcp-mux\r$/m);
      expect(answer).toMatch(/^a=ptime:20\r$/m);
      expect(answer).not.toMatch(/ice-|fingerprint|setup:|candidate/);
      expect(answer).not.toContain(user.offerSdp.match(/inline:(\S+)/)![1]!);
      user.applyAnswer(answer);

      const accept = await meta.waitForAction(callId, 'accept', 20_000);
      expect(accept.status).toBe(200);
      expect(meta.graph.calls.get(callId)!.acceptSdp).toBe(answer);
      expect((await established).peeruri).toContain('+16315553602');
      // The user talks once the call is accepted; the gateway's packets must reach it, authenticated.
      user.play(1000);
      await waitFor(() => user.stats.packetsIn > 50 || undefined, 'gateway SRTP at the user', 10_000);
      await new Promise((r) => setTimeout(r, 3000));

      const heard = user.recording();
      const lastSecond = heard.subarray(Math.max(0, heard.length - 8000));
      const at440 = detectTone(lastSecond, 8000, 440);
      const at1k = detectTone(lastSecond, 8000, 1000);
      console.log(`SDES user hears 440 Hz at ${at440.levelDbfs.toFixed(1)} dBFS, SNR ${at440.snrDb.toFixed(1)} dB`);
      expect(at440.detected).toBe(true);
      expect(at1k.detected).toBe(false);
      expect(user.stats.authFailures).toBe(0);
      // Nothing reached the user before Graph `accept` returned 200 (§2.1: the first packet is the pickup).
      expect(user.firstPacketAt).toBeGreaterThanOrEqual(accept.respondedAt!);
      // Symmetric RTP: the gateway sends from the port its SDP announced.
      expect(user.lastSource).toEqual({ address: '127.0.0.1', port: ours.port });

      const live = gateway.registry.list().find((c) => c.waCallId === callId);
      expect(live?.state).toBe('answered');
      const closed = agent.waitEvent('CALL_CLOSED', 10_000);
      await meta.userHangsUp(callId);
      await closed;
      await waitNoLiveCalls(gateway);

      const k1 = await toneHeardByAgent(agent, 1000);
      expect(k1.detected).toBe(true);

      const record = await recordOf(gateway, callId);
      expect(record).toMatchObject({ direction: 'user_initiated', outcome: 'answered', endedBy: 'whatsapp', waCallId: callId });
      expect(record.sipCallId).toBeTruthy();
      expect(record.quality?.whatsapp?.packetsIn).toBeGreaterThan(100);
      expect(record.quality?.whatsapp?.packetsOut).toBeGreaterThan(100);
      expect(record.quality?.sip?.packetsIn).toBeGreaterThan(100);
    } finally {
      await user.close();
    }
  }, 90_000);

  it('follows a relay behind NAT: media goes where authenticated packets come from, not to the SDP\'s port', async () => {
    const { meta, gateway } = e2e;
    const user = await SdesUser.create({ natted: true });
    try {
      const established = agent.waitEvent('CALL_ESTABLISHED', 20_000);
      const { callId } = await meta.userCalls(profile, { offerSdp: user.offerSdp });
      expect((await meta.waitForAction(callId, 'pre_accept', 20_000)).status).toBe(200);
      user.applyAnswer(meta.graph.calls.get(callId)!.preAcceptSdp!);
      expect((await meta.waitForAction(callId, 'accept', 20_000)).status).toBe(200);
      await established;
      user.play(1000);
      await waitFor(() => user.stats.packetsAtNatted > 100 || undefined, 'gateway SRTP at the NAT port', 15_000);
      // Before the user's first packet the gateway can only use the SDP's port; afterwards it follows the NAT port.
      const atAnnounced = user.stats.packetsAtAnnounced;
      await new Promise((r) => setTimeout(r, 1000));
      expect(user.stats.packetsAtAnnounced).toBe(atAnnounced);
      const heard = user.recording();
      const lastSecond = heard.subarray(Math.max(0, heard.length - 8000));
      expect(detectTone(lastSecond, 8000, 440).detected).toBe(true);
      const closed = agent.waitEvent('CALL_CLOSED', 10_000);
      await meta.userHangsUp(callId);
      await closed;
      await waitNoLiveCalls(gateway);
      expect(await recordOf(gateway, callId)).toMatchObject({ outcome: 'answered', endedBy: 'whatsapp' });
    } finally {
      await user.close();
    }
  }, 90_000);

  it('refuses an SDES offer whose a=crypto is unusable: Graph reject, a failed record, no agent rung', async () => {
    const { meta, gateway } = e2e;
    const user = await SdesUser.create();
    try {
      const bad = user.offerSdp.replace(/inline:\S+/, 'inline:dG9vIHNob3J0');
      const { callId } = await meta.userCalls(profile, { offerSdp: bad });
      expect((await meta.waitForAction(callId, 'reject', 20_000)).status).toBe(200);
      await waitNoLiveCalls(gateway);
      expect(await recordOf(gateway, callId)).toMatchObject({ outcome: 'failed', cause: 'unanswerable_offer' });
      expect(meta.requests.filter((r) => r.callId === callId).map((r) => r.op)).toEqual(['reject']);
    } finally {
      await user.close();
    }
  }, 60_000);

  it('leaves no live call, no port taken and no UDP socket open', async () => {
    const { gateway } = e2e;
    expect(gateway.registry.size).toBe(0);
    expect(gateway.deps.media.webrtcPool.used).toBe(0);
    expect(gateway.deps.media.pool.used).toBe(0);
    await waitFor(() => udpHandles() <= udpBefore || undefined, 'UDP sockets to close', 5000);
  });
});
