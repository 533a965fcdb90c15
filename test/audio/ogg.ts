/**
 * A reader of Ogg files for tests, written from RFC 3533 independently of src/recording/ogg-page.ts:
 * parseOggPages(bytes) -> pages (header fields, lacing values, body, whether the stored CRC matches a bitwise
 * CRC-32 with polynomial 0x04c11db7, no reflection), oggPackets(pages) -> whole packets with the granule of the
 * page they end on, decodeOggOpus(bytes) -> the 8 kHz stereo audio of an Ogg/Opus file (pre-skip dropped, end
 * trimmed to the last granule) decoded with @evan/opus. A truncated last page is left out, as readers do.
 */
import { Decoder } from '@evan/opus';

export interface ParsedOggPage {
  offset: number;
  headerType: number;
  granule: bigint;
  serial: number;
  sequence: number;
  crc: number;
  crcOk: boolean;
  segments: number[];
  body: Buffer;
}

/** Bit by bit, straight from the definition (no table), to check the gateway's table-driven CRC against. */
export function referenceOggCrc(bytes: Uint8Array): number {
  let crc = 0;
  for (const byte of bytes) {
    crc ^= byte << 24;
    for (let b = 0; b < 8; b++) crc = crc & 0x80000000 ? ((crc << 1) ^ 0x04c11db7) >>> 0 : (crc << 1) >>> 0;
  }
  return crc >>> 0;
}

export function parseOggPages(bytes: Buffer): ParsedOggPage[] {
  const pages: ParsedOggPage[] = [];
  let off = 0;
  while (off + 27 <= bytes.length) {
    if (bytes.toString('ascii', off, off + 4) !== 'OggS') throw new Error(`no capture pattern at ${off}`);
    const count = bytes[off + 26]!;
    if (off + 27 + count > bytes.length) break;
    const segments = [...bytes.subarray(off + 27, off + 27 + count)];
    const bodyLen = segments.reduce((a, b) => a + b, 0);
    const end = off + 27 + count + bodyLen;
    if (end > bytes.length) break;
    const page = Buffer.from(bytes.subarray(off, end));
    const crc = page.readUInt32LE(22);
    page.writeUInt32LE(0, 22);
    pages.push({
      offset: off, headerType: bytes[off + 5]!, granule: bytes.readBigInt64LE(off + 6), serial: bytes.readUInt32LE(off + 14),
      sequence: bytes.readUInt32LE(off + 18), crc, crcOk: referenceOggCrc(page) === crc, segments, body: Buffer.from(bytes.subarray(off + 27 + count, end)),
    });
    off = end;
  }
  return pages;
}

export function oggPackets(pages: ParsedOggPage[]): { data: Buffer; granule: bigint; page: number }[] {
  const out: { data: Buffer; granule: bigint; page: number }[] = [];
  let parts: Buffer[] = [];
  pages.forEach((p, i) => {
    let pos = 0;
    for (const s of p.segments) {
      parts.push(p.body.subarray(pos, pos + s));
      pos += s;
      if (s < 255) {
        out.push({ data: Buffer.concat(parts), granule: p.granule, page: i });
        parts = [];
      }
    }
  });
  return out;
}

/** Decodes the file's audio packets at 8 kHz stereo, dropping pre-skip and trimming to the last granule. */
export function decodeOggOpus(file: Buffer): { left: Int16Array; right: Int16Array; preSkip: number; channels: number; rate: number; tags: string } {
  const pages = parseOggPages(file);
  const packets = oggPackets(pages);
  const head = packets[0]!.data;
  const channels = head[9]!;
  const preSkip = head.readUInt16LE(10);
  const dec = new Decoder({ channels: 2, sample_rate: 8000 });
  const chunks: Int16Array[] = [];
  for (const p of packets.slice(2)) {
    const out = dec.decode(p.data);
    chunks.push(new Int16Array(out.buffer.slice(out.byteOffset, out.byteOffset + out.byteLength)));
  }
  const all = new Int16Array(chunks.reduce((n, c) => n + c.length, 0));
  let o = 0;
  for (const c of chunks) { all.set(c, o); o += c.length; }
  const last = pages[pages.length - 1]!.granule;
  const start = (preSkip / 6) | 0;
  const end = Math.min(all.length / 2, Number(last) / 6);
  const n = end - start;
  const left = new Int16Array(n);
  const right = new Int16Array(n);
  for (let i = 0; i < n; i++) { left[i] = all[2 * (start + i)]!; right[i] = all[2 * (start + i) + 1]!; }
  return { left, right, preSkip, channels, rate: head.readUInt32LE(12), tags: packets[1]!.data.toString('utf8') };
}
