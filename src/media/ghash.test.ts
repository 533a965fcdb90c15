import { createCipheriv, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Ghash } from './ghash.js';

function aesBlock(key: Buffer, block: Buffer): Buffer {
  const c = createCipheriv('aes-128-ecb', key, null);
  c.setAutoPadding(false);
  return c.update(block);
}

describe('Ghash', () => {
  it("gives Node's aes-128-gcm tag as E(K, J0) ⊕ GHASH(AAD, ciphertext) for random lengths", () => {
    for (let i = 0; i < 300; i++) {
      const key = randomBytes(16);
      const iv = randomBytes(12);
      const aad = randomBytes(i < 40 ? i : Math.floor(Math.random() * 80));
      const text = randomBytes(i < 100 ? i : Math.floor(Math.random() * 1500));
      const c = createCipheriv('aes-128-gcm', key, iv);
      c.setAAD(aad);
      const ct = Buffer.concat([c.update(text), c.final()]);
      const tag = c.getAuthTag();
      const g = new Ghash(aesBlock(key, Buffer.alloc(16)));
      g.reset();
      g.update(aad, 0, aad.length);
      g.update(ct, 0, ct.length);
      g.finish(aad.length, ct.length);
      const mask = aesBlock(key, Buffer.concat([iv, Buffer.from([0, 0, 0, 1])]));
      const ours = Buffer.alloc(16);
      for (let j = 0; j < 16; j++) ours[j] = g.byte(j) ^ mask[j]!;
      expect(ours.equals(tag), `aad ${aad.length} text ${text.length}`).toBe(true);
    }
  });

  it('reads input at an offset and restarts cleanly after reset()', () => {
    const g = new Ghash(randomBytes(16));
    const data = randomBytes(200);
    const snapshot = (): string => Array.from({ length: 16 }, (_, j) => g.byte(j)).join(',');
    g.reset();
    g.update(data, 7, 100);
    g.finish(0, 100);
    const first = snapshot();
    g.reset();
    g.update(Buffer.from(data.subarray(7, 107)), 0, 100);
    g.finish(0, 100);
    expect(snapshot()).toBe(first);
  });
});
