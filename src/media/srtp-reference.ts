/**
 * The previous SrtpContext (one Node cipher or two one-shot hashes per packet), kept verbatim as the reference the
 * table-driven SrtpContext must match byte for byte in tests, and as the "before" row of the benchmark.
 * Not used on the media path.
 */
import { createCipheriv, createDecipheriv, hash, timingSafeEqual, type Cipher } from 'node:crypto';
import { deriveSrtpKey as derive, rtpPayloadOffset, SRTP_AEAD_AES_128_GCM, srtpTagLength, type SrtpProfile } from './srtp.js';

function ecb(key: Buffer): Cipher {
  const c = createCipheriv('aes-128-ecb', key, null);
  c.setAutoPadding(false);
  return c;
}

const MAX_PACKET = 1500;
const MAX_BLOCKS = Math.ceil(MAX_PACKET / 16);

export class SrtpReferenceContext {
  readonly tagLength: number;
  private readonly gcm: boolean;
  private readonly sessionKey: Buffer;
  private readonly sessionSalt: Buffer;
  private readonly ecb: Cipher | null;
  private readonly ctrBlocks: Buffer | null;
  private readonly ipad: Buffer; // 64-byte inner pad ‖ message ‖ ROC, hashed in one call
  private readonly opad: Buffer; // 64-byte outer pad ‖ inner digest
  private readonly iv = Buffer.alloc(12);
  /** Per SSRC: rollover counter and highest sequence number seen (s_l of RFC 3711 §3.3.1). */
  private readonly roc = new Map<number, { roc: number; sl: number; seen: boolean }>();

  constructor(readonly profile: SrtpProfile, masterKey: Buffer, masterSalt: Buffer) {
    this.gcm = profile === SRTP_AEAD_AES_128_GCM;
    this.tagLength = srtpTagLength(profile);
    this.sessionKey = derive(masterKey, masterSalt, 0x00, 16);
    this.sessionSalt = derive(masterKey, masterSalt, 0x02, 14);
    if (this.gcm) {
      this.ecb = null;
      this.ctrBlocks = null;
      this.ipad = this.opad = Buffer.alloc(0);
    } else {
      this.ecb = ecb(this.sessionKey);
      this.ctrBlocks = Buffer.alloc(MAX_BLOCKS * 16);
      const authKey = derive(masterKey, masterSalt, 0x01, 20);
      this.ipad = Buffer.alloc(64 + MAX_PACKET + 4, 0x36);
      this.opad = Buffer.alloc(64 + 20, 0x5c);
      for (let i = 0; i < 20; i++) {
        this.ipad[i] = 0x36 ^ authKey[i]!;
        this.opad[i] = 0x5c ^ authKey[i]!;
      }
    }
  }

  /**
   * Encrypts the RTP packet in buf[0, len) in place and appends the tag; returns the SRTP length (len + tag).
   * Sequence numbers must be sent in order (our own streams are): the ROC follows their wrap.
   */
  protect(buf: Buffer, len: number): number {
    const hdr = rtpPayloadOffset(buf, len);
    if (hdr < 0 || len + this.tagLength > buf.length) throw new RangeError('SRTP protect: bad RTP packet or no room for the tag');
    const ssrc = buf.readUInt32BE(8);
    const seq = (buf[2]! << 8) | buf[3]!;
    let s = this.roc.get(ssrc);
    if (!s) {
      s = { roc: 0, sl: seq, seen: true };
      this.roc.set(ssrc, s);
    } else {
      if (seq < s.sl && s.sl - seq > 0x8000) s.roc = (s.roc + 1) >>> 0;
      s.sl = seq;
    }
    const roc = s.roc;
    if (this.gcm) {
      const c = createCipheriv('aes-128-gcm', this.sessionKey, this.gcmIv(ssrc, roc, seq));
      c.setAAD(buf.subarray(0, hdr));
      c.update(buf.subarray(hdr, len)).copy(buf, hdr);
      c.final();
      c.getAuthTag().copy(buf, len);
      return len + 16;
    }
    this.xorKeystream(buf, hdr, len, ssrc, roc, seq);
    this.authTag(buf, len, roc).copy(buf, len, 0, this.tagLength);
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
    const ssrc = buf.readUInt32BE(8);
    const seq = (buf[2]! << 8) | buf[3]!;
    let s = this.roc.get(ssrc);
    if (!s) {
      s = { roc: 0, sl: seq, seen: false };
      this.roc.set(ssrc, s);
    }
    // RFC 3711 §3.3.1: guess the ROC from the highest sequence number seen. Written out again rather than shared
    // with srtp.ts on purpose: the tests compare the two, so a shared mistake in the estimate would go unseen.
    let v = s.roc;
    if (s.seen) {
      if (s.sl < 0x8000) {
        if (seq - s.sl > 0x8000) v = (s.roc - 1) >>> 0;
      } else if (s.sl - 0x8000 > seq) {
        v = (s.roc + 1) >>> 0;
      }
    }
    if (this.gcm) {
      try {
        const d = createDecipheriv('aes-128-gcm', this.sessionKey, this.gcmIv(ssrc, v, seq));
        d.setAAD(buf.subarray(0, hdr));
        d.setAuthTag(buf.subarray(rtpLen, len));
        const plain = d.update(buf.subarray(hdr, rtpLen));
        d.final();
        plain.copy(buf, hdr);
      } catch {
        return -1;
      }
    } else {
      const tag = this.authTag(buf, rtpLen, v);
      if (!timingSafeEqual(tag.subarray(0, this.tagLength), buf.subarray(rtpLen, len))) return -1;
      this.xorKeystream(buf, hdr, rtpLen, ssrc, v, seq);
    }
    // Only an authenticated packet moves the state on.
    if (!s.seen) {
      s.seen = true;
      s.sl = seq;
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

  private gcmIv(ssrc: number, roc: number, seq: number): Buffer {
    const iv = this.iv;
    iv.writeUInt16BE(0, 0);
    iv.writeUInt32BE(ssrc, 2);
    iv.writeUInt32BE(roc, 6);
    iv.writeUInt16BE(seq, 10);
    for (let i = 0; i < 12; i++) iv[i] = iv[i]! ^ this.sessionSalt[i]!;
    return iv;
  }

  /** AES-CM: IV = salt ⊕ (SSRC · 2^64) ⊕ (index · 2^16), one block per 16 payload bytes. */
  private xorKeystream(buf: Buffer, from: number, to: number, ssrc: number, roc: number, seq: number): void {
    const n = to - from;
    if (n <= 0) return;
    const blocks = Math.ceil(n / 16);
    const ctr = this.ctrBlocks!;
    const salt = this.sessionSalt;
    // The first block: bytes 0..13 from the salt, SSRC at 4..7, index (ROC ‖ SEQ) at 8..13.
    for (let i = 0; i < 14; i++) ctr[i] = salt[i]!;
    ctr[4] = ctr[4]! ^ (ssrc >>> 24); ctr[5] = ctr[5]! ^ ((ssrc >>> 16) & 0xff);
    ctr[6] = ctr[6]! ^ ((ssrc >>> 8) & 0xff); ctr[7] = ctr[7]! ^ (ssrc & 0xff);
    ctr[8] = ctr[8]! ^ (roc >>> 24); ctr[9] = ctr[9]! ^ ((roc >>> 16) & 0xff);
    ctr[10] = ctr[10]! ^ ((roc >>> 8) & 0xff); ctr[11] = ctr[11]! ^ (roc & 0xff);
    ctr[12] = ctr[12]! ^ (seq >>> 8); ctr[13] = ctr[13]! ^ (seq & 0xff);
    ctr[14] = 0; ctr[15] = 0;
    for (let b = 1; b < blocks; b++) {
      ctr.copy(ctr, b * 16, 0, 14);
      ctr[b * 16 + 14] = b >>> 8;
      ctr[b * 16 + 15] = b & 0xff;
    }
    const ks = this.ecb!.update(ctr.subarray(0, blocks * 16));
    for (let i = 0; i < n; i++) buf[from + i] = buf[from + i]! ^ ks[i]!;
  }

  /** HMAC-SHA1(auth key, packet ‖ ROC) as two one-shot hashes; the first 10 bytes are the tag. */
  private authTag(buf: Buffer, len: number, roc: number): Buffer {
    const ip = this.ipad;
    buf.copy(ip, 64, 0, len);
    ip.writeUInt32BE(roc, 64 + len);
    const inner = hash('sha1', ip.subarray(0, 64 + len + 4), 'buffer');
    inner.copy(this.opad, 64);
    return hash('sha1', this.opad, 'buffer');
  }
}
