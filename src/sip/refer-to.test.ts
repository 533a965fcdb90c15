import { describe, expect, it } from 'vitest';
import { parseReferTo, parseReplaces } from './refer-to.js';

describe('parseReferTo', () => {
  it('splits a name-addr Refer-To into the URI (parameters kept) and decoded embedded headers', () => {
    const r = parseReferTo('"Agent 2" <sip:agent2@pbx.example:5080;transport=udp?Replaces=cons-1%40pbx.example%3Bto-tag%3Dt1%3Bfrom-tag%3Df2&Require=replaces>;x=y');
    expect(r).toEqual({
      ok: true,
      uri: 'sip:agent2@pbx.example:5080;transport=udp',
      headers: [
        { name: 'Replaces', value: 'cons-1@pbx.example;to-tag=t1;from-tag=f2' },
        { name: 'Require', value: 'replaces' },
      ],
    });
  });

  it('decodes exactly once: %253B stays the literal text %3B', () => {
    const r = parseReferTo('<sip:a@b?Replaces=x%253By%3Bto-tag%3D1%3Bfrom-tag%3D2>');
    expect(r.ok && r.headers[0]?.value).toBe('x%3By;to-tag=1;from-tag=2');
  });

  it('tolerates an unescaped Replaces value inside angle brackets', () => {
    const r = parseReferTo('<sip:a@b?Replaces=c@h;to-tag=1;from-tag=2>');
    expect(r.ok && r.headers).toEqual([{ name: 'Replaces', value: 'c@h;to-tag=1;from-tag=2' }]);
  });

  it('a Refer-To without embedded headers is just its URI (addr-spec: parameters end the URI)', () => {
    expect(parseReferTo('<sip:agent2@pbx>')).toEqual({ ok: true, uri: 'sip:agent2@pbx', headers: [] });
    expect(parseReferTo('sip:agent2@pbx;x=1')).toEqual({ ok: true, uri: 'sip:agent2@pbx', headers: [] });
  });

  it('refuses bad percent-encoding, bad header names and encoded control characters', () => {
    expect(parseReferTo('<sip:a@b?Replaces=abc%G1>').ok).toBe(false);
    expect(parseReferTo('<sip:a@b?Replaces=abc%E2%82>').ok).toBe(false);
    expect(parseReferTo('<sip:a@b?Bad%20Name=1>').ok).toBe(false);
    expect(parseReferTo('<sip:a@b?X-Foo=a%0D%0AVia%3A%20evil>').ok).toBe(false);
  });
});

describe('parseReplaces', () => {
  it('reads call-id, tags and early-only', () => {
    expect(parseReplaces('425928@bobster.example.org;to-tag=7743;from-tag=6472')).toEqual({
      ok: true, value: { callId: '425928@bobster.example.org', toTag: '7743', fromTag: '6472', earlyOnly: false },
    });
    expect(parseReplaces('abc; from-tag=2 ;TO-TAG=1;early-only;x=y')).toMatchObject({ ok: true, value: { toTag: '1', fromTag: '2', earlyOnly: true } });
  });

  it.each([
    ['', 'no Call-ID'],
    [';to-tag=1;from-tag=2', 'no Call-ID'],
    ['a b;to-tag=1;from-tag=2', 'space in Call-ID'],
    ['a@b@c;to-tag=1;from-tag=2', 'two @'],
    ['abc;to-tag=1', 'no from-tag'],
    ['abc;from-tag=2', 'no to-tag'],
    ['abc;to-tag=1;to-tag=3;from-tag=2', 'two to-tags'],
    ['abc;to-tag=;from-tag=2', 'empty to-tag'],
    ['abc;to-tag=1;from-tag=2;=x', 'empty parameter name'],
  ])('refuses %j (%s)', (value) => {
    expect(parseReplaces(value).ok).toBe(false);
  });
});
