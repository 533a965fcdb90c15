/**
 * SDES (RFC 4568) for the WhatsApp leg when the business number is set to `srtp_key_exchange_protocol: "SDES"`
 * (whatsapp-calling.md §4.5): Meta's SDP is plain `RTP/SAVP` with `a=crypto` keys, no ICE, no DTLS.
 *
 * This module only reads and writes SDP; sdes-leg.ts carries the media.
 */
import { randomBytes } from 'node:crypto';
import { redactSdesKeys } from './sdes-redact.js';
import { SRTP_AEAD_AES_128_GCM, SRTP_AES128_CM_HMAC_SHA1_32, SRTP_AES128_CM_HMAC_SHA1_80, type SrtpProfile } from './srtp.js';
import type { WhatsAppAudio } from './wa-audio-codec.js';

/** The suites our SRTP (srtp.ts) can carry, in our order of preference when we offer. */
export const SDES_SUITES = {
  AES_CM_128_HMAC_SHA1_80: { profile: SRTP_AES128_CM_HMAC_SHA1_80, keyLength: 16, saltLength: 14 },
  AES_CM_128_HMAC_SHA1_32: { profile: SRTP_AES128_CM_HMAC_SHA1_32, keyLength: 16, saltLength: 14 },
  AEAD_AES_128_GCM: { profile: SRTP_AEAD_AES_128_GCM, keyLength: 16, saltLength: 12 },
} as const satisfies Record<string, { profile: SrtpProfile; keyLength: number; saltLength: number }>;

export type SdesSuite = keyof typeof SDES_SUITES;

export function isSdesSuite(s: string): s is SdesSuite {
  return Object.prototype.hasOwnProperty.call(SDES_SUITES, s);
}

/** One usable `a=crypto` attribute. */
export interface SdesCrypto {
  tag: number;
  suite: SdesSuite;
  profile: SrtpProfile;
  masterKey: Buffer;
  masterSalt: Buffer;
  /** Master key identifier carried in every packet (RFC 3711 §3.1), when the attribute declares one. */
  mki: { value: number; length: number } | null;
  /** Packets the key may protect (RFC 4568 §6.1 lifetime), when given. Informational: we never re-key. */
  lifetime: number | null;
}

/** An `a=crypto` line we cannot use; the message names the line and the reason. */
export class SdesCryptoError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SdesCryptoError';
  }
}

/** Session parameters (RFC 4568 §6.3) that change SRTP in ways srtp.ts does not do: such a line is not usable. */
const UNSUPPORTED_SESSION_PARAMS = /^(KDR=|UNENCRYPTED_SRTP$|UNENCRYPTED_SRTCP$|UNAUTHENTICATED_SRTP$|FEC_KEY=)/;

/**
 * Parses one `a=crypto:<tag> <suite> inline:<base64 key‖salt>[|lifetime][|MKI:len][;inline:…] [session params]`
 * line (RFC 4568 §9.1). Only the first key parameter is used. Throws SdesCryptoError for a malformed line, an
 * unknown suite or session parameters we cannot honour.
 */
export function parseCryptoAttribute(line: string): SdesCrypto {
  const trimmed = line.trim();
  // Redacted before it is cut short: a key cut in half would no longer look like one.
  const redacted = redactSdesKeys(trimmed);
  const shown = redacted.length > 120 ? `${redacted.slice(0, 120)}…` : redacted;
  const fail = (why: string): never => {
    throw new SdesCryptoError(`a=crypto line "${shown}": ${why}`);
  };
  const m = /^a=crypto:(\S+)\s+(\S+)\s+(\S+)(?:\s+(.*))?$/.exec(trimmed);
  if (!m) return fail('expected "a=crypto:<tag> <suite> inline:<key>"');
  const [, tagText, suiteText, keyParams, sessionParams] = m;
  if (!/^\d{1,9}$/.test(tagText!)) fail('the tag must be 1 to 9 decimal digits');
  if (!isSdesSuite(suiteText!)) fail(`crypto suite ${suiteText} is not supported (supported: ${Object.keys(SDES_SUITES).join(', ')})`);
  const suite = suiteText as SdesSuite;
  const spec = SDES_SUITES[suite];
  for (const p of (sessionParams ?? '').split(/\s+/).filter(Boolean)) {
    if (UNSUPPORTED_SESSION_PARAMS.test(p)) fail(`session parameter ${p} is not supported`);
  }
  const first = keyParams!.split(';')[0]!;
  if (!first.startsWith('inline:')) fail('the key parameter must use the "inline:" method');
  const [b64, ...extras] = first.slice('inline:'.length).split('|');
  if (!b64 || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64) || b64.length % 4 !== 0) fail('the key is not valid base64');
  const material = Buffer.from(b64!, 'base64');
  const want = spec.keyLength + spec.saltLength;
  if (material.length !== want) fail(`the key is ${material.length} bytes, ${suite} needs ${want} (${spec.keyLength}-byte key ‖ ${spec.saltLength}-byte salt)`);
  let lifetime: number | null = null;
  let mki: SdesCrypto['mki'] = null;
  if (extras.length > 2) fail('too many "|" fields after the key');
  for (const x of extras) {
    const mk = /^(\d+):(\d+)$/.exec(x);
    if (mk) {
      if (mki) fail('more than one MKI field');
      const length = Number(mk[2]);
      if (length < 1 || length > 128) fail(`MKI length ${length} is out of range 1–128`);
      const value = Number(mk[1]);
      if (!Number.isSafeInteger(value) || (length < 7 && value >= 2 ** (8 * length))) fail(`MKI value ${mk[1]} does not fit in ${length} bytes`);
      mki = { value, length };
      continue;
    }
    if (mki) fail('the lifetime must come before the MKI');
    const pow = /^2\^(\d{1,2})$/.exec(x);
    if (pow && Number(pow[1]) <= 48) lifetime = 2 ** Number(pow[1]);
    else if (/^\d{1,15}$/.test(x)) lifetime = Number(x);
    else fail(`"${x}" is neither a lifetime nor MKI:length`);
    if (lifetime === 0) fail('the key lifetime is 0');
  }
  return {
    tag: Number(tagText),
    suite,
    profile: spec.profile,
    masterKey: material.subarray(0, spec.keyLength),
    masterSalt: material.subarray(spec.keyLength),
    mki,
    lifetime,
  };
}

/** Writes our `a=crypto` line: the peer reads our sending key from it. */
export function formatCryptoAttribute(tag: number, suite: SdesSuite, masterKey: Buffer, masterSalt: Buffer): string {
  return `a=crypto:${tag} ${suite} inline:${Buffer.concat([masterKey, masterSalt]).toString('base64')}`;
}

/** A fresh random master key and salt for `suite`. */
export function freshSdesKey(suite: SdesSuite): { masterKey: Buffer; masterSalt: Buffer } {
  const spec = SDES_SUITES[suite];
  const material = randomBytes(spec.keyLength + spec.saltLength);
  return { masterKey: material.subarray(0, spec.keyLength), masterSalt: material.subarray(spec.keyLength) };
}

/** What an SDES leg needs from the remote SDP's first audio section. */
export interface SdesRemoteMedia {
  /** `RTP/SAVP` (Meta's) or `RTP/SAVPF`: our SDP mirrors it. */
  proto: string;
  address: string;
  family: 'IP4' | 'IP6';
  port: number;
  rtcpMux: boolean;
  /** Every `a=crypto` line of the section, in order. */
  cryptoLines: string[];
}

/** Reads the first audio section; null when there is none. */
export function readSdesMedia(sdp: string): SdesRemoteMedia | null {
  const lines = sdp.split(/\r?\n/);
  let sessionC: { family: 'IP4' | 'IP6'; address: string } | null = null;
  let mediaC: { family: 'IP4' | 'IP6'; address: string } | null = null;
  let m: { port: number; proto: string } | null = null;
  let rtcpMux = false;
  const cryptoLines: string[] = [];
  let seenM = false;
  for (const line of lines) {
    if (line.startsWith('m=')) {
      if (m) break;
      seenM = true;
      const mm = /^m=audio (\d+)(?:\/\d+)? (\S+)/.exec(line);
      if (mm) m = { port: Number(mm[1]), proto: mm[2]! };
      continue;
    }
    const c = /^c=IN (IP4|IP6) ([^\s/]+)/.exec(line);
    if (c) {
      if (m) mediaC = { family: c[1] as 'IP4' | 'IP6', address: c[2]! };
      else if (!seenM) sessionC = { family: c[1] as 'IP4' | 'IP6', address: c[2]! };
      continue;
    }
    if (!m) continue;
    if (/^a=rtcp-mux\s*$/.test(line)) rtcpMux = true;
    else if (line.startsWith('a=crypto:')) cryptoLines.push(line.trim());
  }
  if (!m) return null;
  const conn = mediaC ?? sessionC ?? { family: 'IP4' as const, address: '' };
  return { proto: m.proto, port: m.port, address: conn.address, family: conn.family, rtcpMux, cryptoLines };
}

/**
 * Whether an SDP asks for SDES: its audio section is `RTP/SAVP` (or `RTP/SAVPF`) with at least one `a=crypto`.
 * DTLS offers are `UDP/TLS/RTP/SAVPF` with a fingerprint; anything else is left to the DTLS leg to refuse.
 */
export function isSdesSdp(sdp: string): boolean {
  if (typeof sdp !== 'string') return false;
  const media = readSdesMedia(sdp);
  return media !== null && /^RTP\/SAVPF?$/.test(media.proto) && media.cryptoLines.length > 0;
}

/**
 * The first `a=crypto` line we support (offer order is the offerer's preference, RFC 4568 §7.1.2), and why any
 * earlier lines were skipped. Throws SdesCryptoError naming every line's problem when none is usable.
 */
export function chooseCrypto(lines: readonly string[]): { crypto: SdesCrypto; skipped: string[] } {
  const skipped: string[] = [];
  for (const line of lines) {
    try {
      return { crypto: parseCryptoAttribute(line), skipped };
    } catch (err) {
      if (!(err instanceof SdesCryptoError)) throw err;
      skipped.push(err.message);
    }
  }
  throw new SdesCryptoError(lines.length === 0 ? 'no a=crypto line' : `no usable a=crypto line: ${skipped.join('; ')}`);
}

export interface SdesSdpOptions {
  address: string;
  port: number;
  proto: string;
  /** Our `a=crypto` lines (one in an answer; the offered suites in an offer). */
  cryptoLines: readonly string[];
  /** The audio codecs, in preference order (an answer carries the one it chose). */
  audio: readonly WhatsAppAudio[];
  dtmfPt: number | null;
  /** a=rtcp-mux (default true); an answer leaves it out when the offer did not have it (RFC 5761 §5.1.1). */
  rtcpMux?: boolean;
  sessionId?: string;
}

/**
 * Our SDP toward Meta: one sendrecv audio section, rtcp-mux, Opus/48000 with in-band FEC (or G.711), telephone-event/8000,
 * 20 ms packets (§4.1, §4.4) and no ICE, DTLS or fingerprint lines.
 */
export function buildSdesSdp(o: SdesSdpOptions): string {
  const family = o.address.includes(':') ? 'IP6' : 'IP4';
  const sid = o.sessionId ?? String(randomBytes(6).readUIntBE(0, 6));
  const pts = [...o.audio.map((a) => a.payloadType), ...(o.dtmfPt !== null ? [o.dtmfPt] : [])];
  return [
    'v=0',
    `o=- ${sid} 1 IN ${family} ${o.address}`,
    's=-',
    `c=IN ${family} ${o.address}`,
    't=0 0',
    `m=audio ${o.port} ${o.proto} ${pts.join(' ')}`,
    ...(o.rtcpMux === false ? [] : ['a=rtcp-mux']),
    ...o.cryptoLines,
    ...o.audio.flatMap((a) => a.codec === 'opus'
      ? [`a=rtpmap:${a.payloadType} opus/48000/2`, `a=fmtp:${a.payloadType} minptime=10;useinbandfec=1`]
      : [`a=rtpmap:${a.payloadType} ${a.codec}/8000`]),
    ...(o.dtmfPt !== null ? [`a=rtpmap:${o.dtmfPt} telephone-event/8000`, `a=fmtp:${o.dtmfPt} 0-15`] : []),
    'a=ptime:20',
    'a=sendrecv',
    '',
  ].join('\r\n');
}
