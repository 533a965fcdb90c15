/**
 * SIP-side SDP: plain RTP/AVP audio with G.711 (PCMU/PCMA) and RFC 4733 telephone-event/8000.
 *
 * - buildSdpOffer(): the offer we put in an outbound INVITE.
 * - parseSdp(): turn a remote answer (or offer) into the media parameters we need.
 * - buildSdpAnswer(): answer an inbound INVITE's offer (picks a common codec, mirrors direction).
 *
 * Everything that is not understood or not acceptable throws SdpError (never a bare Error).
 */

export type G711Codec = 'PCMU' | 'PCMA';
export type MediaDirection = 'sendrecv' | 'sendonly' | 'recvonly' | 'inactive';

export const G711_STATIC_PAYLOAD_TYPES: Readonly<Record<G711Codec, number>> = { PCMU: 0, PCMA: 8 };
export const DEFAULT_CODEC_PREFERENCE: readonly G711Codec[] = ['PCMU', 'PCMA'];
export const DEFAULT_DTMF_PAYLOAD_TYPE = 101;

export type SdpErrorCode =
  | 'malformed'
  | 'no-audio'
  | 'no-connection'
  | 'bad-port'
  | 'stream-rejected'
  | 'unsupported-transport'
  | 'unsupported-address'
  | 'no-common-codec'
  | 'bad-option';

export class SdpError extends Error {
  override readonly name = 'SdpError';
  constructor(
    readonly code: SdpErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface SdpOfferOptions {
  /** IPv4 address put in c= (the media address the far end must send RTP to). */
  address: string;
  /** Local RTP port (even, 1..65535). */
  port: number;
  /** Codec preference order; the first one is the preferred codec. Default PCMU, PCMA. */
  codecs?: readonly G711Codec[];
  /** Offer RFC 4733 telephone-event (default true). */
  dtmf?: boolean;
  /** Dynamic payload type for telephone-event (default 101). */
  dtmfPayloadType?: number;
  /** a=ptime (default 20). */
  ptime?: number;
  /** Default sendrecv. */
  direction?: MediaDirection;
  /** o= session id (default: derived from the clock). */
  sessionId?: string;
  /** o= session version (default 1). Increment it for every changed re-offer. */
  sessionVersion?: number;
  /** o= username and s= line (default "wa-sip-gateway"). */
  sessionName?: string;
  /**
   * An earlier SDP of ours in this session: a re-offer keeps its other m= lines, refused with port 0, since a later
   * offer may not have fewer m= lines than the session (RFC 3264 §8).
   */
  sameStreamsAs?: string;
}

export interface ParsedSdp {
  /** Connection address the far end wants RTP sent to (media-level c= wins over session-level). */
  address: string;
  addressType: 'IP4' | 'IP6';
  port: number;
  /** Negotiated G.711 codec. */
  codec: G711Codec;
  /** Payload type the far end uses for that codec (0/8 normally). */
  payloadType: number;
  /** RFC 4733 telephone-event/8000 payload type, when present. */
  dtmfPayloadType?: number;
  /** The direction attribute, or sendonly / inactive for c=0.0.0.0 (nothing may be sent to that peer). */
  direction: MediaDirection;
  /** a=ptime if given. */
  ptime?: number;
  /** All codecs of ours that the remote lists, in the remote's order. */
  commonCodecs: G711Codec[];
}

export interface ParseSdpOptions {
  /** Codecs we accept (default PCMU, PCMA). */
  codecs?: readonly G711Codec[];
  /**
   * Which order decides the codec when several are common:
   * 'remote' (default): the first acceptable payload type on the remote m= line (right for answers);
   * 'local': the first codec of `codecs` that the remote offers (for choosing an answer to an offer).
   */
  prefer?: 'remote' | 'local';
}

const CRLF = '\r\n';
const IPV4_RE = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const DIRECTIONS: readonly MediaDirection[] = ['sendrecv', 'sendonly', 'recvonly', 'inactive'];

function isDirection(value: string): value is MediaDirection {
  return (DIRECTIONS as readonly string[]).includes(value);
}

function checkCodecs(codecs: readonly G711Codec[]): G711Codec[] {
  if (codecs.length === 0) throw new SdpError('bad-option', 'codec preference list is empty');
  const out: G711Codec[] = [];
  for (const c of codecs) {
    if (c !== 'PCMU' && c !== 'PCMA') throw new SdpError('bad-option', `unsupported codec ${String(c)}`);
    if (!out.includes(c)) out.push(c);
  }
  return out;
}

function checkPort(port: number): void {
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new SdpError('bad-option', `invalid RTP port ${port}`);
  }
}

function checkDtmfPt(pt: number): void {
  if (!Number.isInteger(pt) || pt < 96 || pt > 127) {
    throw new SdpError('bad-option', `invalid dynamic payload type ${pt}`);
  }
}

let sessionCounter = 0;
function defaultSessionId(): string {
  sessionCounter = (sessionCounter + 1) % 1000;
  return String(Date.now() * 1000 + sessionCounter);
}

interface MediaLinesOptions {
  address: string;
  port: number;
  codecs: readonly { codec: G711Codec; pt: number }[];
  dtmfPayloadType?: number;
  ptime: number;
  direction: MediaDirection;
  sessionId: string;
  sessionVersion: number;
  sessionName: string;
  /** An answer's m= lines for the offer's other streams (port 0), before and after our audio section (RFC 3264 §6). */
  rejectedBefore?: readonly string[];
  rejectedAfter?: readonly string[];
}

function writeSdp(o: MediaLinesOptions): string {
  if (!IPV4_RE.test(o.address)) throw new SdpError('bad-option', `media address must be IPv4, got ${o.address}`);
  checkPort(o.port);
  const pts = o.codecs.map((c) => c.pt);
  if (o.dtmfPayloadType !== undefined) pts.push(o.dtmfPayloadType);
  const lines = [
    'v=0',
    `o=${o.sessionName} ${o.sessionId} ${o.sessionVersion} IN IP4 ${o.address}`,
    `s=${o.sessionName}`,
    `c=IN IP4 ${o.address}`,
    't=0 0',
    ...(o.rejectedBefore ?? []),
    `m=audio ${o.port} RTP/AVP ${pts.join(' ')}`,
  ];
  for (const c of o.codecs) lines.push(`a=rtpmap:${c.pt} ${c.codec}/8000`);
  if (o.dtmfPayloadType !== undefined) {
    lines.push(`a=rtpmap:${o.dtmfPayloadType} telephone-event/8000`);
    lines.push(`a=fmtp:${o.dtmfPayloadType} 0-16`);
  }
  lines.push(`a=ptime:${o.ptime}`);
  lines.push(`a=${o.direction}`);
  if (o.rejectedAfter) lines.push(...o.rejectedAfter);
  return lines.join(CRLF) + CRLF;
}

/** Build the SDP offer for an outbound INVITE. */
export function buildSdpOffer(opts: SdpOfferOptions): string {
  const codecs = checkCodecs(opts.codecs ?? DEFAULT_CODEC_PREFERENCE);
  const dtmfPt = opts.dtmfPayloadType ?? DEFAULT_DTMF_PAYLOAD_TYPE;
  if (opts.dtmf !== false) checkDtmfPt(dtmfPt);
  const ptime = opts.ptime ?? 20;
  if (!Number.isInteger(ptime) || ptime < 10 || ptime > 120) throw new SdpError('bad-option', `invalid ptime ${ptime}`);
  return writeSdp({
    address: opts.address,
    port: opts.port,
    codecs: codecs.map((codec) => ({ codec, pt: G711_STATIC_PAYLOAD_TYPES[codec] })),
    ...(opts.dtmf === false ? {} : { dtmfPayloadType: dtmfPt }),
    ptime,
    direction: opts.direction ?? 'sendrecv',
    sessionId: opts.sessionId ?? defaultSessionId(),
    sessionVersion: opts.sessionVersion ?? 1,
    sessionName: sanitizeSessionName(opts.sessionName ?? 'wa-sip-gateway'),
    ...(opts.sameStreamsAs ? refusedAround(tokenize(opts.sameStreamsAs).media) : {}),
  });
}

/** An answer's or re-offer's m= line for a stream we do not take: port 0, the stream's transport and first format. */
function refusedLine(m: RawMedia): string {
  return `m=${m.media} 0 ${m.proto} ${m.fmts[0] ?? '0'}`;
}

/** The m= lines before and after the (first active) audio stream, refused. */
function refusedAround(media: readonly RawMedia[], active = media.findIndex((m) => m.media === 'audio' && m.port !== 0)): { rejectedBefore: string[]; rejectedAfter: string[] } {
  if (active < 0) return { rejectedBefore: [], rejectedAfter: [] };
  return { rejectedBefore: media.slice(0, active).map(refusedLine), rejectedAfter: media.slice(active + 1).map(refusedLine) };
}

function sanitizeSessionName(name: string): string {
  const cleaned = name.replace(/[^A-Za-z0-9._-]/g, '');
  return cleaned.length > 0 ? cleaned : '-';
}

interface RawMedia {
  media: string;
  port: number;
  proto: string;
  fmts: string[];
  connection?: { addressType: 'IP4' | 'IP6'; address: string };
  attributes: string[];
}

interface RawSdp {
  connection?: { addressType: 'IP4' | 'IP6'; address: string };
  attributes: string[];
  media: RawMedia[];
}

function parseConnection(value: string): { addressType: 'IP4' | 'IP6'; address: string } {
  const parts = value.trim().split(/\s+/);
  if (parts.length !== 3 || parts[0] !== 'IN' || (parts[1] !== 'IP4' && parts[1] !== 'IP6')) {
    throw new SdpError('malformed', `bad c= line: ${value}`);
  }
  const addressType = parts[1];
  // Strip multicast TTL / count suffixes ("224.2.1.1/127").
  const address = (parts[2] ?? '').split('/')[0] ?? '';
  if (addressType === 'IP4' && !IPV4_RE.test(address)) throw new SdpError('malformed', `bad IPv4 address in c= line: ${value}`);
  if (addressType === 'IP6' && !/^[0-9A-Fa-f:.]+$/.test(address)) throw new SdpError('malformed', `bad IPv6 address in c= line: ${value}`);
  return { addressType, address };
}

function tokenize(sdp: string): RawSdp {
  if (typeof sdp !== 'string' || sdp.trim().length === 0) throw new SdpError('malformed', 'empty SDP');
  if (sdp.length > 64 * 1024) throw new SdpError('malformed', 'SDP too large');
  const lines = sdp.split(/\r?\n/).map((l) => l.replace(/\r$/, '')).filter((l) => l.length > 0);
  const first = lines[0];
  if (first === undefined || !/^v=0\s*$/.test(first)) throw new SdpError('malformed', 'SDP does not start with v=0');
  const out: RawSdp = { attributes: [], media: [] };
  let current: RawMedia | undefined;
  for (const line of lines) {
    const m = /^([a-z])=(.*)$/.exec(line);
    if (!m) throw new SdpError('malformed', `bad SDP line: ${line.slice(0, 80)}`);
    const type = m[1];
    const value = m[2] ?? '';
    if (type === 'm') {
      const parts = value.trim().split(/\s+/);
      const [media, portSpec, proto, ...fmts] = parts;
      if (media === undefined || portSpec === undefined || proto === undefined) {
        throw new SdpError('malformed', `bad m= line: ${value}`);
      }
      const portStr = portSpec.split('/')[0] ?? '';
      if (!/^\d{1,5}$/.test(portStr)) throw new SdpError('bad-port', `bad port in m= line: ${value}`);
      const port = Number(portStr);
      if (port > 65535) throw new SdpError('bad-port', `bad port in m= line: ${value}`);
      current = { media, port, proto, fmts, attributes: [] };
      out.media.push(current);
    } else if (type === 'c') {
      const conn = parseConnection(value);
      if (current) current.connection = conn;
      else out.connection = conn;
    } else if (type === 'a') {
      (current ? current.attributes : out.attributes).push(value);
    }
  }
  return out;
}

function directionOf(attrs: readonly string[]): MediaDirection | undefined {
  for (const a of attrs) {
    const v = a.trim();
    if (isDirection(v)) return v;
  }
  return undefined;
}

interface RtpMap {
  encoding: string;
  clockRate: number;
}

function rtpmaps(attrs: readonly string[]): Map<number, RtpMap> {
  const map = new Map<number, RtpMap>();
  for (const a of attrs) {
    const m = /^rtpmap:(\d{1,3})\s+([^/\s]+)\/(\d+)/i.exec(a);
    if (m) map.set(Number(m[1]), { encoding: (m[2] ?? '').toUpperCase(), clockRate: Number(m[3]) });
  }
  return map;
}

function codecOfPayload(pt: number, maps: Map<number, RtpMap>): G711Codec | 'telephone-event' | undefined {
  const rm = maps.get(pt);
  if (rm) {
    if (rm.clockRate !== 8000) return undefined;
    if (rm.encoding === 'PCMU' || rm.encoding === 'PCMA') return rm.encoding;
    if (rm.encoding === 'TELEPHONE-EVENT') return 'telephone-event';
    return undefined;
  }
  if (pt === 0) return 'PCMU';
  if (pt === 8) return 'PCMA';
  return undefined;
}

interface AudioSelection {
  parsed: ParsedSdp;
  /** Offered payload types per codec, remote order. */
  offered: { codec: G711Codec; pt: number }[];
  /** Every m= line of the SDP, in order, and which one is the audio stream we use. */
  media: readonly RawMedia[];
  activeIndex: number;
  sessionVersion?: number;
}

function selectAudio(sdp: string, opts: ParseSdpOptions): AudioSelection {
  const accepted = checkCodecs(opts.codecs ?? DEFAULT_CODEC_PREFERENCE);
  const raw = tokenize(sdp);
  const audio = raw.media.filter((m) => m.media === 'audio');
  if (audio.length === 0) throw new SdpError('no-audio', 'SDP has no m=audio line');
  const active = audio.find((m) => m.port !== 0);
  if (!active) throw new SdpError('stream-rejected', 'audio stream rejected (port 0)');
  if (active.proto.toUpperCase() !== 'RTP/AVP') {
    throw new SdpError('unsupported-transport', `unsupported audio transport ${active.proto} (need RTP/AVP)`);
  }
  const connection = active.connection ?? raw.connection;
  if (!connection) throw new SdpError('no-connection', 'SDP has no c= line for the audio stream');
  // Our media sockets are IPv4: an IPv6 peer would get a 200 OK and then silence.
  if (connection.addressType === 'IP6') throw new SdpError('unsupported-address', `IPv6 media address ${connection.address} not supported (IPv4 only)`);

  const maps = rtpmaps(active.attributes);
  const offered: { codec: G711Codec; pt: number }[] = [];
  let dtmfPayloadType: number | undefined;
  for (const f of active.fmts) {
    if (!/^\d{1,3}$/.test(f)) throw new SdpError('malformed', `bad payload type ${f}`);
    const pt = Number(f);
    if (pt > 127) throw new SdpError('malformed', `bad payload type ${f}`);
    const c = codecOfPayload(pt, maps);
    if (c === 'telephone-event') {
      if (dtmfPayloadType === undefined) dtmfPayloadType = pt;
    } else if (c !== undefined && accepted.includes(c) && !offered.some((o) => o.codec === c)) {
      offered.push({ codec: c, pt });
    }
  }
  if (offered.length === 0) {
    throw new SdpError('no-common-codec', `no common codec (remote offers ${active.fmts.join(' ') || 'nothing'}, we accept ${accepted.join(', ')})`);
  }
  let chosen: { codec: G711Codec; pt: number } | undefined;
  if (opts.prefer === 'local') {
    for (const c of accepted) {
      chosen = offered.find((o) => o.codec === c);
      if (chosen) break;
    }
  } else {
    chosen = offered[0];
  }
  if (!chosen) throw new SdpError('no-common-codec', 'no common codec');

  let ptime: number | undefined;
  for (const a of [...active.attributes, ...raw.attributes]) {
    const m = /^ptime:\s*(\d+)/.exec(a);
    if (m) {
      ptime = Number(m[1]);
      break;
    }
  }
  let direction = directionOf(active.attributes) ?? directionOf(raw.attributes) ?? 'sendrecv';
  // c=0.0.0.0 (RFC 2543 hold): nothing may be sent to this peer (RFC 3264 §8.4), whatever the attribute says.
  if (isNullAddress(connection)) direction = direction === 'sendrecv' || direction === 'sendonly' ? 'sendonly' : 'inactive';
  const parsed: ParsedSdp = {
    address: connection.address,
    addressType: connection.addressType,
    port: active.port,
    codec: chosen.codec,
    payloadType: chosen.pt,
    direction,
    commonCodecs: offered.map((o) => o.codec),
  };
  if (dtmfPayloadType !== undefined) parsed.dtmfPayloadType = dtmfPayloadType;
  if (ptime !== undefined) parsed.ptime = ptime;
  return { parsed, offered, media: raw.media, activeIndex: raw.media.indexOf(active) };
}

/** c=IN IP4 0.0.0.0: the old way of putting a call on hold, an address no media goes to. */
export function isNullAddress(c: { addressType: 'IP4' | 'IP6'; address: string }): boolean {
  return c.addressType === 'IP4' && c.address === '0.0.0.0';
}

/** Parse a remote SDP (answer or offer) into the audio parameters we need. Throws SdpError. */
export function parseSdp(sdp: string, opts: ParseSdpOptions = {}): ParsedSdp {
  return selectAudio(sdp, opts).parsed;
}

export interface SdpAnswerOptions {
  /** Local media address (IPv4) for c=. */
  address: string;
  /** Local RTP port. */
  port: number;
  /** Our codec preference; the first of these that the offer contains is chosen. Default PCMU, PCMA. */
  codecs?: readonly G711Codec[];
  /** Accept telephone-event if offered (default true). */
  dtmf?: boolean;
  ptime?: number;
  sessionId?: string;
  sessionVersion?: number;
  sessionName?: string;
}

export interface SdpAnswer {
  sdp: string;
  /** What the offer asked for, with the codec we chose. */
  remote: ParsedSdp;
  /** Direction we put in the answer. */
  direction: MediaDirection;
}

const ANSWER_DIRECTION: Readonly<Record<MediaDirection, MediaDirection>> = {
  sendrecv: 'sendrecv',
  sendonly: 'recvonly',
  recvonly: 'sendonly',
  inactive: 'inactive',
};

/** The direction an answer gives to an offer's (or that we may use after the far end answered ours with it). */
export function answerDirection(d: MediaDirection): MediaDirection {
  return ANSWER_DIRECTION[d];
}

/** Answer a SIP offer (inbound INVITE). Throws SdpError when nothing acceptable is offered. */
export function buildSdpAnswer(offer: string, opts: SdpAnswerOptions): SdpAnswer {
  const { parsed, offered, media, activeIndex } = selectAudio(offer, { prefer: 'local', ...(opts.codecs ? { codecs: opts.codecs } : {}) });
  // The answer has as many m= lines as the offer, in its order; the streams we do not take (video, a second audio)
  // are refused with port 0 (RFC 3264 §6), or the offerer may drop the whole answer.
  const chosen = offered.find((o) => o.codec === parsed.codec);
  if (!chosen) throw new SdpError('no-common-codec', 'no common codec');
  const useDtmf = opts.dtmf !== false && parsed.dtmfPayloadType !== undefined;
  const direction = ANSWER_DIRECTION[parsed.direction];
  const ptime = opts.ptime ?? 20;
  const sdp = writeSdp({
    address: opts.address,
    port: opts.port,
    codecs: [chosen],
    ...(useDtmf && parsed.dtmfPayloadType !== undefined ? { dtmfPayloadType: parsed.dtmfPayloadType } : {}),
    ptime,
    direction,
    sessionId: opts.sessionId ?? defaultSessionId(),
    sessionVersion: opts.sessionVersion ?? 1,
    sessionName: sanitizeSessionName(opts.sessionName ?? 'wa-sip-gateway'),
    ...refusedAround(media, activeIndex),
  });
  const remote: ParsedSdp = { ...parsed };
  if (!useDtmf) delete remote.dtmfPayloadType;
  return { sdp, remote, direction };
}
