import { createHmac, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { HmacSha1 } from './sha1.js';

function nodeHmac(key: Buffer, data: Buffer, suffix: number): Buffer {
  const s = Buffer.alloc(4);
  s.writeUInt32BE(suffix >>> 0);
  return createHmac('sha1', key).update(data).update(s).digest();
}

describe('HmacSha1', () => {
  it('matches Node HMAC-SHA1 over data ‖ 32-bit suffix for every length across the block boundaries', () => {
    for (const keyLen of [20, 1, 64]) {
      const key = randomBytes(keyLen);
      const h = new HmacSha1(key);
      const data = randomBytes(1600);
      const out = Buffer.alloc(20);
      for (let len = 0; len <= 300; len++) {
        const suffix = (Math.random() * 2 ** 32) >>> 0;
        h.mac(data, len, suffix);
        h.writeDigest(out, 0, 20);
        expect(out.equals(nodeHmac(key, data.subarray(0, len), suffix)), `key ${keyLen} len ${len}`).toBe(true);
      }
      for (const len of [1400, 1499, 1500, 1600]) {
        h.mac(data, len, 0xffffffff);
        h.writeDigest(out, 0, 20);
        expect(out.equals(nodeHmac(key, data.subarray(0, len), 0xffffffff)), `len ${len}`).toBe(true);
      }
    }
  });

  it('compares a truncated tag and rejects any one-bit difference', () => {
    const h = new HmacSha1(randomBytes(20));
    const data = randomBytes(100);
    h.mac(data, 90, 7);
    const tag = Buffer.alloc(10);
    h.writeDigest(tag, 0, 10);
    expect(h.equalsDigest(tag, 0, 10)).toBe(true);
    for (let bit = 0; bit < 80; bit++) {
      const t = Buffer.from(tag);
      t[bit >> 3] = t[bit >> 3]! ^ (1 << (bit & 7));
      expect(h.equalsDigest(t, 0, 10)).toBe(false);
    }
  });

  it('refuses keys longer than a block', () => {
    expect(() => new HmacSha1(randomBytes(65))).toThrow(RangeError);
  });
});
