/**
 * SDP helpers for the Meta double (fact sheet §4.2–§4.5, §2.1).
 *
 *   sdpLines(sdp) -> string[]                      split on CRLF or LF, no empty trailing line
 *   joinSdp(lines) -> string                       CRLF-joined with trailing CRLF
 *   keepCodecs(sdp, keep: (rtpmap) => boolean)     drop payload types from every m=audio (rtpmap/fmtp/rtcp-fb too)
 *   metaCodecFilter                                opus/48000/2 PT 111 + telephone-event/8000 PT 126 (Meta's offer)
 *   renameMid(sdp, from, to)                       a=mid + a=group:BUNDLE
 *   restrictCandidates(sdp, address)               keep UDP host candidates on `address`; set c= and m= port
 *   validateBusinessSdp(sdp, opts) -> { errors, warnings }
 *       errors   -> the Graph double answers code 100 / HTTP 400 with error_data.details = errors.join('; ')
 *       warnings -> documented soft rules (setup:active, no ice-lite, telephone-event/8000, one SSRC, ptime 20,
 *                   CRLF, only sha-256 fingerprints); recorded in the request log, errors only when strict.
 *   staticMetaOffer({ address, port }) / staticMetaAnswer(offer, { address, port })
 *       Meta-looking SDP without a real peer, for signalling-only tests (ICE/DTLS never complete).
 *   staticMetaSdesOffer({ address, port }) / staticMetaSdesAnswer(offer, { address, port })
 *       the same for a number set to SDES (§4.5: RTP/SAVP, a=crypto, no ICE/DTLS); see sdes-user.ts for a real peer.
 *   sdpFingerprint(sdp) / sdpSetup(sdp) / sdpPayloadTypes(sdp)   small accessors
 */
import { randomBytes } from 'node:crypto';

export function sdpLines(sdp: string): string[] {
  const lines = sdp.split(/\r?\n/);
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines;
}

export function joinSdp(lines: string[]): string {
  return lines.join('\r\n') + '\r\n';
}

export interface RtpMap {
  pt: number;
  codec: string;
  clock: number;
  channels?: number;
}

export function parseRtpMaps(sdp: string): RtpMap[] {
  const out: RtpMap[] = [];
  for (const l of sdpLines(sdp)) {
    const m = /^a=rtpmap:(\d+) ([^/]+)\/(\d+)(?:\/(\d+))?/.exec(l);
    if (m) {
      const map: RtpMap = { pt: Number(m[1]), codec: m[2]!, clock: Number(m[3]) };
      if (m[4] !== undefined) map.channels = Number(m[4]);
      out.push(map);
    }
  }
  return out;
}

export const metaCodecFilter = (r: RtpMap): boolean =>
  (r.pt === 111 && r.codec.toLowerCase() === 'opus' && r.clock === 48000) ||
  (r.pt === 126 && r.codec.toLowerCase() === 'telephone-event' && r.clock === 8000);

/** Keep only payload types whose rtpmap satisfies `keep`, in every m=audio section. */
export function keepCodecs(sdp: string, keep: (r: RtpMap) => boolean): string {
  const maps = parseRtpMaps(sdp);
  const keepPts = new Set(maps.filter(keep).map((r) => r.pt));
  const out: string[] = [];
  for (const l of sdpLines(sdp)) {
    const m = /^m=audio (\d+) (\S+) (.*)$/.exec(l);
    if (m) {
      const pts = m[3]!.split(' ').filter((p) => keepPts.has(Number(p)));
      out.push(`m=audio ${m[1]} ${m[2]} ${pts.join(' ')}`);
      continue;
    }
    const a = /^a=(rtpmap|fmtp|rtcp-fb):(\d+) /.exec(l);
    if (a && !keepPts.has(Number(a[2]))) continue;
    out.push(l);
  }
  return joinSdp(out);
}

export function renameMid(sdp: string, from: string, to: string): string {
  return joinSdp(
    sdpLines(sdp).map((l) => {
      if (l === `a=mid:${from}`) return `a=mid:${to}`;
      if (l.startsWith('a=group:BUNDLE ')) {
        return 'a=group:BUNDLE ' + l.slice('a=group:BUNDLE '.length).split(' ').map((t) => (t === from ? to : t)).join(' ');
      }
      return l;
    }),
  );
}

/** Keep only UDP host candidates on `address`; point c= and the m= port at the first one. */
export function restrictCandidates(sdp: string, address: string): string {
  const lines = sdpLines(sdp);
  let port: string | undefined;
  const kept: string[] = [];
  for (const l of lines) {
    if (l.startsWith('a=candidate:')) {
      const f = l.slice('a=candidate:'.length).split(' ');
      // foundation component transport priority address port typ type ...
      if ((f[2] ?? '').toLowerCase() !== 'udp' || f[4] !== address) continue;
      port ??= f[5];
      kept.push(l);
      continue;
    }
    if (l === 'a=ice-options:trickle' || l.startsWith('a=end-of-candidates')) continue;
    kept.push(l);
  }
  if (port === undefined) throw new Error(`no UDP candidate on ${address} in SDP`);
  const family = address.includes(':') ? 'IP6' : 'IP4';
  return joinSdp(
    kept.map((l) => {
      if (l.startsWith('c=IN ')) return `c=IN ${family} ${address}`;
      const m = /^m=audio \d+ (.*)$/.exec(l);
      if (m) return `m=audio ${port} ${m[1]}`;
      return l;
    }),
  );
}

/** Insert a session-level attribute line just before the first m= line. */
export function addSessionAttribute(sdp: string, attr: string): string {
  const lines = sdpLines(sdp);
  const idx = lines.findIndex((l) => l.startsWith('m='));
  lines.splice(idx < 0 ? lines.length : idx, 0, attr);
  return joinSdp(lines);
}

export function sdpFingerprint(sdp: string): { algorithm: string; value: string } | undefined {
  for (const l of sdpLines(sdp)) {
    const m = /^a=fingerprint:(\S+) (\S+)/.exec(l);
    if (m) return { algorithm: m[1]!.toLowerCase(), value: m[2]! };
  }
  return undefined;
}

export function sdpSetup(sdp: string): string | undefined {
  for (const l of sdpLines(sdp)) if (l.startsWith('a=setup:')) return l.slice(8).trim();
  return undefined;
}

export function sdpPayloadTypes(sdp: string): number[] {
  for (const l of sdpLines(sdp)) {
    const m = /^m=audio \d+ \S+ (.*)$/.exec(l);
    if (m) return m[1]!.trim().split(/\s+/).map(Number);
  }
  return [];
}

export interface SdpValidationOptions {
  /** 'answer' for pre_accept/accept, 'offer' for connect. */
  role: 'offer' | 'answer';
  /** PCMA/PCMU allowed instead of Opus (calling settings audio.additional_codecs). */
  allowG711?: boolean;
  /** srtp_key_exchange_protocol SDES configured (RTP/SAVP + a=crypto instead of DTLS). */
  sdes?: boolean;
}

export interface SdpValidation {
  errors: string[];
  warnings: string[];
}

export function validateBusinessSdp(sdp: unknown, opts: SdpValidationOptions): SdpValidation {
  const errors: string[] = [];
  const warnings: string[] = [];
  if (typeof sdp !== 'string' || sdp.trim() === '') return { errors: ['session.sdp missing or not a string'], warnings };
  if (sdp.includes('\\r\\n') || sdp.includes('\\n')) errors.push('SDP appears double-encoded (literal \\r\\n)');
  if (!sdp.startsWith('v=0')) errors.push('SDP must start with v=0');
  if (!sdp.includes('\r\n')) warnings.push('SDP lines should end with CRLF');
  const lines = sdpLines(sdp);
  const media = lines.filter((l) => l.startsWith('m='));
  const audio = media.filter((l) => l.startsWith('m=audio '));
  if (audio.length === 0) errors.push('no m=audio section');
  if (audio.length > 1) errors.push('more than one m=audio section');
  if (media.some((l) => !l.startsWith('m=audio '))) errors.push('only one audio m-line is allowed (no video/application)');
  const proto = /^m=audio \d+ (\S+)/.exec(audio[0] ?? '')?.[1] ?? '';
  const fingerprints = lines.filter((l) => l.startsWith('a=fingerprint:'));
  const sha256 = fingerprints.filter((l) => /^a=fingerprint:sha-256 ([0-9A-Fa-f]{2}:){31}[0-9A-Fa-f]{2}\s*$/.test(l));
  const crypto = lines.filter((l) => l.startsWith('a=crypto:'));
  if (opts.sdes) {
    if (!/RTP\/SAVP/.test(proto)) errors.push(`SDES requires RTP/SAVP, got ${proto || 'none'}`);
    if (crypto.length === 0) errors.push('SDES requires a=crypto');
  } else {
    if (proto && proto !== 'UDP/TLS/RTP/SAVPF' && proto !== 'UDP/TLS/RTP/SAVP') errors.push(`unsupported media protocol ${proto}`);
    if (sha256.length === 0) errors.push('No fingerprint found in SDP (a=fingerprint:sha-256 required)');
    if (fingerprints.length > sha256.length) warnings.push('non-sha-256 a=fingerprint lines present');
    if (!lines.some((l) => l.startsWith('a=ice-ufrag:'))) errors.push('missing a=ice-ufrag');
    if (!lines.some((l) => l.startsWith('a=ice-pwd:'))) errors.push('missing a=ice-pwd');
    if (!lines.some((l) => l.startsWith('a=candidate:'))) warnings.push('no a=candidate lines');
    const setup = sdpSetup(sdp);
    if (opts.role === 'answer' && setup !== 'active') warnings.push(`answer should use a=setup:active (got ${setup ?? 'none'})`);
    if (opts.role === 'offer' && setup === undefined) errors.push('missing a=setup');
  }
  if (lines.some((l) => l === 'a=ice-lite')) warnings.push('business SDP must not be ice-lite');
  const maps = parseRtpMaps(sdp);
  const pts = sdpPayloadTypes(sdp);
  const offered = maps.filter((m) => pts.includes(m.pt));
  const opus = offered.find((m) => m.codec.toLowerCase() === 'opus' && m.clock === 48000);
  const g711 = offered.find((m) => ['pcmu', 'pcma'].includes(m.codec.toLowerCase()) && m.clock === 8000) ??
    (pts.includes(0) || pts.includes(8) ? { pt: 0, codec: 'PCMU', clock: 8000 } : undefined);
  if (!opus && !(opts.allowG711 && g711)) errors.push(opts.allowG711 ? 'no opus/48000 or PCMU/PCMA codec' : 'opus/48000/2 codec required');
  const te = offered.filter((m) => m.codec.toLowerCase() === 'telephone-event');
  if (te.length > 0 && !te.some((m) => m.clock === 8000)) warnings.push('telephone-event must use the 8000 Hz clock');
  if (te.length === 0) warnings.push('no telephone-event/8000 (DTMF) payload type');
  const ssrcs = new Set(lines.filter((l) => l.startsWith('a=ssrc:')).map((l) => l.split(' ')[0]));
  if (ssrcs.size > 1) warnings.push(`multiple SSRCs (${ssrcs.size}); Meta requires a single SSRC`);
  const ptime = lines.find((l) => l.startsWith('a=ptime:'));
  if (ptime && ptime.trim() !== 'a=ptime:20') warnings.push(`ptime must be 20 (${ptime})`);
  if (lines.some((l) => /^a=(sendonly|recvonly|inactive)$/.test(l))) warnings.push('audio direction is not sendrecv');
  return { errors, warnings };
}

function randomToken(n: number): string {
  return randomBytes(n).toString('base64').replace(/[^A-Za-z0-9]/g, 'x').slice(0, n);
}

function randomFingerprint(): string {
  return Array.from(randomBytes(32), (b) => b.toString(16).toUpperCase().padStart(2, '0')).join(':');
}

export interface StaticSdpOptions {
  address?: string;
  port?: number;
}

/** A Meta-looking offer (§4.2) that no real peer stands behind. */
export function staticMetaOffer(opts: StaticSdpOptions = {}): string {
  const address = opts.address ?? '127.0.0.1';
  const port = opts.port ?? 3480;
  const ssrc = randomBytes(4).readUInt32BE(0);
  return joinSdp([
    'v=0',
    `o=- ${Date.now()} 2 IN IP4 ${address}`,
    's=-',
    't=0 0',
    'a=group:BUNDLE audio',
    'a=ice-lite',
    'm=audio ' + port + ' UDP/TLS/RTP/SAVPF 111 126',
    `c=IN IP4 ${address}`,
    'a=rtcp:9 IN IP4 0.0.0.0',
    `a=candidate:1 1 udp 2113937151 ${address} ${port} typ host generation 0 network-cost 50`,
    `a=ice-ufrag:${randomToken(4)}`,
    `a=ice-pwd:${randomToken(24)}`,
    `a=fingerprint:sha-256 ${randomFingerprint()}`,
    'a=setup:actpass',
    'a=mid:audio',
    'a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level',
    'a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time',
    'a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01',
    'a=sendrecv',
    'a=rtcp-mux',
    'a=rtpmap:111 opus/48000/2',
    'a=rtcp-fb:111 transport-cc',
    'a=fmtp:111 minptime=10;useinbandfec=1',
    'a=rtpmap:126 telephone-event/8000',
    `a=ssrc:${ssrc} cname:${randomToken(16)}`,
  ]);
}

/** A Meta-looking answer to a business offer (M-REF sample answer: setup:active), no real peer behind it. */
export function staticMetaAnswer(offer: string, opts: StaticSdpOptions = {}): string {
  const address = opts.address ?? '127.0.0.1';
  const port = opts.port ?? 3480;
  const lines = sdpLines(offer);
  const mid = lines.find((l) => l.startsWith('a=mid:'))?.slice(6) ?? '0';
  const maps = parseRtpMaps(offer);
  const opus = maps.find((m) => m.codec.toLowerCase() === 'opus') ?? { pt: 111, codec: 'opus', clock: 48000, channels: 2 };
  const te = maps.find((m) => m.codec.toLowerCase() === 'telephone-event' && m.clock === 8000);
  const pts = [opus.pt, ...(te ? [te.pt] : [])];
  const ssrc = randomBytes(4).readUInt32BE(0);
  return joinSdp([
    'v=0',
    `o=- ${Date.now()} 2 IN IP4 ${address}`,
    's=-',
    't=0 0',
    `a=group:BUNDLE ${mid}`,
    `m=audio ${port} UDP/TLS/RTP/SAVPF ${pts.join(' ')}`,
    `c=IN IP4 ${address}`,
    'a=rtcp:9 IN IP4 0.0.0.0',
    `a=candidate:1 1 udp 2113937151 ${address} ${port} typ host generation 0 network-cost 50`,
    `a=ice-ufrag:${randomToken(4)}`,
    `a=ice-pwd:${randomToken(24)}`,
    `a=fingerprint:sha-256 ${randomFingerprint()}`,
    'a=setup:active',
    `a=mid:${mid}`,
    'a=sendrecv',
    'a=rtcp-mux',
    `a=rtpmap:${opus.pt} opus/48000/2`,
    `a=fmtp:${opus.pt} minptime=10;useinbandfec=1`,
    ...(te ? [`a=rtpmap:${te.pt} telephone-event/8000`] : []),
    `a=ssrc:${ssrc} cname:${randomToken(16)}`,
  ]);
}

/** Meta's SDES offer (§4.5 sample: RTP/SAVP, rtcp-mux, a=crypto) that no real peer stands behind. */
export function staticMetaSdesOffer(opts: StaticSdpOptions = {}): string {
  const address = opts.address ?? '127.0.0.1';
  const port = opts.port ?? 3480;
  return joinSdp([
    'v=0', `o=- ${Date.now()} 2 IN IP4 ${address}`, 's=-', `c=IN IP4 ${address}`, 't=0 0',
    `m=audio ${port} RTP/SAVP 111 126`,
    'a=rtcp-mux',
    `a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:${randomBytes(30).toString('base64')}`,
    'a=rtpmap:111 opus/48000/2',
    'a=fmtp:111 maxaveragebitrate=20000;maxplaybackrate=16000;minptime=20;sprop-maxcapturerate=16000;useinbandfec=1',
    'a=rtpmap:126 telephone-event/8000',
    'a=ptime:20',
    'a=maxptime:20',
  ]);
}

/** Meta's SDES answer to a business SDES offer: the first offered AES_CM_128_HMAC_SHA1_80 tag, Meta's own key. */
export function staticMetaSdesAnswer(offer: string, opts: StaticSdpOptions = {}): string {
  const tag = /^a=crypto:(\d+) AES_CM_128_HMAC_SHA1_80 /m.exec(offer)?.[1] ?? '1';
  const maps = parseRtpMaps(offer);
  const opus = maps.find((m) => m.codec.toLowerCase() === 'opus')?.pt ?? 111;
  const te = maps.find((m) => m.codec.toLowerCase() === 'telephone-event' && m.clock === 8000)?.pt ?? 126;
  return staticMetaSdesOffer(opts)
    .replace(/^a=crypto:1 /m, `a=crypto:${tag} `)
    .replace('RTP/SAVP 111 126', `RTP/SAVP ${opus} ${te}`)
    .replace(/a=rtpmap:111 /, `a=rtpmap:${opus} `)
    .replace(/a=fmtp:111 /, `a=fmtp:${opus} `)
    .replace(/a=rtpmap:126 /, `a=rtpmap:${te} `);
}
