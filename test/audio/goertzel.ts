/**
 * Goertzel single-bin power and a tone detector.
 *
 *   goertzelPower(samples, sampleRate, freqHz) -> mean-square power of the component at freqHz
 *       (a sine of peak amplitude A, in samples normalised to [-1,1], gives ~A^2/2)
 *   detectTone(samples, sampleRate, freqHz, { minSnrDb?, minLevelDbfs? }) -> ToneDetection
 *       ratio = tone power / total power (0..1), snrDb = 10 log10(tone / (total - tone)),
 *       levelDbfs = RMS level of the tone component (dBFS, a full-scale sine = -3.01),
 *       detected = snrDb >= minSnrDb (default 10) && levelDbfs >= minLevelDbfs (default -50).
 */

export function goertzelPower(samples: Int16Array | Float32Array, sampleRate: number, freqHz: number): number {
  const n = samples.length;
  if (n === 0) return 0;
  const scale = samples instanceof Int16Array ? 1 / 32768 : 1;
  const w = (2 * Math.PI * freqHz) / sampleRate;
  const coeff = 2 * Math.cos(w);
  let s1 = 0;
  let s2 = 0;
  for (let i = 0; i < n; i++) {
    const s0 = (samples[i] ?? 0) * scale + coeff * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  // |X(k)|^2 for the (possibly non-integer) bin.
  const mag2 = s1 * s1 + s2 * s2 - coeff * s1 * s2;
  // A sine of amplitude A gives |X| = A*N/2 -> mean-square A^2/2 = 2|X|^2/N^2.
  return (2 * mag2) / (n * n);
}

export function meanSquare(samples: Int16Array | Float32Array): number {
  const n = samples.length;
  if (n === 0) return 0;
  const scale = samples instanceof Int16Array ? 1 / 32768 : 1;
  let acc = 0;
  for (let i = 0; i < n; i++) {
    const v = (samples[i] ?? 0) * scale;
    acc += v * v;
  }
  return acc / n;
}

export interface ToneDetection {
  freqHz: number;
  /** Mean-square power of the tone component (full-scale units). */
  tonePower: number;
  /** Mean-square power of the whole block. */
  totalPower: number;
  /** tonePower / totalPower, 0..1. */
  ratio: number;
  /** Tone power relative to everything else, dB. */
  snrDb: number;
  /** RMS level of the tone component in dBFS. */
  levelDbfs: number;
  detected: boolean;
}

export interface DetectOptions {
  minSnrDb?: number;
  minLevelDbfs?: number;
}

export function detectTone(
  samples: Int16Array | Float32Array,
  sampleRate: number,
  freqHz: number,
  opts: DetectOptions = {},
): ToneDetection {
  const tonePower = goertzelPower(samples, sampleRate, freqHz);
  const totalPower = meanSquare(samples);
  const ratio = totalPower > 0 ? Math.min(1, tonePower / totalPower) : 0;
  const rest = Math.max(totalPower - tonePower, 1e-12);
  const snrDb = tonePower > 0 ? 10 * Math.log10(tonePower / rest) : -Infinity;
  const levelDbfs = tonePower > 0 ? 10 * Math.log10(tonePower) : -Infinity;
  const detected = snrDb >= (opts.minSnrDb ?? 10) && levelDbfs >= (opts.minLevelDbfs ?? -50);
  return { freqHz, tonePower, totalPower, ratio, snrDb, levelDbfs, detected };
}
