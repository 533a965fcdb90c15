/**
 * Delay estimation by cross-correlation (FFT based) and simple onset detection.
 *
 *   estimateDelay(reference, recording, { sampleRate, maxLagMs?, envelope? })
 *     -> { lagSamples, delayMs, correlation }
 *     Finds lag L >= 0 maximising sum_n ref[n] * rec[n + L], i.e. how late `reference` appears in `recording`.
 *     `correlation` is the normalised coefficient at the peak (1 = identical shape, ~0 = unrelated).
 *     With `envelope: true` both signals are first reduced to 1 ms RMS envelopes (phase-insensitive; use this
 *     for tone bursts that went through Opus/G.711 or a resampler — a pure tone is periodic, so sample-level
 *     correlation is ambiguous by one period). Result resolution is then 1 ms.
 *   onsetIndex(samples, sampleRate, { thresholdDbfs = -40, windowMs = 5 }) -> first sample index of the first
 *     window whose RMS exceeds the threshold, or -1.
 *   rmsEnvelope(samples, sampleRate, windowMs) -> Float64Array of per-window RMS (linear, full scale 1).
 */
import { rmsDbfs } from './level.js';

function nextPow2(n: number): number {
  let p = 1;
  while (p < n) p <<= 1;
  return p;
}

/** In-place iterative radix-2 FFT. `inverse` scales by 1/n. */
export function fft(re: Float64Array, im: Float64Array, inverse = false): void {
  const n = re.length;
  if (n !== im.length || (n & (n - 1)) !== 0) throw new RangeError('fft length must be a power of two');
  for (let i = 1, j = 0; i < n; i++) {
    let bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) {
      const tr = re[i]!; re[i] = re[j]!; re[j] = tr;
      const ti = im[i]!; im[i] = im[j]!; im[j] = ti;
    }
  }
  for (let len = 2; len <= n; len <<= 1) {
    const ang = ((inverse ? 2 : -2) * Math.PI) / len;
    const wr = Math.cos(ang);
    const wi = Math.sin(ang);
    for (let i = 0; i < n; i += len) {
      let cr = 1;
      let ci = 0;
      for (let k = 0; k < len / 2; k++) {
        const a = i + k;
        const b = a + len / 2;
        const xr = re[b]! * cr - im[b]! * ci;
        const xi = re[b]! * ci + im[b]! * cr;
        re[b] = re[a]! - xr; im[b] = im[a]! - xi;
        re[a] = re[a]! + xr; im[a] = im[a]! + xi;
        const ncr = cr * wr - ci * wi;
        ci = cr * wi + ci * wr;
        cr = ncr;
      }
    }
  }
  if (inverse) for (let i = 0; i < n; i++) { re[i] = re[i]! / n; im[i] = im[i]! / n; }
}

function toFloat(x: ArrayLike<number>, scale: number): Float64Array {
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = (x[i] ?? 0) * scale;
  return out;
}

/** c[L] = sum_n ref[n] * rec[n + L] for L = 0..maxLag. */
export function crossCorrelation(ref: Float64Array, rec: Float64Array, maxLag: number): Float64Array {
  const n = nextPow2(ref.length + rec.length);
  const ar = new Float64Array(n); const ai = new Float64Array(n);
  const br = new Float64Array(n); const bi = new Float64Array(n);
  ar.set(rec); br.set(ref);
  fft(ar, ai); fft(br, bi);
  // rec * conj(ref)
  for (let i = 0; i < n; i++) {
    const r = ar[i]! * br[i]! + ai[i]! * bi[i]!;
    const m = ai[i]! * br[i]! - ar[i]! * bi[i]!;
    ar[i] = r; ai[i] = m;
  }
  fft(ar, ai, true);
  const lags = Math.max(0, Math.min(maxLag, rec.length - 1));
  return ar.slice(0, lags + 1);
}

export function rmsEnvelope(samples: ArrayLike<number>, sampleRate: number, windowMs: number, scale = 1 / 32768): Float64Array {
  const w = Math.max(1, Math.round((sampleRate * windowMs) / 1000));
  const n = Math.floor(samples.length / w);
  const out = new Float64Array(n);
  for (let k = 0; k < n; k++) {
    let acc = 0;
    for (let i = k * w; i < (k + 1) * w; i++) { const v = (samples[i] ?? 0) * scale; acc += v * v; }
    out[k] = Math.sqrt(acc / w);
  }
  return out;
}

export interface DelayOptions {
  sampleRate: number;
  /** Largest delay searched; default: recording length. */
  maxLagMs?: number;
  /** Correlate 1 ms RMS envelopes instead of raw samples. */
  envelope?: boolean;
}

export interface DelayEstimate {
  lagSamples: number;
  delayMs: number;
  correlation: number;
}

export function estimateDelay(reference: Int16Array, recording: Int16Array, opts: DelayOptions): DelayEstimate {
  const { sampleRate } = opts;
  let ref: Float64Array;
  let rec: Float64Array;
  let unitMs: number;
  if (opts.envelope) {
    ref = rmsEnvelope(reference, sampleRate, 1);
    rec = rmsEnvelope(recording, sampleRate, 1);
    // Remove the mean so a constant level does not dominate.
    const mr = ref.reduce((s, v) => s + v, 0) / Math.max(1, ref.length);
    for (let i = 0; i < ref.length; i++) ref[i] = ref[i]! - mr;
    const mc = rec.reduce((s, v) => s + v, 0) / Math.max(1, rec.length);
    for (let i = 0; i < rec.length; i++) rec[i] = rec[i]! - mc;
    unitMs = 1;
  } else {
    ref = toFloat(reference, 1 / 32768);
    rec = toFloat(recording, 1 / 32768);
    unitMs = 1000 / sampleRate;
  }
  const maxLag = opts.maxLagMs !== undefined ? Math.round(opts.maxLagMs / unitMs) : rec.length;
  const c = crossCorrelation(ref, rec, maxLag);
  let best = 0;
  let bestVal = -Infinity;
  for (let i = 0; i < c.length; i++) if (c[i]! > bestVal) { bestVal = c[i]!; best = i; }
  let eRef = 0;
  for (const v of ref) eRef += v * v;
  let eRec = 0;
  for (let i = best; i < Math.min(rec.length, best + ref.length); i++) eRec += rec[i]! * rec[i]!;
  const correlation = eRef > 0 && eRec > 0 ? bestVal / Math.sqrt(eRef * eRec) : 0;
  const lagSamples = opts.envelope ? Math.round((best * sampleRate) / 1000) : best;
  return { lagSamples, delayMs: best * unitMs, correlation };
}

export interface OnsetOptions {
  thresholdDbfs?: number;
  windowMs?: number;
}

export function onsetIndex(samples: Int16Array, sampleRate: number, opts: OnsetOptions = {}): number {
  const thr = opts.thresholdDbfs ?? -40;
  const w = Math.max(1, Math.round((sampleRate * (opts.windowMs ?? 5)) / 1000));
  for (let i = 0; i + w <= samples.length; i += w) {
    if (rmsDbfs(samples.subarray(i, i + w)) > thr) return i;
  }
  return -1;
}
