import { describe, expect, it } from 'vitest';
import { DigestAuthenticator, digestResponse, outboundCredentialsFor, parseDigestHeader, parseOutboundCredentials, parseSipCredentials } from './digest.js';

const creds = (m: Record<string, string>) => ({ lookup: (u: string) => m[u] });

function authorize(nonce: string, o: { user?: string; password?: string; realm?: string; uri?: string; method?: string; nc?: string } = {}): string {
  const p = { username: o.user ?? 'pbx', realm: o.realm ?? 'wagw', password: o.password ?? 's3cret', method: o.method ?? 'INVITE', uri: o.uri ?? 'sip:447700900123@gw.example', nonce, qop: 'auth', nc: o.nc ?? '00000001', cnonce: 'abc123' };
  return `Digest username="${p.username}", realm="${p.realm}", nonce="${nonce}", uri="${p.uri}", response="${digestResponse(p)}", algorithm=MD5, qop=auth, nc=${p.nc}, cnonce="abc123"`;
}

describe('digestResponse', () => {
  it('matches the RFC 2617 §3.5 example', () => {
    expect(digestResponse({
      username: 'Mufasa', realm: 'testrealm@host.com', password: 'Circle Of Life', method: 'GET', uri: '/dir/index.html',
      nonce: 'dcd98b7102dd2f0e8b11d0f600bfb0c093', qop: 'auth', nc: '00000001', cnonce: '0a4f113b',
    })).toBe('6629fae49393a05397450978507c4ef1');
  });

  it('parses the RFC 2617 example Authorization header', () => {
    const p = parseDigestHeader('Digest username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", qop=auth, nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1", opaque="5ccc069c403ebaf9f0171e9517f40e41"');
    expect(p?.get('username')).toBe('Mufasa');
    expect(p?.get('qop')).toBe('auth');
    expect(p?.get('nc')).toBe('00000001');
    expect(p?.get('response')).toBe('6629fae49393a05397450978507c4ef1');
    expect(parseDigestHeader('Basic dXNlcjpwYXNz')).toBeUndefined();
  });
});

describe('DigestAuthenticator', () => {
  let now = 1_800_000_000_000;
  const auth = new DigestAuthenticator({ realm: 'wagw', nonceTtlMs: 60_000, credentials: creds({ pbx: 's3cret' }), clock: () => now });
  const nonceOf = (challenge: string) => parseDigestHeader(challenge)!.get('nonce')!;
  const uri = 'sip:447700900123@gw.example';

  it('challenges with realm, a signed nonce, qop=auth and MD5', () => {
    const c = auth.challenge();
    expect(c).toMatch(/^Digest realm="wagw", nonce="[^"]+", qop="auth", algorithm=MD5$/);
    expect(auth.challenge(true)).toMatch(/stale=true$/);
    expect(auth.verify('INVITE', uri, undefined)).toMatchObject({ ok: false, challenge: true, reason: 'missing' });
  });

  it('accepts the right password and names the user', () => {
    expect(auth.verify('INVITE', uri, authorize(nonceOf(auth.challenge())))).toEqual({ ok: true, username: 'pbx' });
  });

  it('challenges a replayed Authorization (same nonce, same nc) afresh; the next nc on the same nonce goes on', () => {
    const nonce = nonceOf(auth.challenge());
    const captured = authorize(nonce);
    expect(auth.verify('INVITE', uri, captured)).toEqual({ ok: true, username: 'pbx' });
    expect(auth.verify('INVITE', uri, captured)).toMatchObject({ ok: false, challenge: true, stale: false, reason: 'replay' });
    expect(auth.verify('INVITE', uri, authorize(nonce, { nc: '00000002' }))).toEqual({ ok: true, username: 'pbx' });
    expect(auth.verify('INVITE', uri, authorize(nonce, { nc: '00000002' }))).toMatchObject({ reason: 'replay' });
    // Another nonce has its own count.
    expect(auth.verify('INVITE', uri, authorize(nonceOf(auth.challenge())))).toEqual({ ok: true, username: 'pbx' });
  });

  it('refuses a wrong password or an unknown user without a new challenge', () => {
    const nonce = nonceOf(auth.challenge());
    expect(auth.verify('INVITE', uri, authorize(nonce, { password: 'guess' }))).toMatchObject({ ok: false, challenge: false, reason: 'bad_response', username: 'pbx' });
    expect(auth.verify('INVITE', uri, authorize(nonce, { user: 'mallory' }))).toMatchObject({ ok: false, challenge: false, reason: 'unknown_user' });
  });

  it('refuses a digest computed for another Request-URI or method', () => {
    const nonce = nonceOf(auth.challenge());
    expect(auth.verify('INVITE', uri, authorize(nonce, { uri: 'sip:15550001111@gw.example' }))).toMatchObject({ ok: false, challenge: false, reason: 'uri_mismatch' });
    expect(auth.verify('INVITE', uri, authorize(nonce, { method: 'REGISTER' }))).toMatchObject({ ok: false, challenge: false, reason: 'bad_response' });
  });

  it('an expired nonce → stale challenge; a forged or foreign nonce → fresh challenge', () => {
    const nonce = nonceOf(auth.challenge());
    now += 61_000;
    expect(auth.verify('INVITE', uri, authorize(nonce))).toMatchObject({ ok: false, challenge: true, stale: true });
    const [expiry, salt] = nonceOf(auth.challenge()).split('.');
    const forged = `${(now + 3_600_000).toString(36)}.${salt}.${'A'.repeat(22)}`;
    expect(expiry).toBeDefined();
    expect(auth.verify('INVITE', uri, authorize(forged))).toMatchObject({ ok: false, challenge: true, stale: false, reason: 'bad_nonce' });
    const other = new DigestAuthenticator({ realm: 'wagw', nonceTtlMs: 60_000, credentials: creds({ pbx: 's3cret' }), clock: () => now });
    expect(auth.verify('INVITE', uri, authorize(nonceOf(other.challenge())))).toMatchObject({ reason: 'bad_nonce' });
  });

  it('another realm, another algorithm or a malformed header → challenge again', () => {
    const nonce = nonceOf(auth.challenge());
    expect(auth.verify('INVITE', uri, authorize(nonce, { realm: 'elsewhere' }))).toMatchObject({ challenge: true, reason: 'other_realm' });
    expect(auth.verify('INVITE', uri, authorize(nonce).replace('algorithm=MD5', 'algorithm=SHA-256'))).toMatchObject({ challenge: true, reason: 'unsupported' });
    expect(auth.verify('INVITE', uri, 'Digest username="pbx"')).toMatchObject({ challenge: true, reason: 'malformed' });
  });
});

describe('parseSipCredentials', () => {
  it('reads user:password pairs; passwords may hold colons; bad entries are named without the secret', () => {
    const { credentials, problems } = parseSipCredentials('pbx-a:pa:ss, pbx-b:x2 ,broken,:nouser');
    expect([...credentials]).toEqual([['pbx-a', 'pa:ss'], ['pbx-b', 'x2']]);
    expect(problems).toHaveLength(2);
    expect(problems.join('\n')).not.toContain('nouser');
    expect(problems.join('\n')).not.toContain('broken');
  });
});

describe('outbound credentials (WAGW_SIP_OUTBOUND_CREDENTIALS)', () => {
  it('are found by the target URI\'s host, else by *', () => {
    const { credentials, problems } = parseOutboundCredentials('PBX.example.com=gw:pa:ss=1, *=any:fallback');
    expect(problems).toEqual([]);
    expect(outboundCredentialsFor('sip:queue@pbx.example.com:5060;transport=udp', credentials)).toEqual({ username: 'gw', password: 'pa:ss=1' });
    expect(outboundCredentialsFor('sip:agent@10.0.0.9', credentials)).toEqual({ username: 'any', password: 'fallback' });
    expect(outboundCredentialsFor('sip:agent@10.0.0.9', parseOutboundCredentials('pbx=gw:x').credentials)).toBeUndefined();
  });
  it('name a bad entry by its position, never its text', () => {
    const { problems } = parseOutboundCredentials('pbx=gw:ok, hunter2-no-host, pbx2=:nouser, pbx3:5060=gw:x');
    expect(problems).toHaveLength(3);
    expect(problems.join('\n')).toMatch(/entry 4 of 4: the host must not carry a port/);
    expect(problems.join('\n')).toMatch(/entry 2 of 4/);
    expect(problems.join('\n')).not.toMatch(/hunter2|nouser/);
  });
});

