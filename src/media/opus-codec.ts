/**
 * Opus for the gateway's 8 kHz narrowband pivot, over @evan/opus (libopus 1.3 via a prebuilt native addon,
 * falling back to wasm). libopus decodes any Opus packet straight to 8 kHz and encodes from 8 kHz, so no
 * resampler sits in the hot loop; the RTP clock stays 48 kHz (960 ticks per 20 ms) whatever the PCM rate.
 *
 * Allocation: the package's public encode()/decode() copy their result out of a shared native buffer on
 * every call. When the native addon is loaded we call the addon's methods directly and read that shared
 * buffer ourselves, so a frame costs no allocation. The public API remains the fallback (wasm build).
 *
 * Packet-loss concealment: the binding refuses an empty packet, but libopus conceals a frame when a packet
 * carries a TOC byte and no frame data (opus_decode_frame with len <= 1), for the duration the TOC states.
 * FEC decoding (decode_fec=1) is not reachable through the package's addon: for a sender that uses in-band FEC,
 * src/media/opus-fec.ts decodes on the system's libopus (the media addon) or on the package's libopus wasm build. Inband FEC is produced by our encoder.
 */
import { createRequire } from 'node:module';
import { Decoder, Encoder } from '@evan/opus';
import type { GovernedEncoder } from './encoder-load-governor.js';
import { copyInto } from './types.js';

export const PCM_RATE = 8000;
export const FRAME_MS = 20;
/** Samples per 20 ms frame at 8 kHz. */
export const FRAME_SAMPLES = 160;
/** Opus RTP clock ticks per 20 ms frame. */
export const OPUS_TICKS_PER_FRAME = 960;
/** Largest Opus packet duration (120 ms) at 8 kHz. */
export const MAX_FRAME_SAMPLES = 960;
/** bit/s: narrowband SILK gains nothing above ~20–24 kbit/s. */
export const DEFAULT_OPUS_BITRATE = 24_000;

interface NativeCodecProto {
  decode(this: Decoder, packet: ArrayBufferView): number;
  encode(this: Encoder, pcm: ArrayBufferView): number;
}

interface NativeFastPath {
  decode: (this: Decoder, packet: ArrayBufferView) => number;
  encode: (this: Encoder, pcm: ArrayBufferView) => number;
  decodeBuf: Int16Array;
  encodeBuf: Uint8Array;
}

function loadFastPath(): NativeFastPath | null {
  if (process.env.OPUS_FORCE_WASM) return null;
  try {
    const require = createRequire(import.meta.url);
    const mod = require('@evan/opus/node/index.js') as {
      Decoder: { prototype: object };
      Encoder: { prototype: object };
      buffers?: { decoder(): Uint8Array; encoder(): Uint8Array };
    };
    if (!mod.buffers) return null;
    // The package wraps the addon class once (to slice the result); the addon's own method returns a byte count.
    if (Object.getPrototypeOf(Decoder.prototype) !== mod.Decoder.prototype) return null;
    const dec = Object.getPrototypeOf(mod.Decoder.prototype) as Partial<NativeCodecProto>;
    const enc = Object.getPrototypeOf(mod.Encoder.prototype) as Partial<NativeCodecProto>;
    if (typeof dec.decode !== 'function' || typeof enc.encode !== 'function') return null;
    const d = mod.buffers.decoder();
    const e = mod.buffers.encoder();
    return {
      decode: dec.decode,
      encode: enc.encode,
      decodeBuf: new Int16Array(d.buffer, d.byteOffset, d.byteLength >> 1),
      encodeBuf: new Uint8Array(e.buffer, e.byteOffset, e.byteLength),
    };
  } catch {
    return null;
  }
}

const fast = loadFastPath();

/** True when the allocation-free native path is in use (for diagnostics and the benchmark). */
export const opusFastPath = fast !== null;

export class OpusDecoder8k {
  private readonly dec = new Decoder({ channels: 1, sample_rate: PCM_RATE });
  /** TOC of the last good packet, reused to ask libopus to conceal a frame of the same mode and duration. */
  private plcToc = new Uint8Array([1 << 3]); // config 1: SILK narrowband 20 ms, until a real packet arrives

  /**
   * Decodes one Opus packet, `packet[0, length)` (any rate or channel count; stereo is downmixed), to 8 kHz mono in
   * `out`. Returns the number of samples written (160 for a 20 ms packet). Throws on a corrupt packet.
   */
  decode(packet: Uint8Array, out: Int16Array, length = packet.length): number {
    if (length <= 0) return this.conceal(out);
    this.plcToc[0] = packet[0]! & 0xfc;
    // The package's addon decodes a whole view.
    return this.run(length < packet.length ? packet.subarray(0, length) : packet, out);
  }

  /** Produces a concealment frame for one lost packet; returns the number of samples written. */
  conceal(out: Int16Array): number {
    return this.run(this.plcToc, out);
  }

  reset(): void {
    this.dec.reset();
  }

  private run(packet: Uint8Array, out: Int16Array): number {
    if (fast) {
      const n = fast.decode.call(this.dec, packet) >> 1;
      if (n > out.length) throw new RangeError(`Opus frame of ${n} samples exceeds the ${out.length}-sample buffer`);
      copyInto(out, 0, fast.decodeBuf, 0, n);
      return n;
    }
    const bytes = this.dec.decode(packet);
    const n = bytes.byteLength >> 1;
    if (n > out.length) throw new RangeError(`Opus frame of ${n} samples exceeds the ${out.length}-sample buffer`);
    out.set(new Int16Array(bytes.buffer, bytes.byteOffset, n));
    return n;
  }
}

export interface OpusEncoderOptions {
  /** Target bitrate in bit/s (narrowband SILK saturates around 20–24 kbit/s). */
  bitrate?: number;
  /** 0–10: CPU for quality; 5 costs ~25 % less than the default 9 with little audible difference at 8 kHz. */
  complexity?: number;
  /** Inband FEC (LBRR): the next packet carries a coarse copy of this one. */
  inbandFec?: boolean;
  /** Expected loss in percent; libopus only spends bits on FEC when this is > 0. */
  expectedLossPercent?: number;
  /**
   * The expected loss follows the receiver's RTCP reports (OpusLossAdapter in the bridge); expectedLossPercent is
   * then the prior until the first report. Default true.
   */
  lossAdaptive?: boolean;
  /**
   * The lowest complexity the load governor may bring it to (encoder-load-governor.ts; the Bridge enlists it); default
   * 0. The gateway sets it to `complexity` when media.opusLoadAdaptive is off.
   */
  minComplexity?: number;
}

const clampComplexity = (c: number): number => Math.max(0, Math.min(10, Math.round(c)));

export class OpusEncoder8k implements GovernedEncoder {
  private readonly enc = new Encoder({ channels: 1, sample_rate: PCM_RATE, application: 'voip' });
  readonly maxComplexity: number;
  readonly minComplexity: number;

  constructor(opts: OpusEncoderOptions = {}) {
    const { bitrate = DEFAULT_OPUS_BITRATE, complexity = 5, inbandFec = true, expectedLossPercent = inbandFec ? 5 : 0 } = opts;
    this.maxComplexity = clampComplexity(complexity);
    this.minComplexity = Math.min(this.maxComplexity, clampComplexity(opts.minComplexity ?? 0));
    this.enc.bitrate = bitrate;
    this.enc.complexity = this.maxComplexity as Encoder['complexity'];
    this.enc.signal = 'voice';
    this.enc.inband_fec = inbandFec;
    this.enc.packet_loss = expectedLossPercent;
    // DTX would stop packets during silence, and Meta hangs up after 20–30 s without business packets.
    this.enc.dtx = false;
  }

  setComplexity(complexity: number): void {
    const c = clampComplexity(complexity);
    if (this.enc.complexity !== c) this.enc.complexity = c as Encoder['complexity'];
  }

  /** Encodes one 20 ms frame (160 samples at 8 kHz) into `out`; returns the packet length in bytes. */
  encode(pcm: Int16Array, out: Uint8Array): number {
    if (pcm.length !== FRAME_SAMPLES) throw new RangeError(`Opus encoder expects ${FRAME_SAMPLES} samples, got ${pcm.length}`);
    if (fast) {
      const n = fast.encode.call(this.enc, pcm);
      if (n > out.length) throw new RangeError(`Opus packet of ${n} bytes exceeds the ${out.length}-byte buffer`);
      copyInto(out, 0, fast.encodeBuf, 0, n);
      return n;
    }
    const bytes = this.enc.encode(pcm);
    if (bytes.length > out.length) throw new RangeError(`Opus packet of ${bytes.length} bytes exceeds the ${out.length}-byte buffer`);
    out.set(bytes);
    return bytes.length;
  }

  /** Expected loss in percent (0–100): with in-band FEC on, libopus adds FEC only while this is above 0. */
  setExpectedLoss(percent: number): void {
    const p = Math.max(0, Math.min(100, Math.round(percent)));
    if (this.enc.packet_loss !== p) this.enc.packet_loss = p;
  }

  get settings(): { bitrate: number; complexity: number; inbandFec: boolean; packetLoss: number; dtx: boolean } {
    return { bitrate: this.enc.bitrate, complexity: this.enc.complexity, inbandFec: this.enc.inband_fec, packetLoss: this.enc.packet_loss, dtx: this.enc.dtx };
  }
}

/**
 * Encodes one frame with any @evan/opus Encoder (e.g. a stereo one: `pcm` interleaved) into `out` over the
 * allocation-free native path when loaded; returns the packet length in bytes.
 */
export function encodeWith(enc: Encoder, pcm: Int16Array, out: Uint8Array): number {
  const bytes = fast ? null : enc.encode(pcm);
  const n = fast ? fast.encode.call(enc, pcm) : bytes!.length;
  if (n > out.length) throw new RangeError(`Opus packet of ${n} bytes exceeds the ${out.length}-byte buffer`);
  out.set(fast ? fast.encodeBuf.subarray(0, n) : bytes!);
  return n;
}
