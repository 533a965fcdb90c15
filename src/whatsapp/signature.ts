import { createHmac, timingSafeEqual } from 'node:crypto';

export type SignatureVerdict = 'ok' | 'missing' | 'malformed' | 'mismatch';

const HEX_SHA256 = /^[0-9a-f]{64}$/i;

/**
 * Checks X-Hub-Signature-256 ("sha256=<hex>") over the raw body bytes. The comparison is constant-time over the
 * 32-byte digests; the header's shape is checked first, which leaks nothing about the expected value.
 */
export function verifySignature(rawBody: Buffer, header: string | undefined, appSecret: string): SignatureVerdict {
  if (!header) return 'missing';
  if (!header.startsWith('sha256=')) return 'malformed';
  const hex = header.slice('sha256='.length);
  if (!HEX_SHA256.test(hex)) return 'malformed';
  const expected = createHmac('sha256', appSecret).update(rawBody).digest();
  return timingSafeEqual(expected, Buffer.from(hex, 'hex')) ? 'ok' : 'mismatch';
}

export function sign(rawBody: Buffer | string, appSecret: string): string {
  return `sha256=${createHmac('sha256', appSecret).update(rawBody).digest('hex')}`;
}
