/**
 * Sine-tone generator for test audio (16-bit PCM).
 *
 *   generateTone({ freqHz: 1000, sampleRate: 48000, durationMs: 500, levelDbfs: -12 }) -> Int16Array
 *   dbfsToAmplitude(-6) -> 0.501 (linear, relative to full scale 32767)
 *   silence(sampleRate, durationMs) -> Int16Array of zeros
 *   concatPcm(a, b, ...) -> Int16Array
 *
 * Level convention: dBFS of the *peak* amplitude relative to 32767, so a full-scale sine is 0 dBFS peak and
 * its RMS is -3.01 dBFS (see level.ts, which reports RMS dBFS).
 */

export interface ToneOptions {
  freqHz: number;
  sampleRate: number;
  /** Length in milliseconds (ignored when `samples` is given). */
  durationMs?: number;
  /** Exact number of samples. */
  samples?: number;
  /** Peak level in dBFS; default -6. */
  levelDbfs?: number;
  /** Start phase in radians; default 0. */
  phase?: number;
}

export const FULL_SCALE = 32767;

export function dbfsToAmplitude(dbfs: number): number {
  return Math.pow(10, dbfs / 20);
}

export function generateTone(opts: ToneOptions): Int16Array {
  const { freqHz, sampleRate } = opts;
  if (!(sampleRate > 0)) throw new RangeError(`bad sampleRate ${sampleRate}`);
  const n = opts.samples ?? Math.round(((opts.durationMs ?? 1000) * sampleRate) / 1000);
  const amp = dbfsToAmplitude(opts.levelDbfs ?? -6) * FULL_SCALE;
  const out = new Int16Array(n);
  const w = (2 * Math.PI * freqHz) / sampleRate;
  const phase = opts.phase ?? 0;
  for (let i = 0; i < n; i++) {
    const v = Math.round(amp * Math.sin(phase + w * i));
    out[i] = v > 32767 ? 32767 : v < -32768 ? -32768 : v;
  }
  return out;
}

/**
 * Stateful tone oscillator for streaming (keeps phase between blocks).
 */
export class ToneOscillator {
  private phase = 0;
  private readonly w: number;
  private readonly amp: number;
  constructor(freqHz: number, sampleRate: number, levelDbfs = -6) {
    this.w = (2 * Math.PI * freqHz) / sampleRate;
    this.amp = dbfsToAmplitude(levelDbfs) * FULL_SCALE;
  }
  /** Fill `out` with the next samples. */
  fill(out: Int16Array): Int16Array {
    for (let i = 0; i < out.length; i++) {
      out[i] = Math.round(this.amp * Math.sin(this.phase));
      this.phase += this.w;
      if (this.phase > 2 * Math.PI) this.phase -= 2 * Math.PI;
    }
    return out;
  }
}

export function silence(sampleRate: number, durationMs: number): Int16Array {
  return new Int16Array(Math.round((durationMs * sampleRate) / 1000));
}

export function concatPcm(...parts: Int16Array[]): Int16Array {
  const n = parts.reduce((s, p) => s + p.length, 0);
  const out = new Int16Array(n);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** Linear-interpolation resampler (good enough for test signals; not band-limited). */
export function resampleLinear(input: Int16Array, fromRate: number, toRate: number): Int16Array {
  if (fromRate === toRate) return input.slice();
  const n = Math.floor((input.length * toRate) / fromRate);
  const out = new Int16Array(n);
  const step = fromRate / toRate;
  for (let i = 0; i < n; i++) {
    const x = i * step;
    const i0 = Math.floor(x);
    const frac = x - i0;
    const a = input[i0] ?? 0;
    const b = input[i0 + 1] ?? a;
    out[i] = Math.round(a + (b - a) * frac);
  }
  return out;
}

/**
 * One 20 ms frame (160 samples at 8 kHz) of voiced-speech-like audio: a 140 Hz harmonic series under a
 * syllable-rate envelope. SILK's voice detector calls it speech (a steady tone it learns as noise), so Opus codes
 * in-band FEC for it.
 */
export function speechLikeFrame(frame: number): Int16Array {
  const out = new Int16Array(160);
  for (let i = 0; i < 160; i++) {
    const t = (frame * 160 + i) / 8000;
    let v = 0;
    for (let h = 1; h <= 8; h++) v += Math.sin(2 * Math.PI * 140 * h * t) / h;
    out[i] = Math.round(6000 * (0.6 + 0.4 * Math.sin(2 * Math.PI * 3 * t)) * v);
  }
  return out;
}
