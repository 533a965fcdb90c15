import { describe, expect, it } from 'vitest';
import { redactUrl, urlForLog } from './url-redaction.js';

describe('URLs in log lines', () => {
  it('urlForLog drops user info, query and fragment, where tokens hide; a plain URL is unchanged', () => {
    expect(urlForLog('wss://stream.example.com/calls?token=s3cret')).toBe('wss://stream.example.com/calls…');
    expect(urlForLog('wss://user:pw@stream.example.com/x')).toBe('wss://stream.example.com/x…');
    expect(urlForLog('wss://stream.example.com/calls')).toBe('wss://stream.example.com/calls');
  });
  it('redactUrl keeps only scheme and host', () => {
    expect(redactUrl('postgres://gw:S3cretPw@db.internal:5432/calls')).toBe('postgres://db.internal:5432…');
    expect(redactUrl('not a url')).toBe('(not shown: may hold a secret)');
  });
});
