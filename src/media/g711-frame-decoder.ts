/**
 * G.711 frames from WhatsApp (when Meta carries G.711, wa-audio-codec.ts) with the decoder interface the bridge uses
 * for Opus: decode a packet, or conceal a missing one. G.711 has no codec-side concealment, so a lost frame repeats
 * the last one, 6 dB quieter for each further frame lost (a plain form of G.711 Appendix I's waveform repetition):
 * a single loss is hardly heard, a long gap fades out instead of buzzing.
 */
import { decodeG711, type G711Law } from './g711.js';
import { copyInto } from './types.js';

export class G711FrameDecoder {
  private readonly last: Int16Array;
  private lastLength = 0;
  private gainShift = 0;

  constructor(private readonly law: G711Law, maxSamples = 960) {
    this.last = new Int16Array(maxSamples);
  }

  decode(packet: Uint8Array, out: Int16Array, length = packet.length): number {
    if (length <= 0) return this.conceal(out);
    const n = decodeG711(this.law, packet, 0, Math.min(length, this.last.length), out);
    copyInto(this.last, 0, out, 0, n);
    this.lastLength = n;
    this.gainShift = 0;
    return n;
  }

  conceal(out: Int16Array): number {
    const n = Math.min(this.lastLength, out.length);
    this.gainShift = Math.min(this.gainShift + 1, 15);
    for (let i = 0; i < n; i++) out[i] = this.last[i]! >> this.gainShift;
    return n;
  }
}
