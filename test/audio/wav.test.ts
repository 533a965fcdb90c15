import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { decodeWav, encodeWav, readWav, toMono, writeWav } from './wav.js';
import { generateTone } from './tone.js';

describe('wav', () => {
  test('header fields', () => {
    const buf = encodeWav({ sampleRate: 8000, samples: new Int16Array([1, -2, 3]) });
    expect(buf.length).toBe(44 + 6);
    expect(buf.toString('ascii', 0, 4)).toBe('RIFF');
    expect(buf.readUInt32LE(4)).toBe(36 + 6);
    expect(buf.readUInt16LE(20)).toBe(1);
    expect(buf.readUInt32LE(24)).toBe(8000);
    expect(buf.readUInt32LE(28)).toBe(16000);
    expect(buf.readInt16LE(46)).toBe(-2);
  });
  test('file round trip (stereo) and mono downmix', () => {
    const dir = mkdtempSync(join(tmpdir(), 'wav-'));
    try {
      const samples = new Int16Array([100, 300, -100, -300, 32767, 32767]);
      const p = join(dir, 'x.wav');
      writeWav(p, { sampleRate: 48000, channels: 2, samples });
      const w = readWav(p);
      expect(w.sampleRate).toBe(48000);
      expect(w.channels).toBe(2);
      expect(Array.from(w.samples)).toEqual(Array.from(samples));
      expect(Array.from(toMono(w))).toEqual([200, -200, 32767]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  test('skips unknown chunks and rejects non-PCM16', () => {
    const base = encodeWav({ sampleRate: 16000, samples: generateTone({ freqHz: 1000, sampleRate: 16000, samples: 16 }) });
    const list = Buffer.alloc(8 + 4);
    list.write('LIST', 0, 'ascii');
    list.writeUInt32LE(4, 4);
    const withList = Buffer.concat([base.subarray(0, 36), list, base.subarray(36)]);
    expect(decodeWav(withList).samples.length).toBe(16);
    const bad = Buffer.from(base);
    bad.writeUInt16LE(8, 34);
    expect(() => decodeWav(bad)).toThrow(/unsupported/);
    expect(() => decodeWav(Buffer.from('nope'))).toThrow();
  });
});
