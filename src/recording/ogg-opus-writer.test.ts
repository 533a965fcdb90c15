import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';
import { detectTone } from '../../test/audio/goertzel.js';
import { decodeOggOpus, parseOggPages } from '../../test/audio/ogg.js';
import { OGG_BOS, OGG_EOS } from './ogg-page.js';
import { OggOpusWriter } from './ogg-opus-writer.js';

const dir = mkdtempSync(join(tmpdir(), 'wagw-ogg-'));
const RATE = 8000;

/** 20 ms frames of 1 kHz left and 440 Hz right at -12 dBFS, interleaved. */
function stereoFrame(index: number): Int16Array {
  const f = new Int16Array(320);
  const a = 32767 * 10 ** (-12 / 20);
  for (let i = 0; i < 160; i++) {
    const t = (index * 160 + i) / RATE;
    f[2 * i] = Math.round(a * Math.sin(2 * Math.PI * 1000 * t));
    f[2 * i + 1] = Math.round(a * Math.sin(2 * Math.PI * 440 * t));
  }
  return f;
}

describe('OggOpusWriter', () => {
  it('round trip: 2 s of 1 kHz left / 440 Hz right decode back with each tone in its channel, to the sample', async () => {
    const path = join(dir, 'tones.opus');
    const w = new OggOpusWriter(path, { sampleRate: 8000, channels: 2, checkpointMs: 100, comments: ['CHANNELS=user,agent'] });
    for (let i = 0; i < 100; i++) w.write(stereoFrame(i));
    const { bytes, durationSeconds } = await w.close();
    const file = readFileSync(path);
    expect(bytes).toBe(file.length);
    expect(durationSeconds).toBeCloseTo(2, 6);

    const pages = parseOggPages(file);
    expect(pages.every((p) => p.crcOk)).toBe(true);
    expect(pages.map((p) => p.sequence)).toEqual(pages.map((_, i) => i));
    expect(new Set(pages.map((p) => p.serial)).size).toBe(1);
    expect(pages[0]).toMatchObject({ headerType: OGG_BOS, granule: 0n, segments: [19] });
    expect(pages[1]!.granule).toBe(0n);
    expect(pages.slice(1, -1).every((p) => (p.headerType & OGG_EOS) === 0)).toBe(true);
    expect(pages[pages.length - 1]!.headerType & OGG_EOS).toBe(OGG_EOS);
    // Granules: 48 kHz units, and the last one trims the lookahead padding: pre-skip + exactly 2 s.
    expect(pages[pages.length - 1]!.granule).toBe(BigInt(w.preSkip + 96_000));

    const d = decodeOggOpus(file);
    expect(d).toMatchObject({ channels: 2, preSkip: w.preSkip, rate: 8000 });
    expect(d.tags).toContain('CHANNELS=user,agent');
    expect(d.left.length).toBe(16_000);
    const mid = (s: Int16Array) => s.subarray(4000, 12_000);
    const l1k = detectTone(mid(d.left), RATE, 1000);
    const r440 = detectTone(mid(d.right), RATE, 440);
    console.log(`Ogg/Opus ${bytes} bytes for 2 s (${((bytes * 8) / 2000).toFixed(1)} kbit/s), pre-skip ${d.preSkip}; left 1 kHz SNR ${l1k.snrDb.toFixed(1)} dB, right 440 Hz SNR ${r440.snrDb.toFixed(1)} dB; leaks ${detectTone(mid(d.left), RATE, 440).snrDb.toFixed(1)} / ${detectTone(mid(d.right), RATE, 1000).snrDb.toFixed(1)} dB`);
    expect(l1k.detected).toBe(true);
    expect(r440.detected).toBe(true);
    expect(l1k.levelDbfs).toBeGreaterThan(-18);
    expect(detectTone(mid(d.left), RATE, 440).detected).toBe(false);
    expect(detectTone(mid(d.right), RATE, 1000).detected).toBe(false);
    // Pre-skip removed the encoder delay: the tone is in phase with the input from the first samples.
    const firstIn = stereoFrame(25);
    let err = 0;
    for (let i = 0; i < 160; i++) err += Math.abs(d.left[4000 + i]! - firstIn[2 * i]!);
    expect(err / 160).toBeLessThan(2000);

    const opusinfo = spawnSync('opusinfo', [path], { encoding: 'utf8' });
    if (opusinfo.error) {
      console.log('opusinfo check skipped: opus-tools is not installed');
    } else {
      const out = opusinfo.stdout + opusinfo.stderr;
      console.log(out.split('\n').filter((l) => /Channels|Playback length|Pre-skip|WARNING|error/i.test(l)).join(' | '));
      expect(opusinfo.status).toBe(0);
      expect(out).toMatch(/Channels: 2/);
      expect(out).toMatch(/Playback length: 0m:02\.000s/);
      expect(out).not.toMatch(/WARNING|error/i);
    }
    const opusdec = spawnSync('opusdec', ['--quiet', '--rate', '8000', path, join(dir, 'tones.wav')], { encoding: 'utf8' });
    if (opusdec.error) console.log('opusdec check skipped: opus-tools is not installed');
    else expect(opusdec.status).toBe(0);
  });

  it('a file read before close (a killed process) holds whole pages up to the last checkpoint, which decode', async () => {
    const path = join(dir, 'live.opus');
    const w = new OggOpusWriter(path, { sampleRate: 8000, channels: 2, checkpointMs: 100 });
    for (let i = 0; i < 75; i++) w.write(stereoFrame(i)); // 1.5 s
    await new Promise((r) => setTimeout(r, 300));
    const snapshot = join(dir, 'killed.opus');
    copyFileSync(path, snapshot);
    const mid = readFileSync(snapshot);
    const pages = parseOggPages(mid);
    expect(pages.reduce((n, p) => n + 27 + p.segments.length + p.body.length, 0)).toBe(mid.length);
    expect(pages.every((p) => p.crcOk && (p.headerType & OGG_EOS) === 0)).toBe(true);
    expect(pages[pages.length - 1]!.granule).toBe(75n * 960n);
    expect(w.durationSeconds).toBeCloseTo(1.5, 6);
    const d = decodeOggOpus(mid);
    expect(detectTone(d.left.subarray(2000, 10_000), RATE, 1000).detected).toBe(true);
    // A truncated last page (the kill landed mid-write) still leaves the earlier pages readable.
    const cut = mid.subarray(0, mid.length - 7);
    expect(parseOggPages(cut).length).toBe(pages.length - 1);
    const opusinfo = spawnSync('opusinfo', [snapshot], { encoding: 'utf8' });
    if (opusinfo.error) {
      console.log('opusinfo/opusdec check skipped: opus-tools is not installed');
    } else {
      // opusinfo exits 1 for its one warning, the missing end of stream ("normal for live streams"); opusdec plays it.
      const out = opusinfo.stdout + opusinfo.stderr;
      expect(out).toMatch(/Playback length: 0m:01\.4/);
      expect(out.split('\n').filter((l) => /WARNING|error/i.test(l))).toEqual([expect.stringMatching(/EOS not set/)]);
      expect(spawnSync('opusdec', ['--quiet', snapshot, join(dir, 'killed.wav')]).status).toBe(0);
    }
    await w.close();
    const done = parseOggPages(readFileSync(path));
    expect(done[done.length - 1]!.headerType & OGG_EOS).toBe(OGG_EOS);
  });

  it('closing with nothing written still ends the stream; a partial frame is kept; refuses to overwrite', async () => {
    const path = join(dir, 'empty.opus');
    const w = new OggOpusWriter(path, { sampleRate: 8000, channels: 2, checkpointMs: 1000 });
    expect((await w.close()).durationSeconds).toBe(0);
    const pages = parseOggPages(readFileSync(path));
    expect(pages[pages.length - 1]!.headerType & OGG_EOS).toBe(OGG_EOS);
    expect(pages[pages.length - 1]!.granule).toBe(BigInt(w.preSkip));
    expect(() => new OggOpusWriter(path, { sampleRate: 8000, channels: 2, checkpointMs: 1000 })).toThrow(/EEXIST/);

    const p2 = join(dir, 'partial.opus');
    const w2 = new OggOpusWriter(p2, { sampleRate: 8000, channels: 2, checkpointMs: 1000 });
    w2.write(stereoFrame(0));
    w2.write(stereoFrame(1).subarray(0, 100)); // 50 samples per channel
    expect((await w2.close()).durationSeconds).toBeCloseTo(210 / 8000, 6);
    const p = parseOggPages(readFileSync(p2));
    expect(p[p.length - 1]!.granule).toBe(BigInt(w2.preSkip + 210 * 6));
  });
});
