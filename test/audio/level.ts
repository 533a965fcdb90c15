/**
 * Signal level helpers.
 *
 *   rmsDbfs(samples) -> RMS level in dBFS (full-scale sine = -3.01 dBFS; digital silence = -Infinity)
 *   peakDbfs(samples) -> peak level in dBFS
 *   isSilence(samples, thresholdDbfs = -60) -> rmsDbfs < threshold
 *   windowedRmsDbfs(samples, sampleRate, windowMs) -> number[] (one value per window)
 */

export function rmsDbfs(samples: Int16Array | Float32Array): number {
  const n = samples.length;
  if (n === 0) return -Infinity;
  const scale = samples instanceof Int16Array ? 1 / 32768 : 1;
  let acc = 0;
  for (let i = 0; i < n; i++) {
    const v = (samples[i] ?? 0) * scale;
    acc += v * v;
  }
  const ms = acc / n;
  return ms > 0 ? 10 * Math.log10(ms) : -Infinity;
}

export function peakDbfs(samples: Int16Array | Float32Array): number {
  const scale = samples instanceof Int16Array ? 1 / 32768 : 1;
  let peak = 0;
  for (let i = 0; i < samples.length; i++) peak = Math.max(peak, Math.abs((samples[i] ?? 0) * scale));
  return peak > 0 ? 20 * Math.log10(peak) : -Infinity;
}

export function isSilence(samples: Int16Array | Float32Array, thresholdDbfs = -60): boolean {
  return rmsDbfs(samples) < thresholdDbfs;
}

export function windowedRmsDbfs(samples: Int16Array, sampleRate: number, windowMs: number): number[] {
  const w = Math.max(1, Math.round((sampleRate * windowMs) / 1000));
  const out: number[] = [];
  for (let i = 0; i + w <= samples.length; i += w) out.push(rmsDbfs(samples.subarray(i, i + w)));
  return out;
}
