/**
 * Opus in Ogg (RFC 7845): the identification header (OpusHead, alone on the first page) and the comment header
 * (OpusTags, on the following page(s)). Granule positions count 48 kHz samples whatever the input rate, so a
 * 20 ms packet is 960; the pre-skip (encoder lookahead, in 48 kHz samples) is dropped by the reader at the start.
 */

export interface OpusHeadFields {
  channels: number;
  /** 48 kHz samples the decoder discards at the start. */
  preSkip: number;
  /** The original input rate, informational (players may resample back to it). */
  inputSampleRate: number;
  /** Q7.8 dB; 0 = none. */
  outputGainQ8?: number;
}

/** OpusHead with channel mapping family 0 (mono or stereo, one stream). */
export function opusHead(f: OpusHeadFields): Buffer {
  if (f.channels < 1 || f.channels > 2) throw new RangeError('channel mapping family 0 carries one or two channels');
  const h = Buffer.alloc(19);
  h.write('OpusHead', 0, 'ascii');
  h[8] = 1; // version
  h[9] = f.channels;
  h.writeUInt16LE(f.preSkip, 10);
  h.writeUInt32LE(f.inputSampleRate, 12);
  h.writeInt16LE(f.outputGainQ8 ?? 0, 16);
  h[18] = 0; // mapping family
  return h;
}

/** OpusTags: a vendor string and `KEY=value` comments (UTF-8, lengths little-endian). */
export function opusTags(vendor: string, comments: string[] = []): Buffer {
  const parts: Buffer[] = [Buffer.from('OpusTags', 'ascii')];
  const str = (s: string): void => {
    const b = Buffer.from(s, 'utf8');
    const len = Buffer.alloc(4);
    len.writeUInt32LE(b.length, 0);
    parts.push(len, b);
  };
  str(vendor);
  const count = Buffer.alloc(4);
  count.writeUInt32LE(comments.length, 0);
  parts.push(count);
  for (const c of comments) str(c);
  return Buffer.concat(parts);
}

/** 48 kHz granule units per sample at `rate`. */
export const granulePerSample = (rate: number): number => 48_000 / rate;
