import { describe, expect, test } from 'vitest';
import { concatPcm, dbfsToAmplitude, generateTone, resampleLinear, silence, ToneOscillator } from './tone.js';
import { rmsDbfs, peakDbfs } from './level.js';
import { detectTone } from './goertzel.js';

describe('tone', () => {
  test('length, peak level and RMS of a -6 dBFS 1 kHz tone', () => {
    const t = generateTone({ freqHz: 1000, sampleRate: 8000, durationMs: 250, levelDbfs: -6 });
    expect(t.length).toBe(2000);
    expect(peakDbfs(t)).toBeCloseTo(-6, 1);
    expect(rmsDbfs(t)).toBeCloseTo(-9.01, 1);
    expect(dbfsToAmplitude(-20)).toBeCloseTo(0.1, 6);
  });
  test('frequency is right (Goertzel at 1000 Hz, nothing at 1500 Hz)', () => {
    const t = generateTone({ freqHz: 1000, sampleRate: 48000, durationMs: 100 });
    expect(detectTone(t, 48000, 1000).detected).toBe(true);
    expect(detectTone(t, 48000, 1500).detected).toBe(false);
  });
  test('oscillator is phase-continuous across blocks', () => {
    const osc = new ToneOscillator(440, 48000, -6);
    const a = osc.fill(new Int16Array(480));
    const b = osc.fill(new Int16Array(480));
    const ref = generateTone({ freqHz: 440, sampleRate: 48000, samples: 960, levelDbfs: -6 });
    const joined = concatPcm(a, b);
    let maxDiff = 0;
    for (let i = 0; i < 960; i++) maxDiff = Math.max(maxDiff, Math.abs(joined[i]! - ref[i]!));
    expect(maxDiff).toBeLessThanOrEqual(2);
  });
  test('silence and resampling', () => {
    expect(silence(16000, 20).length).toBe(320);
    const t = generateTone({ freqHz: 1000, sampleRate: 8000, durationMs: 100 });
    const up = resampleLinear(t, 8000, 48000);
    expect(up.length).toBe(4800);
    expect(detectTone(up, 48000, 1000).detected).toBe(true);
  });
});
