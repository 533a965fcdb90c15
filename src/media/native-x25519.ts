/**
 * werift's DTLS handshake does its X25519 key exchange (the curve libwebrtc and werift both prefer) with tweetnacl,
 * in JavaScript: about 1.2 ms for the key pair and 1.1 ms for the shared secret on the dev VM, on the event loop
 * every live call's media shares (bench `callSetup`: one leg's set-up blocks the loop for up to 9–20 ms, and within
 * those blocks tweetnacl took 17 % of the samples). OpenSSL does each in about 0.1 ms.
 *
 * useNativeX25519() replaces the two tweetnacl functions werift calls, `nacl.box.keyPair` and `nacl.scalarMult`, on
 * werift's own copy of tweetnacl: a key pair is made by node:crypto and its key object kept (weakly, by the secret
 * key's memory), and a shared secret for such a secret key is derived by node:crypto. The bytes are the same as
 * tweetnacl's (tested). Anything else goes to tweetnacl as before: a secret key this module did not make, and an
 * input OpenSSL refuses (a low-order public key, whose shared secret is all zeros).
 */
import { createPublicKey, diffieHellman, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { requireFromWerift } from './werift-require.js';

interface Nacl {
  box: { keyPair(): { publicKey: Uint8Array; secretKey: Uint8Array } };
  scalarMult(n: Uint8Array, p: Uint8Array): Uint8Array;
}

interface NativeSecret {
  key: KeyObject;
  /** The secret key's bytes as handed out: a caller that changed them gets tweetnacl's answer for the new bytes. */
  bytes: Buffer;
}

let installed: boolean | null = null;

/** werift's tweetnacl (the copy its DTLS code imports), or null when it cannot be found. */
function weriftNacl(): Nacl | null {
  try {
    const nacl = requireFromWerift('tweetnacl') as Partial<Nacl>;
    return typeof nacl.scalarMult === 'function' && typeof nacl.box?.keyPair === 'function' ? (nacl as Nacl) : null;
  } catch {
    return null;
  }
}

/** Installs the native key exchange once; false when werift's tweetnacl is not where expected (it then stays as is). */
export function useNativeX25519(): boolean {
  if (installed !== null) return installed;
  const nacl = weriftNacl();
  installed = nacl !== null;
  if (!nacl) return false;
  const jsKeyPair = nacl.box.keyPair.bind(nacl.box);
  const jsScalarMult = nacl.scalarMult.bind(nacl);
  const secrets = new WeakMap<ArrayBufferLike, NativeSecret>();

  // Object.assign below keeps what hangs on the originals (keyPair.fromSecretKey, scalarMult.base, lengths).
  const keyPair = () => {
    try {
      const { privateKey } = generateKeyPairSync('x25519');
      const jwk = privateKey.export({ format: 'jwk' });
      const secretKey = new Uint8Array(Buffer.from(jwk.d!, 'base64url'));
      secrets.set(secretKey.buffer, { key: privateKey, bytes: Buffer.from(secretKey) });
      return { publicKey: new Uint8Array(Buffer.from(jwk.x!, 'base64url')), secretKey };
    } catch {
      return jsKeyPair();
    }
  };

  const scalarMult = (n: Uint8Array, p: Uint8Array): Uint8Array => {
    const secret = secrets.get(n.buffer);
    if (secret && p.byteLength === 32 && secret.bytes.equals(n)) {
      try {
        const publicKey = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: Buffer.from(p.buffer, p.byteOffset, 32).toString('base64url') }, format: 'jwk' });
        return new Uint8Array(diffieHellman({ privateKey: secret.key, publicKey }));
      } catch {
        // OpenSSL refuses an all-zero result; tweetnacl returns it, as werift has always seen.
      }
    }
    return jsScalarMult(n, p);
  };
  nacl.box.keyPair = Object.assign(keyPair, nacl.box.keyPair);
  nacl.scalarMult = Object.assign(scalarMult, nacl.scalarMult);
  return true;
}
