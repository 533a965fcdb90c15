/**
 * G.711 (ITU-T) μ-law and A-law companding over Int16 PCM, table-driven so the hot loop
 * does one array lookup per sample and never allocates.
 */

export type G711Law = 'PCMU' | 'PCMA';

/** RTP static payload types (RFC 3551). */
export const G711_PAYLOAD_TYPE: Readonly<Record<G711Law, number>> = { PCMU: 0, PCMA: 8 };

function linearToUlaw(sample: number): number {
  const BIAS = 0x84;
  const CLIP = 32635;
  let pcm = sample;
  const sign = pcm < 0 ? 0x80 : 0;
  if (sign) pcm = -pcm;
  if (pcm > CLIP) pcm = CLIP;
  pcm += BIAS;
  let exponent = 7;
  for (let mask = 0x4000; (pcm & mask) === 0 && exponent > 0; mask >>= 1) exponent--;
  const mantissa = (pcm >> (exponent + 3)) & 0x0f;
  return ~(sign | (exponent << 4) | mantissa) & 0xff;
}

function ulawToLinear(code: number): number {
  const u = ~code & 0xff;
  let t = ((u & 0x0f) << 3) + 0x84;
  t <<= (u & 0x70) >> 4;
  return u & 0x80 ? 0x84 - t : t - 0x84;
}

const A_SEG_END = [0x1f, 0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff];

function linearToAlaw(sample: number): number {
  let pcm = sample >> 3;
  let mask: number;
  if (pcm >= 0) {
    mask = 0xd5;
  } else {
    mask = 0x55;
    pcm = -pcm - 1;
  }
  let seg = 0;
  while (seg < 8 && pcm > A_SEG_END[seg]!) seg++;
  if (seg >= 8) return 0x7f ^ mask;
  let aval = seg << 4;
  aval |= seg < 2 ? (pcm >> 1) & 0x0f : (pcm >> seg) & 0x0f;
  return aval ^ mask;
}

function alawToLinear(code: number): number {
  const a = code ^ 0x55;
  let t = (a & 0x0f) << 4;
  const seg = (a & 0x70) >> 4;
  if (seg === 0) t += 8;
  else if (seg === 1) t += 0x108;
  else t = (t + 0x108) << (seg - 1);
  return a & 0x80 ? t : -t;
}

// 64 KiB per law, indexed by the sample's unsigned 16-bit pattern.
const ULAW_ENC = new Uint8Array(65536);
const ALAW_ENC = new Uint8Array(65536);
const ULAW_DEC = new Int16Array(256);
const ALAW_DEC = new Int16Array(256);
for (let i = 0; i < 65536; i++) {
  const s = i >= 32768 ? i - 65536 : i;
  ULAW_ENC[i] = linearToUlaw(s);
  ALAW_ENC[i] = linearToAlaw(s);
}
for (let i = 0; i < 256; i++) {
  ULAW_DEC[i] = ulawToLinear(i);
  ALAW_DEC[i] = alawToLinear(i);
}

/** Encodes `pcm` into `out` (one byte per sample); returns the number of bytes written. */
export function encodeG711(law: G711Law, pcm: Int16Array, out: Uint8Array, outOffset = 0): number {
  const table = law === 'PCMU' ? ULAW_ENC : ALAW_ENC;
  const n = pcm.length;
  if (out.length - outOffset < n) throw new RangeError(`G.711 output buffer too small: ${out.length - outOffset} < ${n}`);
  for (let i = 0; i < n; i++) out[outOffset + i] = table[pcm[i]! & 0xffff]!;
  return n;
}

/** Decodes `length` bytes of `src` (from `offset`) into `out`; returns the number of samples written. */
export function decodeG711(law: G711Law, src: Uint8Array, offset: number, length: number, out: Int16Array): number {
  const table = law === 'PCMU' ? ULAW_DEC : ALAW_DEC;
  const n = Math.min(length, out.length);
  for (let i = 0; i < n; i++) out[i] = table[src[offset + i]!]!;
  return n;
}

/** The code for digital silence, used to pad short frames. */
export function g711Silence(law: G711Law): number {
  return law === 'PCMU' ? 0xff : 0xd5;
}

export function encodeSample(law: G711Law, sample: number): number {
  return (law === 'PCMU' ? ULAW_ENC : ALAW_ENC)[sample & 0xffff]!;
}

export function decodeSample(law: G711Law, code: number): number {
  return (law === 'PCMU' ? ULAW_DEC : ALAW_DEC)[code & 0xff]!;
}
