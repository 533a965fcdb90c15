import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { detectTone } from '../../test/audio/goertzel.js';
import { encodeWav } from '../../test/audio/wav.js';
import { generateTone } from '../../test/audio/tone.js';
import { decodeWavTo8k, generatedMelody, loadHoldMusic, LoopingPcm } from './hold-music.js';

describe('hold music', () => {
  it('the shipped default loads: 8 kHz, not silent, under 200 KB', () => {
    const warnings: string[] = [];
    const pcm = loadHoldMusic('', 0, (m) => warnings.push(m));
    expect(warnings).toEqual([]);
    expect(pcm.length).toBe(generatedMelody().length);
    expect(Math.max(...pcm.subarray(0, 8000))).toBeGreaterThan(3000);
  });
  it('a 48 kHz stereo file becomes 8 kHz mono with its tone intact; gain scales it', () => {
    const mono = generateTone({ freqHz: 700, sampleRate: 48_000, durationMs: 500, levelDbfs: -6 });
    const stereo = new Int16Array(mono.length * 2);
    mono.forEach((v, i) => { stereo[2 * i] = v; stereo[2 * i + 1] = v; });
    const pcm = decodeWavTo8k(encodeWav({ sampleRate: 48_000, channels: 2, samples: stereo }));
    expect(pcm.length).toBe(4000);
    expect(detectTone(pcm, 8000, 700).detected).toBe(true);
    const file = join(mkdtempSync(join(tmpdir(), 'wagw-hm-')), 'x.wav');
    writeFileSync(file, encodeWav({ sampleRate: 48_000, channels: 2, samples: stereo }));
    const quiet = loadHoldMusic(file, -20);
    expect(Math.max(...quiet)).toBeLessThan(Math.max(...pcm) / 5);
  });
  it('an unusable file falls back to the generated melody, with a warning', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'wagw-hm-')), 'bad.wav');
    writeFileSync(file, 'not a wav');
    const warnings: string[] = [];
    expect(loadHoldMusic(file, 0, (m) => warnings.push(m))).toEqual(generatedMelody());
    expect(warnings[0]).toMatch(/unusable/);
  });
  it('loops frame by frame', () => {
    const src = new LoopingPcm(Int16Array.from([1, 2, 3]));
    const out = new Int16Array(5);
    src.read(out);
    expect([...out]).toEqual([1, 2, 3, 1, 2]);
  });
});
