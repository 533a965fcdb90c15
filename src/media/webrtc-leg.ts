/**
 * The WhatsApp-side media leg: one werift RTCPeerConnection with a single sendrecv audio m-line.
 *
 * Meta's rules (whatsapp-calling.md §4) drive the shape: Opus/48000 with the offered payload type (or PCMU/PCMA by
 * media.whatsappCodecs when Meta offers them, wa-audio-codec.ts), telephone-event/8000 (PT 126 in Meta's offers), one
 * SSRC, full ICE in the CONTROLLING role even when we answer, DTLS client (`a=setup:active` in answers), no `a=ice-lite`, only sha-256 fingerprints, and the SDP
 * is returned only after candidate gathering completed (no trickle with Meta).
 *
 * werift does ICE, DTLS and consent freshness. Once connected, RTP and RTCP take the fast path (mediaPath 'fast',
 * the default): the SRTP keys are read from werift's DTLS transport, received SRTP and SRTCP are taken off the ICE
 * socket before werift parses them (STUN and DTLS still go to werift), SRTP is decrypted by src/media/srtp.ts and
 * RTCP handled by src/media/srtcp-reporter.ts (werift's report loops are stopped), and sent RTP is protected there
 * and written straight to the nominated pair's socket while consent is fresh. werift's
 * own per-packet path costs about twice as much (design.md); it stays as the fallback when its internals are
 * not where we expect them or the profile is unknown, and as mediaPath 'werift'.
 */
import type { Socket } from 'node:dgram';
import { EventEmitter } from 'node:events';
import {
  RTCPeerConnection, RTCRtpCodecParameters, RtpHeader, RtpPacket,
  type MediaStreamTrack, type RTCRtpTransceiver,
} from 'werift';
import { networkInterfaces } from 'node:os';
import type { PortPool } from './port-pool.js';
import { isSupportedSrtpProfile, SRTP_AEAD_AES_128_GCM, SrtpContext } from './srtp.js';
import { coalesceDtlsFlights } from './dtls-coalesce.js';
import { formatAddress, numericAddress, TickSocket, type NumericAddress } from './tick-socket.js';
import { answerLiteralsAtOnce } from './udp-socket.js';
import { monoNow, silentLogger, type MediaLogger } from './types.js';
import { readRtpFields, writeRtpPacket } from './rtp-packet.js';
import { chooseByAnswer, chooseByPreference, offeredAudio, type OfferedAudio, type WhatsAppAudio, type WhatsAppCodec } from './wa-audio-codec.js';
import type { RtpReceiveStats } from './stats.js';
import { SrtcpReporter } from './srtcp-reporter.js';
import { SrtcpContext, SrtcpGcmContext } from './srtcp.js';
import { useNativeX25519 } from './native-x25519.js';
import { useKeptDtlsKeys } from './werift-dtls-keys.js';

// werift's DTLS key exchange on OpenSSL instead of tweetnacl, and its signatures with a kept key instead of PEM
// parsed each time: less work per call set-up on the event loop every live call shares.
useNativeX25519();
useKeptDtlsKeys();

export class UnanswerableOfferError extends Error {
  constructor(message: string, override readonly cause?: unknown) {
    super(message);
    this.name = 'UnanswerableOfferError';
  }
}

/** The gateway itself could not set the leg up (no bindable port or address): not the offer's fault. */
export class MediaSetupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MediaSetupError';
  }
}

export class UnusableAnswerError extends Error {
  constructor(message: string, override readonly cause?: unknown) {
    super(message);
    this.name = 'UnusableAnswerError';
  }
}

export interface WebRtcLegOptions {
  /** Address announced in our candidates when the host sits behind 1:1 NAT (config media.publicAddress). */
  publicAddress?: string;
  /** Local address the ICE sockets bind to (config media.bindAddress); a specific address is also announced. */
  bindAddress?: string;
  /**
   * Pool for the leg's ICE UDP port (config media.webrtcPortMin/Max). Preferred over portRange: werift's own
   * range search probes from the bottom of the range and races when calls are set up concurrently.
   */
  portPool?: PortPool;
  /** ICE UDP port range handed straight to werift (min < max); ignored when portPool is given. */
  portRange?: [number, number];
  /** Opus PT for business-initiated offers (Meta's own offers use 111). */
  opusPayloadType?: number;
  /**
   * Audio codecs we take or offer, in preference order (config media.whatsappCodecs); default Opus only. G.711 needs
   * the number's audio.additional_codecs at Meta (wa-audio-codec.ts).
   */
  codecs?: readonly WhatsAppCodec[];
  /** telephone-event/8000 PT for business-initiated offers (Meta's default is 126). */
  dtmfPayloadType?: number;
  /** 'fast' (default): our SRTP + socket path once connected; 'werift': werift's RTP sender/receiver throughout. */
  mediaPath?: 'fast' | 'werift';
  /** Our RTCP report interval on the fast path (werift keeps its own on its path); 0: none. Default 5000. */
  rtcpIntervalMs?: number;
  logger?: MediaLogger;
}

/** Header fields of a received packet. The object is reused: read it synchronously in the listener. */
export interface ReceivedRtpInfo {
  payloadType: number;
  sequenceNumber: number;
  timestamp: number;
  ssrc: number;
  marker: boolean;
  /** When the packet reached the host (performance.now() scale); earlier than now on a tick-read socket. */
  arrivedAt?: number;
}

export type WebRtcLegState = 'new' | 'connecting' | 'connected' | 'disconnected' | 'failed' | 'closed';

export interface WebRtcLegEvents {
  /** An audio packet (PT = audio.payloadType: Opus, or G.711 when Meta carries it). */
  audio: [payload: Buffer, info: ReceivedRtpInfo];
  /** A telephone-event packet (PT = dtmfPayloadType). */
  dtmf: [payload: Buffer, info: ReceivedRtpInfo];
  state: [state: WebRtcLegState];
}

export interface SendRtpParams {
  payloadType: number;
  sequenceNumber: number;
  timestamp: number;
  marker?: boolean;
}

interface SdpAudioInfo extends OfferedAudio {
  dtmfPt: number | null;
}

/** Finds the Opus, G.711 and telephone-event/8000 payload types of the first audio m-section. */
export function parseAudioPayloadTypes(sdp: string): SdpAudioInfo & { hasAudio: boolean } {
  const lines = sdp.split(/\r?\n/);
  let inAudio = false;
  let seenAudio = false;
  let opusPt: number | null = null;
  let dtmfPt: number | null = null;
  let pcmuPt: number | null = null;
  let pcmaPt: number | null = null;
  let order: number[] = [];
  const mapped = new Set<number>();
  for (const line of lines) {
    if (line.startsWith('m=')) {
      if (seenAudio) break;
      inAudio = line.startsWith('m=audio ');
      seenAudio = inAudio;
      if (inAudio) order = line.trim().split(/\s+/).slice(3).map(Number).filter((pt) => Number.isInteger(pt));
      continue;
    }
    if (!inAudio) continue;
    const m = /^a=rtpmap:(\d+) ([^/\s]+)\/(\d+)/i.exec(line);
    if (!m) continue;
    const pt = Number(m[1]);
    mapped.add(pt);
    const name = m[2]!.toLowerCase();
    if (name === 'opus' && m[3] === '48000' && opusPt === null) opusPt = pt;
    if (name === 'telephone-event' && m[3] === '8000' && dtmfPt === null) dtmfPt = pt;
    if (name === 'pcmu' && m[3] === '8000' && pcmuPt === null) pcmuPt = pt;
    if (name === 'pcma' && m[3] === '8000' && pcmaPt === null) pcmaPt = pt;
  }
  // The static payload types need no rtpmap (RFC 3551).
  if (pcmuPt === null && order.includes(0) && !mapped.has(0)) pcmuPt = 0;
  if (pcmaPt === null && order.includes(8) && !mapped.has(8)) pcmaPt = 8;
  return { hasAudio: seenAudio, opusPt, dtmfPt, pcmuPt, pcmaPt, order };
}

/** Whether the SDP's fmtp for the Opus payload type says useinbandfec=1 (the sender adds FEC to its packets). */
export function usesInbandFec(sdp: string, opusPt: number): boolean {
  return /(^|;)\s*useinbandfec=1\b/.test(opusFmtp(sdp, opusPt));
}

/** RFC 7587 maxaveragebitrate of the remote's Opus fmtp (what it wants to receive at most), if it states one. */
export function opusMaxAverageBitrate(sdp: string, opusPt: number): number | undefined {
  const v = /(?:^|;)\s*maxaveragebitrate=(\d+)/.exec(opusFmtp(sdp, opusPt));
  const n = v ? Number(v[1]) : NaN;
  return n >= 6000 && n <= 510_000 ? n : undefined;
}

/** What the remote's SDP says of the Opus it sends and takes (in-band FEC, maxaveragebitrate); nothing for G.711. */
export function remoteOpusParams(sdp: string, audio: WhatsAppAudio): { remoteInbandFec: boolean; remoteMaxAverageBitrate?: number } {
  if (audio.codec !== 'opus') return { remoteInbandFec: false };
  const max = opusMaxAverageBitrate(sdp, audio.payloadType);
  return { remoteInbandFec: usesInbandFec(sdp, audio.payloadType), ...(max !== undefined ? { remoteMaxAverageBitrate: max } : {}) };
}

/** The parameters of the Opus payload type's a=fmtp line ('' without one). */
function opusFmtp(sdp: string, opusPt: number): string {
  return new RegExp(`^a=fmtp:${opusPt} (.*)$`, 'm').exec(sdp)?.[1] ?? '';
}

function describeOfferProblem(sdp: string): string | null {
  if (typeof sdp !== 'string' || !/^v=0\r?$/m.test(sdp)) return 'not an SDP (no v=0 line)';
  const info = parseAudioPayloadTypes(sdp);
  if (!info.hasAudio) return 'no m=audio section';
  if (!/^a=ice-ufrag:/m.test(sdp) || !/^a=ice-pwd:/m.test(sdp)) return 'no ICE credentials (a=ice-ufrag / a=ice-pwd)';
  if (!/^a=fingerprint:sha-256 /im.test(sdp)) return 'no sha-256 DTLS fingerprint';
  // A call is one audio stream (§4.1); a second section would be answered as a second stream.
  if ((sdp.match(/^m=/gm) ?? []).length > 1) return 'more than one media section';
  return null;
}

/**
 * RFC 3605 allows `a=rtcp:<port>` without an address (rtpengine, and other relays, write it); werift's parser
 * throws on that form, so the section's connection address is filled in before werift sees the SDP.
 */
export function completeRtcpAttributes(sdp: string): string {
  const c = /^c=IN (IP4|IP6) ([^\s/]+)/m.exec(sdp);
  const addr = c ? `IN ${c[1]} ${c[2]}` : 'IN IP4 0.0.0.0';
  return sdp.replace(/^a=rtcp:(\d+)[ \t]*(\r?)$/gm, `a=rtcp:$1 ${addr}$2`);
}

/**
 * Makes werift's SDP what Meta expects: only telephone-event/8000 among the DTMF codecs, only sha-256
 * fingerprints, no ice-lite, only the candidates we mean to announce, and a default candidate in c=/m=.
 */
export function shapeLocalSdp(sdp: string, announce: ReadonlySet<string> | null, keepDtmfPt: number | null): string {
  const lines = sdp.split(/\r?\n/).filter((l) => l.length > 0);
  const dropPts = new Set<string>();
  for (const l of lines) {
    const m = /^a=rtpmap:(\d+) telephone-event\/(\d+)/i.exec(l);
    if (m && (m[2] !== '8000' || (keepDtmfPt !== null && Number(m[1]) !== keepDtmfPt))) dropPts.add(m[1]!);
  }
  const out: string[] = [];
  let firstCand: { ip: string; port: string } | null = null;
  for (const l of lines) {
    const attr = /^a=(rtpmap|fmtp|rtcp-fb):(\d+)[ ]/.exec(l);
    if (attr && dropPts.has(attr[2]!)) continue;
    // Our side runs full ICE with every candidate already in the SDP: neither ice-lite nor trickle applies.
    if (/^a=ice-lite/i.test(l) || /^a=ice-options:trickle/i.test(l)) continue;
    if (/^a=ptime:/i.test(l)) continue;
    // werift answers without the transport-wide-cc header extension, so the feedback it names would never come.
    if (/^a=rtcp-fb:\d+ transport-cc/i.test(l)) continue;
    if (/^a=fingerprint:/i.test(l) && !/^a=fingerprint:sha-256 /i.test(l)) continue;
    const cand = /^a=candidate:\S+ \d+ \S+ \d+ (\S+) (\d+) typ /.exec(l);
    if (cand) {
      if (announce && !announce.has(cand[1]!)) continue;
      if (!firstCand && l.includes(' udp ')) firstCand = { ip: cand[1]!, port: cand[2]! };
    }
    if (l.startsWith('m=audio ') && dropPts.size > 0) {
      const parts = l.split(' ');
      out.push([...parts.slice(0, 3), ...parts.slice(3).filter((pt) => !dropPts.has(pt))].join(' '));
      continue;
    }
    out.push(l);
  }
  if (firstCand) {
    const { ip, port } = firstCand;
    const family = ip.includes(':') ? 'IP6' : 'IP4';
    for (let i = 0; i < out.length; i++) {
      const l = out[i]!;
      if (l.startsWith('m=audio ')) out[i] = l.replace(/^m=audio \d+ /, `m=audio ${port} `);
      else if (l.startsWith('c=IN ') && i > out.findIndex((x) => x.startsWith('m=audio '))) out[i] = `c=IN ${family} ${ip}`;
    }
  }
  // Meta's media rules (§4.1) require 20 ms packets; say so, as Meta's own SDES SDP does.
  out.push('a=ptime:20');
  return out.join('\r\n') + '\r\n';
}

interface SecureManagerInternals {
  setLocalRole: (arg: { type: 'offer' | 'answer'; role?: string }) => void;
}

interface RtpRouterInternals {
  ssrcTable: Record<number, unknown>;
  ridTable: Record<string, unknown>;
  routeRtp: (packet: RtpPacket) => void;
  registerRtpReceiver: (receiver: unknown, ssrc: number) => void;
}

interface RtpReceiverInternals {
  trackBySSRC: Record<number, MediaStreamTrack | undefined>;
  track: MediaStreamTrack | undefined;
}

interface UdpTransportInternals {
  socket: Socket;
  closed?: boolean;
  rinfo?: { address: string; port: number; family: string; size: number };
  onData: (data: Buffer, addr: [string, number]) => void;
}

interface CandidatePairInternals {
  remoteAddr: [string, number];
  protocol: { transport?: UdpTransportInternals };
}

interface IceConnectionInternals {
  nominated?: CandidatePairInternals;
  send?: (data: Buffer) => Promise<void>;
  canSendApplicationData?: () => boolean;
}

interface DtlsTransportInternals {
  srtp?: { config?: { profile: number; keys: { localMasterKey: Buffer; localMasterSalt: Buffer; remoteMasterKey: Buffer; remoteMasterSalt: Buffer } } };
  iceTransport?: { connection?: IceConnectionInternals };
}

/** werift's RTCP report loop on its RTP sender and receiver (each every 0.5–1.5 s). */
interface WeriftRtcpLoop {
  rtcpRunning?: boolean;
  rtcpCancel?: AbortController;
}

/** The fast media path's state, set once DTLS is up. */
interface FastPath {
  tx: SrtpContext;
  rx: SrtpContext;
  conn: IceConnectionInternals;
  transport: UdpTransportInternals;
  ring: Buffer[];
  ringPos: number;
  rxOut: { payloadOffset: number };
  /** Our RTCP with the user over SRTCP (werift's report loops are stopped on this path). */
  rtcp: SrtcpReporter;
  /** werift's own handler for what is not our RTP or RTCP (STUN, DTLS). */
  werift: (data: Buffer, addr: [string, number]) => void;
  /** Set when the ICE socket is read on the media tick (readOnTick). */
  tick: TickSocket | null;
  socketFamily: 4 | 6;
  /** The nominated pair's remote address in numeric form, for tick sends; recomputed when the pair changes. */
  dest: { of: CandidatePairInternals | null; num: NumericAddress | null };
}

const SEND_RING = 8;

/** Unsignalled SSRCs bound per leg; one is the norm, a few cover a relay that switches SSRC mid-call. */
const MAX_UNSIGNALLED_SSRCS = 4;

export class WebRtcLeg extends EventEmitter<WebRtcLegEvents> {
  /** The SDP to hand to Meta (answer or offer), complete with candidates. */
  localSdp = '';
  /** Resolves when ICE and DTLS are up; rejects if the connection fails or closes first. */
  readonly connected: Promise<void>;
  /** monoNow() of the last received RTP packet (or of creation while nothing has arrived). */
  lastReceivedAt = monoNow();
  state: WebRtcLegState = 'new';
  /** The negotiated audio codec (before an answer: our first choice). */
  audio: WhatsAppAudio;
  dtmfPayloadType: number | null;
  /** The WhatsApp side's SDP has useinbandfec=1 for Opus: lost frames can be rebuilt from the next packet. */
  remoteInbandFec = false;
  /** The remote's Opus maxaveragebitrate (RFC 7587), when its SDP states one: our encoder stays below it. */
  remoteMaxAverageBitrate?: number;
  readonly stats = {
    packetsIn: 0, packetsOut: 0, bytesIn: 0, bytesOut: 0, otherPayloadTypes: 0, srtpDropped: 0,
    // On the fast path: RTCP (werift counts its own on its path), and what the tick-read socket dropped or could not send
    rtcpIn: 0, rtcpOut: 0, srtcpDropped: 0, sendErrors: 0, droppedInvalid: 0,
  };
  /** Which path carries RTP: 'werift' until connected (and as the fallback), 'fast' once our SRTP path took over. */
  mediaPath: 'fast' | 'werift' = 'werift';

  private readonly pc: RTCPeerConnection;
  private transceiver: RTCRtpTransceiver | null = null;
  private readonly log: MediaLogger;
  private readonly announce: ReadonlySet<string>;
  private pooledPort: number | null = null;
  private portPool: PortPool | null = null;
  private readonly rxInfo: ReceivedRtpInfo = { payloadType: 0, sequenceNumber: 0, timestamp: 0, ssrc: 0, marker: false, arrivedAt: 0 };
  private closing: Promise<void> | null = null;
  private resolveConnected!: () => void;
  private rejectConnected!: (err: Error) => void;
  private readonly unsubscribers: Array<() => void> = [];
  private readonly wantFastPath: boolean;
  private fast: FastPath | null = null;
  private wantTickReads = false;
  private readonly rtcpIntervalMs: number | undefined;

  /** What our offer carried, in preference order (business-initiated); Meta's answer picks one. */
  private readonly offeredAudio: readonly WhatsAppAudio[];

  private constructor(opts: WebRtcLegOptions, audio: readonly WhatsAppAudio[], dtmfPt: number | null) {
    super();
    this.log = opts.logger ?? silentLogger;
    this.rtcpIntervalMs = opts.rtcpIntervalMs;
    this.wantFastPath = (opts.mediaPath ?? 'fast') === 'fast';
    this.audio = audio[0]!;
    this.offeredAudio = audio;
    this.dtmfPayloadType = dtmfPt;
    const bind = opts.bindAddress && opts.bindAddress !== '0.0.0.0' && opts.bindAddress !== '::' ? opts.bindAddress : undefined;
    // Exactly one ICE socket per leg, announced under one address: werift's host-address enumeration is
    // switched off (iceUseIpv4/6 false) and the address is supplied as an "additional host address", which
    // werift binds on the interface address (or the wildcard) and announces verbatim: the 1:1 NAT case.
    const announced = announcedAddress(opts);
    if (!announced) throw new MediaSetupError('no IPv4 address to announce: set media.publicAddress or media.bindAddress');
    this.announce = new Set([announced]);
    if (opts.portPool) {
      this.pooledPort = opts.portPool.acquire();
      this.portPool = opts.portPool;
    }
    // werift insists on min < max; the odd neighbour of a pooled even port is never handed to another leg.
    const portRange: [number, number] | undefined = this.pooledPort !== null ? [this.pooledPort, this.pooledPort + 1] : opts.portRange;

    const codecs = [
      ...audio.map((a) => a.codec === 'opus'
        ? new RTCRtpCodecParameters({ mimeType: 'audio/opus', clockRate: 48000, channels: 2, payloadType: a.payloadType, parameters: 'minptime=10;useinbandfec=1' })
        : new RTCRtpCodecParameters({ mimeType: `audio/${a.codec}`, clockRate: 8000, channels: 1, payloadType: a.payloadType })),
      new RTCRtpCodecParameters({ mimeType: 'audio/telephone-event', clockRate: 8000, channels: 1, payloadType: dtmfPt ?? 126, parameters: '0-15' }),
    ];
    try {
      this.pc = new RTCPeerConnection({
        // Meta provides no STUN/TURN, and a public media server needs none; a STUN lookup would only delay gathering.
        iceServers: [],
        iceUseIpv4: false,
        iceUseIpv6: false,
        ...(portRange ? { icePortRange: portRange } : {}),
        ...(bind ? { iceInterfaceAddresses: { udp4: bind } } : {}),
        iceAdditionalHostAddresses: [announced],
        codecs: { audio: codecs, video: [] },
        headerExtensions: { audio: [], video: [] },
      });
    } catch (err) {
      // close() will never run for a leg that was not constructed: hand the port back here.
      if (this.portPool && this.pooledPort !== null) this.portPool.release(this.pooledPort);
      throw err;
    }
    this.forceIceControlling();
    this.acceptUnsignalledSsrcs();

    this.connected = new Promise<void>((resolve, reject) => {
      this.resolveConnected = resolve;
      this.rejectConnected = reject;
    });
    // A caller that only listens to 'state' must not crash the process with an unhandled rejection.
    this.connected.catch(() => {});

    const { unSubscribe: offState } = this.pc.connectionStateChange.subscribe((s) => this.onState(s));
    const { unSubscribe: offTrack } = this.pc.onTrack.subscribe((track) => this.onTrack(track));
    this.unsubscribers.push(offState, offTrack);
  }

  /** User-initiated call: answer Meta's offer. Throws UnanswerableOfferError for an offer we cannot serve. */
  static async answer(offerSdp: string, opts: WebRtcLegOptions = {}): Promise<WebRtcLeg> {
    // The offerer of DTLS-SRTP says actpass or passive (RFC 5763 §5); 'active' would leave both sides as DTLS clients.
    const problem = describeOfferProblem(offerSdp) ?? (/^a=setup:active\b/im.test(offerSdp) ? 'a=setup:active in an offer (we answer as the DTLS client)' : null);
    if (problem) throw new UnanswerableOfferError(`cannot answer the WhatsApp SDP offer: ${problem}`);
    const offered = parseAudioPayloadTypes(offerSdp);
    const { dtmfPt } = offered;
    const preference = opts.codecs ?? ['opus'];
    const audio = chooseByPreference(offered, preference);
    if (!audio) throw new UnanswerableOfferError(`cannot answer the WhatsApp SDP offer: the audio section offers none of ${preference.join(', ')}`);
    const leg = new WebRtcLeg(opts, [audio], dtmfPt);
    Object.assign(leg, remoteOpusParams(offerSdp, audio));
    try {
      await leg.pc.setRemoteDescription({ type: 'offer', sdp: completeRtcpAttributes(offerSdp) });
      const transceiver = leg.pc.getTransceivers().find((t) => t.kind === 'audio');
      if (!transceiver) throw new Error('werift created no audio transceiver');
      transceiver.setDirection('sendrecv');
      leg.transceiver = transceiver;
      const answer = await leg.pc.createAnswer();
      leg.skipStunGathering();
      // setLocalDescription gathers all candidates before resolving (no trickle).
      await leg.pc.setLocalDescription(answer);
      leg.packDtlsFlights();
      leg.localSdp = shapeLocalSdp(leg.pc.localDescription!.sdp, leg.announce, dtmfPt);
      leg.assertCandidates();
      const negotiated = parseAudioPayloadTypes(leg.localSdp);
      const answered = chooseByPreference(negotiated, [audio.codec]);
      if (answered?.payloadType !== audio.payloadType) throw new Error(`answer carries no ${audio.codec} on PT ${audio.payloadType}`);
      leg.dtmfPayloadType = negotiated.dtmfPt;
    } catch (err) {
      await leg.close();
      if (err instanceof UnanswerableOfferError || err instanceof MediaSetupError) throw err;
      throw new UnanswerableOfferError(`cannot answer the WhatsApp SDP offer: ${(err as Error).message}`, err);
    }
    leg.log.debug({ codec: audio.codec, pt: audio.payloadType, dtmfPt: leg.dtmfPayloadType }, 'webrtc answer ready');
    return leg;
  }

  /** Business-initiated call: create our offer (complete with candidates); apply Meta's answer later. */
  static async offer(opts: WebRtcLegOptions = {}): Promise<WebRtcLeg> {
    const dtmfPt = opts.dtmfPayloadType ?? 126;
    const leg = new WebRtcLeg(opts, offeredAudio(opts.codecs ?? ['opus'], opts.opusPayloadType ?? 111), dtmfPt);
    try {
      leg.transceiver = leg.pc.addTransceiver('audio', { direction: 'sendrecv' });
      const offer = await leg.pc.createOffer();
      leg.skipStunGathering();
      await leg.pc.setLocalDescription(offer);
      leg.packDtlsFlights();
      leg.localSdp = shapeLocalSdp(leg.pc.localDescription!.sdp, leg.announce, dtmfPt);
      leg.assertCandidates();
    } catch (err) {
      await leg.close();
      throw err;
    }
    return leg;
  }

  /**
   * werift's ICE asks a STUN server for a server-reflexive candidate while gathering, and with no iceServers it asks
   * stun.l.google.com: every call's set-up then waits for a DNS lookup and a STUN round trip to Google. Where DNS
   * does not answer (a DMZ without Internet DNS) that took 5 s per answer; with Internet access it sends every call's
   * addresses to Google and may add an srflx candidate nobody asked for. Meta gives no STUN server and our
   * announced address is set by config (media.publicAddress), so gathering stays host-only.
   */
  private skipStunGathering(): void {
    for (const ice of this.pc.iceTransports) ice.connection.stunServer = undefined;
  }

  /** Each DTLS flight leaves in as few datagrams as fit (src/media/dtls-coalesce.ts); werift's own path otherwise. */
  private packDtlsFlights(): void {
    const conn = (this.transceiver?.sender as unknown as { dtlsTransport?: DtlsTransportInternals } | undefined)?.dtlsTransport?.iceTransport?.connection;
    if (conn && typeof conn.send === 'function') coalesceDtlsFlights(conn as Required<Pick<IceConnectionInternals, 'send'>>);
    else this.log.debug({}, 'werift internals changed: DTLS records go one per datagram');
  }

  /** Applies Meta's SDP answer to our offer. Throws UnusableAnswerError when it carries none of our codecs. */
  async setRemoteAnswer(answerSdp: string): Promise<void> {
    const problem = describeOfferProblem(answerSdp);
    if (problem) throw new UnusableAnswerError(`cannot use the WhatsApp SDP answer: ${problem}`);
    const answered = parseAudioPayloadTypes(answerSdp);
    const { dtmfPt } = answered;
    const audio = chooseByAnswer(answered, this.offeredAudio.map((a) => a.codec));
    if (!audio) throw new UnusableAnswerError(`cannot use the WhatsApp SDP answer: it picks none of our codecs (${this.offeredAudio.map((a) => a.codec).join(', ')})`);
    try {
      await this.pc.setRemoteDescription({ type: 'answer', sdp: completeRtcpAttributes(answerSdp) });
    } catch (err) {
      throw new UnusableAnswerError(`cannot use the WhatsApp SDP answer: ${(err as Error).message}`, err);
    }
    this.audio = audio;
    Object.assign(this, remoteOpusParams(answerSdp, audio));
    // §4.4: without telephone-event in the answer Meta still assumes 8000 Hz on PT 126.
    this.dtmfPayloadType = dtmfPt ?? this.dtmfPayloadType ?? 126;
  }

  /** Our single SSRC (werift's sender rewrites every packet to it). */
  get ssrc(): number {
    return this.transceiver?.sender.ssrc ?? 0;
  }

  /** Round-trip time (ms) from the peer's RTCP receiver reports about our stream, when known. */
  get rttMs(): number | undefined {
    if (this.fast) return this.fast.rtcp.rttMs;
    const rtt = this.senderReport('rtt');
    return rtt !== undefined && rtt >= 0 ? rtt * 1000 : undefined;
  }

  /** Fraction of our packets lost, from the remote's latest RTCP receiver report; undefined before one. */
  get remoteFractionLost(): number | undefined {
    return this.fast ? this.fast.rtcp.remoteFractionLost : this.senderReport('remoteFractionLost');
  }

  /** The fast path's statistics of the user's stream (its RTCP reports carry them); none on werift's path. */
  get receiveStats(): RtpReceiveStats | undefined {
    return this.fast?.rtcp.received;
  }

  /** Our packets the remote reports lost in all (its RTCP cumulative number lost); undefined before a report. */
  get remotePacketsLost(): number | undefined {
    return this.fast ? this.fast.rtcp.remotePacketsLost : this.senderReport('remotePacketsLost');
  }

  /** On werift's RTP path: a figure its RTP sender keeps from the remote's RTCP reports; undefined until one gave it. */
  private senderReport(key: 'rtt' | 'remoteFractionLost' | 'remotePacketsLost'): number | undefined {
    const v = (this.transceiver?.sender as unknown as Partial<Record<typeof key, number>> | undefined)?.[key];
    return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
  }

  /** 'controlling' once werift has applied the role; 'controlled' only if a full-ICE peer won the tie-break. */
  get iceRole(): string {
    return this.pc.iceTransports[0]?.role ?? 'unknown';
  }

  /**
   * Sends one RTP packet with the caller's sequence number and timestamp (48 kHz clock for Opus; DTMF packets
   * share that base). Dropped silently before DTLS is up. `payload` is not retained after the call.
   */
  sendRtp(params: SendRtpParams, payload: Uint8Array, offset = 0, length = payload.length - offset): void {
    const t = this.transceiver;
    if (!t || this.closing || this.state !== 'connected') return;
    if (this.fast) {
      this.sendFast(t, params, payload, offset, length);
      return;
    }
    const sender = t.sender;
    const header = new RtpHeader({
      payloadType: params.payloadType,
      sequenceNumber: params.sequenceNumber & 0xffff,
      timestamp: params.timestamp >>> 0,
      marker: params.marker ?? false,
      ssrc: sender.ssrc,
    });
    const packet = new RtpPacket(header, Buffer.from(payload.subarray(offset, offset + length)));
    // werift's sender stamps its negotiated codec's PT on every packet, synchronously before its first await;
    // to send telephone-event on the same SSRC we point it at that codec for the duration of the call.
    const codec = sender.codec;
    const want = params.payloadType === codec?.payloadType ? codec : t.codecs.find((c) => c.payloadType === params.payloadType);
    if (!want) {
      this.log.warn({ pt: params.payloadType }, 'sendRtp: payload type not negotiated');
      return;
    }
    sender.codec = want;
    try {
      sender.sendRtp(packet).catch(() => {});
    } finally {
      sender.codec = codec;
    }
    this.stats.packetsOut++;
    this.stats.bytesOut += length;
  }

  private sendFast(t: RTCRtpTransceiver, params: SendRtpParams, payload: Uint8Array, offset: number, length: number): void {
    const f = this.fast!;
    const pair = f.conn.nominated;
    // RFC 7675: no media on a pair whose consent expired (werift keeps checking and reports the state).
    if (!pair || f.transport.closed || (f.conn.canSendApplicationData && !f.conn.canSendApplicationData())) return;
    if (length > 1400) return;
    const buf = f.ring[f.ringPos]!;
    f.ringPos = (f.ringPos + 1) % SEND_RING;
    const n = f.tx.protect(buf, writeRtpPacket(buf, params, t.sender.ssrc, payload, offset, length));
    this.sendOnPair(f, pair, buf, n);
    this.stats.packetsOut++;
    this.stats.bytesOut += length;
    f.rtcp.onRtpSent(length, params.timestamp);
  }

  /** One datagram to the nominated pair: queued for the tick's batch when the socket is read on the tick. */
  private sendOnPair(f: FastPath, pair: CandidatePairInternals, buf: Buffer, n: number): void {
    const to = f.tick ? this.tickDestination(f, pair) : null;
    if (to) f.tick!.sendTo(buf, 0, n, to);
    else f.transport.socket.send(buf, 0, n, pair.remoteAddr[1], pair.remoteAddr[0]);
  }

  /** An SRTCP packet to the user, on the same terms as media (a nominated pair with consent). */
  private sendSrtcp(packet: Buffer): boolean {
    const f = this.fast;
    const pair = f?.conn.nominated;
    if (!f || !pair || this.closing || f.transport.closed || (f.conn.canSendApplicationData && !f.conn.canSendApplicationData())) return false;
    this.sendOnPair(f, pair, packet, packet.length);
    return true;
  }

  /**
   * Takes RTP over from werift once DTLS is up (see the file comment). Any surprise in werift's internals leaves
   * werift's path in place, which is slower but correct.
   */
  private enableFastPath(): void {
    if (!this.wantFastPath || this.fast || !this.transceiver) return;
    try {
      const dtls = (this.transceiver.sender as unknown as { dtlsTransport?: DtlsTransportInternals }).dtlsTransport;
      const cfg = dtls?.srtp?.config;
      const conn = dtls?.iceTransport?.connection;
      const transport = conn?.nominated?.protocol.transport;
      if (!cfg || !conn || !transport || typeof transport.onData !== 'function' || !transport.socket) {
        this.log.warn({}, 'werift internals changed: media stays on werift\'s RTP path');
        return;
      }
      if (!isSupportedSrtpProfile(cfg.profile)) {
        this.log.warn({ profile: cfg.profile }, 'SRTP profile not on the fast path: media stays on werift\'s RTP path');
        return;
      }
      const k = cfg.keys;
      const srtcp = (key: Buffer, salt: Buffer) => cfg.profile === SRTP_AEAD_AES_128_GCM ? new SrtcpGcmContext(key, salt) : new SrtcpContext(key, salt);
      const rtcp = new SrtcpReporter({
        ssrc: this.transceiver.sender.ssrc, counters: this.stats, log: this.log, intervalMs: this.rtcpIntervalMs, clockRate: this.audio.clockRate,
        send: (packet) => this.sendSrtcp(packet),
      });
      rtcp.setKeys(srtcp(k.localMasterKey, k.localMasterSalt), srtcp(k.remoteMasterKey, k.remoteMasterSalt));
      const f: FastPath = {
        tx: new SrtpContext(cfg.profile, k.localMasterKey, k.localMasterSalt),
        rx: new SrtpContext(cfg.profile, k.remoteMasterKey, k.remoteMasterSalt),
        conn, transport,
        ring: Array.from({ length: SEND_RING }, () => Buffer.alloc(1500)),
        ringPos: 0,
        rxOut: { payloadOffset: 0 },
        rtcp,
        werift: transport.onData,
        tick: null,
        socketFamily: transport.socket.address().family === 'IPv6' ? 6 : 4,
        dest: { of: null, num: null },
      };
      transport.onData = (data, addr) => {
        if (!this.takeSrtp(data, data.length, monoNow())) f.werift(data, addr);
      };
      // Each packet reaches the kernel inside send(): no extra tick, and the send ring's buffers are free again at once.
      if (!answerLiteralsAtOnce(transport.socket)) this.log.debug({}, 'dgram internals differ: sends resolve on the next tick');
      // werift starts its report loops with the first RTP it handles, which now never reaches it; stop any running.
      for (const loop of [this.transceiver.sender, this.transceiver.receiver] as unknown as WeriftRtcpLoop[]) {
        loop.rtcpRunning = false;
        loop.rtcpCancel?.abort();
      }
      this.fast = f;
      this.mediaPath = 'fast';
      if (this.wantTickReads) this.readOnTick();
      this.log.debug({ profile: cfg.profile, tickReads: f.tick !== null }, 'webrtc: RTP on the fast SRTP path');
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'fast SRTP path unavailable: media stays on werift\'s RTP path');
    }
  }

  /**
   * Once the fast path is up, the ICE socket is read by pollReceived() on the media tick (tick-socket.ts): STUN
   * consent checks and RTCP then wait at most one tick. Before that (ICE, DTLS), and where tick reads are not
   * available, it is read on arrival.
   */
  readOnTick(): boolean {
    this.wantTickReads = true;
    const f = this.fast;
    if (f && !f.tick && !this.closing && !f.transport.closed) f.tick = TickSocket.attach(f.transport.socket, this.stats);
    return f?.tick != null;
  }

  pollReceived(): void {
    this.fast?.tick?.poll(this.onTickDatagram);
  }

  private readonly onTickDatagram = (data: Buffer, length: number, from: NumericAddress, arrivedAt: number): void => {
    if (this.takeSrtp(data, length, arrivedAt)) return;
    // werift may keep what it is given past this call (DTLS), and `data` is a view of a shared area.
    const f = this.fast!;
    const copy = Buffer.from(data.subarray(0, length));
    const address = formatAddress(from);
    f.transport.rinfo = { address, port: from.port, family: from.family === 6 ? 'IPv6' : 'IPv4', size: copy.length };
    try {
      f.werift(copy, [address, from.port]);
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, 'werift could not handle a datagram');
    }
  };

  private tickDestination(f: FastPath, pair: CandidatePairInternals): NumericAddress | null {
    if (f.dest.of !== pair) {
      const [address, port] = pair.remoteAddr; // werift builds a new array on every read
      f.dest = { of: pair, num: numericAddress(address, port, f.socketFamily) };
    }
    return f.dest.num;
  }

  /**
   * RFC 7983 / RFC 5761 demultiplexing on the fast path: RTP and RTCP (PT 64–95 after the marker bit) are ours and
   * handled here (true); STUN and DTLS stay with werift (false).
   */
  private takeSrtp(data: Buffer, length: number, arrivedAt: number): boolean {
    if (length < 12 || (data[0]! & 0xc0) !== 0x80) return false;
    const f = this.fast!;
    const pt = data[1]! & 0x7f;
    if (pt >= 64 && pt <= 95) f.rtcp.onSrtcp(data, length);
    else this.onSrtp(f, data, length, arrivedAt);
    return true;
  }

  /** `data[0, length)` is one SRTP packet (`data` may be longer: a tick socket's slot). */
  private onSrtp(f: FastPath, data: Buffer, length: number, arrivedAt: number): void {
    const n = f.rx.unprotect(data, length, f.rxOut);
    if (n < 0) {
      this.stats.srtpDropped++;
      return;
    }
    this.lastReceivedAt = arrivedAt;
    const off = f.rxOut.payloadOffset;
    this.stats.packetsIn++;
    this.stats.bytesIn += n - off;
    const info = this.rxInfo;
    readRtpFields(data, info);
    info.arrivedAt = arrivedAt;
    // The arrival, not now: read on the tick, "now" would give the RR's jitter 20 ms steps.
    f.rtcp.onRtpReceived(info.ssrc, info.sequenceNumber, info.timestamp, arrivedAt);
    const payload = data.subarray(off, n);
    if (info.payloadType === this.audio.payloadType) this.emit('audio', payload, info);
    else if (info.payloadType === this.dtmfPayloadType) this.emit('dtmf', payload, info);
    else this.stats.otherPayloadTypes++;
  }

  /** Closes the peer connection (sockets included) once; later calls return the same promise. */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.fast?.rtcp.stop();
    this.closing = (async () => {
      try {
        await this.pc.close();
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, 'webrtc close failed');
      }
      for (const off of this.unsubscribers.splice(0)) off();
      if (this.portPool && this.pooledPort !== null) this.portPool.release(this.pooledPort);
      this.setState('closed');
    })();
    return this.closing;
  }

  /** werift logs and skips a socket it cannot bind; an SDP without candidates would only fail at Meta. */
  private assertCandidates(): void {
    if (!/^a=candidate:/m.test(this.localSdp)) {
      throw new MediaSetupError(`no ICE candidate gathered for ${[...this.announce].join(', ')} (port busy or address not bindable)`);
    }
  }

  private forceIceControlling(): void {
    // werift makes an answerer ICE-controlled unless the offerer is ICE-lite (then RFC 8445 §6.1.1 already
    // makes us controlling, which is Meta's case). Meta's docs require the business to control in every
    // case, so after werift assigns roles we take CONTROLLING; against a full-ICE offerer that also
    // controls, the RFC 8445 §7.3.1.1 tie-breaker (487 Role Conflict) settles it and the call still connects.
    const sm = (this.pc as unknown as { secureManager?: SecureManagerInternals }).secureManager;
    if (!sm || typeof sm.setLocalRole !== 'function') {
      this.log.warn({}, 'werift internals changed: cannot force ICE controlling role');
      return;
    }
    const original = sm.setLocalRole.bind(sm);
    sm.setLocalRole = (arg) => {
      original(arg);
      for (const ice of this.pc.iceTransports) {
        if (!ice.connection.iceLite) ice.connection.iceControlling = true;
      }
    };
  }

  private acceptUnsignalledSsrcs(): void {
    // werift routes RTP only by the remote SDP's a=ssrc lines and silently drops any other SSRC. A relay's offer
    // may carry no a=ssrc (rtpengine's does not) or the relay may rewrite the SSRC; with our single audio m-line
    // every packet that passed SRTP is the peer's audio, so an unknown SSRC is bound to the audio receiver.
    const router = (this.pc as unknown as { router?: RtpRouterInternals }).router;
    if (!router || typeof router.routeRtp !== 'function' || typeof router.registerRtpReceiver !== 'function') {
      this.log.warn({}, 'werift internals changed: RTP with an unsignalled SSRC will be dropped');
      return;
    }
    const route = router.routeRtp;
    let bound = 0;
    router.routeRtp = (packet) => {
      const t = this.transceiver;
      const ssrc = packet.header.ssrc;
      const receiver = t?.receiver as unknown as RtpReceiverInternals | undefined;
      if (receiver?.track && router.ssrcTable[ssrc] === undefined && Object.keys(router.ridTable).length === 0 && bound < MAX_UNSIGNALLED_SSRCS) {
        bound++;
        this.log.debug({ ssrc }, 'webrtc: unsignalled SSRC bound to the audio receiver');
        // Delivered to the receiver's track that onTrack already listens on.
        router.registerRtpReceiver(t!.receiver, ssrc);
        receiver.trackBySSRC[ssrc] = receiver.track;
      }
      route(packet);
    };
  }

  private onTrack(track: MediaStreamTrack): void {
    const { unSubscribe } = track.onReceiveRtp.subscribe((rtp) => this.onRtp(rtp));
    this.unsubscribers.push(unSubscribe);
  }

  private onRtp(rtp: RtpPacket): void {
    const h = rtp.header;
    this.lastReceivedAt = monoNow();
    this.stats.packetsIn++;
    this.stats.bytesIn += rtp.payload.length;
    const info = this.rxInfo;
    info.payloadType = h.payloadType;
    info.sequenceNumber = h.sequenceNumber;
    info.timestamp = h.timestamp;
    info.ssrc = h.ssrc;
    info.marker = h.marker;
    info.arrivedAt = this.lastReceivedAt;
    if (h.payloadType === this.audio.payloadType) this.emit('audio', rtp.payload, info);
    else if (h.payloadType === this.dtmfPayloadType) this.emit('dtmf', rtp.payload, info);
    else this.stats.otherPayloadTypes++;
  }

  private onState(s: RTCPeerConnection['connectionState']): void {
    this.setState(s);
    if (s === 'connected') {
      this.enableFastPath();
      this.log.debug({ iceRole: this.iceRole, mediaPath: this.mediaPath }, 'webrtc connected');
      this.resolveConnected();
    } else if (s === 'failed' || s === 'closed') {
      this.rejectConnected(new Error(`WebRTC connection ${s} before it was established`));
    }
  }

  private setState(s: WebRtcLegState): void {
    if (this.state === s || this.state === 'closed') return;
    this.state = s;
    this.emit('state', s);
  }
}

/**
 * The address our SDP announces toward Meta: media.publicAddress (1:1 NAT), else a specific media.bindAddress, else
 * the host's first non-internal IPv4 address. Shared with the SDES leg so both announce the same.
 */
export function announcedAddress(opts: { publicAddress?: string; bindAddress?: string }): string | undefined {
  const bind = opts.bindAddress && opts.bindAddress !== '0.0.0.0' && opts.bindAddress !== '::' ? opts.bindAddress : undefined;
  return opts.publicAddress || bind || primaryIPv4();
}

/**
 * Why Meta's relays could not reach that address (loopback, RFC 1918, CGNAT, link-local, IPv6 ULA), or null. Meta
 * answers an unreachable candidate with 138021, media receive timeout (§4.3).
 */
export function unreachableFromMeta(address: string | undefined): string | null {
  if (!address) return 'no address to announce';
  if (/^127\.|^::1$/.test(address)) return 'loopback';
  if (/^10\.|^192\.168\.|^172\.(1[6-9]|2\d|3[01])\./.test(address)) return 'private (RFC 1918)';
  if (/^100\.(6[4-9]|[7-9]\d|1[01]\d|12[0-7])\./.test(address)) return 'carrier-grade NAT (RFC 6598)';
  if (/^169\.254\.|^fe80:/i.test(address)) return 'link-local';
  if (/^f[cd][0-9a-f]{2}:/i.test(address)) return 'unique local IPv6';
  return null;
}

/** The first non-internal IPv4 address of this host, for when no address is configured. */
function primaryIPv4(): string | undefined {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return undefined;
}
