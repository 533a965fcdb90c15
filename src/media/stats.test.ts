import { describe, expect, it } from 'vitest';
import { estimateMos, RtpReceiveStats } from './stats.js';

describe('RtpReceiveStats', () => {
  it('counts loss from sequence gaps across the 16-bit wrap', () => {
    const s = new RtpReceiveStats(8000);
    let seq = 65530;
    for (let i = 0; i < 20; i++) {
      if (i !== 7 && i !== 8) s.update(seq & 0xffff, i * 160, i * 20);
      seq++;
    }
    expect(s.expected).toBe(20);
    expect(s.packets).toBe(18);
    expect(s.lost).toBe(2);
    expect(s.lossFraction).toBeCloseTo(0.1);
  });

  it('re-bases on a sequence restart instead of counting the jump as loss', () => {
    const s = new RtpReceiveStats(8000);
    for (let i = 0; i < 10; i++) s.update(100 + i, i * 160, i * 20);
    for (let i = 0; i < 10; i++) s.update(40000 + i, 5_000_000 + i * 160, 200 + i * 20);
    expect(s.packets).toBe(20);
    expect(s.expected).toBe(20);
    expect(s.lost).toBe(0);
  });

  it('reports zero jitter for perfect pacing and about the mean deviation otherwise', () => {
    const even = new RtpReceiveStats(48000);
    for (let i = 0; i < 200; i++) even.update(i, 1_000_000 + i * 960, 5000 + i * 20);
    expect(even.jitterMs).toBeCloseTo(0, 5);
    const jittery = new RtpReceiveStats(48000);
    for (let i = 0; i < 2000; i++) jittery.update(i, i * 960, i * 20 + (i % 2 ? 10 : 0));
    expect(jittery.jitterMs).toBeGreaterThan(8);
    expect(jittery.jitterMs).toBeLessThan(11);
  });
});

describe('estimateMos', () => {
  it('gives toll quality for clean G.711 and degrades with loss and jitter', () => {
    const clean = estimateMos({ codec: 'PCMU', lossPercent: 0, jitterMs: 2 });
    expect(clean).toBeGreaterThan(4.3);
    const lossy = estimateMos({ codec: 'PCMU', lossPercent: 5, jitterMs: 2 });
    expect(lossy).toBeLessThan(clean);
    expect(lossy).toBeGreaterThan(3);
    expect(estimateMos({ codec: 'PCMU', lossPercent: 0, jitterMs: 150 })).toBeLessThan(clean);
    expect(estimateMos({ codec: 'opus', lossPercent: 100, jitterMs: 0 })).toBeLessThan(1.2);
  });
});

describe('RtpReceiveStats.countReceived', () => {
  it('counts a packet of another payload type as received, not lost, and leaves the jitter alone', () => {
    const s = new RtpReceiveStats(8000);
    for (let i = 0; i < 10; i++) s.update(i, i * 160, 1000 + i * 20);
    s.countReceived(10); // a timestamp on some other clock: not looked at
    for (let i = 11; i < 20; i++) s.update(i, i * 160, 1000 + i * 20);
    expect(s.packets).toBe(20);
    expect(s.lost).toBe(0);
    expect(s.jitterMs).toBeCloseTo(0, 5);
  });

  it('gives the jitter no base from a stream that starts with such a packet', () => {
    const s = new RtpReceiveStats(8000);
    s.countReceived(500);
    for (let i = 501; i < 520; i++) s.update(i, 7_000_000 + i * 160, 1000 + i * 20);
    expect(s.lost).toBe(0);
    expect(s.jitterMs).toBeCloseTo(0, 5);
  });
});
