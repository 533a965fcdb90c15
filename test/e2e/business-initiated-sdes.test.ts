/**
 * A business-initiated call with media.whatsappKeyExchange 'sdes' (the number set to SDES at Meta, §4.5): the
 * gateway's Graph `connect` offer is RTP/SAVP with a=crypto, the user's device (an SdesUser: real SRTP on UDP)
 * answers it through the Meta double's `connect` webhook, and tones are checked as audio on both sides.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectTone } from '../audio/goertzel.js';
import { drachtioAvailable, noteSkipped, firstMissing } from '../peers/drachtio.js';
import { baresipAvailable, startBaresip, type BaresipAgent } from '../peers/sip/baresip.js';
import { SdesUser, readGatewaySdes } from '../peers/meta/index.js';
import { records, startE2E, waitFor, waitNoLiveCalls, toneHeardByAgent, type E2E } from './harness.js';

const drachtio = drachtioAvailable();
const baresip = baresipAvailable();
const skipReason = firstMissing(drachtio, baresip);
if (skipReason) noteSkipped(skipReason, 1, 'business-initiated SDES');

describe.skipIf(skipReason !== undefined)('business-initiated call offering SDES (media.whatsappKeyExchange sdes)', () => {
  let agent: BaresipAgent;
  let e2e: E2E;

  beforeAll(async () => {
    agent = await startBaresip({ toneHz: 440 });
    e2e = await startE2E({
      sipTarget: agent.uri,
      displayNumber: '447700900555',
      meta: { sdes: true },
      config: { businessCalls: { allowedSources: ['127.0.0.1'] }, media: { whatsappKeyExchange: 'sdes' } },
    });
  }, 60_000);
  afterAll(async () => {
    await e2e?.stop();
    await agent?.stop();
  });

  it('offers RTP/SAVP + a=crypto, applies the SDES answer, and carries tones both ways', async () => {
    const { meta, gateway, drachtio: d } = e2e;
    const user = await SdesUser.create();
    try {
      meta.addUser({ waId: '447700900123', name: 'Bob', answerOffer: (sdp) => user.answerOffer(sdp) }, { permission: 'temporary' });
      const established = agent.waitEvent('CALL_ESTABLISHED', 20_000);
      await agent.dial(`sip:+447700900123@127.0.0.1:${d.sipPort}`);
      const placed = await meta.waitForConnect('447700900123');
      const offer = readGatewaySdes(placed.offerSdp);
      expect(offer).toMatchObject({ address: '127.0.0.1', tag: 1, opusPt: 111, dtmfPt: 126 });
      expect(placed.offerSdp).not.toMatch(/ice-|fingerprint|setup:|candidate/);
      await waitFor(() => gateway.registry.list()[0]?.state === 'ringing' || undefined, 'RINGING reached the call');
      const pickedUpAt = Date.now();
      expect(user.stats.packetsIn).toBe(0);
      await meta.userAnswers(placed.id);
      await established;
      await waitFor(() => gateway.registry.list()[0]?.state === 'answered' || undefined, 'call answered');
      user.play(1000);
      await waitFor(() => user.stats.packetsIn > 50 || undefined, 'gateway SRTP at the user', 10_000);
      await new Promise((r) => setTimeout(r, 3000));

      const heard = user.recording();
      const lastSecond = heard.subarray(Math.max(0, heard.length - 8000));
      const at440 = detectTone(lastSecond, 8000, 440);
      console.log(`SDES user hears 440 Hz at ${at440.levelDbfs.toFixed(1)} dBFS, SNR ${at440.snrDb.toFixed(1)} dB`);
      expect(at440.detected).toBe(true);
      expect(detectTone(lastSecond, 8000, 1000).detected).toBe(false);
      expect(user.stats.authFailures).toBe(0);
      // Business media only once the user picked up.
      expect(user.firstPacketAt).toBeGreaterThanOrEqual(pickedUpAt);
      expect(user.lastSource).toEqual({ address: '127.0.0.1', port: offer.port });

      const closed = agent.waitEvent('CALL_CLOSED', 10_000);
      await agent.hangup();
      await closed;
      expect((await meta.waitForAction(placed.id, 'terminate')).status).toBe(200);
      await waitNoLiveCalls(gateway);

      const k1 = await toneHeardByAgent(agent, 1000);
      expect(k1.detected).toBe(true);

      const record = (await records(gateway)).find((r) => r.waCallId === placed.id);
      expect(record).toMatchObject({ direction: 'business_initiated', outcome: 'answered', endedBy: 'sip', userWaId: '447700900123' });
      expect(record!.quality?.whatsapp?.packetsIn).toBeGreaterThan(100);
      expect(record!.quality?.sip?.packetsIn).toBeGreaterThan(100);
      expect(meta.errors).toEqual([]);
      expect(gateway.deps.media.webrtcPool.used).toBe(0);
      expect(gateway.deps.media.pool.used).toBe(0);
    } finally {
      await user.close();
    }
  }, 90_000);
});
