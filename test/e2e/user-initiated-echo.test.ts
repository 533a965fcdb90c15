/**
 * Round trip through the whole media path: WhatsApp user (libwebrtc) → gateway (Opus → G.711) → sipp echoing RTP →
 * gateway (G.711 → Opus) → user. A tone burst must come back as the same tone; the delay is measured and printed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectTone } from '../audio/goertzel.js';
import { onsetIndex } from '../audio/xcorr.js';
import { drachtioAvailable, noteSkipped, firstMissing } from '../peers/drachtio.js';
import { sippAvailable, startSipp, type SippRun } from '../peers/sip/sipp.js';
import { WaUser } from '../peers/meta/index.js';
import { recordOf, startE2E, waitNoLiveCalls, type E2E } from './harness.js';
import { freePort } from '../peers/sip/ports.js';

const drachtio = drachtioAvailable();
const sipp = sippAvailable();
const skipReason = firstMissing(drachtio, sipp);
if (skipReason) noteSkipped(skipReason, 1, 'user-initiated echo');

describe.skipIf(skipReason !== undefined)('user-initiated call through an echoing agent', () => {
  let e2e: E2E;
  let agent: SippRun;

  beforeAll(async () => {
    const port = await freePort({ tcp: false });
    agent = await startSipp({ scenario: 'uas-answer', port, service: 'agent', rtpEcho: true, durationMs: 90_000, timeoutSec: 100 });
    e2e = await startE2E({ sipTarget: agent.uri });
  }, 60_000);
  afterAll(async () => {
    await e2e?.stop();
    await agent?.stop();
  });

  /** Plays a burst and returns the round-trip delay and the echoed tone's detection. */
  async function echoBurst(user: WaUser, label: string) {
    user.clearRecording();
    const burst = user.play({ toneHz: 1000, levelDbfs: -12, durationMs: 1500 });
    const startedAt = await burst.startedAt;
    await burst.done;
    await new Promise((r) => setTimeout(r, 600));
    const rec = user.recording();
    const onset = onsetIndex(rec.samples, 48_000, { thresholdDbfs: -35 });
    expect(onset).toBeGreaterThanOrEqual(0);
    const delayMs = rec.timeAt(onset) - startedAt;
    const tone = detectTone(rec.samples.subarray(onset + 4800, onset + 4800 + 24_000), 48_000, 1000);
    console.log(`${label}: round trip user → gateway → echo → gateway → user ${delayMs.toFixed(0)} ms; echoed 1 kHz at ${tone.levelDbfs.toFixed(1)} dBFS, SNR ${tone.snrDb.toFixed(1)} dB`);
    return { delayMs, tone };
  }

  it('returns the user\'s 1 kHz burst as 1 kHz at the start and after 60 seconds, and prints the delay', async () => {
    const { meta, gateway } = e2e;
    const user = new WaUser({ waId: '16315553602', name: 'Jane Doe' });
    try {
      const { callId } = await meta.userCalls(user);
      await meta.waitForAction(callId, 'accept');
      await user.waitForMedia();
      const answeredAt = Date.now();
      await new Promise((r) => setTimeout(r, 1000));
      const first = await echoBurst(user, 'at start');
      expect(first.tone.detected).toBe(true);
      expect(first.delayMs).toBeGreaterThan(0);
      expect(first.delayMs).toBeLessThan(1000);

      // Past Meta's 20 s and 30 s media timers and the 20–30 s ICE-consent failures other integrators report.
      await new Promise((r) => setTimeout(r, Math.max(0, answeredAt + 60_000 - Date.now())));
      expect(gateway.registry.list()[0]?.state).toBe('answered');
      const late = await echoBurst(user, 'after 60 s');
      expect(late.tone.detected).toBe(true);
      expect(meta.errors).toEqual([]);

      await meta.userHangsUp(callId);
      await waitNoLiveCalls(gateway);
      const record = await recordOf(gateway, callId);
      expect(record?.durationSeconds).toBeGreaterThan(60);
      expect(record?.outcome).toBe('answered');
    } finally {
      await user.close();
    }
  }, 120_000);
});
