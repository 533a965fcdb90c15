import { describe, expect, it } from 'vitest';
import { Encoder } from '@evan/opus';
import { detectTone } from '../../test/audio/goertzel.js';
import { FRAME_SAMPLES, OpusDecoder8k, OpusEncoder8k, opusFastPath } from './opus-codec.js';

function tone(freq: number, frames: number, rate = 8000, amp = 12000): Int16Array {
  const n = (frames * 20 * rate) / 1000;
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.round(amp * Math.sin((2 * Math.PI * freq * i) / rate));
  return out;
}

describe('opus-codec', () => {
  it('loads the allocation-free native path on this platform', () => {
    expect(opusFastPath).toBe(true);
  });

  it('applies the encoder settings', () => {
    const enc = new OpusEncoder8k({ bitrate: 16_000, complexity: 3, inbandFec: true });
    expect(enc.settings).toMatchObject({ bitrate: 16_000, complexity: 3, inbandFec: true, dtx: false });
    expect(enc.settings.packetLoss).toBeGreaterThan(0);
  });

  it('8 kHz encode → decode keeps a 1 kHz tone at 1 kHz', () => {
    const enc = new OpusEncoder8k({ bitrate: 24_000, complexity: 5 });
    const dec = new OpusDecoder8k();
    const src = tone(1000, 50);
    const out = new Int16Array(src.length);
    const pkt = new Uint8Array(1500);
    for (let f = 0; f < 50; f++) {
      const n = enc.encode(src.subarray(f * 160, f * 160 + 160), pkt);
      expect(n).toBeGreaterThan(2);
      expect(n).toBeLessThan(200);
      expect(dec.decode(pkt.subarray(0, n), out.subarray(f * 160, f * 160 + 160))).toBe(160);
    }
    const tail = out.subarray(800); // skip the codec's start-up
    const at1k = detectTone(tail, 8000, 1000);
    expect(at1k.detected).toBe(true);
    expect(at1k.snrDb).toBeGreaterThan(15);
    expect(detectTone(tail, 8000, 1500).ratio).toBeLessThan(0.01);
  });

  it('decodes a 48 kHz stereo Opus stream (what WhatsApp sends) to 8 kHz mono', () => {
    const enc48 = new Encoder({ channels: 2, sample_rate: 48000, application: 'voip' });
    const dec = new OpusDecoder8k();
    const mono = tone(1000, 30, 48000);
    const out = new Int16Array(30 * FRAME_SAMPLES);
    for (let f = 0; f < 30; f++) {
      const st = new Int16Array(960 * 2);
      for (let i = 0; i < 960; i++) st[2 * i] = st[2 * i + 1] = mono[f * 960 + i]!;
      const pkt = enc48.encode(st);
      expect(dec.decode(pkt, out.subarray(f * 160, (f + 1) * 160))).toBe(160);
    }
    expect(detectTone(out.subarray(1600), 8000, 1000).detected).toBe(true);
  });

  it('conceals a lost frame with a decaying continuation instead of failing', () => {
    const enc = new OpusEncoder8k();
    const dec = new OpusDecoder8k();
    const src = tone(1000, 20);
    const pkt = new Uint8Array(1500);
    const frame = new Int16Array(160);
    for (let f = 0; f < 20; f++) dec.decode(pkt.subarray(0, enc.encode(src.subarray(f * 160, f * 160 + 160), pkt)), frame);
    const plc = new Int16Array(160);
    expect(dec.conceal(plc)).toBe(160);
    expect(detectTone(plc, 8000, 1000).detected).toBe(true);
    expect(dec.decode(new Uint8Array(0), plc)).toBe(160); // an empty payload also conceals
  });

  it('conceals one 20 ms frame also before any packet arrived', () => {
    const out = new Int16Array(960);
    expect(new OpusDecoder8k().conceal(out)).toBe(160);
  });
});
