/**
 * The media engine on a bad network: 5 % random loss and 0–40 ms random delay (jitter, reordering) on the WhatsApp
 * leg, both ways, injected by a UDP relay between the WhatsApp user (libwebrtc) and the gateway. The user's 1 kHz
 * tone must still reach the agent (baresip records it) with no gap longer than 60 ms, and the call record's loss and
 * MOS must reflect the injected loss.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { goertzelPower } from '../audio/goertzel.js';
import { readWav } from '../audio/wav.js';
import { drachtioAvailable, noteSkipped, firstMissing } from '../peers/drachtio.js';
import { ImpairedWaUser, startImpairRelay, type ImpairRelay } from '../peers/meta/impair-relay.js';
import { baresipAvailable, startBaresip, type BaresipAgent } from '../peers/sip/baresip.js';
import { recordOf, startE2E, waitFor, waitNoLiveCalls, type E2E } from './harness.js';

const drachtio = drachtioAvailable();
const baresip = baresipAvailable();
const skipReason = firstMissing(drachtio, baresip);
if (skipReason) noteSkipped(skipReason, 1, 'media under loss and jitter');

const LOSS = 0.05;
const JITTER_MS = 40;

/** 1 kHz level (dBFS) of consecutive windows. */
function toneLevels(samples: Int16Array, rate: number, windowMs: number): number[] {
  const n = Math.round((rate * windowMs) / 1000);
  const out: number[] = [];
  for (let i = 0; i + n <= samples.length; i += n) {
    const p = goertzelPower(samples.subarray(i, i + n), rate, 1000);
    out.push(10 * Math.log10(Math.max(p, 1e-12)));
  }
  return out;
}

describe.skipIf(skipReason !== undefined)('media under 5 % loss and 40 ms jitter on the WhatsApp leg', () => {
  let agent: BaresipAgent;
  let e2e: E2E;
  let relay: ImpairRelay;

  beforeAll(async () => {
    agent = await startBaresip({ toneHz: 440 });
    e2e = await startE2E({ sipTarget: agent.uri });
    relay = await startImpairRelay({ loss: LOSS, jitterMs: JITTER_MS, seed: 20260 });
  }, 60_000);
  afterAll(async () => {
    await e2e?.stop();
    await agent?.stop();
    await relay?.close();
  });

  it('the user\'s tone reaches the agent with no gap over 60 ms; the record\'s loss and MOS match the injected loss', async () => {
    const { meta, gateway } = e2e;
    const user = new ImpairedWaUser({ waId: '16315553691', name: 'Lossy Line' }, relay);
    try {
      const established = agent.waitEvent('CALL_ESTABLISHED', 15_000);
      const { callId } = await meta.userCalls(user);
      expect((await meta.waitForAction(callId, 'accept')).status).toBe(200);
      await established;
      await user.waitForMedia();
      user.play({ toneHz: 1000, levelDbfs: -12 });
      await new Promise((r) => setTimeout(r, 6000));
      // Our reports toward the user go out every 5 s and the user's RRs at its own pace: hang up only once one of
      // them has counted loss, so the record's lostAtPeer below is a report's figure, not a race with its timer.
      const live = gateway.registry.byWhatsAppId(callId);
      await waitFor(() => (live?.currentQuality()?.whatsapp?.lostAtPeer ?? 0) > 0, 'a user RTCP report counting loss', 15_000);
      const closed = agent.waitEvent('CALL_CLOSED', 10_000);
      await meta.userHangsUp(callId);
      await closed;
      await waitNoLiveCalls(gateway);

      // Everything went through the relay, and it did impair the media.
      const up = relay.stats.toGateway;
      expect(up.media).toBeGreaterThan(200);
      expect(relay.stats.toUser.media).toBeGreaterThan(200);
      const injected = up.dropped / up.media;
      expect(injected).toBeGreaterThan(0.02);
      expect(injected).toBeLessThan(0.09);

      // The agent's recording: from 0.5 s after the tone arrived to 0.5 s before the hang-up, 10 ms windows.
      const wav = readWav(await waitFor(() => agent.recordings().decoded, 'baresip recording'));
      const levels = toneLevels(wav.samples, wav.sampleRate, 10);
      const sorted = [...levels].sort((a, b) => a - b);
      const loud = sorted[Math.floor(sorted.length * 0.9)]!;
      const onset = levels.findIndex((l) => l > loud - 10);
      expect(onset).toBeGreaterThanOrEqual(0);
      let last = levels.length - 1;
      while (last > onset && levels[last]! < loud - 10) last--;
      const span = levels.slice(onset + 50, last - 50);
      expect(span.length * 10).toBeGreaterThan(3500);
      let run = 0;
      let longest = 0;
      for (const l of span) {
        run = l < loud - 10 ? run + 1 : 0;
        longest = Math.max(longest, run);
      }
      console.log(`impairment: ${(injected * 100).toFixed(1)} % dropped toward the gateway, longest 1 kHz gap at the agent ${longest * 10} ms over ${span.length * 10} ms`);
      expect(longest * 10).toBeLessThanOrEqual(60);

      const record = await recordOf(gateway, callId);
      const wa = record.quality!.whatsapp!;
      const measured = wa.lost / (wa.packetsIn + wa.lost);
      console.log(`record: whatsapp in ${wa.packetsIn} lost ${wa.lost} (${(measured * 100).toFixed(1)} %) late ${wa.late} jitter ${wa.jitterMs} ms MOS ${wa.mos}; sip MOS ${record.quality!.sip!.mos}`);
      expect(Math.abs(measured - injected)).toBeLessThan(0.025);
      // Delays uniform in 0–J ms make RFC 3550's interarrival jitter converge on E|D1 − D2| = J/3 (13.3 ms). Arrival
      // times come from the kernel's stamps, so the gateway's own event loop adds nothing; the bounds leave room for
      // the relay's timers under load.
      expect(wa.jitterMs).toBeGreaterThan(JITTER_MS / 3 / 2);
      expect(wa.jitterMs).toBeLessThan((JITTER_MS / 3) * 2);
      // 5 % loss costs Opus a clear step from its clean score (≈ 4.4) but leaves a usable call.
      expect(wa.mos).toBeLessThan(4.2);
      expect(wa.mos).toBeGreaterThan(2.5);
      // The other direction: the user's receiver reports told the gateway about the loss toward the user too (what
      // turns the encoder's in-band FEC on).
      const towardUser = relay.stats.toUser.dropped;
      console.log(`toward the user: relay dropped ${towardUser}, the user's RTCP reports ${wa.lostAtPeer} lost`);
      expect(wa.lostAtPeer).toBeGreaterThan(0);
      // Its last report predates the hang-up by up to a few seconds, so it can only have counted fewer.
      expect(wa.lostAtPeer!).toBeLessThanOrEqual(towardUser);
    } finally {
      await user.close();
    }
  }, 60_000);
});
