import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { uriHost } from './headers.js';

/**
 * SIP digest authentication of INVITEs, server side (RFC 3261 §22.4 with RFC 2617 / RFC 8760 MD5, qop=auth).
 * The nonce carries its own expiry and an HMAC over it with a per-process key, so issuing one keeps no state. What
 * is kept is the highest nonce count (nc, qop=auth) accepted per nonce until it expires: a captured Authorization
 * header replayed inside the nonce's lifetime repeats its nc and is challenged afresh (RFC 7616 §3.4's replay check),
 * while a client that reuses the nonce with nc + 1 goes on. A restart changes the key: old nonces then read as forged
 * and get a fresh challenge.
 */

export interface DigestCredentials {
  /** username → password (from the environment only: WAGW_SIP_CREDENTIALS). */
  lookup(username: string): string | undefined;
}

export type DigestVerdict =
  | { ok: true; username: string }
  /** Ask (again) with 401: no or unusable Authorization, or a nonce that is expired (stale) or not ours. */
  | { ok: false; challenge: true; stale: boolean; reason: 'missing' | 'malformed' | 'stale' | 'bad_nonce' | 'other_realm' | 'unsupported' | 'replay' }
  /** Credentials given and wrong: 403. */
  | { ok: false; challenge: false; reason: 'unknown_user' | 'bad_response' | 'uri_mismatch'; username: string; digestUri?: string };

const md5 = (s: string): string => createHash('md5').update(s, 'utf8').digest('hex');

/** The request-digest of RFC 2617 §3.2.2.1 (MD5; qop=auth, or no qop as in RFC 2069). */
export function digestResponse(p: {
  username: string; realm: string; password: string; method: string; uri: string; nonce: string;
  qop?: string; nc?: string; cnonce?: string;
}): string {
  const ha1 = md5(`${p.username}:${p.realm}:${p.password}`);
  const ha2 = md5(`${p.method}:${p.uri}`);
  return p.qop ? md5(`${ha1}:${p.nonce}:${p.nc ?? ''}:${p.cnonce ?? ''}:${p.qop}:${ha2}`) : md5(`${ha1}:${p.nonce}:${ha2}`);
}

/** Parameters of a `Digest k=v, k="v"` header; undefined when it is not a Digest header. Keys lower-case. */
export function parseDigestHeader(value: string | undefined): Map<string, string> | undefined {
  if (!value) return undefined;
  const m = /^\s*Digest\s+(.*)$/is.exec(value);
  if (!m) return undefined;
  const params = new Map<string, string>();
  const re = /\s*([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*(?:,|$)/gy;
  const rest = m[1]!;
  let match: RegExpExecArray | null;
  while (re.lastIndex < rest.length && (match = re.exec(rest))) {
    const raw = match[2] !== undefined ? match[2].replace(/\\(.)/g, '$1') : match[3] ?? '';
    params.set(match[1]!.toLowerCase(), raw);
    if (match[0].length === 0) break;
  }
  return params;
}

function safeEqualHex(a: string, b: string): boolean {
  const x = Buffer.from(a.toLowerCase(), 'utf8');
  const y = Buffer.from(b.toLowerCase(), 'utf8');
  // Equal lengths for timingSafeEqual; a length difference says nothing about the password.
  return x.length === y.length && timingSafeEqual(x, y);
}

export interface DigestAuthOptions {
  realm: string;
  /** How long a nonce stays valid (ms); after that the client gets stale=true. */
  nonceTtlMs: number;
  credentials: DigestCredentials;
  /** HMAC key for nonces (default 32 random bytes per process). */
  key?: Buffer;
  clock?: () => number;
}

/** Nonces whose counts are remembered at most; the oldest go first (a flood of valid logins cannot grow memory). */
const MAX_TRACKED_NONCES = 10_000;

export class DigestAuthenticator {
  private readonly key: Buffer;
  private readonly clock: () => number;
  /** nonce → the highest nc accepted with it and the nonce's expiry (insertion order = age). */
  private readonly counts = new Map<string, { nc: number; expiry: number }>();

  constructor(private readonly opts: DigestAuthOptions) {
    this.key = opts.key ?? randomBytes(32);
    this.clock = opts.clock ?? Date.now;
  }

  get realm(): string {
    return this.opts.realm;
  }

  /** A fresh nonce: expiry (ms, base 36) and salt, HMAC-signed. */
  nonce(): string {
    const body = `${(this.clock() + this.opts.nonceTtlMs).toString(36)}.${randomBytes(6).toString('hex')}`;
    return `${body}.${this.sign(body)}`;
  }

  /** The WWW-Authenticate value of a 401. */
  challenge(stale = false): string {
    return `Digest realm="${this.opts.realm}", nonce="${this.nonce()}", qop="auth", algorithm=MD5${stale ? ', stale=true' : ''}`;
  }

  /** Checks an INVITE's Authorization header (method and Request-URI as received). */
  verify(method: string, requestUri: string, authorization: string | undefined): DigestVerdict {
    if (!authorization) return { ok: false, challenge: true, stale: false, reason: 'missing' };
    const p = parseDigestHeader(authorization);
    const username = p?.get('username');
    const nonce = p?.get('nonce');
    const uri = p?.get('uri');
    const response = p?.get('response');
    if (!p || !username || !nonce || !uri || !response) return { ok: false, challenge: true, stale: false, reason: 'malformed' };
    if (p.get('realm') !== this.opts.realm) return { ok: false, challenge: true, stale: false, reason: 'other_realm' };
    const algorithm = p.get('algorithm');
    const qop = p.get('qop');
    if ((algorithm && algorithm.toUpperCase() !== 'MD5') || (qop && qop !== 'auth')) return { ok: false, challenge: true, stale: false, reason: 'unsupported' };
    if (qop && (!p.get('nc') || !p.get('cnonce'))) return { ok: false, challenge: true, stale: false, reason: 'malformed' };
    const nonceState = this.checkNonce(nonce);
    if (nonceState !== 'fresh') {
      return nonceState === 'stale' ? { ok: false, challenge: true, stale: true, reason: 'stale' } : { ok: false, challenge: true, stale: false, reason: 'bad_nonce' };
    }
    const password = this.opts.credentials.lookup(username);
    // Unknown users cost the same MD5 work as known ones, so timing does not tell which usernames exist.
    const expected = digestResponse({
      username, realm: this.opts.realm, password: password ?? randomBytes(12).toString('hex'), method, uri, nonce,
      ...(qop ? { qop, nc: p.get('nc'), cnonce: p.get('cnonce') } : {}),
    });
    const matches = safeEqualHex(expected, response);
    if (password === undefined) return { ok: false, challenge: false, reason: 'unknown_user', username };
    if (!matches) return { ok: false, challenge: false, reason: 'bad_response', username };
    // The digest covers the uri it names; it must be this request's, or a captured digest could be replayed elsewhere.
    if (!sameUri(uri, requestUri)) return { ok: false, challenge: false, reason: 'uri_mismatch', username, digestUri: uri.slice(0, 200) };
    if (qop && !this.countFresh(nonce, p.get('nc')!)) return { ok: false, challenge: true, stale: false, reason: 'replay' };
    return { ok: true, username };
  }

  /** Records nc for the nonce; false when it is not above the last one accepted (a replay). */
  private countFresh(nonce: string, ncHex: string): boolean {
    const nc = parseInt(ncHex, 16);
    if (!Number.isFinite(nc)) return false;
    const seen = this.counts.get(nonce);
    if (seen && nc <= seen.nc) return false;
    const now = this.clock();
    if (seen) {
      seen.nc = nc;
      return true;
    }
    for (const [n, c] of this.counts) {
      if (c.expiry >= now && this.counts.size < MAX_TRACKED_NONCES) break;
      this.counts.delete(n);
    }
    this.counts.set(nonce, { nc, expiry: parseInt(nonce.split('.')[0]!, 36) });
    return true;
  }

  private sign(body: string): string {
    return createHmac('sha256', this.key).update(body).digest('base64url').slice(0, 22);
  }

  private checkNonce(nonce: string): 'fresh' | 'stale' | 'forged' {
    const i = nonce.lastIndexOf('.');
    if (i <= 0) return 'forged';
    const body = nonce.slice(0, i);
    const sig = nonce.slice(i + 1);
    const good = this.sign(body);
    if (sig.length !== good.length || !timingSafeEqual(Buffer.from(sig), Buffer.from(good))) return 'forged';
    const expiry = parseInt(body.split('.')[0] ?? '', 36);
    if (!Number.isFinite(expiry)) return 'forged';
    return expiry >= this.clock() ? 'fresh' : 'stale';
  }
}

/** Request-URIs compared without case and without a trailing ';transport=…'-style difference in parameter order. */
function sameUri(a: string, b: string): boolean {
  const norm = (u: string): string => u.trim().toLowerCase();
  return norm(a) === norm(b) || norm(a).split(';')[0] === norm(b).split(';')[0];
}

/** username → password from "user:password,user2:password2" (the password may contain ':'). */
export function parseSipCredentials(text: string): { credentials: Map<string, string>; problems: string[] } {
  const credentials = new Map<string, string>();
  const problems: string[] = [];
  for (const entry of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const i = entry.indexOf(':');
    const user = i > 0 ? entry.slice(0, i) : '';
    const password = i > 0 ? entry.slice(i + 1) : '';
    if (!user || !password || /[\s"\\]/.test(user)) {
      problems.push(`config error: WAGW_SIP_CREDENTIALS entry "${user}:…": expected user:password (user without spaces or quotes, password not empty)`);
      continue;
    }
    credentials.set(user, password);
  }
  return { credentials, problems };
}

/** Credentials the gateway answers a PBX's 401/407 challenge with, by the host of the INVITE's target. */
export type OutboundCredentials = ReadonlyMap<string, { username: string; password: string }>;

/**
 * WAGW_SIP_OUTBOUND_CREDENTIALS: "host=user:password,…" (host as in the target URI, case-insensitive; `*` for any
 * other host; the password may contain ':' and '=', not ','). Problems name the entry by position, never its text.
 */
export function parseOutboundCredentials(text: string): { credentials: Map<string, { username: string; password: string }>; problems: string[] } {
  const credentials = new Map<string, { username: string; password: string }>();
  const problems: string[] = [];
  const entries = text.split(',').map((s) => s.trim()).filter(Boolean);
  entries.forEach((entry, i) => {
    const m = /^([^=\s]+)=([^:\s"\\]+):(.+)$/.exec(entry);
    if (!m) {
      problems.push(`config error: WAGW_SIP_OUTBOUND_CREDENTIALS entry ${i + 1} of ${entries.length}: expected host=user:password`);
      return;
    }
    // Entries are found by the target URI's host alone: one with a port would silently never match.
    if (/^[^[]*:|\]:/.test(m[1]!)) {
      problems.push(`config error: WAGW_SIP_OUTBOUND_CREDENTIALS entry ${i + 1} of ${entries.length}: the host must not carry a port`);
      return;
    }
    credentials.set(m[1]!.toLowerCase(), { username: m[2]!, password: m[3]! });
  });
  return { credentials, problems };
}

/** The credentials for an INVITE to `uri`: its host's entry, else the `*` entry. */
export function outboundCredentialsFor(uri: string, credentials: OutboundCredentials): { username: string; password: string } | undefined {
  const host = uriHost(uri);
  return (host !== undefined ? credentials.get(host) : undefined) ?? credentials.get('*');
}

