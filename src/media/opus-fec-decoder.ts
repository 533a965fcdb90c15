/**
 * What the bridge holds to decode WhatsApp's Opus with in-band FEC and concealment, whichever libopus runs it
 * (opus-fec-native.ts: the system's; opus-fec.ts: @evan/opus's WebAssembly build). Each implementation only says
 * how one opus_decode call is made.
 */
import { FRAME_SAMPLES, MAX_FRAME_SAMPLES } from './opus-codec.js';

export interface OpusFecDecoder {
  /** Frames rebuilt from FEC data. */
  fecFrames: number;
  /**
   * Decodes one packet, `packet[0, length)`, to 8 kHz mono; returns the samples written. Throws on a corrupt packet.
   * The length lets the bridge pass its reused packet buffer without a view per frame.
   */
  decode(packet: Uint8Array, out: Int16Array, length?: number): number;
  /** Rebuilds the 20 ms frame lost just before `next` from next's in-band FEC (plain concealment when it has none). */
  decodeFec(next: Uint8Array, out: Int16Array, length?: number): number;
  /** Concealment (PLC) for one lost 20 ms frame. */
  conceal(out: Int16Array): number;
  /** Frees the decoder state; the decoder is unusable (throws) afterwards. */
  destroy(): void;
}

export abstract class OpusFecDecoderBase implements OpusFecDecoder {
  fecFrames = 0;

  decode(packet: Uint8Array, out: Int16Array, length = packet.length): number {
    return this.run(packet, Math.min(length, packet.length), MAX_FRAME_SAMPLES, 0, out);
  }

  decodeFec(next: Uint8Array, out: Int16Array, length = next.length): number {
    this.fecFrames++;
    return this.run(next, Math.min(length, next.length), FRAME_SAMPLES, 1, out);
  }

  conceal(out: Int16Array): number {
    return this.run(null, 0, FRAME_SAMPLES, 0, out);
  }

  abstract destroy(): void;

  /**
   * One opus_decode of `packet[0, length)`: `packet` null conceals; `frameSize` caps the samples written; returns
   * them, throws on error.
   */
  protected abstract run(packet: Uint8Array | null, length: number, frameSize: number, fec: 0 | 1, out: Int16Array): number;
}
