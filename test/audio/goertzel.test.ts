import { describe, expect, test } from 'vitest';
import { detectTone, goertzelPower } from './goertzel.js';
import { generateTone } from './tone.js';

function noise(n: number, amp: number, seed = 1): Int16Array {
  let s = seed;
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    out[i] = Math.round(((s / 0x7fffffff) * 2 - 1) * amp);
  }
  return out;
}

describe('goertzel', () => {
  test('power of a full-scale-ish sine is A^2/2', () => {
    const t = generateTone({ freqHz: 1000, sampleRate: 8000, durationMs: 200, levelDbfs: 0 });
    expect(goertzelPower(t, 8000, 1000)).toBeCloseTo(0.5, 2);
    expect(goertzelPower(t, 8000, 2000)).toBeLessThan(1e-4);
  });
  test('detects a -30 dBFS tone in -50 dBFS noise, rejects noise alone', () => {
    const t = generateTone({ freqHz: 1000, sampleRate: 48000, durationMs: 200, levelDbfs: -30 });
    const n = noise(t.length, 32768 * 0.003);
    const mix = new Int16Array(t.length);
    for (let i = 0; i < t.length; i++) mix[i] = t[i]! + n[i]!;
    const d = detectTone(mix, 48000, 1000);
    expect(d.detected).toBe(true);
    expect(d.snrDb).toBeGreaterThan(10);
    expect(d.levelDbfs).toBeCloseTo(-33, 0);
    expect(detectTone(n, 48000, 1000).detected).toBe(false);
  });
  test('an empty or silent block is not a tone', () => {
    expect(detectTone(new Int16Array(0), 8000, 1000).detected).toBe(false);
    expect(detectTone(new Int16Array(800), 8000, 1000).detected).toBe(false);
  });
  test('wrong frequency is not detected (1000 vs 1200 Hz)', () => {
    const t = generateTone({ freqHz: 1200, sampleRate: 8000, durationMs: 200 });
    expect(detectTone(t, 8000, 1000).detected).toBe(false);
  });
});
