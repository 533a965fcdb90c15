/**
 * werift's DTLS handshake signs with the certificate's private key (the server's ServerKeyExchange through
 * @fidm/x509's PrivateKey.sign, the client's CertificateVerify in CipherContext.signatureData) by handing OpenSSL
 * the key as PEM text every time, so OpenSSL parses the PEM and decodes the key before each signature (0.6–1 ms on
 * the dev VM against 0.04 ms with a kept key object). And every DTLS session re-parses the process-wide certificate
 * and key in JavaScript (CipherContext.parseX509, ~0.3 ms). All of it runs on the event loop every live call's media
 * shares, once or twice per call set-up.
 *
 * useKeptDtlsKeys() keeps what does not change: the parsed certificate and key per PEM pair, and an OpenSSL key
 * object per parsed key, and signs with that. The signatures are the same algorithm over the same bytes (ECDSA is
 * randomised, so tests verify them with the certificate's public key). What it does not recognise (a key type
 * @fidm signs with its own function, a PEM OpenSSL refuses) goes the original way.
 */
import { createPrivateKey, createSign, type KeyObject } from 'node:crypto';
import { CipherContext } from 'werift';
import { requireFromWerift } from './werift-require.js';

interface FidmPrivateKey {
  oid: string;
  toPEM(): string;
  sign(data: Buffer, hashAlgorithm: string): Buffer;
}

interface FidmX509 {
  PrivateKey: { prototype: FidmPrivateKey; _signers: Record<string, unknown> };
}

interface WeriftCipherContext {
  localPrivateKey?: FidmPrivateKey;
  localCert?: Buffer;
  signatureHashAlgorithm?: unknown;
  parseX509(certPem: unknown, keyPem: unknown, signatureHash: unknown): void;
  signatureData(data: Buffer, hash: string): Buffer;
}

/** Distinct certificates a process signs with: one per process in practice (webrtc-leg.ts makes it once). */
const PARSED_PAIRS_KEPT = 8;

let installed: boolean | null = null;

/** @fidm/x509 as werift imports it (an external of werift's bundle), or null when it is not where expected. */
function weriftX509(): FidmX509 | null {
  try {
    const x509 = requireFromWerift('@fidm/x509') as Partial<FidmX509>;
    return typeof x509.PrivateKey?.prototype.sign === 'function' && typeof x509.PrivateKey._signers === 'object' ? (x509 as FidmX509) : null;
  } catch {
    return null;
  }
}

/** Installs the kept keys once; false when werift's internals are not where expected (it then signs as before). */
export function useKeptDtlsKeys(): boolean {
  if (installed !== null) return installed;
  const x509 = weriftX509();
  const cipherProto = CipherContext.prototype as unknown as WeriftCipherContext;
  installed = x509 !== null && typeof cipherProto.parseX509 === 'function' && typeof cipherProto.signatureData === 'function';
  if (!x509 || !installed) return false;
  const PrivateKey = x509.PrivateKey;

  const keyObjects = new WeakMap<FidmPrivateKey, KeyObject | null>();
  const keyObjectOf = (key: FidmPrivateKey): KeyObject | null => {
    let kept = keyObjects.get(key);
    if (kept === undefined) {
      try {
        kept = createPrivateKey(key.toPEM());
      } catch {
        kept = null;
      }
      keyObjects.set(key, kept);
    }
    return kept;
  };

  const fidmSign = PrivateKey.prototype.sign;
  PrivateKey.prototype.sign = function sign(this: FidmPrivateKey, data: Buffer, hashAlgorithm: string): Buffer {
    const key = PrivateKey._signers[this.oid] == null ? keyObjectOf(this) : null;
    return key ? createSign(hashAlgorithm).update(data).sign(key) : fidmSign.call(this, data, hashAlgorithm);
  };

  const weriftSignatureData = cipherProto.signatureData;
  cipherProto.signatureData = function signatureData(this: WeriftCipherContext, data: Buffer, hash: string): Buffer {
    const key = this.localPrivateKey ? keyObjectOf(this.localPrivateKey) : null;
    return key ? createSign(hash).update(data).sign(key) : weriftSignatureData.call(this, data, hash);
  };

  // werift only reads what parseX509 sets (it copies localCert before sending it), so sessions can share them.
  const parsed = new Map<string, { localCert: Buffer; localPrivateKey: FidmPrivateKey }>();
  const weriftParseX509 = cipherProto.parseX509;
  cipherProto.parseX509 = function parseX509(this: WeriftCipherContext, certPem: unknown, keyPem: unknown, signatureHash: unknown): void {
    if (typeof certPem !== 'string' || typeof keyPem !== 'string') return weriftParseX509.call(this, certPem, keyPem, signatureHash);
    const id = `${certPem}\n${keyPem}`;
    let pair = parsed.get(id);
    if (!pair) {
      weriftParseX509.call(this, certPem, keyPem, signatureHash);
      if (!this.localCert || !this.localPrivateKey) return;
      pair = { localCert: this.localCert, localPrivateKey: this.localPrivateKey };
      if (parsed.size >= PARSED_PAIRS_KEPT) parsed.delete(parsed.keys().next().value!);
      parsed.set(id, pair);
    }
    this.localCert = pair.localCert;
    this.localPrivateKey = pair.localPrivateKey;
    this.signatureHashAlgorithm = signatureHash;
  };
  return true;
}
