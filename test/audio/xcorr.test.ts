import { describe, expect, test } from 'vitest';
import { estimateDelay, fft, onsetIndex } from './xcorr.js';
import { concatPcm, generateTone, silence } from './tone.js';

function chirpish(n: number, seed = 7): Int16Array {
  let s = seed;
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    out[i] = Math.round(((s / 0x7fffffff) * 2 - 1) * 8000);
  }
  return out;
}

describe('xcorr', () => {
  test('fft round trip', () => {
    const re = new Float64Array([1, 2, 3, 4, 0, 0, 0, 0]);
    const im = new Float64Array(8);
    fft(re, im);
    expect(re[0]).toBeCloseTo(10);
    fft(re, im, true);
    expect(Array.from(re).map((v) => Math.round(v))).toEqual([1, 2, 3, 4, 0, 0, 0, 0]);
  });
  test('sample-accurate delay of a noise burst (137 samples at 8 kHz)', () => {
    const ref = chirpish(800);
    const rec = concatPcm(silence(8000, 0), new Int16Array(137), ref, new Int16Array(500));
    const d = estimateDelay(ref, rec, { sampleRate: 8000 });
    expect(d.lagSamples).toBe(137);
    expect(d.delayMs).toBeCloseTo(17.125, 3);
    expect(d.correlation).toBeGreaterThan(0.99);
  });
  test('envelope mode: 1 kHz tone burst delayed 120 ms, with a phase flip', () => {
    const burst = generateTone({ freqHz: 1000, sampleRate: 48000, durationMs: 200 });
    const ref = concatPcm(burst, silence(48000, 300));
    const shifted = generateTone({ freqHz: 1000, sampleRate: 48000, durationMs: 200, phase: Math.PI / 3 });
    const rec = concatPcm(silence(48000, 120), shifted, silence(48000, 400));
    const d = estimateDelay(ref, rec, { sampleRate: 48000, envelope: true, maxLagMs: 500 });
    expect(Math.abs(d.delayMs - 120)).toBeLessThanOrEqual(1);
    expect(d.correlation).toBeGreaterThan(0.9);
  });
  test('unrelated signals give a low correlation', () => {
    const d = estimateDelay(chirpish(800, 1), chirpish(2000, 99), { sampleRate: 8000 });
    expect(d.correlation).toBeLessThan(0.3);
  });
  test('onset of a burst after 250 ms of silence', () => {
    const s = concatPcm(silence(8000, 250), generateTone({ freqHz: 800, sampleRate: 8000, durationMs: 100 }));
    expect(onsetIndex(s, 8000)).toBe(2000);
    expect(onsetIndex(silence(8000, 100), 8000)).toBe(-1);
  });
});
