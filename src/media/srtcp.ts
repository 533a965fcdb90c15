/**
 * SRTCP for both WhatsApp legs (srtcp-reporter.ts; on werift's fallback RTP path werift does its own): RFC 3711 §3.4
 * for the AES-CM suites, RFC 7714 §9 for AEAD_AES_128_GCM. A report every few seconds per call, so each packet simply
 * gets its own cipher from node:crypto.
 *
 *   AES-CM: first 8 bytes of the RTCP header in clear ‖ encrypted rest ‖ E(1 bit)‖SRTCP index(31) ‖ tag(10)
 *   GCM:    first 8 bytes of the RTCP header in clear ‖ encrypted rest ‖ tag(16) ‖ E‖SRTCP index
 *
 * There is no replay list: a replayed report only repeats statistics the leg already read.
 */
import { createCipheriv, createDecipheriv, createHmac, timingSafeEqual } from 'node:crypto';
import { deriveSrtpKey } from './srtp.js';

/** What the reporter needs of either suite. */
export interface Srtcp {
  /** Encrypts and authenticates the compound RTCP packet rtcp[0, len) (E flag set) into a new buffer. */
  protect(rtcp: Uint8Array, len?: number): Buffer;
  /**
   * The plain compound RTCP packet, or null when it is malformed or fails authentication. `mkiLength`: the MKI the
   * remote puts in each packet (RFC 4568 `|MKI:len`), which each suite places where its RFC says.
   */
  unprotect(buf: Uint8Array, len?: number, mkiLength?: number): Buffer | null;
}

const TAG = 10;

export class SrtcpContext implements Srtcp {
  private readonly encKey: Buffer;
  private readonly authKey: Buffer;
  private readonly salt: Buffer;
  /** SRTCP index of the next packet we protect. */
  private index = 0;

  constructor(masterKey: Buffer, masterSalt: Buffer) {
    this.encKey = deriveSrtpKey(masterKey, masterSalt, 0x03, 16);
    this.authKey = deriveSrtpKey(masterKey, masterSalt, 0x04, 20);
    this.salt = deriveSrtpKey(masterKey, masterSalt, 0x05, 14);
  }

  /** Encrypts and authenticates the compound RTCP packet rtcp[0, len) (E flag set) into a new buffer. */
  protect(rtcp: Uint8Array, len = rtcp.length): Buffer {
    if (len < 8) throw new RangeError('SRTCP protect: an RTCP packet has at least 8 bytes');
    const out = Buffer.alloc(len + 4 + TAG);
    out.set(rtcp.subarray(0, 8), 0);
    const index = this.index;
    this.index = (this.index + 1) & 0x7fffffff;
    const c = createCipheriv('aes-128-ctr', this.encKey, this.iv(out.readUInt32BE(4), index));
    const enc = c.update(rtcp.subarray(8, len));
    enc.copy(out, 8);
    out.writeUInt32BE((0x80000000 | index) >>> 0, len);
    this.mac(out, len + 4).copy(out, len + 4, 0, TAG);
    return out;
  }

  /** RFC 3711 §3.4: the MKI sits between the E‖index word and the tag, and is not authenticated. */
  unprotect(buf: Uint8Array, len = buf.length, mkiLength = 0): Buffer | null {
    if (len < 8 + 4 + mkiLength + TAG) return null;
    const tagAt = len - TAG;
    const authEnd = tagAt - mkiLength;
    const packet = Buffer.from(buf.buffer, buf.byteOffset, len);
    const tag = this.mac(packet, authEnd).subarray(0, TAG);
    if (!timingSafeEqual(tag, packet.subarray(tagAt, len))) return null;
    const word = packet.readUInt32BE(authEnd - 4);
    const out = Buffer.from(packet.subarray(0, authEnd - 4));
    if (word & 0x80000000) {
      const c = createCipheriv('aes-128-ctr', this.encKey, this.iv(out.readUInt32BE(4), word & 0x7fffffff));
      c.update(out.subarray(8)).copy(out, 8);
    }
    return out;
  }

  /** IV = (k_s · 2^16) XOR (SSRC · 2^64) XOR (index · 2^16), RFC 3711 §4.1.1. */
  private iv(ssrc: number, index: number): Buffer {
    const iv = Buffer.alloc(16);
    this.salt.copy(iv, 0);
    iv.writeUInt32BE((iv.readUInt32BE(4) ^ ssrc) >>> 0, 4);
    iv.writeUInt32BE((iv.readUInt32BE(10) ^ index) >>> 0, 10);
    return iv;
  }

  private mac(buf: Buffer, len: number): Buffer {
    return createHmac('sha1', this.authKey).update(buf.subarray(0, len)).digest();
  }
}

const GCM_TAG = 16;

/** SRTCP with AEAD_AES_128_GCM (RFC 7714 §9): the tag covers the clear header and the E‖index word as AAD. */
export class SrtcpGcmContext implements Srtcp {
  private readonly encKey: Buffer;
  private readonly salt: Buffer;
  private index = 0;

  constructor(masterKey: Buffer, masterSalt: Buffer) {
    this.encKey = deriveSrtpKey(masterKey, masterSalt, 0x03, 16);
    this.salt = deriveSrtpKey(masterKey, masterSalt, 0x05, 12);
  }

  protect(rtcp: Uint8Array, len = rtcp.length): Buffer {
    if (len < 8) throw new RangeError('SRTCP protect: an RTCP packet has at least 8 bytes');
    const out = Buffer.alloc(len + GCM_TAG + 4);
    out.set(rtcp.subarray(0, 8), 0);
    const index = this.index;
    this.index = (this.index + 1) & 0x7fffffff;
    const word = (0x80000000 | index) >>> 0;
    out.writeUInt32BE(word, len + GCM_TAG);
    const c = createCipheriv('aes-128-gcm', this.encKey, this.iv(out.readUInt32BE(4), index));
    c.setAAD(Buffer.concat([out.subarray(0, 8), out.subarray(len + GCM_TAG)]));
    c.update(rtcp.subarray(8, len)).copy(out, 8);
    c.final();
    c.getAuthTag().copy(out, len);
    return out;
  }

  /** RFC 7714 §9: the MKI ends the packet. */
  unprotect(buf: Uint8Array, len = buf.length, mkiLength = 0): Buffer | null {
    len -= mkiLength;
    if (len < 8 + GCM_TAG + 4) return null;
    const packet = Buffer.from(buf.buffer, buf.byteOffset, len);
    const wordAt = len - 4;
    const tagAt = wordAt - GCM_TAG;
    const word = packet.readUInt32BE(wordAt);
    const encrypted = (word & 0x80000000) !== 0;
    const d = createDecipheriv('aes-128-gcm', this.encKey, this.iv(packet.readUInt32BE(4), word & 0x7fffffff));
    d.setAuthTag(packet.subarray(tagAt, wordAt));
    // E = 0 (RFC 7714 §9.2): nothing is encrypted and the whole packet is AAD.
    d.setAAD(Buffer.concat([packet.subarray(0, encrypted ? 8 : tagAt), packet.subarray(wordAt)]));
    const out = Buffer.from(packet.subarray(0, tagAt));
    try {
      if (encrypted) d.update(packet.subarray(8, tagAt)).copy(out, 8);
      d.final();
    } catch {
      return null;
    }
    return out;
  }

  /** IV = salt XOR (0x0000 ‖ SSRC ‖ 0x0000 ‖ 0 ‖ SRTCP index), RFC 7714 §9.1. */
  private iv(ssrc: number, index: number): Buffer {
    const iv = Buffer.from(this.salt);
    iv.writeUInt32BE((iv.readUInt32BE(2) ^ ssrc) >>> 0, 2);
    iv.writeUInt32BE((iv.readUInt32BE(8) ^ index) >>> 0, 8);
    return iv;
  }
}
