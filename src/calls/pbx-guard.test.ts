import { describe, expect, it } from 'vitest';
import { PbxGuard } from './pbx-guard.js';
import { digestResponse, parseDigestHeader } from '../sip/digest.js';

const uri = 'sip:447700900123@gw.example';
const base = { allowedSources: ['10.0.0.0/8'], digestRealm: 'wagw', digestNonceTtlSeconds: 60 };
const creds = new Map([['pbx', 's3cret']]);

function answer(challenge: string, password = 's3cret'): string {
  const nonce = parseDigestHeader(challenge)!.get('nonce')!;
  const response = digestResponse({ username: 'pbx', realm: 'wagw', password, method: 'INVITE', uri, nonce, qop: 'auth', nc: '00000001', cnonce: 'c1' });
  return `Digest username="pbx", realm="wagw", nonce="${nonce}", uri="${uri}", response="${response}", algorithm=MD5, qop=auth, nc=00000001, cnonce="c1"`;
}

describe('PbxGuard', () => {
  let now = 1_800_000_000_000;
  const guard = new PbxGuard(() => creds, () => now);
  const challengeFor = (sourceGuard: 'digest' | 'both' | 'either', source = '192.0.2.1'): string => {
    const v = guard.check({ requestUri: uri, source, authorization: undefined }, { ...base, sourceGuard });
    if (v.pass || !('challenge' in v)) throw new Error(`expected a challenge, got ${JSON.stringify(v)}`);
    return v.challenge;
  };

  it('allowList: the source decides, credentials are never asked for', () => {
    expect(guard.check({ requestUri: uri, source: '10.1.2.3', authorization: undefined }, { ...base, sourceGuard: 'allowList' })).toEqual({ pass: true });
    expect(guard.check({ requestUri: uri, source: '192.0.2.1', authorization: undefined }, { ...base, sourceGuard: 'allowList' }))
      .toMatchObject({ pass: false, refuse: { reason: 'source_not_allowed' } });
  });

  it('digest: any source is challenged, then passes with the right password as that user', () => {
    const c = challengeFor('digest', '10.1.2.3');
    expect(c).toMatch(/^Digest realm="wagw", nonce="[^"]+", qop="auth", algorithm=MD5$/);
    expect(guard.check({ requestUri: uri, source: '192.0.2.1', authorization: answer(c) }, { ...base, sourceGuard: 'digest' })).toEqual({ pass: true, username: 'pbx' });
  });

  it('digest: a wrong password is a 403 naming the user, not another challenge', () => {
    const v = guard.check({ requestUri: uri, source: '192.0.2.1', authorization: answer(challengeFor('digest'), 'guess') }, { ...base, sourceGuard: 'digest' });
    expect(v).toEqual({ pass: false, refuse: { reason: 'digest_failed', text: 'SIP digest authentication failed', detail: { username: 'pbx', why: 'bad_response' } } });
    expect(JSON.stringify(v)).not.toContain('guess');
  });

  it('digest: an expired nonce is challenged again with stale=true', () => {
    const c = challengeFor('digest');
    now += 61_000;
    const v = guard.check({ requestUri: uri, source: '192.0.2.1', authorization: answer(c) }, { ...base, sourceGuard: 'digest' });
    expect(v).toMatchObject({ pass: false, stale: true });
    expect((v as { challenge: string }).challenge).toMatch(/stale=true$/);
  });

  it('both: a stranger is refused before any challenge; an allowed source must still authenticate', () => {
    expect(guard.check({ requestUri: uri, source: '192.0.2.1', authorization: undefined }, { ...base, sourceGuard: 'both' }))
      .toMatchObject({ pass: false, refuse: { reason: 'source_not_allowed' } });
    const c = challengeFor('both', '10.1.2.3');
    expect(guard.check({ requestUri: uri, source: '10.1.2.3', authorization: answer(c) }, { ...base, sourceGuard: 'both' })).toEqual({ pass: true, username: 'pbx' });
  });

  it('either: an allowed source passes without credentials, any other must authenticate', () => {
    expect(guard.check({ requestUri: uri, source: '10.1.2.3', authorization: undefined }, { ...base, sourceGuard: 'either' })).toEqual({ pass: true });
    const c = challengeFor('either');
    expect(guard.check({ requestUri: uri, source: '192.0.2.1', authorization: answer(c) }, { ...base, sourceGuard: 'either' })).toEqual({ pass: true, username: 'pbx' });
  });

  it('a nonce stays good across a realm-preserving reload, and no credentials means nobody authenticates', () => {
    const c = challengeFor('digest');
    expect(guard.check({ requestUri: uri, source: '192.0.2.1', authorization: answer(c) }, { ...base, digestNonceTtlSeconds: 120, sourceGuard: 'digest' })).toMatchObject({ pass: true });
    const empty = new PbxGuard(() => undefined, () => now);
    expect(empty.hasCredentials).toBe(false);
    const c2 = (empty.check({ requestUri: uri, source: '192.0.2.1', authorization: undefined }, { ...base, sourceGuard: 'digest' }) as { challenge: string }).challenge;
    expect(empty.check({ requestUri: uri, source: '192.0.2.1', authorization: answer(c2) }, { ...base, sourceGuard: 'digest' }))
      .toMatchObject({ pass: false, refuse: { reason: 'digest_failed', detail: { why: 'unknown_user' } } });
  });
});
