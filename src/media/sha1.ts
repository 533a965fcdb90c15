/**
 * HMAC-SHA1 for SRTP authentication (RFC 3711 §4.2: HMAC over packet ‖ ROC), allocation-free.
 *
 * Node's hash()/createHmac cost a native call and a fresh Buffer each, which dominated the per-packet cost; an
 * 80-byte SRTP packet is only three SHA-1 compressions once the keyed inner and outer states are hashed ahead
 * (once per key), and those run faster in plain Int32 arithmetic than the call into OpenSSL.
 */

// One schedule for every instance: JS is single-threaded and compress() never re-enters.
const W = new Int32Array(16);
// Tail of the message (< 64 bytes) ‖ 32-bit suffix ‖ padding ‖ length: at most two blocks.
const TAIL = new Uint8Array(128);

// Fully unrolled with the schedule in 16 rolling locals: 80 rounds in a loop measured ~3x slower in V8 (the
// working variables shuffle through memory instead of staying in registers).
function compress(st: Int32Array, w: Int32Array): void {
  let a = st[0]!, b = st[1]!, c = st[2]!, d = st[3]!, e = st[4]!;
  let w0 = w[0]!; let w1 = w[1]!; let w2 = w[2]!; let w3 = w[3]!;
  let w4 = w[4]!; let w5 = w[5]!; let w6 = w[6]!; let w7 = w[7]!;
  let w8 = w[8]!; let w9 = w[9]!; let w10 = w[10]!; let w11 = w[11]!;
  let w12 = w[12]!; let w13 = w[13]!; let w14 = w[14]!; let w15 = w[15]!;
  e = (((a << 5) | (a >>> 27)) + ((b & c) | (~b & d)) + e + w0 + 0x5a827999) | 0; b = (b << 30) | (b >>> 2);
  d = (((e << 5) | (e >>> 27)) + ((a & b) | (~a & c)) + d + w1 + 0x5a827999) | 0; a = (a << 30) | (a >>> 2);
  c = (((d << 5) | (d >>> 27)) + ((e & a) | (~e & b)) + c + w2 + 0x5a827999) | 0; e = (e << 30) | (e >>> 2);
  b = (((c << 5) | (c >>> 27)) + ((d & e) | (~d & a)) + b + w3 + 0x5a827999) | 0; d = (d << 30) | (d >>> 2);
  a = (((b << 5) | (b >>> 27)) + ((c & d) | (~c & e)) + a + w4 + 0x5a827999) | 0; c = (c << 30) | (c >>> 2);
  e = (((a << 5) | (a >>> 27)) + ((b & c) | (~b & d)) + e + w5 + 0x5a827999) | 0; b = (b << 30) | (b >>> 2);
  d = (((e << 5) | (e >>> 27)) + ((a & b) | (~a & c)) + d + w6 + 0x5a827999) | 0; a = (a << 30) | (a >>> 2);
  c = (((d << 5) | (d >>> 27)) + ((e & a) | (~e & b)) + c + w7 + 0x5a827999) | 0; e = (e << 30) | (e >>> 2);
  b = (((c << 5) | (c >>> 27)) + ((d & e) | (~d & a)) + b + w8 + 0x5a827999) | 0; d = (d << 30) | (d >>> 2);
  a = (((b << 5) | (b >>> 27)) + ((c & d) | (~c & e)) + a + w9 + 0x5a827999) | 0; c = (c << 30) | (c >>> 2);
  e = (((a << 5) | (a >>> 27)) + ((b & c) | (~b & d)) + e + w10 + 0x5a827999) | 0; b = (b << 30) | (b >>> 2);
  d = (((e << 5) | (e >>> 27)) + ((a & b) | (~a & c)) + d + w11 + 0x5a827999) | 0; a = (a << 30) | (a >>> 2);
  c = (((d << 5) | (d >>> 27)) + ((e & a) | (~e & b)) + c + w12 + 0x5a827999) | 0; e = (e << 30) | (e >>> 2);
  b = (((c << 5) | (c >>> 27)) + ((d & e) | (~d & a)) + b + w13 + 0x5a827999) | 0; d = (d << 30) | (d >>> 2);
  a = (((b << 5) | (b >>> 27)) + ((c & d) | (~c & e)) + a + w14 + 0x5a827999) | 0; c = (c << 30) | (c >>> 2);
  e = (((a << 5) | (a >>> 27)) + ((b & c) | (~b & d)) + e + w15 + 0x5a827999) | 0; b = (b << 30) | (b >>> 2);
  w0 ^= w13 ^ w8 ^ w2; w0 = (w0 << 1) | (w0 >>> 31);
  d = (((e << 5) | (e >>> 27)) + ((a & b) | (~a & c)) + d + w0 + 0x5a827999) | 0; a = (a << 30) | (a >>> 2);
  w1 ^= w14 ^ w9 ^ w3; w1 = (w1 << 1) | (w1 >>> 31);
  c = (((d << 5) | (d >>> 27)) + ((e & a) | (~e & b)) + c + w1 + 0x5a827999) | 0; e = (e << 30) | (e >>> 2);
  w2 ^= w15 ^ w10 ^ w4; w2 = (w2 << 1) | (w2 >>> 31);
  b = (((c << 5) | (c >>> 27)) + ((d & e) | (~d & a)) + b + w2 + 0x5a827999) | 0; d = (d << 30) | (d >>> 2);
  w3 ^= w0 ^ w11 ^ w5; w3 = (w3 << 1) | (w3 >>> 31);
  a = (((b << 5) | (b >>> 27)) + ((c & d) | (~c & e)) + a + w3 + 0x5a827999) | 0; c = (c << 30) | (c >>> 2);
  w4 ^= w1 ^ w12 ^ w6; w4 = (w4 << 1) | (w4 >>> 31);
  e = (((a << 5) | (a >>> 27)) + (b ^ c ^ d) + e + w4 + 0x6ed9eba1) | 0; b = (b << 30) | (b >>> 2);
  w5 ^= w2 ^ w13 ^ w7; w5 = (w5 << 1) | (w5 >>> 31);
  d = (((e << 5) | (e >>> 27)) + (a ^ b ^ c) + d + w5 + 0x6ed9eba1) | 0; a = (a << 30) | (a >>> 2);
  w6 ^= w3 ^ w14 ^ w8; w6 = (w6 << 1) | (w6 >>> 31);
  c = (((d << 5) | (d >>> 27)) + (e ^ a ^ b) + c + w6 + 0x6ed9eba1) | 0; e = (e << 30) | (e >>> 2);
  w7 ^= w4 ^ w15 ^ w9; w7 = (w7 << 1) | (w7 >>> 31);
  b = (((c << 5) | (c >>> 27)) + (d ^ e ^ a) + b + w7 + 0x6ed9eba1) | 0; d = (d << 30) | (d >>> 2);
  w8 ^= w5 ^ w0 ^ w10; w8 = (w8 << 1) | (w8 >>> 31);
  a = (((b << 5) | (b >>> 27)) + (c ^ d ^ e) + a + w8 + 0x6ed9eba1) | 0; c = (c << 30) | (c >>> 2);
  w9 ^= w6 ^ w1 ^ w11; w9 = (w9 << 1) | (w9 >>> 31);
  e = (((a << 5) | (a >>> 27)) + (b ^ c ^ d) + e + w9 + 0x6ed9eba1) | 0; b = (b << 30) | (b >>> 2);
  w10 ^= w7 ^ w2 ^ w12; w10 = (w10 << 1) | (w10 >>> 31);
  d = (((e << 5) | (e >>> 27)) + (a ^ b ^ c) + d + w10 + 0x6ed9eba1) | 0; a = (a << 30) | (a >>> 2);
  w11 ^= w8 ^ w3 ^ w13; w11 = (w11 << 1) | (w11 >>> 31);
  c = (((d << 5) | (d >>> 27)) + (e ^ a ^ b) + c + w11 + 0x6ed9eba1) | 0; e = (e << 30) | (e >>> 2);
  w12 ^= w9 ^ w4 ^ w14; w12 = (w12 << 1) | (w12 >>> 31);
  b = (((c << 5) | (c >>> 27)) + (d ^ e ^ a) + b + w12 + 0x6ed9eba1) | 0; d = (d << 30) | (d >>> 2);
  w13 ^= w10 ^ w5 ^ w15; w13 = (w13 << 1) | (w13 >>> 31);
  a = (((b << 5) | (b >>> 27)) + (c ^ d ^ e) + a + w13 + 0x6ed9eba1) | 0; c = (c << 30) | (c >>> 2);
  w14 ^= w11 ^ w6 ^ w0; w14 = (w14 << 1) | (w14 >>> 31);
  e = (((a << 5) | (a >>> 27)) + (b ^ c ^ d) + e + w14 + 0x6ed9eba1) | 0; b = (b << 30) | (b >>> 2);
  w15 ^= w12 ^ w7 ^ w1; w15 = (w15 << 1) | (w15 >>> 31);
  d = (((e << 5) | (e >>> 27)) + (a ^ b ^ c) + d + w15 + 0x6ed9eba1) | 0; a = (a << 30) | (a >>> 2);
  w0 ^= w13 ^ w8 ^ w2; w0 = (w0 << 1) | (w0 >>> 31);
  c = (((d << 5) | (d >>> 27)) + (e ^ a ^ b) + c + w0 + 0x6ed9eba1) | 0; e = (e << 30) | (e >>> 2);
  w1 ^= w14 ^ w9 ^ w3; w1 = (w1 << 1) | (w1 >>> 31);
  b = (((c << 5) | (c >>> 27)) + (d ^ e ^ a) + b + w1 + 0x6ed9eba1) | 0; d = (d << 30) | (d >>> 2);
  w2 ^= w15 ^ w10 ^ w4; w2 = (w2 << 1) | (w2 >>> 31);
  a = (((b << 5) | (b >>> 27)) + (c ^ d ^ e) + a + w2 + 0x6ed9eba1) | 0; c = (c << 30) | (c >>> 2);
  w3 ^= w0 ^ w11 ^ w5; w3 = (w3 << 1) | (w3 >>> 31);
  e = (((a << 5) | (a >>> 27)) + (b ^ c ^ d) + e + w3 + 0x6ed9eba1) | 0; b = (b << 30) | (b >>> 2);
  w4 ^= w1 ^ w12 ^ w6; w4 = (w4 << 1) | (w4 >>> 31);
  d = (((e << 5) | (e >>> 27)) + (a ^ b ^ c) + d + w4 + 0x6ed9eba1) | 0; a = (a << 30) | (a >>> 2);
  w5 ^= w2 ^ w13 ^ w7; w5 = (w5 << 1) | (w5 >>> 31);
  c = (((d << 5) | (d >>> 27)) + (e ^ a ^ b) + c + w5 + 0x6ed9eba1) | 0; e = (e << 30) | (e >>> 2);
  w6 ^= w3 ^ w14 ^ w8; w6 = (w6 << 1) | (w6 >>> 31);
  b = (((c << 5) | (c >>> 27)) + (d ^ e ^ a) + b + w6 + 0x6ed9eba1) | 0; d = (d << 30) | (d >>> 2);
  w7 ^= w4 ^ w15 ^ w9; w7 = (w7 << 1) | (w7 >>> 31);
  a = (((b << 5) | (b >>> 27)) + (c ^ d ^ e) + a + w7 + 0x6ed9eba1) | 0; c = (c << 30) | (c >>> 2);
  w8 ^= w5 ^ w0 ^ w10; w8 = (w8 << 1) | (w8 >>> 31);
  e = (((a << 5) | (a >>> 27)) + ((b & c) | (d & (b | c))) + e + w8 + 0x8f1bbcdc) | 0; b = (b << 30) | (b >>> 2);
  w9 ^= w6 ^ w1 ^ w11; w9 = (w9 << 1) | (w9 >>> 31);
  d = (((e << 5) | (e >>> 27)) + ((a & b) | (c & (a | b))) + d + w9 + 0x8f1bbcdc) | 0; a = (a << 30) | (a >>> 2);
  w10 ^= w7 ^ w2 ^ w12; w10 = (w10 << 1) | (w10 >>> 31);
  c = (((d << 5) | (d >>> 27)) + ((e & a) | (b & (e | a))) + c + w10 + 0x8f1bbcdc) | 0; e = (e << 30) | (e >>> 2);
  w11 ^= w8 ^ w3 ^ w13; w11 = (w11 << 1) | (w11 >>> 31);
  b = (((c << 5) | (c >>> 27)) + ((d & e) | (a & (d | e))) + b + w11 + 0x8f1bbcdc) | 0; d = (d << 30) | (d >>> 2);
  w12 ^= w9 ^ w4 ^ w14; w12 = (w12 << 1) | (w12 >>> 31);
  a = (((b << 5) | (b >>> 27)) + ((c & d) | (e & (c | d))) + a + w12 + 0x8f1bbcdc) | 0; c = (c << 30) | (c >>> 2);
  w13 ^= w10 ^ w5 ^ w15; w13 = (w13 << 1) | (w13 >>> 31);
  e = (((a << 5) | (a >>> 27)) + ((b & c) | (d & (b | c))) + e + w13 + 0x8f1bbcdc) | 0; b = (b << 30) | (b >>> 2);
  w14 ^= w11 ^ w6 ^ w0; w14 = (w14 << 1) | (w14 >>> 31);
  d = (((e << 5) | (e >>> 27)) + ((a & b) | (c & (a | b))) + d + w14 + 0x8f1bbcdc) | 0; a = (a << 30) | (a >>> 2);
  w15 ^= w12 ^ w7 ^ w1; w15 = (w15 << 1) | (w15 >>> 31);
  c = (((d << 5) | (d >>> 27)) + ((e & a) | (b & (e | a))) + c + w15 + 0x8f1bbcdc) | 0; e = (e << 30) | (e >>> 2);
  w0 ^= w13 ^ w8 ^ w2; w0 = (w0 << 1) | (w0 >>> 31);
  b = (((c << 5) | (c >>> 27)) + ((d & e) | (a & (d | e))) + b + w0 + 0x8f1bbcdc) | 0; d = (d << 30) | (d >>> 2);
  w1 ^= w14 ^ w9 ^ w3; w1 = (w1 << 1) | (w1 >>> 31);
  a = (((b << 5) | (b >>> 27)) + ((c & d) | (e & (c | d))) + a + w1 + 0x8f1bbcdc) | 0; c = (c << 30) | (c >>> 2);
  w2 ^= w15 ^ w10 ^ w4; w2 = (w2 << 1) | (w2 >>> 31);
  e = (((a << 5) | (a >>> 27)) + ((b & c) | (d & (b | c))) + e + w2 + 0x8f1bbcdc) | 0; b = (b << 30) | (b >>> 2);
  w3 ^= w0 ^ w11 ^ w5; w3 = (w3 << 1) | (w3 >>> 31);
  d = (((e << 5) | (e >>> 27)) + ((a & b) | (c & (a | b))) + d + w3 + 0x8f1bbcdc) | 0; a = (a << 30) | (a >>> 2);
  w4 ^= w1 ^ w12 ^ w6; w4 = (w4 << 1) | (w4 >>> 31);
  c = (((d << 5) | (d >>> 27)) + ((e & a) | (b & (e | a))) + c + w4 + 0x8f1bbcdc) | 0; e = (e << 30) | (e >>> 2);
  w5 ^= w2 ^ w13 ^ w7; w5 = (w5 << 1) | (w5 >>> 31);
  b = (((c << 5) | (c >>> 27)) + ((d & e) | (a & (d | e))) + b + w5 + 0x8f1bbcdc) | 0; d = (d << 30) | (d >>> 2);
  w6 ^= w3 ^ w14 ^ w8; w6 = (w6 << 1) | (w6 >>> 31);
  a = (((b << 5) | (b >>> 27)) + ((c & d) | (e & (c | d))) + a + w6 + 0x8f1bbcdc) | 0; c = (c << 30) | (c >>> 2);
  w7 ^= w4 ^ w15 ^ w9; w7 = (w7 << 1) | (w7 >>> 31);
  e = (((a << 5) | (a >>> 27)) + ((b & c) | (d & (b | c))) + e + w7 + 0x8f1bbcdc) | 0; b = (b << 30) | (b >>> 2);
  w8 ^= w5 ^ w0 ^ w10; w8 = (w8 << 1) | (w8 >>> 31);
  d = (((e << 5) | (e >>> 27)) + ((a & b) | (c & (a | b))) + d + w8 + 0x8f1bbcdc) | 0; a = (a << 30) | (a >>> 2);
  w9 ^= w6 ^ w1 ^ w11; w9 = (w9 << 1) | (w9 >>> 31);
  c = (((d << 5) | (d >>> 27)) + ((e & a) | (b & (e | a))) + c + w9 + 0x8f1bbcdc) | 0; e = (e << 30) | (e >>> 2);
  w10 ^= w7 ^ w2 ^ w12; w10 = (w10 << 1) | (w10 >>> 31);
  b = (((c << 5) | (c >>> 27)) + ((d & e) | (a & (d | e))) + b + w10 + 0x8f1bbcdc) | 0; d = (d << 30) | (d >>> 2);
  w11 ^= w8 ^ w3 ^ w13; w11 = (w11 << 1) | (w11 >>> 31);
  a = (((b << 5) | (b >>> 27)) + ((c & d) | (e & (c | d))) + a + w11 + 0x8f1bbcdc) | 0; c = (c << 30) | (c >>> 2);
  w12 ^= w9 ^ w4 ^ w14; w12 = (w12 << 1) | (w12 >>> 31);
  e = (((a << 5) | (a >>> 27)) + (b ^ c ^ d) + e + w12 + 0xca62c1d6) | 0; b = (b << 30) | (b >>> 2);
  w13 ^= w10 ^ w5 ^ w15; w13 = (w13 << 1) | (w13 >>> 31);
  d = (((e << 5) | (e >>> 27)) + (a ^ b ^ c) + d + w13 + 0xca62c1d6) | 0; a = (a << 30) | (a >>> 2);
  w14 ^= w11 ^ w6 ^ w0; w14 = (w14 << 1) | (w14 >>> 31);
  c = (((d << 5) | (d >>> 27)) + (e ^ a ^ b) + c + w14 + 0xca62c1d6) | 0; e = (e << 30) | (e >>> 2);
  w15 ^= w12 ^ w7 ^ w1; w15 = (w15 << 1) | (w15 >>> 31);
  b = (((c << 5) | (c >>> 27)) + (d ^ e ^ a) + b + w15 + 0xca62c1d6) | 0; d = (d << 30) | (d >>> 2);
  w0 ^= w13 ^ w8 ^ w2; w0 = (w0 << 1) | (w0 >>> 31);
  a = (((b << 5) | (b >>> 27)) + (c ^ d ^ e) + a + w0 + 0xca62c1d6) | 0; c = (c << 30) | (c >>> 2);
  w1 ^= w14 ^ w9 ^ w3; w1 = (w1 << 1) | (w1 >>> 31);
  e = (((a << 5) | (a >>> 27)) + (b ^ c ^ d) + e + w1 + 0xca62c1d6) | 0; b = (b << 30) | (b >>> 2);
  w2 ^= w15 ^ w10 ^ w4; w2 = (w2 << 1) | (w2 >>> 31);
  d = (((e << 5) | (e >>> 27)) + (a ^ b ^ c) + d + w2 + 0xca62c1d6) | 0; a = (a << 30) | (a >>> 2);
  w3 ^= w0 ^ w11 ^ w5; w3 = (w3 << 1) | (w3 >>> 31);
  c = (((d << 5) | (d >>> 27)) + (e ^ a ^ b) + c + w3 + 0xca62c1d6) | 0; e = (e << 30) | (e >>> 2);
  w4 ^= w1 ^ w12 ^ w6; w4 = (w4 << 1) | (w4 >>> 31);
  b = (((c << 5) | (c >>> 27)) + (d ^ e ^ a) + b + w4 + 0xca62c1d6) | 0; d = (d << 30) | (d >>> 2);
  w5 ^= w2 ^ w13 ^ w7; w5 = (w5 << 1) | (w5 >>> 31);
  a = (((b << 5) | (b >>> 27)) + (c ^ d ^ e) + a + w5 + 0xca62c1d6) | 0; c = (c << 30) | (c >>> 2);
  w6 ^= w3 ^ w14 ^ w8; w6 = (w6 << 1) | (w6 >>> 31);
  e = (((a << 5) | (a >>> 27)) + (b ^ c ^ d) + e + w6 + 0xca62c1d6) | 0; b = (b << 30) | (b >>> 2);
  w7 ^= w4 ^ w15 ^ w9; w7 = (w7 << 1) | (w7 >>> 31);
  d = (((e << 5) | (e >>> 27)) + (a ^ b ^ c) + d + w7 + 0xca62c1d6) | 0; a = (a << 30) | (a >>> 2);
  w8 ^= w5 ^ w0 ^ w10; w8 = (w8 << 1) | (w8 >>> 31);
  c = (((d << 5) | (d >>> 27)) + (e ^ a ^ b) + c + w8 + 0xca62c1d6) | 0; e = (e << 30) | (e >>> 2);
  w9 ^= w6 ^ w1 ^ w11; w9 = (w9 << 1) | (w9 >>> 31);
  b = (((c << 5) | (c >>> 27)) + (d ^ e ^ a) + b + w9 + 0xca62c1d6) | 0; d = (d << 30) | (d >>> 2);
  w10 ^= w7 ^ w2 ^ w12; w10 = (w10 << 1) | (w10 >>> 31);
  a = (((b << 5) | (b >>> 27)) + (c ^ d ^ e) + a + w10 + 0xca62c1d6) | 0; c = (c << 30) | (c >>> 2);
  w11 ^= w8 ^ w3 ^ w13; w11 = (w11 << 1) | (w11 >>> 31);
  e = (((a << 5) | (a >>> 27)) + (b ^ c ^ d) + e + w11 + 0xca62c1d6) | 0; b = (b << 30) | (b >>> 2);
  w12 ^= w9 ^ w4 ^ w14; w12 = (w12 << 1) | (w12 >>> 31);
  d = (((e << 5) | (e >>> 27)) + (a ^ b ^ c) + d + w12 + 0xca62c1d6) | 0; a = (a << 30) | (a >>> 2);
  w13 ^= w10 ^ w5 ^ w15; w13 = (w13 << 1) | (w13 >>> 31);
  c = (((d << 5) | (d >>> 27)) + (e ^ a ^ b) + c + w13 + 0xca62c1d6) | 0; e = (e << 30) | (e >>> 2);
  w14 ^= w11 ^ w6 ^ w0; w14 = (w14 << 1) | (w14 >>> 31);
  b = (((c << 5) | (c >>> 27)) + (d ^ e ^ a) + b + w14 + 0xca62c1d6) | 0; d = (d << 30) | (d >>> 2);
  w15 ^= w12 ^ w7 ^ w1; w15 = (w15 << 1) | (w15 >>> 31);
  a = (((b << 5) | (b >>> 27)) + (c ^ d ^ e) + a + w15 + 0xca62c1d6) | 0; c = (c << 30) | (c >>> 2);
  st[0] = (st[0]! + a) | 0;
  st[1] = (st[1]! + b) | 0;
  st[2] = (st[2]! + c) | 0;
  st[3] = (st[3]! + d) | 0;
  st[4] = (st[4]! + e) | 0;
}

function load(w: Int32Array, src: Uint8Array, off: number): void {
  for (let i = 0; i < 16; i++, off += 4) {
    w[i] = (src[off]! << 24) | (src[off + 1]! << 16) | (src[off + 2]! << 8) | src[off + 3]!;
  }
}

const IV = [0x67452301, 0xefcdab89 | 0, 0x98badcfe | 0, 0x10325476, 0xc3d2e1f0 | 0];

/** HMAC-SHA1 under one key of data ‖ a 32-bit big-endian suffix (the SRTP ROC). */
export class HmacSha1 {
  /** The last digest as five big-endian words. */
  readonly digest = new Int32Array(5);
  private readonly inner = new Int32Array(5);
  private readonly outer = new Int32Array(5);

  constructor(key: Uint8Array) {
    if (key.length > 64) throw new RangeError('HmacSha1: keys longer than a block are not needed for SRTP');
    const pad = new Uint8Array(64);
    for (const [state, fill] of [[this.inner, 0x36], [this.outer, 0x5c]] as const) {
      pad.fill(fill);
      for (let i = 0; i < key.length; i++) pad[i] = fill ^ key[i]!;
      state.set(IV);
      load(W, pad, 0);
      compress(state, W);
    }
  }

  /** HMAC(key, data[0, len) ‖ suffix) into `digest`. */
  mac(data: Uint8Array, len: number, suffix: number): void {
    const st = this.digest;
    st.set(this.inner);
    let off = 0;
    for (; off + 64 <= len; off += 64) {
      load(W, data, off);
      compress(st, W);
    }
    const r = len - off;
    const tail = TAIL;
    for (let i = 0; i < r; i++) tail[i] = data[off + i]!;
    tail[r] = suffix >>> 24;
    tail[r + 1] = (suffix >>> 16) & 0xff;
    tail[r + 2] = (suffix >>> 8) & 0xff;
    tail[r + 3] = suffix & 0xff;
    tail[r + 4] = 0x80;
    const end = r + 4 + 1 + 8 <= 64 ? 64 : 128;
    tail.fill(0, r + 5, end - 4);
    // Bit length of ipad block ‖ data ‖ suffix; below 2^32 for any packet.
    const bits = (64 + len + 4) * 8;
    tail[end - 4] = bits >>> 24;
    tail[end - 3] = (bits >>> 16) & 0xff;
    tail[end - 2] = (bits >>> 8) & 0xff;
    tail[end - 1] = bits & 0xff;
    load(W, tail, 0);
    compress(st, W);
    if (end === 128) {
      load(W, tail, 64);
      compress(st, W);
    }
    // Outer hash: opad block (precomputed) ‖ inner digest (20 bytes) ‖ padding, one block.
    W[0] = st[0]!; W[1] = st[1]!; W[2] = st[2]!; W[3] = st[3]!; W[4] = st[4]!;
    W[5] = 0x80000000 | 0;
    for (let i = 6; i < 15; i++) W[i] = 0;
    W[15] = (64 + 20) * 8;
    st.set(this.outer);
    compress(st, W);
  }

  /** Writes the first `n` bytes of the digest to dst at `off`. */
  writeDigest(dst: Uint8Array, off: number, n: number): void {
    const d = this.digest;
    for (let i = 0; i < n; i++) dst[off + i] = (d[i >> 2]! >>> (24 - 8 * (i & 3))) & 0xff;
  }

  /** Whether the first `n` digest bytes equal src[off, off+n), in time independent of where they differ. */
  equalsDigest(src: Uint8Array, off: number, n: number): boolean {
    const d = this.digest;
    let diff = 0;
    for (let i = 0; i < n; i++) diff |= src[off + i]! ^ ((d[i >> 2]! >>> (24 - 8 * (i & 3))) & 0xff);
    return diff === 0;
  }
}
