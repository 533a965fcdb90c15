/**
 * OpusFecDecoder8k's API (opus-fec.ts) on the system's libopus, through the media addon (native/opus_fec.c opens
 * libopus.so.0 with dlopen). Same libopus calls as the wasm build (opus_decode with decode_fec, NULL data for
 * concealment), 1.3-1.7x less CPU per frame; each decoder's state is its own malloc'd block, and the PCM is written
 * straight into the caller's Int16Array. Unavailable (nativeOpusFecVersion() null) without the addon or without
 * libopus0, and then opus-fec.ts keeps the wasm decoder.
 */
import { loadMediaAddon } from './native-addon.js';
import { OpusFecDecoderBase } from './opus-fec-decoder.js';

/** Opaque: the decoder's memory, owned by the addon (freed by destroy(), or when the handle is collected). */
export type NativeOpusFecHandle = { readonly __nativeOpusFec: unique symbol };

export interface OpusFecAddon {
  /** libopus's version string, or null when libopus.so.0 cannot be opened. */
  opusFecAvailable(): string | null;
  /** A new 8 kHz mono decoder, or a negative errno. */
  opusFecCreate(): NativeOpusFecHandle | number;
  /** Samples written to pcm, or a negative libopus error; packet null (or packetLength 0) conceals. */
  opusFecDecode(handle: NativeOpusFecHandle, packet: Uint8Array | null, packetLength: number, pcm: Int16Array, frameSize: number, decodeFec: 0 | 1): number;
  opusFecDestroy(handle: NativeOpusFecHandle): number;
}

/** Same bound as the wasm decoder's packet buffer, so both refuse the same packets. */
const MAX_PACKET = 1500;
/** libopus's frame sizes are multiples of 2.5 ms: 20 samples at 8 kHz. */
const STEP = 20;

let lib: OpusFecAddon | null | undefined;
let version: string | null = null;

function load(): OpusFecAddon | null {
  if (lib !== undefined) return lib;
  const addon = loadMediaAddon<Partial<OpusFecAddon>>();
  // An addon built before opus_fec.c existed has no such functions.
  if (!addon || typeof addon.opusFecAvailable !== 'function' || typeof addon.opusFecCreate !== 'function') {
    lib = null;
    return lib;
  }
  version = addon.opusFecAvailable();
  lib = version === null ? null : (addon as OpusFecAddon);
  return lib;
}

/** libopus's version string (e.g. "libopus 1.3.1") when the native decoder is usable, else null. */
export function nativeOpusFecVersion(): string | null {
  load();
  return version;
}

export class NativeOpusFecDecoder8k extends OpusFecDecoderBase {
  private readonly lib: OpusFecAddon;
  private handle: NativeOpusFecHandle | null;

  constructor() {
    super();
    const l = load();
    if (!l) throw new Error('native libopus not available (media addon or libopus.so.0 missing): no native FEC decoding');
    const h = l.opusFecCreate();
    if (typeof h === 'number') throw new Error(`native Opus decoder not created (${h})`);
    this.lib = l;
    this.handle = h;
  }

  /** Frees the decoder state now; the decoder is unusable afterwards. */
  destroy(): void {
    if (this.handle) this.lib.opusFecDestroy(this.handle);
    this.handle = null;
  }

  protected run(packet: Uint8Array | null, length: number, frameSize: number, fec: 0 | 1, out: Int16Array): number {
    if (!this.handle) throw new Error('Opus decoder destroyed');
    if (packet && length > MAX_PACKET) throw new RangeError('Opus packet too large');
    // The most samples libopus may write: the frame's size capped by the caller's buffer, in whole 2.5 ms steps.
    const size = Math.min(frameSize, out.length - (out.length % STEP));
    const n = this.lib.opusFecDecode(this.handle, packet, packet ? length : 0, out, size, fec);
    if (n < 0) throw new Error(`opus_decode failed (${n})`);
    return n;
  }
}
