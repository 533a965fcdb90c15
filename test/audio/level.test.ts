import { describe, expect, test } from 'vitest';
import { isSilence, peakDbfs, rmsDbfs, windowedRmsDbfs } from './level.js';
import { concatPcm, generateTone, silence } from './tone.js';

describe('level', () => {
  test('RMS of a full-scale sine is about -3 dBFS', () => {
    const t = generateTone({ freqHz: 1000, sampleRate: 8000, durationMs: 100, levelDbfs: 0 });
    expect(rmsDbfs(t)).toBeCloseTo(-3.01, 1);
    expect(peakDbfs(t)).toBeCloseTo(0, 1);
  });
  test('silence', () => {
    expect(rmsDbfs(new Int16Array(100))).toBe(-Infinity);
    expect(isSilence(new Int16Array(100))).toBe(true);
    expect(isSilence(generateTone({ freqHz: 500, sampleRate: 8000, durationMs: 50, levelDbfs: -40 }))).toBe(false);
    // one-LSB dither is silence at -60 dBFS
    const lsb = new Int16Array(800).map((_, i) => (i % 2 ? 1 : -1));
    expect(isSilence(lsb)).toBe(true);
  });
  test('windowed RMS locates a burst', () => {
    const s = concatPcm(silence(8000, 100), generateTone({ freqHz: 1000, sampleRate: 8000, durationMs: 100 }));
    const w = windowedRmsDbfs(s, 8000, 50);
    expect(w.length).toBe(4);
    expect(w[0]).toBe(-Infinity);
    expect(w[3]!).toBeGreaterThan(-12);
  });
});
