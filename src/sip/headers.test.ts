import { describe, expect, it } from 'vitest';
import {
  escapeDisplayName,
  formatFromHeader,
  formatReasonHeader,
  parseReasonHeader,
  sanitizeExtraHeaders,
  sanitizeHeaderValue,
  SipHeaderError,
  WA_HEADERS,
  waContextToSip,
  waIdToE164,
} from './headers.js';

const NO_CONTROL = /[\u0000-\u001f\u007f]/;

describe('sanitizeHeaderValue', () => {
  it('removes CR/LF/NUL and other controls (header injection)', () => {
    const v = sanitizeHeaderValue('abc\r\nX-Evil: 1\r\n\r\nINVITE sip:x SIP/2.0\u0000tail');
    expect(v).not.toMatch(NO_CONTROL);
    expect(v).toBe('abc X-Evil: 1 INVITE sip:x SIP/2.0 tail');
    expect(sanitizeHeaderValue('a\u2028b\u0085c\td')).toBe('a b c d');
  });

  it('trims, collapses and truncates without splitting surrogate pairs', () => {
    expect(sanitizeHeaderValue('   a    b  ')).toBe('a b');
    expect(sanitizeHeaderValue('😀😀😀', 2)).toBe('😀😀');
    expect(sanitizeHeaderValue('x'.repeat(1000)).length).toBe(256);
    expect(sanitizeHeaderValue('bad\ud800lone')).toBe('badlone');
  });
});

describe('display names', () => {
  it('escapes quotes and backslashes for a quoted-string', () => {
    expect(escapeDisplayName('Ann "The Boss" O\\Neil')).toBe('Ann \\"The Boss\\" O\\\\Neil');
  });

  it('From header cannot be broken out of', () => {
    const from = formatFromHeader({ user: '+16315553602', displayName: 'Eve" <sip:attacker@evil>\r\nContact: <sip:x@y>' });
    expect(from).not.toMatch(NO_CONTROL);
    expect(from.startsWith('"Eve\\" <sip:attacker@evil> Contact: <sip:x@y>" <sip:+16315553602@localhost>')).toBe(true);
    // Exactly one unescaped quoted-string, followed by the real URI.
    const m = /^"((?:[^"\\]|\\.)*)" <sip:([^>]*)>$/.exec(from);
    expect(m?.[2]).toBe('+16315553602@localhost');
  });

  it('omits an empty display name and validates user and host', () => {
    expect(formatFromHeader({ user: '+16315553602' })).toBe('<sip:+16315553602@localhost>');
    expect(formatFromHeader({ user: '+16315553602', displayName: '\r\n' })).toBe('<sip:+16315553602@localhost>');
    expect(formatFromHeader({ user: 'alice', displayName: 'Alice' }, 'gw.example.com')).toBe('"Alice" <sip:alice@gw.example.com>');
    expect(() => formatFromHeader({ user: '+1631@evil.com' })).toThrow(SipHeaderError);
    expect(() => formatFromHeader({ user: '+1631>\r\nX: y' })).toThrow(SipHeaderError);
    expect(() => formatFromHeader({ user: '' })).toThrow(SipHeaderError);
    expect(() => formatFromHeader({ user: '+1631' }, 'evil>\r\n')).toThrow(SipHeaderError);
  });
});

describe('waContextToSip', () => {
  it('maps a call context to X-WA headers and a From identity', () => {
    const { headers, from } = waContextToSip({
      callId: 'wacid.HBgLMTYzMTU1NTM2MDI',
      phoneNumberId: '106540352242922',
      waId: '16315553602',
      userName: 'Jane Doe',
      ctaPayload: '{"campaign":"spring"}',
      deeplinkPayload: 'order=42',
    });
    expect(headers).toEqual({
      'X-WA-Call-Id': 'wacid.HBgLMTYzMTU1NTM2MDI',
      'X-WA-Phone-Number-Id': '106540352242922',
      'X-WA-User': '16315553602',
      'X-WA-User-Name': 'Jane Doe',
      'X-WA-CTA-Payload': '{"campaign":"spring"}',
      'X-WA-Deeplink-Payload': 'order=42',
    });
    expect(from).toEqual({ user: '+16315553602', displayName: 'Jane Doe' });
    expect(formatFromHeader(from)).toBe('"Jane Doe" <sip:+16315553602@localhost>');
  });

  it('omits absent/empty optional values', () => {
    const { headers, from } = waContextToSip({ callId: 'c1', phoneNumberId: 'p1', waId: '+447700900123', userName: ' \r\n ' });
    expect(Object.keys(headers).sort()).toEqual([WA_HEADERS.callId, WA_HEADERS.phoneNumberId, WA_HEADERS.user].sort());
    expect(from).toEqual({ user: '+447700900123' });
  });

  it('neutralises injection attempts in every field', () => {
    const evil = 'x\r\nVia: SIP/2.0/UDP evil\r\n\r\nv=0';
    const { headers, from } = waContextToSip({ callId: evil, phoneNumberId: evil, waId: '16315553602', userName: evil, ctaPayload: evil, deeplinkPayload: evil });
    for (const [name, value] of Object.entries(headers)) {
      expect(value, name).not.toMatch(NO_CONTROL);
    }
    expect(from.displayName).not.toMatch(NO_CONTROL);
    const fromHeader = formatFromHeader(from);
    expect(fromHeader).not.toMatch(NO_CONTROL);
    expect(fromHeader.endsWith(' <sip:+16315553602@localhost>')).toBe(true);
  });

  it('rejects a wa_id that is not a phone number', () => {
    expect(waIdToE164('16315553602\r\n')).toBe('+16315553602'); // trimmed
    expect(() => waIdToE164('abc')).toThrow(SipHeaderError);
    expect(() => waIdToE164('1631555@evil')).toThrow(SipHeaderError);
  });

  it('a caller without a phone number (from "" or a business-scoped id, §1.2) still gets a sane From', () => {
    const scoped = waContextToSip({ callId: 'c', phoneNumberId: 'p', waId: 'LB.946123456789' });
    expect(scoped.from.user).toBe('LB.946123456789');
    expect(scoped.headers['X-WA-User']).toBe('LB.946123456789');
    expect(formatFromHeader(scoped.from)).toBe('<sip:LB.946123456789@localhost>');
    const hidden = waContextToSip({ callId: 'c', phoneNumberId: 'p', waId: '', userName: 'Jane' });
    expect(hidden.from).toEqual({ user: 'anonymous', displayName: 'Jane' });
    expect(hidden.headers['X-WA-User']).toBeUndefined();
    const evil = waContextToSip({ callId: 'c', phoneNumberId: 'p', waId: '<sip:evil>' });
    expect(formatFromHeader(evil.from)).toBe('<sip:anonymous@localhost>');
    expect(evil.headers['X-WA-User']).toBeUndefined();
  });

  it('bounds payload length', () => {
    const { headers } = waContextToSip({ callId: 'c', phoneNumberId: 'p', waId: '16315553602', ctaPayload: 'y'.repeat(5000) });
    expect(headers['X-WA-CTA-Payload']?.length).toBe(512);
  });
});

describe('sanitizeExtraHeaders', () => {
  it('validates names, refuses stack-owned headers, cleans values', () => {
    expect(sanitizeExtraHeaders({ 'X-WA-Call-Id': 'a\r\nb', 'X-Empty': '\r\n' })).toEqual({ 'X-WA-Call-Id': 'a b' });
    expect(() => sanitizeExtraHeaders({ 'X-Bad\r\nInjected': 'v' })).toThrow(SipHeaderError);
    expect(() => sanitizeExtraHeaders({ 'X Space': 'v' })).toThrow(SipHeaderError);
    expect(() => sanitizeExtraHeaders({ Via: 'SIP/2.0/UDP evil' })).toThrow(SipHeaderError);
    expect(() => sanitizeExtraHeaders({ 'call-id': 'x' })).toThrow(SipHeaderError);
  });
});

describe('Reason header', () => {
  it('formats and parses RFC 3326 values', () => {
    expect(formatReasonHeader('SIP', 486, 'Busy Here')).toBe('SIP;cause=486;text="Busy Here"');
    expect(formatReasonHeader('Q.850', 16)).toBe('Q.850;cause=16');
    expect(formatReasonHeader('Q.850', 16, 'say "hi"\r\n')).toBe('Q.850;cause=16;text="say \\"hi\\""');
    expect(parseReasonHeader('Q.850 ;cause=16 ;text="Normal call clearing"')).toEqual({ protocol: 'Q.850', cause: 16, text: 'Normal call clearing' });
    expect(parseReasonHeader('SIP;cause=200;text="Call completed \\"elsewhere\\""')).toEqual({ protocol: 'SIP', cause: 200, text: 'Call completed "elsewhere"' });
    expect(parseReasonHeader(undefined)).toBeUndefined();
  });
});
