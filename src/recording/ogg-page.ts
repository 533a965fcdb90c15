/**
 * Ogg pages (RFC 3533): packets are laced into 255-byte segments, at most 255 segments a page; a packet that does not
 * fit continues on the next page (header type bit 0x01). A page's granule position is that of the last packet that
 * completes on it, or -1 when none does. The CRC is Ogg's own CRC-32: polynomial 0x04c11db7, initial value 0, no
 * reflection, no final xor, computed over the whole page with its CRC field zeroed.
 */

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let r = i << 24;
    for (let b = 0; b < 8; b++) r = r & 0x80000000 ? (r << 1) ^ 0x04c11db7 : r << 1;
    t[i] = r >>> 0;
  }
  return t;
})();

export function oggCrc(bytes: Uint8Array, crc = 0): number {
  for (let i = 0; i < bytes.length; i++) crc = ((crc << 8) ^ CRC_TABLE[((crc >>> 24) ^ bytes[i]!) & 0xff]!) >>> 0;
  return crc >>> 0;
}

export const OGG_CONTINUED = 0x01;
export const OGG_BOS = 0x02;
export const OGG_EOS = 0x04;

export interface OggPageFields {
  headerType: number;
  /** -1 when no packet completes on the page. */
  granule: bigint;
  serial: number;
  sequence: number;
  /** Lacing values (0–255 each, at most 255). */
  segments: number[];
  body: Uint8Array;
}

/** One page's bytes, CRC included. */
export function oggPage(p: OggPageFields): Buffer {
  if (p.segments.length > 255) throw new RangeError(`an Ogg page holds at most 255 segments, not ${p.segments.length}`);
  const head = 27 + p.segments.length;
  const page = Buffer.alloc(head + p.body.length);
  page.write('OggS', 0, 'ascii');
  page[4] = 0; // stream structure version
  page[5] = p.headerType;
  page.writeBigInt64LE(p.granule, 6);
  page.writeUInt32LE(p.serial >>> 0, 14);
  page.writeUInt32LE(p.sequence >>> 0, 18);
  page[26] = p.segments.length;
  for (let i = 0; i < p.segments.length; i++) page[27 + i] = p.segments[i]!;
  page.set(p.body, head);
  page.writeUInt32LE(oggCrc(page), 22);
  return page;
}

interface QueuedPacket {
  data: Uint8Array;
  granule: bigint;
}

/**
 * One logical stream's pages. Packets are queued with the granule position reached at their end; flush() lays them
 * out in as many pages as needed (a page ends with the last queued packet, so each flush leaves no partial packet
 * behind and a reader of the file so far gets whole packets only).
 */
export class OggStream {
  private sequence = 0;
  private queue: QueuedPacket[] = [];
  private begun = false;
  private ended = false;

  constructor(readonly serial: number) {}

  get pagesWritten(): number {
    return this.sequence;
  }

  packet(data: Uint8Array, granule: bigint): void {
    if (this.ended) throw new Error('the Ogg stream has ended');
    this.queue.push({ data, granule });
  }

  get queued(): number {
    return this.queue.length;
  }

  /**
   * Pages for every queued packet. `eos` marks the last page (with no packet queued, an empty EOS page is emitted,
   * its granule `eosGranule`); `eosGranule` also replaces the last packet's granule, for end trimming (RFC 7845 §4.5).
   */
  flush(opts: { eos?: boolean; eosGranule?: bigint } = {}): Buffer[] {
    if (this.ended) return [];
    const pages: Buffer[] = [];
    const packets = this.queue;
    this.queue = [];
    if (opts.eos && opts.eosGranule !== undefined && packets.length > 0) packets[packets.length - 1]!.granule = opts.eosGranule;
    let segments: number[] = [];
    let parts: Uint8Array[] = [];
    let granule = -1n;
    // Whether the page being filled starts with the rest of a packet begun on the previous page.
    let continued = false;
    const emit = (last: boolean): void => {
      let type = continued ? OGG_CONTINUED : 0;
      if (!this.begun) type |= OGG_BOS;
      if (last && opts.eos) type |= OGG_EOS;
      pages.push(oggPage({ headerType: type, granule, serial: this.serial, sequence: this.sequence++, segments, body: Buffer.concat(parts) }));
      this.begun = true;
      segments = [];
      parts = [];
      granule = -1n;
    };
    for (const { data, granule: g } of packets) {
      // A packet of length L is floor(L/255) segments of 255 and one of L % 255 (0 when L is a multiple of 255).
      let off = 0;
      for (;;) {
        if (segments.length === 255) {
          emit(false);
          continued = off > 0;
        }
        const n = Math.min(255, data.length - off);
        segments.push(n);
        parts.push(data.subarray(off, off + n));
        off += n;
        if (n < 255) break;
      }
      granule = g;
    }
    if (segments.length > 0 || opts.eos) {
      // With nothing queued, an EOS page carries no packet and the final granule.
      if (segments.length === 0 && opts.eosGranule !== undefined) granule = opts.eosGranule;
      emit(true);
    }
    if (opts.eos) this.ended = true;
    return pages;
  }
}
