/**
 * SRTP packet crypto in the media addon (native/srtp_crypto.c, OpenSSL with AES-NI and PCLMULQDQ). SrtpContext
 * keeps the rollover counters, replay state and padding in TypeScript and hands each packet's cipher and tag work
 * here: one native call instead of the JS GHASH / SHA-1 loops, whose per-key tables (8 KiB per GCM key) a hundred
 * calls' contexts push out of the CPU cache between one packet and the next.
 */
import { loadMediaAddon } from './native-addon.js';

/** Opaque: the context's OpenSSL state, freed when the handle is garbage-collected. */
export type NativeSrtpHandle = { readonly __nativeSrtp: unique symbol };

interface SrtpCryptoAddon {
  srtpCreate(profile: number, sessionKey: Uint8Array, sessionSalt: Uint8Array, authKey?: Uint8Array): NativeSrtpHandle | number;
  srtpProtect(h: NativeSrtpHandle, buf: Uint8Array, hdrLen: number, len: number, roc: number): number;
  srtpUnprotect(h: NativeSrtpHandle, buf: Uint8Array, hdrLen: number, len: number, roc: number): number;
}

export class NativeSrtpCrypto {
  private constructor(
    private readonly lib: SrtpCryptoAddon,
    private readonly h: NativeSrtpHandle,
  ) {}

  /** The native crypto for these session keys, or null without the addon or OpenSSL symbols (the JS path then). */
  static create(profile: number, sessionKey: Uint8Array, sessionSalt: Uint8Array, authKey?: Uint8Array): NativeSrtpCrypto | null {
    const lib = loadMediaAddon<SrtpCryptoAddon>();
    if (!lib || typeof lib.srtpCreate !== 'function') return null;
    const h = authKey ? lib.srtpCreate(profile, sessionKey, sessionSalt, authKey) : lib.srtpCreate(profile, sessionKey, sessionSalt);
    return typeof h === 'number' ? null : new NativeSrtpCrypto(lib, h);
  }

  /** Encrypts buf[hdr, len) in place and appends the tag; the SRTP length, or -1. */
  protect(buf: Uint8Array, hdr: number, len: number, roc: number): number {
    return this.lib.srtpProtect(this.h, buf, hdr, len, roc);
  }

  /** Authenticates buf[0, len) (tag included) and decrypts it in place; the RTP length, or -1 (buf untouched). */
  unprotect(buf: Uint8Array, hdr: number, len: number, roc: number): number {
    return this.lib.srtpUnprotect(this.h, buf, hdr, len, roc);
  }
}

/** Whether SRTP runs on the addon's OpenSSL here. */
export function nativeSrtpAvailable(): boolean {
  return NativeSrtpCrypto.create(7, new Uint8Array(16), new Uint8Array(14)) !== null;
}
