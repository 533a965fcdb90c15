/**
 * The per-frame cost of the transcoding alone (no network, no SRTP): Opus decode at 8 kHz, G.711 encode,
 * G.711 decode, Opus encode at 8 kHz, for each encoder complexity with and without inband FEC. Prints JSON; `ms per call-second` is
 * both directions for 50 frames (one second of one call).
 *
 *   npx tsx bench/codec-floor.ts
 */
import { decodeG711, encodeG711 } from '../src/media/g711.js';
import { FRAME_SAMPLES, OpusDecoder8k, OpusEncoder8k, opusFastPath } from '../src/media/opus-codec.js';

export interface CodecFloorResult {
  complexity: number;
  inbandFec: boolean;
  opusEncodeUs: number;
  opusDecodeUs: number;
  g711EncodeUs: number;
  g711DecodeUs: number;
  msPerCallSecond: number;
}

function speechLike(n: number): Int16Array {
  // A vowel-ish harmonic series with a slow envelope: closer to speech for SILK than a pure tone.
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) {
    const t = i / 8000;
    const env = 0.5 + 0.5 * Math.sin(2 * Math.PI * 3 * t);
    let v = 0;
    for (let h = 1; h <= 8; h++) v += Math.sin(2 * Math.PI * 140 * h * t) / h;
    out[i] = Math.round(6000 * env * v);
  }
  return out;
}

function timeUs(iterations: number, fn: (i: number) => void): number {
  for (let i = 0; i < Math.min(500, iterations); i++) fn(i);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) fn(i);
  return Number(process.hrtime.bigint() - t0) / 1000 / iterations;
}

export function runCodecFloor(frames = 5000): CodecFloorResult[] {
  const pcm = speechLike(FRAME_SAMPLES * 500);
  const frame = (i: number): Int16Array => pcm.subarray((i % 500) * FRAME_SAMPLES, (i % 500 + 1) * FRAME_SAMPLES);
  const results: CodecFloorResult[] = [];
  for (const inbandFec of [false, true]) for (const complexity of [0, 3, 5, 9]) {
    const enc = new OpusEncoder8k({ complexity, bitrate: 24_000, inbandFec });
    const out = new Uint8Array(1500);
    const packets: Uint8Array[] = [];
    for (let i = 0; i < 500; i++) packets.push(out.slice(0, enc.encode(frame(i), out)));
    const opusEncodeUs = timeUs(frames, (i) => enc.encode(frame(i), out));
    const dec = new OpusDecoder8k();
    const dpcm = new Int16Array(960);
    const opusDecodeUs = timeUs(frames, (i) => dec.decode(packets[i % 500]!, dpcm));
    const g = new Uint8Array(FRAME_SAMPLES);
    const g711EncodeUs = timeUs(frames * 4, (i) => encodeG711('PCMU', frame(i), g));
    const g711DecodeUs = timeUs(frames * 4, () => decodeG711('PCMU', g, 0, FRAME_SAMPLES, dpcm));
    const perFrame = opusEncodeUs + opusDecodeUs + g711EncodeUs + g711DecodeUs;
    results.push({
      complexity,
      inbandFec,
      opusEncodeUs: round(opusEncodeUs), opusDecodeUs: round(opusDecodeUs),
      g711EncodeUs: round(g711EncodeUs), g711DecodeUs: round(g711DecodeUs),
      msPerCallSecond: round((perFrame * 50) / 1000),
    });
  }
  return results;
}

function round(v: number): number {
  return Math.round(v * 100) / 100;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(JSON.stringify({ node: process.version, opusFastPath, results: runCodecFloor() }, null, 2));
}

/**
 * The floor for one setting: Opus decode + Opus encode (the shipped encoder settings) and G.711 both ways for one
 * call-second, i.e. 50 frames each way, with no packets, buffers or sockets around them.
 */
export function codecFloorMs(opts: { complexity: number; inbandFec: boolean; bitrate: number }, frames = 3000): number {
  const pcm = speechLike(FRAME_SAMPLES * 500);
  const frame = (i: number): Int16Array => pcm.subarray((i % 500) * FRAME_SAMPLES, (i % 500 + 1) * FRAME_SAMPLES);
  const enc = new OpusEncoder8k(opts);
  const dec = new OpusDecoder8k();
  const out = new Uint8Array(1500);
  const packets: Uint8Array[] = [];
  for (let i = 0; i < 500; i++) packets.push(out.slice(0, enc.encode(frame(i), out)));
  const dpcm = new Int16Array(960);
  const g = new Uint8Array(FRAME_SAMPLES);
  const step = (i: number): void => {
    enc.encode(frame(i), out);
    dec.decode(packets[i % 500]!, dpcm);
    encodeG711('PCMU', dpcm.subarray(0, FRAME_SAMPLES), g);
    decodeG711('PCMU', g, 0, FRAME_SAMPLES, dpcm);
  };
  for (let i = 0; i < 200; i++) step(i);
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < frames; i++) step(i);
  const cpu = process.cpuUsage(cpu0);
  return ((cpu.user + cpu.system) / 1000 / frames) * 50;
}
