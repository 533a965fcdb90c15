import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { decodeWav } from '../../test/audio/wav.js';
import { WavWriter } from './wav-writer.js';

const dir = mkdtempSync(join(tmpdir(), 'wagw-wav-'));
const frame = (v: number): Int16Array => new Int16Array(320).map((_, i) => (i % 2 === 0 ? v : -v));

describe('WavWriter', () => {
  it('writes a stereo file readable at every checkpoint, and complete after close', async () => {
    const path = join(dir, 'a.wav');
    const w = new WavWriter(path, { sampleRate: 8000, channels: 2, checkpointMs: 100 });
    // Right away: a valid empty file.
    expect(decodeWav(readFileSync(path))).toMatchObject({ sampleRate: 8000, channels: 2 });
    for (let i = 0; i < 75; i++) w.write(frame(i)); // 1.5 s
    await new Promise((r) => setTimeout(r, 250));
    // Before close: everything buffered reached the disk at the last checkpoint, with matching sizes.
    const mid = readFileSync(path);
    expect(mid.readUInt32LE(40)).toBe(75 * 320 * 2);
    expect(mid.readUInt32LE(4)).toBe(36 + 75 * 320 * 2);
    expect(decodeWav(mid).samples.length).toBe(75 * 320);
    for (let i = 0; i < 25; i++) w.write(frame(100 + i));
    const { dataBytes } = await w.close();
    expect(dataBytes).toBe(100 * 320 * 2);
    const wav = decodeWav(readFileSync(path));
    expect(wav.samples.length).toBe(100 * 320);
    expect(wav.samples[2 * 160 * 90]).toBe(115);
    expect(wav.samples[2 * 160 * 10]).toBe(10);
    expect(wav.samples[2 * 160 * 10 + 1]).toBe(-10);
    expect(w.durationSeconds).toBeCloseTo(2, 5);
    expect(await w.close()).toEqual({ dataBytes });
  });

  it('refuses to overwrite an existing file', () => {
    const path = join(dir, 'b.wav');
    new WavWriter(path, { sampleRate: 8000, channels: 1, checkpointMs: 1000 }).close();
    expect(() => new WavWriter(path, { sampleRate: 8000, channels: 1, checkpointMs: 1000 })).toThrow(/EEXIST/);
  });
});
