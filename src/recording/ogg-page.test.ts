import { describe, expect, it } from 'vitest';
import { oggPackets, parseOggPages, referenceOggCrc } from '../../test/audio/ogg.js';
import { OGG_BOS, OGG_CONTINUED, OGG_EOS, OggStream, oggCrc, oggPage } from './ogg-page.js';
import { opusHead, opusTags } from './opus-headers.js';

const bytes = (n: number, seed: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);

describe('Ogg CRC-32 (poly 0x04c11db7, init 0, no reflection, no final xor)', () => {
  it('matches the CRC-32/POSIX check value without its final xor, and a bitwise reference on random data', () => {
    // CRC-32/POSIX ("123456789") = 0x765e7680 with xorout 0xffffffff; Ogg's has no xorout.
    expect(oggCrc(Buffer.from('123456789'))).toBe((0x765e7680 ^ 0xffffffff) >>> 0); // 0x89a1897f
    expect(oggCrc(new Uint8Array(0))).toBe(0);
    for (const n of [1, 27, 300, 4096]) {
      const b = bytes(n, n);
      expect(oggCrc(b)).toBe(referenceOggCrc(b));
    }
  });

  it('a page carries the CRC of itself with the CRC field zeroed', () => {
    const page = oggPage({ headerType: OGG_BOS, granule: 0n, serial: 0x1234, sequence: 0, segments: [4], body: Buffer.from('abcd') });
    expect(page.toString('ascii', 0, 4)).toBe('OggS');
    const copy = Buffer.from(page);
    copy.writeUInt32LE(0, 22);
    expect(page.readUInt32LE(22)).toBe(referenceOggCrc(copy));
    expect(parseOggPages(page)[0]).toMatchObject({ crcOk: true, serial: 0x1234, sequence: 0, headerType: OGG_BOS, segments: [4] });
  });
});

describe('OggStream', () => {
  it('laces packets longer than 255 bytes (255, 255, …, rest; a multiple of 255 ends with a 0 segment)', () => {
    const s = new OggStream(7);
    const sizes = [100, 255, 600, 510, 0];
    sizes.forEach((n, i) => s.packet(bytes(n, i), BigInt(960 * (i + 1))));
    const [page, ...more] = s.flush();
    expect(more).toEqual([]);
    const parsed = parseOggPages(page!)[0]!;
    expect(parsed.segments).toEqual([100, 255, 0, 255, 255, 90, 255, 255, 0, 0]);
    expect(parsed).toMatchObject({ crcOk: true, granule: 960n * 5n, headerType: OGG_BOS });
    const packets = oggPackets([parsed]);
    expect(packets.map((p) => p.data.length)).toEqual(sizes);
    sizes.forEach((n, i) => expect(packets[i]!.data.equals(Buffer.from(bytes(n, i)))).toBe(true));
  });

  it('continues a packet over pages past 255 segments; a page with no packet ending on it has granule -1', () => {
    const s = new OggStream(9);
    s.packet(bytes(10, 1), 960n);
    const big = bytes(255 * 300 + 17, 2); // 301 segments
    s.packet(big, 1920n);
    s.packet(bytes(20, 3), 2880n);
    const pages = parseOggPages(Buffer.concat(s.flush()));
    expect(pages.map((p) => p.segments.length)).toEqual([255, 48]);
    expect(pages[0]).toMatchObject({ headerType: OGG_BOS, granule: 960n, sequence: 0 });
    expect(pages[1]).toMatchObject({ headerType: OGG_CONTINUED, granule: 2880n, sequence: 1 });
    const packets = oggPackets(pages);
    expect(packets.map((p) => p.data.length)).toEqual([10, big.length, 20]);
    expect(packets[1]!.data.equals(Buffer.from(big))).toBe(true);

    const t = new OggStream(10);
    t.packet(bytes(255 * 600, 4), 960n); // spans three pages, none ends a packet but the last
    const tp = parseOggPages(Buffer.concat(t.flush({ eos: true })));
    expect(tp.map((p) => p.granule)).toEqual([-1n, -1n, 960n]);
    expect(tp.map((p) => p.headerType)).toEqual([OGG_BOS, OGG_CONTINUED, OGG_CONTINUED | OGG_EOS]);
    expect(tp.every((p) => p.crcOk)).toBe(true);
  });

  it('end of stream: the last page is flagged and may trim the granule; with nothing queued an empty EOS page is written', () => {
    const s = new OggStream(11);
    s.packet(bytes(50, 1), 960n);
    s.flush();
    s.packet(bytes(50, 2), 1920n);
    const [last] = parseOggPages(Buffer.concat(s.flush({ eos: true, eosGranule: 1500n })));
    expect(last).toMatchObject({ headerType: OGG_EOS, granule: 1500n, sequence: 1 });
    expect(s.flush({ eos: true })).toEqual([]);
    expect(() => s.packet(bytes(1, 1), 0n)).toThrow(/ended/);

    const e = new OggStream(12);
    e.packet(bytes(5, 1), 0n);
    e.flush();
    const [empty] = parseOggPages(Buffer.concat(e.flush({ eos: true, eosGranule: 312n })));
    expect(empty).toMatchObject({ headerType: OGG_EOS, granule: 312n, segments: [], sequence: 1, crcOk: true });
  });
});

describe('Opus headers (RFC 7845 §5)', () => {
  it('OpusHead: magic, version 1, channels, pre-skip, input rate, gain, mapping family 0', () => {
    const h = opusHead({ channels: 2, preSkip: 312, inputSampleRate: 8000 });
    expect(h.length).toBe(19);
    expect(h.toString('ascii', 0, 8)).toBe('OpusHead');
    expect(h[8]).toBe(1);
    expect(h[9]).toBe(2);
    expect(h.readUInt16LE(10)).toBe(312);
    expect(h.readUInt32LE(12)).toBe(8000);
    expect(h.readInt16LE(16)).toBe(0);
    expect(h[18]).toBe(0);
    expect(() => opusHead({ channels: 3, preSkip: 0, inputSampleRate: 8000 })).toThrow();
  });

  it('OpusTags: magic, length-prefixed vendor, comment count and comments (UTF-8)', () => {
    const t = opusTags('vend', ['A=1', 'TITLE=é']);
    expect(t.toString('ascii', 0, 8)).toBe('OpusTags');
    expect(t.readUInt32LE(8)).toBe(4);
    expect(t.toString('utf8', 12, 16)).toBe('vend');
    expect(t.readUInt32LE(16)).toBe(2);
    expect(t.readUInt32LE(20)).toBe(3);
    expect(t.toString('utf8', 24, 27)).toBe('A=1');
    expect(t.readUInt32LE(27)).toBe(8);
    expect(t.toString('utf8', 31, 39)).toBe('TITLE=é');
    expect(t.length).toBe(39);
  });
});
