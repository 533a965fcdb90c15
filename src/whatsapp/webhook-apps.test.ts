import { describe, expect, it } from 'vitest';
import { sign } from './signature.js';
import { buildWebhookApps } from './webhook-apps.js';

describe('webhook apps', () => {
  const apps = buildWebhookApps(
    { whatsapp: { apps: [{ name: 'brand-a' }, { name: 'brand-b' }], numbers: [{ phoneNumberId: '1', app: 'brand-a' }, { phoneNumberId: '2', app: 'brand-b' }, { phoneNumberId: '3', app: '' }] } },
    { appSecret: 'main', apps: new Map([['brand-a', { appSecret: 'sa' }], ['brand-b', { appSecret: 'sb' }]]) },
  );
  const body = Buffer.from('{"x":1}');
  it('finds the app whose secret signed the body, by trying every secret or by the named app only', () => {
    expect(apps.verify(body, sign(body, 'sb'))).toEqual({ verdict: 'ok', app: 'brand-b' });
    expect(apps.verify(body, sign(body, 'main'))).toEqual({ verdict: 'ok', app: '' });
    expect(apps.verify(body, sign(body, 'sa'), 'brand-a')).toEqual({ verdict: 'ok', app: 'brand-a' });
    expect(apps.verify(body, sign(body, 'sb'), 'brand-a')).toEqual({ verdict: 'mismatch' });
    expect(apps.verify(body, sign(body, 'nobody'))).toEqual({ verdict: 'mismatch' });
    expect(apps.verify(body, sign(body, 'sa'), 'ghost')).toEqual({ verdict: 'unknown_app' });
    expect(apps.verify(body, undefined)).toEqual({ verdict: 'missing' });
    expect(apps.verify(body, 'sha1=abc')).toEqual({ verdict: 'malformed' });
  });
  it('an app may speak only for its own numbers (and for numbers nobody owns)', () => {
    expect(apps.accepts('brand-a', '1')).toBe(true);
    expect(apps.accepts('brand-a', '2')).toBe(false);
    expect(apps.accepts('', '1')).toBe(false);
    expect(apps.accepts('', '3')).toBe(true);
    expect(apps.accepts('brand-b', '999')).toBe(true);
  });
});
