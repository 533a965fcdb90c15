import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { useNativeX25519 } from './native-x25519.js';
import { requireFromWerift } from './werift-require.js';

interface NaclLike {
  box: { keyPair(): { publicKey: Uint8Array; secretKey: Uint8Array } };
  scalarMult: ((n: Uint8Array, p: Uint8Array) => Uint8Array) & { base(n: Uint8Array): Uint8Array };
  lowlevel: { crypto_scalarmult(q: Uint8Array, n: Uint8Array, p: Uint8Array): number };
}

// The copy werift's DTLS code uses.
const nacl = requireFromWerift('tweetnacl') as NaclLike;
/** tweetnacl's own scalar multiplication (not replaced), as the reference. */
function reference(n: Uint8Array, p: Uint8Array): Buffer {
  const q = new Uint8Array(32);
  nacl.lowlevel.crypto_scalarmult(q, n, p);
  return Buffer.from(q);
}

describe('useNativeX25519', () => {
  it("replaces werift's tweetnacl key pair and shared secret with node:crypto, giving the same bytes", () => {
    const before = nacl.scalarMult;
    expect(useNativeX25519()).toBe(true);
    expect(nacl.scalarMult).not.toBe(before);
    expect(nacl.box.keyPair).toHaveProperty('fromSecretKey'); // what hung on the originals is still there
    for (let i = 0; i < 20; i++) {
      const ours = nacl.box.keyPair();
      const theirs = nacl.box.keyPair();
      expect(ours.secretKey.byteLength).toBe(32);
      // As werift holds them: a Buffer over the key's own memory (it must be exactly the 32 bytes).
      expect(Buffer.from(ours.secretKey.buffer)).toHaveLength(32);
      expect(Buffer.from(nacl.scalarMult.base(ours.secretKey))).toEqual(Buffer.from(ours.publicKey));
      const shared = nacl.scalarMult(Buffer.from(ours.secretKey.buffer), Buffer.from(theirs.publicKey.buffer));
      expect(Buffer.from(shared)).toEqual(reference(ours.secretKey, theirs.publicKey));
      expect(Buffer.from(shared)).toEqual(Buffer.from(nacl.scalarMult(theirs.secretKey, ours.publicKey)));
    }
  });

  it('leaves other secret keys and low-order points to tweetnacl (all-zero secret, as before)', () => {
    useNativeX25519();
    const foreign = new Uint8Array(randomBytes(32));
    const peer = nacl.box.keyPair().publicKey;
    expect(Buffer.from(nacl.scalarMult(foreign, peer))).toEqual(reference(foreign, peer));
    const ours = nacl.box.keyPair();
    const lowOrder = new Uint8Array(32); // the point 0: OpenSSL refuses the all-zero result, tweetnacl returns it
    expect(Buffer.from(nacl.scalarMult(ours.secretKey, lowOrder))).toEqual(Buffer.alloc(32));
    // A secret key changed after it was made is not the one OpenSSL holds: tweetnacl answers for the new bytes.
    ours.secretKey[5] = ours.secretKey[5]! ^ 0xff;
    expect(Buffer.from(nacl.scalarMult(ours.secretKey, peer))).toEqual(reference(ours.secretKey, peer));
  });
});
