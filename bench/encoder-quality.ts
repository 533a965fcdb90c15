/**
 * What each Opus encoder complexity costs in quality toward WhatsApp, on speech the way the gateway sees it: espeak-ng
 * speech at 8 kHz, through G.711 µ-law (the PBX's leg), encoded at the shipped bitrate and decoded at 8 kHz. Two
 * distances from the G.711 signal, over frames with speech: log-spectral distance (dB, lower is closer; what an
 * encoder's noise shaping and LPC order change) and segmental SNR (dB, higher is closer). The reason behind
 * media.opusLoadAdaptive's trade: stepping the complexity down under load must cost little.
 *
 *   npx tsx bench/encoder-quality.ts
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readWav, toMono } from '../test/audio/wav.js';
import { decodeG711, encodeG711 } from '../src/media/g711.js';
import { FRAME_SAMPLES, OpusDecoder8k, OpusEncoder8k } from '../src/media/opus-codec.js';

export interface EncoderQualityRow {
  complexity: number;
  kbps: number;
  logSpectralDistanceDb: number;
  segmentalSnrDb: number;
}

const SENTENCES = [
  'Thank you for calling the support line. Your call is important to us. Please tell me your account number.',
  'Good morning, this is Margaret from billing. I can see two payments, on the fourteenth and the twenty-second of March.',
];
const WINDOW = 256;

/** 8 kHz speech from espeak-ng, or null (with the reason) when it is not installed. */
function speech(): Int16Array | string {
  const dir = mkdtempSync(join(tmpdir(), 'wagw-quality-'));
  try {
    const parts: Int16Array[] = [];
    for (const [i, text] of SENTENCES.entries()) {
      const file = join(dir, `s${i}.wav`);
      execFileSync('espeak-ng', ['-v', i === 0 ? 'en-us' : 'en-gb', '-s', '150', '-w', file, text], { stdio: 'ignore' });
      const wav = readWav(file);
      parts.push(resample8k(toMono(wav), wav.sampleRate));
    }
    const out = new Int16Array(parts.reduce((a, p) => a + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  } catch (err) {
    return `espeak-ng not usable (${(err as Error).message.split('\n')[0]})`;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** espeak-ng writes 22.05 kHz: linear interpolation is enough for a distance both sides share. */
function resample8k(samples: Int16Array, rate: number): Int16Array {
  const n = Math.floor((samples.length * 8000) / rate);
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) {
    const x = (i * rate) / 8000;
    const k = Math.floor(x);
    const f = x - k;
    out[i] = Math.round((samples[k] ?? 0) * (1 - f) + (samples[k + 1] ?? 0) * f);
  }
  return out;
}

const cos = Float64Array.from({ length: WINDOW * WINDOW }, (_, i) => Math.cos((2 * Math.PI * (i % WINDOW) * Math.floor(i / WINDOW)) / WINDOW));
const sin = Float64Array.from({ length: WINDOW * WINDOW }, (_, i) => Math.sin((2 * Math.PI * (i % WINDOW) * Math.floor(i / WINDOW)) / WINDOW));
const hann = Float64Array.from({ length: WINDOW }, (_, t) => 0.5 - 0.5 * Math.cos((2 * Math.PI * t) / WINDOW));

/** Power spectrum in dB of x[at, at + WINDOW), bins 4–109 (125–3400 Hz: G.711's band). */
function spectrumDb(x: Int16Array, at: number, out: Float64Array): void {
  for (let k = 4; k < 110; k++) {
    let re = 0;
    let im = 0;
    const row = k * WINDOW;
    for (let t = 0; t < WINDOW; t++) {
      const v = x[at + t]! * hann[t]!;
      re += v * cos[row + t]!;
      im -= v * sin[row + t]!;
    }
    out[k] = 10 * Math.log10(re * re + im * im + 1e-3);
  }
}

function distances(ref: Int16Array, out: Int16Array): { logSpectralDistanceDb: number; segmentalSnrDb: number } {
  // The codec's delay, by cross-correlation.
  let delay = 0;
  let best = -Infinity;
  for (let d = 0; d < 200; d++) {
    let c = 0;
    for (let i = 2000; i < Math.min(42_000, ref.length - 200); i++) c += ref[i]! * out[i + d]!;
    if (c > best) [best, delay] = [c, d];
  }
  const a = new Float64Array(110);
  const b = new Float64Array(110);
  let lsd = 0;
  let snr = 0;
  let frames = 0;
  for (let f = 0; f + WINDOW + delay < ref.length; f += WINDOW) {
    let signal = 0;
    let noise = 0;
    for (let i = 0; i < WINDOW; i++) {
      const s = ref[f + i]!;
      signal += s * s;
      noise += (s - out[f + i + delay]!) ** 2;
    }
    if (signal / WINDOW < 100 * 100) continue; // silence between words
    snr += Math.max(-10, Math.min(35, 10 * Math.log10(signal / (noise + 1))));
    spectrumDb(ref, f, a);
    spectrumDb(out, f + delay, b);
    let sq = 0;
    for (let k = 4; k < 110; k++) sq += (a[k]! - b[k]!) ** 2;
    lsd += Math.sqrt(sq / 106);
    frames++;
  }
  return { logSpectralDistanceDb: round(lsd / frames), segmentalSnrDb: round(snr / frames) };
}

/** One row per complexity, or the reason there is none. */
export function runEncoderQuality(complexities = [0, 2, 3, 5, 9], bitrate = 24_000): EncoderQualityRow[] | string {
  const src = speech();
  if (typeof src === 'string') return src;
  const n = Math.floor(src.length / FRAME_SAMPLES) * FRAME_SAMPLES;
  const ref = new Int16Array(n);
  const law = new Uint8Array(FRAME_SAMPLES);
  for (let f = 0; f < n; f += FRAME_SAMPLES) {
    encodeG711('PCMU', src.subarray(f, f + FRAME_SAMPLES), law);
    decodeG711('PCMU', law, 0, FRAME_SAMPLES, ref.subarray(f));
  }
  return complexities.map((complexity) => {
    const enc = new OpusEncoder8k({ complexity, bitrate, inbandFec: true, expectedLossPercent: 0 });
    const dec = new OpusDecoder8k();
    const out = new Int16Array(n + 960);
    const packet = new Uint8Array(1500);
    let bytes = 0;
    for (let f = 0; f < n; f += FRAME_SAMPLES) {
      const len = enc.encode(ref.subarray(f, f + FRAME_SAMPLES), packet);
      bytes += len;
      dec.decode(packet, out.subarray(f), len);
    }
    return { complexity, kbps: round((bytes * 8) / (n / 8000) / 1000, 1), ...distances(ref, out) };
  });
}

function round(v: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const rows = runEncoderQuality();
  if (typeof rows === 'string') console.log(rows);
  else console.table(rows);
}
