import { describe, expect, it } from 'vitest';
import { RTCRtpReceiver, RtpHeader, RtpPacket } from 'werift';
import { addToWeriftStats, type WeriftStreamStatistics } from './werift-rr-stats.js';

type StatsWithAdd = WeriftStreamStatistics & { add(p: RtpPacket, now?: number): void; fraction_lost: number; jitter: number; packets_lost: number };

/** werift does not export StreamStatistics: take its class from a receiver that made one. */
function weriftStatsClass(): new (clockRate: number) => StatsWithAdd {
  const r = new RTCRtpReceiver({} as never, 'audio', 1234) as unknown as { codecs: Record<number, unknown>; handleRTP(p: RtpPacket, e: object, t: undefined): void; remoteStreams: Record<number, StatsWithAdd> };
  r.codecs[111] = { clockRate: 48000, rtcpFeedback: [] };
  try {
    r.handleRTP(new RtpPacket(new RtpHeader({ payloadType: 111, sequenceNumber: 1, timestamp: 0, ssrc: 9 }), Buffer.alloc(10)), {}, undefined);
  } catch {
    // it fails later, on what this stand-in receiver lacks; the statistics exist by then
  }
  return r.remoteStreams[9]!.constructor as new (clockRate: number) => StatsWithAdd;
}

describe('addToWeriftStats', () => {
  it("leaves werift's StreamStatistics exactly as its own add() does: reordering, loss, duplicates, wraps, jitter", () => {
    const Stats = weriftStatsClass();
    const theirs = new Stats(48000);
    const ours = new Stats(48000);
    let seq = 65000;
    let ts = 4294960000;
    let t = 1_764_000_000_000.123; // Unix ms, with a fraction as performance.timeOrigin + performance.now() gives
    let rnd = 12345;
    const random = (): number => ((rnd = (rnd * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    for (let i = 0; i < 3000; i++) {
      const r = random();
      // 3 % lost, 3 % reordered (sent twice back), 1 % duplicated, the rest in order; arrival jitter 0–30 ms.
      const s = r < 0.03 ? (seq + 2) & 0xffff : r < 0.06 ? (seq - 3) & 0xffff : r < 0.07 ? (seq - 1) & 0xffff : seq;
      if (r >= 0.07 || r < 0.03) {
        seq = (s + 1) & 0xffff;
        ts = (ts + 960) >>> 0;
      }
      t += 20 + random() * 30 - 15;
      const payload = 40 + (i % 50);
      theirs.add(new RtpPacket(new RtpHeader({ payloadType: 111, sequenceNumber: s, timestamp: ts, ssrc: 9 }), Buffer.alloc(payload)), t / 1000);
      addToWeriftStats(ours, s, ts, 12, payload, t);
    }
    for (const k of ['base_seq', 'max_seq', 'cycles', 'packets_received', 'bytesReceived', 'headerBytesReceived', 'jitter_q4', 'last_arrival', 'last_timestamp'] as const) {
      expect(ours[k], k).toBe(theirs[k]);
    }
    expect(ours.cycles).toBeGreaterThan(0); // the sequence numbers wrapped
    expect(ours.jitter).toBeGreaterThan(0);
    expect(ours.packets_lost).toBe(theirs.packets_lost);
    expect(ours.fraction_lost).toBe(theirs.fraction_lost);
    expect(ours.lastPacketReceivedTimestamp).toBeCloseTo(t, 6);
  });
});
