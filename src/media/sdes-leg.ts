/**
 * The WhatsApp-side media leg for SDES (whatsapp-calling.md §4.5): with `srtp_key_exchange_protocol: "SDES"` Meta's
 * SDP is `RTP/SAVP` with `a=crypto` keys and no ICE or DTLS, so this leg is one UDP socket carrying SRTP and, on the
 * same port (rtcp-mux), SRTCP.
 *
 * Keys: the remote's `a=crypto` key protects what it sends; we send under a fresh random key of our own, announced
 * in our SDP's `a=crypto` with the tag of the suite chosen (RFC 4568 §7.1.2 / §7.1.3).
 * Addressing: packets go to the SDP's c=/m= address until an authenticated packet arrives; the leg then latches onto
 * that packet's source (Meta's relays may sit behind NAT). Only a packet that passes SRTP authentication with a newer
 * sequence number moves the latch, so a stranger or a replayed packet cannot pull the stream away.
 * Media toward Meta is gated by the bridge (startWhatsAppMedia after Graph `accept`), as for the DTLS leg.
 * RTCP: sender/receiver reports over SRTCP every few seconds, and the remote's reports give the RTT and the loss
 * our Opus FEC follows; SRTCP is RFC 3711's for the AES-CM suites and RFC 7714's for AEAD_AES_128_GCM.
 */
import type dgram from 'node:dgram';
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { isIPv6 } from 'node:net';
import type { PortPool } from './port-pool.js';
import type { RtpReceiveStats } from './stats.js';
import { SrtcpReporter } from './srtcp-reporter.js';
import { readRtpFields, seqDiff, writeRtpPacket } from './rtp-packet.js';
import {
  buildSdesSdp, chooseCrypto, formatCryptoAttribute, freshSdesKey, isSdesSdp, parseCryptoAttribute,
  readSdesMedia, SDES_SUITES, SdesCryptoError, type SdesCrypto, type SdesRemoteMedia, type SdesSuite,
} from './sdes.js';
import { SrtcpContext, SrtcpGcmContext, type Srtcp } from './srtcp.js';
import { SRTP_AEAD_AES_128_GCM, SrtpContext } from './srtp.js';
import { formatAddress, numericAddress, sameAddress, TickSocket, type NumericAddress } from './tick-socket.js';
import { createMediaSocket } from './udp-socket.js';
import { monoNow, silentLogger, type MediaLogger } from './types.js';
import { chooseByAnswer, chooseByPreference, offeredAudio, type WhatsAppAudio, type WhatsAppCodec } from './wa-audio-codec.js';
import {
  announcedAddress, MediaSetupError, parseAudioPayloadTypes, remoteOpusParams, UnanswerableOfferError, UnusableAnswerError,
  type ReceivedRtpInfo, type SendRtpParams, type WebRtcLegEvents, type WebRtcLegState,
} from './webrtc-leg.js';

export interface SdesLegOptions {
  /** Address announced in our SDP when the host sits behind 1:1 NAT (config media.publicAddress). */
  publicAddress?: string;
  /** Local address the socket binds to (config media.bindAddress); a specific address is also announced. */
  bindAddress?: string;
  /** Pool for the leg's UDP port (config media.webrtcPortMin/Max); without one the OS picks a port (tests). */
  portPool?: PortPool;
  /** Opus PT for our offers (business-initiated); default 111. */
  opusPayloadType?: number;
  /** Audio codecs we take or offer, in preference order (config media.whatsappCodecs); default Opus only. */
  codecs?: readonly WhatsAppCodec[];
  /** telephone-event/8000 PT for our offers; default 126. */
  dtmfPayloadType?: number;
  /** Period of our RTCP reports in ms; 0: none. Default 5000 (RFC 3550's minimum interval). */
  rtcpIntervalMs?: number;
  logger?: MediaLogger;
}

export interface SdesLegStats {
  packetsIn: number;
  packetsOut: number;
  bytesIn: number;
  bytesOut: number;
  otherPayloadTypes: number;
  /** SRTP packets that failed authentication (or were malformed): dropped. */
  srtpDropped: number;
  /** Datagrams that are not RTP/RTCP version 2. */
  droppedInvalid: number;
  /** RTP or RTCP that arrived before the remote's key was known (business-initiated, before Meta's answer). */
  droppedBeforeKeys: number;
  /** Times the send address moved to a new source of authenticated packets. */
  relatched: number;
  rtcpIn: number;
  rtcpOut: number;
  /** SRTCP packets that failed authentication, or RTCP we cannot read (GCM suite). */
  srtcpDropped: number;
  sendErrors: number;
}

export interface RtpAddress {
  address: string;
  port: number;
}

const SEND_RING = 8;
/** Our offer's suites (tag 1 first). AES_CM_128_HMAC_SHA1_80 is the suite every SDES peer has (§4.5 UNSURE). */
const OFFER_SUITES: readonly SdesSuite[] = ['AES_CM_128_HMAC_SHA1_80'];

/** Keys of one direction: SRTP, SRTCP, and the MKI length the remote adds to each packet. */
interface Keys {
  srtp: SrtpContext;
  srtcp: Srtcp;
  mkiLength: number;
}

function keysOf(suite: SdesSuite, masterKey: Buffer, masterSalt: Buffer, mkiLength = 0): Keys {
  const profile = SDES_SUITES[suite].profile;
  return {
    srtp: new SrtpContext(profile, masterKey, masterSalt),
    // SRTCP keeps its 80-bit tag under AES_CM_128_HMAC_SHA1_32 too (RFC 4568 §6.2.1).
    srtcp: profile === SRTP_AEAD_AES_128_GCM ? new SrtcpGcmContext(masterKey, masterSalt) : new SrtcpContext(masterKey, masterSalt),
    mkiLength,
  };
}

/** Why an SDES SDP from Meta cannot be used, or null. */
function describeProblem(sdp: string): string | null {
  if (typeof sdp !== 'string' || !/^v=0\r?$/m.test(sdp)) return 'not an SDP (no v=0 line)';
  const media = readSdesMedia(sdp);
  if (!media) return 'no m=audio section';
  if (!isSdesSdp(sdp)) return `not an SDES SDP (RTP/SAVP with a=crypto); the audio section is ${media.proto}${media.cryptoLines.length ? '' : ' without a=crypto'}`;
  if (media.port === 0) return 'the audio stream is disabled (port 0)';
  // dgram's send() throws at once for such a port: every media tick would fail instead of the offer.
  if (media.port > 65535) return `the audio port ${media.port} is out of range`;
  if (!media.address || media.address === '0.0.0.0' || media.address === '::') return `no usable connection address (c=${media.address || 'missing'})`;
  return null;
}

export class SdesLeg extends EventEmitter<WebRtcLegEvents> {
  readonly keyExchange = 'sdes' as const;
  /** Our SDP for Meta (answer or offer). */
  localSdp = '';
  /** monoNow() of the last authenticated RTP packet (or of creation while nothing has arrived). */
  lastReceivedAt = monoNow();
  state: WebRtcLegState = 'new';
  /** The negotiated audio codec (before an answer: our first choice). */
  audio: WhatsAppAudio;
  dtmfPayloadType: number | null;
  remoteInbandFec = false;
  /** The remote's Opus maxaveragebitrate (RFC 7587), when its SDP states one: our encoder stays below it. */
  remoteMaxAverageBitrate?: number;
  /** From the remote's RTCP reports about our stream, once one arrived. */
  get rttMs(): number | undefined {
    return this.rtcp.rttMs;
  }
  get remoteFractionLost(): number | undefined {
    return this.rtcp.remoteFractionLost;
  }
  /** Statistics of the user's stream, as its RTCP reports carry them. */
  get receiveStats(): RtpReceiveStats {
    return this.rtcp.received;
  }

  get remotePacketsLost(): number | undefined {
    return this.rtcp.remotePacketsLost;
  }
  readonly stats: SdesLegStats = {
    packetsIn: 0, packetsOut: 0, bytesIn: 0, bytesOut: 0, otherPayloadTypes: 0, srtpDropped: 0, droppedInvalid: 0, droppedBeforeKeys: 0,
    relatched: 0, rtcpIn: 0, rtcpOut: 0, srtcpDropped: 0, sendErrors: 0,
  };
  /** Our single SSRC. */
  readonly ssrc = randomBytes(4).readUInt32BE(0);
  /** The suite in use once both sides' keys are known. */
  suite: SdesSuite | null = null;

  private tx: Keys | null = null;
  private rx: Keys | null = null;
  /** Our offer's keys by tag, until the answer picks one. */
  private offered = new Map<number, { suite: SdesSuite; masterKey: Buffer; masterSalt: Buffer }>();
  private signalled: RtpAddress | null = null;
  private latchedTo: RtpAddress | null = null;
  /** The same two in numeric form, for the tick-read path (null: not an IP literal, or not latched). */
  private signalledNum: NumericAddress | null = null;
  private latchedNum: NumericAddress | null = null;
  /** Set once the socket is read on the media tick (readOnTick). */
  private tick: TickSocket | null = null;
  /** The bound socket's address family (an IPv4 peer shows as IPv4-mapped on an IPv6 socket). */
  private readonly family: 4 | 6;
  /** Reused for each datagram read on arrival. */
  private readonly arrivalFrom: NumericAddress = { family: 4, port: 0, a0: 0, a1: 0, a2: 0, a3: 0 };
  private highestSeq = -1;
  private readonly ring = Array.from({ length: SEND_RING }, () => Buffer.alloc(1500));
  private ringPos = 0;
  private readonly rxOut = { payloadOffset: 0 };
  private readonly rxInfo: ReceivedRtpInfo = { payloadType: 0, sequenceNumber: 0, timestamp: 0, ssrc: 0, marker: false, arrivedAt: 0 };
  private readonly log: MediaLogger;
  private closing: Promise<void> | null = null;
  private readonly rtcp: SrtcpReporter;
  private rtcpMux = true;

  private constructor(
    private readonly socket: dgram.Socket,
    readonly port: number,
    private readonly pool: PortPool | null,
    readonly announcedAddress: string,
    opts: SdesLegOptions,
    /** What our SDP carries, in preference order (an answer: the one codec chosen). */
    private readonly offeredAudio: readonly WhatsAppAudio[],
    dtmfPt: number | null,
  ) {
    super();
    this.log = opts.logger ?? silentLogger;
    this.audio = offeredAudio[0]!;
    this.dtmfPayloadType = dtmfPt;
    this.rtcp = new SrtcpReporter({
      ssrc: this.ssrc, counters: this.stats, log: this.log, intervalMs: opts.rtcpIntervalMs, clockRate: this.audio.clockRate,
      send: (packet) => this.sendSrtcp(packet),
    });
    this.family = socket.address().family === 'IPv6' ? 6 : 4;
    socket.on('message', (msg, rinfo) => this.onMessage(msg, rinfo));
    socket.on('error', (err) => this.log.warn({ err: err.message, port }, 'sdes socket error'));
  }

  /** User-initiated call: answer Meta's SDES offer. Throws UnanswerableOfferError for an offer we cannot serve. */
  static async answer(offerSdp: string, opts: SdesLegOptions = {}): Promise<SdesLeg> {
    const problem = describeProblem(offerSdp);
    if (problem) throw new UnanswerableOfferError(`cannot answer the WhatsApp SDES offer: ${problem}`);
    const media = readSdesMedia(offerSdp)!;
    let chosen: { crypto: SdesCrypto; skipped: string[] };
    try {
      chosen = chooseCrypto(media.cryptoLines);
    } catch (err) {
      if (err instanceof SdesCryptoError) throw new UnanswerableOfferError(`cannot answer the WhatsApp SDES offer: ${err.message}`, err);
      throw err;
    }
    const offered = parseAudioPayloadTypes(offerSdp);
    const preference = opts.codecs ?? ['opus'];
    const audio = chooseByPreference(offered, preference);
    if (!audio) throw new UnanswerableOfferError(`cannot answer the WhatsApp SDES offer: the audio section offers none of ${preference.join(', ')}`);
    const leg = await SdesLeg.open(opts, media, [audio], offered.dtmfPt);
    const { crypto, skipped } = chosen;
    try {
      if (skipped.length > 0) leg.log.info({ skipped }, 'sdes: a=crypto lines skipped');
      const mine = freshSdesKey(crypto.suite);
      leg.setKeys(keysOf(crypto.suite, mine.masterKey, mine.masterSalt), keysOf(crypto.suite, crypto.masterKey, crypto.masterSalt, crypto.mki?.length ?? 0));
      leg.suite = crypto.suite;
      Object.assign(leg, remoteOpusParams(offerSdp, audio));
      leg.localSdp = buildSdesSdp({
        address: leg.announcedAddress, port: leg.port, proto: media.proto,
        cryptoLines: [formatCryptoAttribute(crypto.tag, crypto.suite, mine.masterKey, mine.masterSalt)],
        audio: [audio], dtmfPt: offered.dtmfPt, rtcpMux: media.rtcpMux,
      });
      leg.setRemoteAddress(media);
    } catch (err) {
      await leg.close();
      throw new UnanswerableOfferError(`cannot answer the WhatsApp SDES offer: ${(err as Error).message}`, err);
    }
    leg.log.debug({ suite: crypto.suite, tag: crypto.tag, mki: crypto.mki?.length ?? 0, remote: leg.signalled, rtcpMux: media.rtcpMux }, 'sdes answer ready');
    return leg;
  }

  /** Business-initiated call: our SDES offer; apply Meta's answer with setRemoteAnswer(). */
  static async offer(opts: SdesLegOptions = {}): Promise<SdesLeg> {
    const dtmfPt = opts.dtmfPayloadType ?? 126;
    const audio = offeredAudio(opts.codecs ?? ['opus'], opts.opusPayloadType ?? 111);
    const leg = await SdesLeg.open(opts, null, audio, dtmfPt);
    const lines: string[] = [];
    OFFER_SUITES.forEach((suite, i) => {
      const k = freshSdesKey(suite);
      leg.offered.set(i + 1, { suite, ...k });
      lines.push(formatCryptoAttribute(i + 1, suite, k.masterKey, k.masterSalt));
    });
    leg.localSdp = buildSdesSdp({ address: leg.announcedAddress, port: leg.port, proto: 'RTP/SAVP', cryptoLines: lines, audio, dtmfPt });
    return leg;
  }

  /** Applies Meta's SDES answer to our offer. Throws UnusableAnswerError when it cannot be used. */
  async setRemoteAnswer(answerSdp: string): Promise<void> {
    const problem = describeProblem(answerSdp);
    if (problem) throw new UnusableAnswerError(`cannot use the WhatsApp SDP answer: ${problem}${isSdesSdp(answerSdp) ? '' : ' (is the number set to srtp_key_exchange_protocol SDES?)'}`);
    const media = readSdesMedia(answerSdp)!;
    let crypto: SdesCrypto | null = null;
    const problems: string[] = [];
    for (const line of media.cryptoLines) {
      try {
        const c = parseCryptoAttribute(line);
        const ours = this.offered.get(c.tag);
        if (!ours || ours.suite !== c.suite) {
          problems.push(`a=crypto tag ${c.tag} (${c.suite}) was not in our offer`);
          continue;
        }
        crypto = c;
        break;
      } catch (err) {
        if (!(err instanceof SdesCryptoError)) throw err;
        problems.push(err.message);
      }
    }
    if (!crypto) throw new UnusableAnswerError(`cannot use the WhatsApp SDP answer: ${problems.join('; ')}`);
    const ours = this.offered.get(crypto.tag)!;
    const answered = parseAudioPayloadTypes(answerSdp);
    const audio = chooseByAnswer(answered, this.offeredAudio.map((a) => a.codec));
    if (!audio) throw new UnusableAnswerError(`cannot use the WhatsApp SDP answer: it picks none of our codecs (${this.offeredAudio.map((a) => a.codec).join(', ')})`);
    if (!isIPv6(this.socketAddress()) && media.family === 'IP6') throw new UnusableAnswerError(`cannot use the WhatsApp SDP answer: IPv6 media address ${media.address} on an IPv4 socket`);
    this.setKeys(keysOf(crypto.suite, ours.masterKey, ours.masterSalt), keysOf(crypto.suite, crypto.masterKey, crypto.masterSalt, crypto.mki?.length ?? 0));
    this.suite = crypto.suite;
    this.offered.clear();
    this.audio = audio;
    this.rtcp.setClockRate(audio.clockRate);
    Object.assign(this, remoteOpusParams(answerSdp, audio));
    // §4.4: without telephone-event in the answer Meta still assumes 8000 Hz on PT 126.
    this.dtmfPayloadType = answered.dtmfPt ?? this.dtmfPayloadType ?? 126;
    this.setRemoteAddress(media);
    this.log.debug({ suite: crypto.suite, tag: crypto.tag, remote: this.signalled }, 'sdes answer applied');
  }

  /** Where packets go: the latched source of authenticated packets, else the SDP's address. */
  get remote(): RtpAddress | null {
    return this.latchedTo ?? this.signalled;
  }

  get latched(): boolean {
    return this.latchedTo !== null;
  }

  /**
   * Sends one RTP packet with the caller's sequence number and timestamp on our SSRC. Dropped before both keys and
   * the remote address are known. `payload` is not retained after the call.
   */
  sendRtp(params: SendRtpParams, payload: Uint8Array, offset = 0, length = payload.length - offset): void {
    const to = this.latchedTo ?? this.signalled;
    if (!this.tx || !to || this.closing || length > 1400) return;
    // The media socket hands the packet to the kernel inside send() (udp-socket.ts); the ring covers a send the
    // kernel queued instead.
    const buf = this.ring[this.ringPos]!;
    this.ringPos = (this.ringPos + 1) % SEND_RING;
    const n = this.tx.srtp.protect(buf, writeRtpPacket(buf, params, this.ssrc, payload, offset, length));
    const num = this.tick ? (this.latchedTo ? this.latchedNum : this.signalledNum) : null;
    if (num) {
      if (!this.tick!.sendTo(buf, 0, n, num)) this.stats.sendErrors++;
    } else {
      this.socket.send(buf, 0, n, to.port, to.address, (err) => {
        if (err) this.stats.sendErrors++;
      });
    }
    this.stats.packetsOut++;
    this.stats.bytesOut += length;
    if (this.rtcpMux) this.rtcp.onRtpSent(length, params.timestamp);
  }

  /** Closes the socket and returns the port to the pool, once; later calls return the same promise. */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.rtcp.stop();
    this.closing = new Promise<void>((resolve) => {
      try {
        this.socket.close(() => resolve());
      } catch {
        resolve();
      }
    });
    this.pool?.release(this.port);
    this.setState('closed');
    return this.closing;
  }

  private static async open(opts: SdesLegOptions, remote: SdesRemoteMedia | null, audio: readonly WhatsAppAudio[], dtmfPt: number | null): Promise<SdesLeg> {
    const announced = announcedAddress(opts);
    if (!announced) throw new MediaSetupError('no IPv4 address to announce: set media.publicAddress or media.bindAddress');
    const bindAddress = opts.bindAddress ?? '0.0.0.0';
    const type = isIPv6(bindAddress) ? 'udp6' : 'udp4';
    if (remote && type === 'udp4' && remote.family === 'IP6') {
      throw new UnanswerableOfferError(`cannot answer the WhatsApp SDES offer: IPv6 media address ${remote.address} needs an IPv6 media.bindAddress`);
    }
    const log = opts.logger ?? silentLogger;
    const pool = opts.portPool ?? null;
    const attempts = pool ? Math.min(pool.free, 16) : 1;
    let lastErr: Error | null = null;
    for (let i = 0; i < attempts; i++) {
      const port = pool ? pool.acquire() : 0;
      const socket = createMediaSocket(type);
      try {
        await new Promise<void>((resolve, reject) => {
          socket.once('error', reject);
          socket.bind({ port, address: bindAddress, exclusive: true }, () => {
            socket.off('error', reject);
            resolve();
          });
        });
        return new SdesLeg(socket, socket.address().port, pool, announced, opts, audio, dtmfPt);
      } catch (err) {
        lastErr = err as Error;
        socket.close();
        if (pool) pool.release(port);
        log.warn({ port, err: lastErr.message }, 'sdes port busy, trying another');
      }
    }
    if (pool && !lastErr) pool.acquire(); // throws the pool's exhaustion error
    throw new MediaSetupError(`could not bind a UDP port for the SDES leg on ${bindAddress}: ${lastErr?.message ?? 'no port'}`);
  }

  private setKeys(tx: Keys, rx: Keys): void {
    this.tx = tx;
    this.rx = rx;
    this.rtcp.setKeys(tx.srtcp, rx.srtcp, rx.mkiLength);
  }

  private socketAddress(): string {
    try {
      return this.socket.address().address;
    } catch {
      return '0.0.0.0';
    }
  }

  private setRemoteAddress(media: SdesRemoteMedia): void {
    // Without rtcp-mux the peer's RTCP would be on port+1, which this leg does not have: no reports then.
    this.rtcpMux = media.rtcpMux;
    this.pollReceived(); // what arrived so far belongs to the old address
    this.signalled = { address: media.address, port: media.port };
    this.signalledNum = numericAddress(media.address, media.port, this.family);
    this.latchedTo = null;
    this.latchedNum = null;
    this.highestSeq = -1;
    this.setState('connected');
  }

  /**
   * From now on the socket is read only by pollReceived(), which the caller runs on every media tick
   * (tick-socket.ts); SRTCP then waits at most a tick. False, and reads stay on arrival, where that is not available.
   */
  readOnTick(): boolean {
    if (!this.tick && !this.closing) this.tick = TickSocket.attach(this.socket, this.stats);
    return this.tick !== null;
  }

  pollReceived(): void {
    this.tick?.poll(this.onDatagram);
  }

  /** Read on arrival: the source in the numeric form the tick path gets, so both take one path. */
  private onMessage(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (!numericAddress(rinfo.address, rinfo.port, this.family, this.arrivalFrom)) return;
    this.onDatagram(msg, msg.length, this.arrivalFrom, monoNow());
  }

  /** `msg[0, length)` is the datagram (`msg` may be longer: a tick socket's slot). */
  private readonly onDatagram = (msg: Buffer, length: number, from: NumericAddress, arrivedAt: number): void => {
    if (this.closing) return;
    if (length < 8 || (msg[0]! >> 6) !== 2) {
      this.stats.droppedInvalid++;
      return;
    }
    const rx = this.rx;
    if (!rx) {
      // Our offer is out but Meta's answer (its key) is not applied yet: not an authentication failure.
      this.stats.droppedBeforeKeys++;
      return;
    }
    // RFC 5761 demultiplexing: RTCP packet types 192–223 are PT 64–95 once the marker bit is masked off.
    const pt = msg[1]! & 0x7f;
    if (pt >= 64 && pt <= 95) {
      this.rtcp.onSrtcp(msg, length);
      return;
    }
    let len = length;
    const tag = rx.srtp.tagLength;
    if (rx.mkiLength > 0) {
      // RFC 3711 §3.1: the MKI sits between the encrypted portion and the tag and is not authenticated.
      if (len < 12 + rx.mkiLength + tag) {
        this.dropSrtp(from);
        return;
      }
      msg.copyWithin(len - tag - rx.mkiLength, len - tag, len);
      len -= rx.mkiLength;
    }
    const n = length >= 12 ? rx.srtp.unprotect(msg, len, this.rxOut) : -1;
    if (n < 0) {
      this.dropSrtp(from);
      return;
    }
    const info = this.rxInfo;
    readRtpFields(msg, info);
    info.arrivedAt = arrivedAt;
    this.latch(from, info.sequenceNumber);
    this.lastReceivedAt = arrivedAt;
    this.rtcp.onRtpReceived(info.ssrc, info.sequenceNumber, info.timestamp, arrivedAt);
    const off = this.rxOut.payloadOffset;
    this.stats.packetsIn++;
    this.stats.bytesIn += n - off;
    const payload = msg.subarray(off, n);
    if (pt === this.audio.payloadType) this.emit('audio', payload, info);
    else if (pt === this.dtmfPayloadType) this.emit('dtmf', payload, info);
    else this.stats.otherPayloadTypes++;
  };

  private dropSrtp(from: NumericAddress): void {
    const n = ++this.stats.srtpDropped;
    if (n === 1 || n % 500 === 0) this.log.warn({ dropped: n, from: `${formatAddress(from)}:${from.port}` }, 'sdes: SRTP packet failed authentication: dropped');
  }

  /** Follows the source of authenticated packets; a packet older than the newest seen never moves the latch. */
  private latch(from: NumericAddress, seq: number): void {
    const cur = this.latchedTo;
    const newer = this.highestSeq < 0 || seqDiff(seq, this.highestSeq) > 0;
    if (newer) this.highestSeq = seq;
    if (cur && this.latchedNum !== null && sameAddress(from, this.latchedNum)) return;
    if (cur && !newer) return;
    this.latchedTo = { address: formatAddress(from), port: from.port };
    this.latchedNum = { ...from };
    if (cur) {
      this.stats.relatched++;
      this.log.info({ from: cur, to: this.latchedTo }, 'sdes: media source moved: following it');
    } else {
      this.log.debug({ source: this.latchedTo, signalled: this.signalled }, 'sdes: latched');
    }
  }

  /** A compound SR (or RR) + SDES CNAME, over SRTCP, now (the reporter also sends one every rtcpIntervalMs). */
  sendRtcp(): void {
    if (this.rtcpMux && !this.closing) this.rtcp.sendReport();
  }

  private sendSrtcp(packet: Buffer): boolean {
    const to = this.latchedTo ?? this.signalled;
    if (!to || !this.rtcpMux || this.closing) return false;
    this.socket.send(packet, to.port, to.address, (err) => {
      if (err) this.stats.sendErrors++;
    });
    return true;
  }

  private setState(s: WebRtcLegState): void {
    if (this.state === s || this.state === 'closed') return;
    this.state = s;
    this.emit('state', s);
  }
}

