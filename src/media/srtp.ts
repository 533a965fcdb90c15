/**
 * A tight SRTP (RFC 3711 AES_CM_128_HMAC_SHA1_80, RFC 7714 AEAD_AES_128_GCM) for the media hot path.
 *
 * werift builds a new cipher and HMAC object per packet and parses every header twice (~7 µs protect, ~13 µs
 * unprotect). Here a packet makes no native call and no allocation in the common case: the counter-mode keystream
 * of both profiles is computed a window of up to 64 packets ahead in one AES-ECB call (srtp-keystream.ts; that
 * call's Buffer is the one allocation per window), HMAC-SHA1 (sha1.ts) and GHASH (ghash.ts) run in JS from
 * per-key precomputed state, and tags are compared in constant time.
 * SRTCP stays with werift (a few packets a second). srtp-reference.ts keeps the per-packet-cipher version the
 * tests hold this one to, byte for byte.
 *
 * Packets are protected and unprotected in place: the caller's buffer must have room for the 10 / 16 tag bytes.
 */
import { createCipheriv, type Cipher } from 'node:crypto';
import { Ghash } from './ghash.js';
import { HmacSha1 } from './sha1.js';
import { SrtpKeystream } from './srtp-keystream.js';
import { NativeSrtpCrypto } from './srtp-native.js';

/** DTLS-SRTP protection profiles (RFC 5764 / RFC 7714 numbers, as werift reports them). */
export const SRTP_AES128_CM_HMAC_SHA1_80 = 0x0001;
/** The same with a 32-bit RTP tag (SDES peers may offer only this one; SRTCP keeps 80 bits, RFC 4568 §6.2.1). */
export const SRTP_AES128_CM_HMAC_SHA1_32 = 0x0002;
export const SRTP_AEAD_AES_128_GCM = 0x0007;
export type SrtpProfile = typeof SRTP_AES128_CM_HMAC_SHA1_80 | typeof SRTP_AES128_CM_HMAC_SHA1_32 | typeof SRTP_AEAD_AES_128_GCM;

/** The profiles the DTLS fast path takes over from werift. */
export function isSupportedSrtpProfile(p: number): p is SrtpProfile {
  return p === SRTP_AES128_CM_HMAC_SHA1_80 || p === SRTP_AEAD_AES_128_GCM;
}

export function srtpTagLength(profile: SrtpProfile): number {
  if (profile === SRTP_AEAD_AES_128_GCM) return 16;
  return profile === SRTP_AES128_CM_HMAC_SHA1_32 ? 4 : 10;
}

function ecb(key: Buffer): Cipher {
  const c = createCipheriv('aes-128-ecb', key, null);
  c.setAutoPadding(false);
  return c;
}

/** RFC 3711 §4.3 key derivation (KDR 0): AES-CM of (salt XOR label) under the master key, `len` bytes. */
export function deriveSrtpKey(masterKey: Buffer, masterSalt: Buffer, label: number, len: number): Buffer {
  const salt = Buffer.alloc(14);
  masterSalt.copy(salt, 0, 0, Math.min(14, masterSalt.length));
  salt[7] = salt[7]! ^ label;
  const blocks = Buffer.alloc(Math.ceil(len / 16) * 16);
  for (let i = 0; i < blocks.length / 16; i++) {
    salt.copy(blocks, i * 16);
    blocks.writeUInt16BE(i, i * 16 + 14);
  }
  const c = ecb(masterKey);
  return Buffer.concat([c.update(blocks), c.final()]).subarray(0, len);
}

/** Offset of the payload in an RTP packet, or -1 when the header does not fit in `len` bytes. */
export function rtpPayloadOffset(buf: Uint8Array, len: number): number {
  if (len < 12) return -1;
  let off = 12 + 4 * (buf[0]! & 0x0f);
  if (buf[0]! & 0x10) {
    if (off + 4 > len) return -1;
    off += 4 + 4 * ((buf[off + 2]! << 8) | buf[off + 3]!);
  }
  return off <= len ? off : -1;
}

export interface SrtpContextOptions {
  /** Packet crypto on the addon's OpenSSL when it is there (srtp-native.ts); false: the JS path. Default true. */
  native?: boolean;
}

/** One direction of one SRTP session (one per leg per direction); any number of SSRCs. */
export class SrtpContext {
  readonly tagLength: number;
  /** The JS path's keystream window (null on the native path); public so tests can see its hit / on-demand counts. */
  readonly keystream: SrtpKeystream | null;
  /** The OpenSSL packet crypto, when the addon has it; then the JS crypto state below is never built. */
  readonly native: NativeSrtpCrypto | null;
  /** SSRCs with rollover state (for tests). */
  get ssrcCount(): number {
    return this.roc.size;
  }
  private readonly gcm: boolean;
  private readonly hmac: HmacSha1 | null;
  private readonly ghash: Ghash | null;
  /**
   * Per SSRC: rollover counter and highest sequence number seen (s_l of RFC 3711 §3.3.1). On the receive side an
   * SSRC gets an entry only with its first authenticated packet, so garbage with random SSRCs cannot grow the map.
   */
  private readonly roc = new Map<number, { roc: number; sl: number }>();

  constructor(readonly profile: SrtpProfile, masterKey: Buffer, masterSalt: Buffer, opts: SrtpContextOptions = {}) {
    this.gcm = profile === SRTP_AEAD_AES_128_GCM;
    this.tagLength = srtpTagLength(profile);
    const sessionKey = deriveSrtpKey(masterKey, masterSalt, 0x00, 16);
    const sessionSalt = deriveSrtpKey(masterKey, masterSalt, 0x02, 14);
    const authKey = this.gcm ? undefined : deriveSrtpKey(masterKey, masterSalt, 0x01, 20);
    this.native = opts.native === false ? null : NativeSrtpCrypto.create(profile, sessionKey, sessionSalt, authKey);
    this.keystream = this.native ? null : new SrtpKeystream(ecb(sessionKey), sessionSalt, this.gcm);
    this.hmac = this.native || !authKey ? null : new HmacSha1(authKey);
    this.ghash = this.native || !this.gcm ? null : new Ghash(ecb(sessionKey).update(Buffer.alloc(16)));
  }

  /**
   * Encrypts the RTP packet in buf[0, len) in place and appends the tag; returns the SRTP length (len + tag).
   * Sequence numbers must be sent in order (our own streams are): the ROC follows their wrap.
   */
  protect(buf: Buffer, len: number): number {
    const hdr = rtpPayloadOffset(buf, len);
    if (hdr < 0 || len + this.tagLength > buf.length) throw new RangeError('SRTP protect: bad RTP packet or no room for the tag');
    const ssrc = ((buf[8]! << 24) | (buf[9]! << 16) | (buf[10]! << 8) | buf[11]!) >>> 0;
    const seq = (buf[2]! << 8) | buf[3]!;
    let s = this.roc.get(ssrc);
    if (!s) {
      s = { roc: 0, sl: seq };
      this.roc.set(ssrc, s);
    } else {
      if (seq < s.sl && s.sl - seq > 0x8000) s.roc = (s.roc + 1) >>> 0;
      s.sl = seq;
    }
    const roc = s.roc;
    if (this.native) {
      const out = this.native.protect(buf, hdr, len, roc);
      if (out < 0) throw new RangeError('SRTP protect failed');
      return out;
    }
    const n = len - hdr;
    if (this.gcm) {
      const ks = this.keystream!;
      ks.get(ssrc, roc, seq, 1 + ((n + 15) >> 4));
      xorInto(buf, hdr, len, ks.ks, ks.ksOff + 16);
      const g = this.ghashOf(buf, hdr, len);
      const k = ks.ks, o = ks.ksOff;
      for (let i = 0; i < 16; i++) buf[len + i] = g.byte(i) ^ k[o + i]!;
      return len + 16;
    }
    if (n > 0) {
      const ks = this.keystream!;
      ks.get(ssrc, roc, seq, (n + 15) >> 4);
      xorInto(buf, hdr, len, ks.ks, ks.ksOff);
    }
    const h = this.hmac!;
    h.mac(buf, len, roc);
    h.writeDigest(buf, len, this.tagLength);
    return len + this.tagLength;
  }

  /**
   * Authenticates and decrypts the SRTP packet in buf[0, len) in place. Returns the RTP length (tag removed) and
   * the payload offset via `out`, or -1 when the packet is malformed or fails authentication (drop it).
   */
  unprotect(buf: Buffer, len: number, out: { payloadOffset: number }): number {
    const rtpLen = len - this.tagLength;
    const hdr = rtpPayloadOffset(buf, rtpLen);
    if (hdr < 0) return -1;
    const ssrc = ((buf[8]! << 24) | (buf[9]! << 16) | (buf[10]! << 8) | buf[11]!) >>> 0;
    const seq = (buf[2]! << 8) | buf[3]!;
    const s = this.roc.get(ssrc);
    // RFC 3711 §3.3.1: guess the ROC from the highest sequence number seen (a new SSRC starts at ROC 0).
    let v = 0;
    if (s) {
      v = s.roc;
      if (s.sl < 0x8000) {
        if (seq - s.sl > 0x8000) v = (s.roc - 1) >>> 0;
      } else if (s.sl - 0x8000 > seq) {
        v = (s.roc + 1) >>> 0;
      }
    }
    const n = rtpLen - hdr;
    if (this.native) {
      if (this.native.unprotect(buf, hdr, len, v) < 0) return -1;
    } else if (this.gcm) {
      const ks = this.keystream!;
      ks.get(ssrc, v, seq, 1 + ((n + 15) >> 4));
      const g = this.ghashOf(buf, hdr, rtpLen);
      const k = ks.ks, o = ks.ksOff;
      let diff = 0;
      for (let i = 0; i < 16; i++) diff |= buf[rtpLen + i]! ^ g.byte(i) ^ k[o + i]!;
      if (diff !== 0) return -1;
      xorInto(buf, hdr, rtpLen, k, o + 16);
    } else {
      const h = this.hmac!;
      h.mac(buf, rtpLen, v);
      if (!h.equalsDigest(buf, rtpLen, this.tagLength)) return -1;
      if (n > 0) {
        const ks = this.keystream!;
        ks.get(ssrc, v, seq, (n + 15) >> 4);
        xorInto(buf, hdr, rtpLen, ks.ks, ks.ksOff);
      }
    }
    // Only an authenticated packet moves the state on.
    if (!s) {
      this.roc.set(ssrc, { roc: v, sl: seq });
    } else if (v === s.roc ? seq > s.sl : v === ((s.roc + 1) >>> 0)) {
      s.roc = v;
      s.sl = seq;
    }
    let end = rtpLen;
    if (buf[0]! & 0x20) {
      const pad = buf[rtpLen - 1]!;
      if (pad === 0 || hdr + pad > rtpLen) return -1;
      end -= pad;
    }
    out.payloadOffset = hdr;
    return end;
  }

  /** GHASH over AAD = the RTP header buf[0, hdr) and the ciphertext buf[hdr, end). */
  private ghashOf(buf: Buffer, hdr: number, end: number): Ghash {
    const g = this.ghash!;
    g.reset();
    g.update(buf, 0, hdr);
    g.update(buf, hdr, end - hdr);
    g.finish(hdr, end - hdr);
    return g;
  }
}

function xorInto(buf: Buffer, from: number, to: number, ks: Buffer, ksOff: number): void {
  for (let i = from, j = ksOff; i < to; i++, j++) buf[i] = buf[i]! ^ ks[j]!;
}
