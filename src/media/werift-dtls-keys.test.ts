import { createVerify, X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { CipherContext, HashAlgorithm, NamedCurveAlgorithm, SignatureAlgorithm } from 'werift';
import { useKeptDtlsKeys } from './werift-dtls-keys.js';
import { requireFromWerift } from './werift-require.js';

/** werift's SessionType (not exported): the DTLS client signs CertificateVerify, the server ServerKeyExchange. */
const CLIENT = 1;
const SERVER = 2;
const ecdsaSha256 = { signature: SignatureAlgorithm.ecdsa_3, hash: HashAlgorithm.sha256_4 };

interface FidmPrivateKeyClass {
  prototype: { sign(data: Buffer, hashAlgorithm: string): Buffer };
}
const fidm = requireFromWerift('@fidm/x509') as { PrivateKey: FidmPrivateKeyClass };

const makeCertificate = () => CipherContext.createSelfSignedCertificateWithKey(ecdsaSha256, NamedCurveAlgorithm.secp256r1_23);
const verifies = (certPem: string, data: Buffer, signature: Buffer): boolean => createVerify('sha256').update(data).verify(certPem, signature);

describe('useKeptDtlsKeys', () => {
  it("signs werift's handshakes with a kept key object, and the signatures verify with the certificate", async () => {
    const signBefore = fidm.PrivateKey.prototype.sign;
    expect(useKeptDtlsKeys()).toBe(true);
    expect(fidm.PrivateKey.prototype.sign).not.toBe(signBefore);
    const { certPem, keyPem } = await makeCertificate();
    const client = new CipherContext(CLIENT, certPem, keyPem, ecdsaSha256);
    const data = Buffer.from('handshake messages so far');
    // CertificateVerify (client) and the ServerKeyExchange's signature (server, through @fidm's PrivateKey.sign).
    expect(verifies(certPem, data, client.signatureData(data, 'sha256'))).toBe(true);
    const server = new CipherContext(SERVER, certPem, keyPem, ecdsaSha256);
    expect(verifies(certPem, data, server.localPrivateKey.sign(data, 'sha256'))).toBe(true);
    expect(verifies(certPem, Buffer.from('other bytes'), client.signatureData(data, 'sha256'))).toBe(false);
  });

  it('parses a certificate once for every session that uses it, and each certificate for itself', async () => {
    useKeptDtlsKeys();
    const first = await makeCertificate();
    const second = await makeCertificate();
    const a = new CipherContext(SERVER, first.certPem, first.keyPem, ecdsaSha256);
    const b = new CipherContext(CLIENT, first.certPem, first.keyPem, ecdsaSha256);
    const c = new CipherContext(SERVER, second.certPem, second.keyPem, ecdsaSha256);
    expect(b.localPrivateKey).toBe(a.localPrivateKey);
    expect(b.localCert).toBe(a.localCert);
    expect(Buffer.from(a.localCert)).toEqual(new X509Certificate(first.certPem).raw);
    expect(Buffer.from(c.localCert)).toEqual(new X509Certificate(second.certPem).raw);
    expect(b.signatureHashAlgorithm).toEqual(ecdsaSha256);
    const data = Buffer.from('server key exchange params');
    const signed = c.localPrivateKey.sign(data, 'sha256');
    expect(verifies(second.certPem, data, signed)).toBe(true);
    expect(verifies(first.certPem, data, signed)).toBe(false);
  });
});
