import { describe, expect, it } from 'vitest';
import { createHmac } from 'node:crypto';
import { verifySignature } from './signature.js';

const secret = 'app-secret';
const body = Buffer.from('{"object":"whatsapp_business_account","entry":[]}');
const good = `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;

describe('verifySignature', () => {
  it('accepts the HMAC-SHA256 of the raw body', () => expect(verifySignature(body, good, secret)).toBe('ok'));
  it('accepts upper-case hex', () => expect(verifySignature(body, `sha256=${good.slice(7).toUpperCase()}`, secret)).toBe('ok'));
  it('refuses a missing header', () => expect(verifySignature(body, undefined, secret)).toBe('missing'));
  it('refuses a wrong prefix', () => expect(verifySignature(body, good.replace('sha256=', 'sha1='), secret)).toBe('malformed'));
  it('refuses a truncated digest', () => expect(verifySignature(body, good.slice(0, -2), secret)).toBe('malformed'));
  it('refuses a signature made with another secret', () => {
    const other = `sha256=${createHmac('sha256', 'other').update(body).digest('hex')}`;
    expect(verifySignature(body, other, secret)).toBe('mismatch');
  });
  it('refuses a body changed by one byte', () => {
    const changed = Buffer.from(body);
    changed[10] = changed[10]! ^ 1;
    expect(verifySignature(changed, good, secret)).toBe('mismatch');
  });
});
