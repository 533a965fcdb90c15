/**
 * Ties the WhatsApp leg (Opus over SRTP, 48 kHz RTP clock; or G.711 when Meta carries it, wa-audio-codec.ts) to the
 * SIP leg (G.711 over plain RTP, 8 kHz) and owns the hot loop. Both directions run off one 20 ms tick:
 *
 *   WhatsApp → jitter buffer → Opus decode at 8 kHz (PLC for gaps) → G.711 → RTP to SIP
 *   SIP → G.711 decode into a small sample FIFO → Opus encode at 8 kHz → RTP to WhatsApp
 *
 * With G.711 on the WhatsApp leg the Opus steps become G.711 ones (and loss concealment repeats the last frame).
 *
 * Each outgoing stream has its own SSRC, continuous sequence numbers and a timestamp that advances every tick
 * whether or not there was audio, so silence is sent as encoded silence (Meta hangs up after 20 s without
 * business packets at call start, 30 s later on). Nothing goes to WhatsApp before startWhatsAppMedia().
 * DTMF is relayed RFC 4733 → RFC 4733 in both directions, regenerated with our own timing.
 * The loop reuses its buffers; per-packet work updates counters only.
 */
import { EventEmitter } from 'node:events';
import { randomInt } from 'node:crypto';
import { DtmfReceiver, DtmfSender, type DtmfDigitEvent } from './dtmf.js';
import { sharedFrameClock, type FrameClock } from './frame-clock.js';
import { decodeG711, encodeG711, G711_PAYLOAD_TYPE, type G711Law } from './g711.js';
import { JB_EMPTY, JB_LOST, JitterBuffer } from './jitter-buffer.js';
import { DEFAULT_OPUS_BITRATE, FRAME_SAMPLES, MAX_FRAME_SAMPLES, OpusDecoder8k, OpusEncoder8k, type OpusEncoderOptions } from './opus-codec.js';
import { G711FrameDecoder } from './g711-frame-decoder.js';
import { createOpusFecDecoder, opusFecAvailable, type OpusFecDecoder } from './opus-fec.js';
import { OpusLossAdapter } from './opus-loss-adapter.js';
import { encoderLoadGovernor, type GovernedEncoder } from './encoder-load-governor.js';
import { digitToEvent, RTP_HEADER_SIZE, writeRtpHeader, type DtmfDigit, type RtpHeader } from './rtp-packet.js';
import { parseRtcp, rttFromBlock, RtcpReceiverState, writeReport, type ParsedRtcp } from './rtcp.js';
import { estimateMos, RtpReceiveStats } from './stats.js';
import { monoNow, preciseUnixMs, silentLogger, type MediaLogger } from './types.js';
import type { ReceivedRtpInfo, SendRtpParams } from './webrtc-leg.js';
import { ticksPerFrame, type WhatsAppAudio } from './wa-audio-codec.js';

/** What the bridge needs from the WhatsApp leg (WebRtcLeg implements it). */
export interface WhatsAppMediaLeg {
  /** The negotiated audio codec and its payload type: Opus, or G.711 when Meta carries it (wa-audio-codec.ts). */
  readonly audio: WhatsAppAudio;
  readonly dtmfPayloadType: number | null;
  /** The remote side said useinbandfec=1: its packets carry FEC for the previous frame. */
  readonly remoteInbandFec?: boolean;
  /** The remote's Opus maxaveragebitrate: our encoder's bitrate is capped at it. */
  readonly remoteMaxAverageBitrate?: number;
  /**
   * The leg's own statistics of the user's stream, the ones its RTCP reports to Meta carry, when it keeps them: the
   * call record then shows the same loss and jitter, and the bridge keeps no second copy per packet.
   */
  readonly receiveStats?: RtpReceiveStats;
  /** Round-trip time from the remote's RTCP receiver reports (WebRtcLeg: werift's RTCP), when known. */
  readonly rttMs?: number;
  /** Fraction (0–1) of our packets the remote's latest RTCP receiver report says were lost, when one arrived. */
  readonly remoteFractionLost?: number;
  /** Our packets the remote reports lost in all (RTCP cumulative number lost), when it reported. */
  readonly remotePacketsLost?: number;
  readonly lastReceivedAt: number;
  sendRtp(params: SendRtpParams, payload: Uint8Array, offset?: number, length?: number): void;
  /** Hand the socket's reading to pollReceived() on the media tick (tick-socket.ts); legs without it read on arrival. */
  readOnTick?(): boolean;
  pollReceived?(): void;
  on(event: 'audio' | 'dtmf', listener: (payload: Buffer, info: ReceivedRtpInfo) => void): unknown;
  /** Connection state (WebRtcLeg: 'connected', 'disconnected', 'failed', 'closed', …); legs without one never emit. */
  on(event: 'state', listener: (state: string) => void): unknown;
  off(event: 'audio' | 'dtmf', listener: (payload: Buffer, info: ReceivedRtpInfo) => void): unknown;
  off(event: 'state', listener: (state: string) => void): unknown;
  close(): Promise<void>;
}

/** What the bridge needs from the SIP leg (RtpLeg implements it). */
export interface SipMediaLeg {
  readonly lastReceivedAt: number;
  send(buf: Uint8Array, offset?: number, length?: number): boolean;
  /** RTCP toward the PBX (RtpLeg: port + 1); legs without it get no reports. */
  sendRtcp?(buf: Uint8Array, offset?: number, length?: number): boolean;
  readOnTick?(): boolean;
  pollReceived?(): void;
  /** `arrivedAt`: when the packet reached the host, if the leg knows (else the bridge's now()). */
  on(event: 'rtp', listener: (packet: Buffer, header: RtpHeader, arrivedAt?: number) => void): unknown;
  on(event: 'rtcp', listener: (packet: Buffer) => void): unknown;
  off(event: 'rtp', listener: (packet: Buffer, header: RtpHeader, arrivedAt?: number) => void): unknown;
  off(event: 'rtcp', listener: (packet: Buffer) => void): unknown;
  close(): Promise<void>;
}

export type MediaLegName = 'whatsapp' | 'sip';

/**
 * Sees each 20 ms tick's audio as 8 kHz PCM (recording, live streaming): `userToAgent` after the Opus decode (what the
 * agent is sent), `agentToUser` before the Opus encode (what the user is sent; silence before WhatsApp media starts).
 * Runs inside the media tick: copy what you need and return; the arrays are reused and must not be kept or changed.
 */
export type MediaTap = (userToAgent: Int16Array, agentToUser: Int16Array) => void;

/** Audio that replaces the SIP side toward WhatsApp (hold music): fills one 20 ms frame of 8 kHz PCM per call. */
export interface PcmSource {
  read(out: Int16Array): void;
}

export interface BridgeOptions {
  /** Codec negotiated with the SIP side. */
  sipCodec: G711Law;
  /** Defaults to the static PT (0 / 8). */
  sipPayloadType?: number;
  /** telephone-event PT negotiated with the SIP side; null disables DTMF toward and from SIP. */
  sipDtmfPayloadType?: number | null;
  opus?: OpusEncoderOptions;
  /**
   * The call counts toward this thread's load governor (encoder-load-governor.ts) while the bridge lives: its Opus
   * encoder steps between opus.complexity and opus.minComplexity, and a call with nothing to encode still counts
   * toward saturation. Default false (the gateway governs every call).
   */
  governed?: boolean;
  /**
   * Rebuild a lost frame from the next packet's in-band FEC when the WhatsApp side sends it (remoteInbandFec);
   * default true. Off: concealment (PLC) only, on the native decoder.
   */
  fecDecode?: boolean;
  /** Jitter buffer bounds for WhatsApp → SIP (min 20 ms). */
  jitterMinMs?: number;
  jitterMaxMs?: number;
  /** Emit 'media-timeout' when a leg has been silent (no packets at all) this long. */
  mediaTimeoutMs?: number;
  clock?: FrameClock;
  /**
   * Read both legs' sockets on the media tick instead of on arrival (tick-socket.ts; config media.tickReads),
   * default true. Legs that cannot (no addon) keep reading on arrival.
   */
  tickReads?: boolean;
  /** Monotonic ms source, on the same scale as the legs' lastReceivedAt (tests substitute a fake). */
  now?: () => number;
  logger?: MediaLogger;
}

/** Per-leg quality of a call: in metrics, live call views and the call record (store/call-record.ts re-exports it). */
export interface LegQuality {
  packetsIn: number;
  packetsOut: number;
  lost: number;
  late: number;
  jitterMs: number;
  mos: number;
  /** Round-trip time from RTCP (RFC 3550 §6.4.1), when the peer's reports allowed one. */
  rttMs?: number;
  /** The other direction: our packets the peer's RTCP reports say it lost (WhatsApp leg), when it reported. */
  lostAtPeer?: number;
  /** The leg's audio codec: opus, PCMU or PCMA toward WhatsApp; PCMU or PCMA toward the PBX. */
  codec?: string;
}

export interface BridgeDtmfEvent {
  from: MediaLegName;
  digit: DtmfDigit;
  durationMs: number;
}

export interface BridgeEvents {
  'media-timeout': [leg: MediaLegName];
  /** The leg's transport failed for good (WhatsApp: ICE failed or consent expired); the call cannot go on. */
  'media-failed': [leg: MediaLegName, state: string];
  dtmf: [ev: BridgeDtmfEvent];
}

/** Where SIP audio waits for the next tick; decoded samples, so any SIP ptime works. */
class SampleFifo {
  private readonly buf: Int16Array;
  private r = 0;
  private w = 0;
  size = 0;
  overflowed = 0;
  underruns = 0;
  trimmed = 0;
  private primed = false;
  private highTicks = 0;

  constructor(private readonly capacity: number, private readonly primeSamples: number) {
    this.buf = new Int16Array(capacity);
  }

  /**
   * Appends `src[0, n)`. When it does not fit, the oldest samples go (latency stays bounded), counted in `overflowed`
   * unless `expected` (audio kept before it can be sent, where only the latest matters).
   */
  write(src: Int16Array, n: number, expected = false): void {
    const cap = this.capacity;
    let from = 0;
    if (n > cap) {
      from = n - cap;
      if (!expected) this.overflowed += from;
    }
    const excess = this.size + (n - from) - cap;
    if (excess > 0) {
      this.skip(excess);
      if (!expected) this.overflowed += excess;
    }
    const buf = this.buf;
    let w = this.w;
    for (let i = from; i < n; i++) {
      buf[w] = src[i]!;
      if (++w === cap) w = 0;
    }
    this.w = w;
    this.size += n - from;
  }

  /** Fills `out` with audio, or returns false (and leaves `out` alone) when there is not enough yet. */
  read(out: Int16Array): boolean {
    const n = out.length;
    if (!this.primed) {
      if (this.size < this.primeSamples) return false;
      this.primed = true;
    }
    if (this.size < n) {
      this.primed = false;
      this.underruns++;
      return false;
    }
    this.take(out, n);
    // A PBX clock slightly faster than ours fills the queue slowly; once it has stayed above the target for
    // half a second, one frame goes, so latency stays bounded without audible churn.
    if (this.size > this.primeSamples + 3 * n) {
      if (++this.highTicks >= 25) {
        this.highTicks = 0;
        this.skip(n);
        this.trimmed++;
      }
    } else {
      this.highTicks = 0;
    }
    return true;
  }

  private take(out: Int16Array, n: number): void {
    const buf = this.buf;
    const cap = this.capacity;
    let r = this.r;
    for (let i = 0; i < n; i++) {
      out[i] = buf[r]!;
      if (++r === cap) r = 0;
    }
    this.r = r;
    this.size -= n;
  }

  private skip(n: number): void {
    this.r = (this.r + n) % this.capacity;
    this.size -= n;
  }

  clear(): void {
    this.r = this.w = this.size = 0;
    this.primed = false;
  }
}

const SIP_SEND_RING = 8;
/** Static payload types (RFC 3551): G.711 μ-law and A-law, comfort noise (RFC 3389). */
const PT_PCMU = G711_PAYLOAD_TYPE.PCMU;
const PT_PCMA = G711_PAYLOAD_TYPE.PCMA;
const PT_CN = 13;

export class Bridge extends EventEmitter<BridgeEvents> {
  sipCodec: G711Law;
  sipPayloadType: number;
  sipDtmfPayloadType: number | null;
  private readonly clock: FrameClock;
  private readonly log: MediaLogger;
  private readonly mediaTimeoutMs: number;
  private readonly now: () => number;

  // WhatsApp → SIP
  private readonly jb: JitterBuffer;
  /**
   * Chosen at the first audio packet: G.711 when Meta carries it, else Opus, FEC-capable when the sender uses in-band FEC.
   */
  private waDec: OpusDecoder8k | OpusFecDecoder | G711FrameDecoder | null = null;
  private fecDec: OpusFecDecoder | null = null;
  private readonly fecDecode: boolean;
  private fecRecovered = 0;
  private readonly waIn = new Uint8Array(1500);
  private readonly waNext = new Uint8Array(1500);
  private readonly pcmDown = new Int16Array(MAX_FRAME_SAMPLES);
  private readonly pcmDownFrame = this.pcmDown.subarray(0, FRAME_SAMPLES);
  private readonly sipRing: Buffer[] = Array.from({ length: SIP_SEND_RING }, () => Buffer.alloc(RTP_HEADER_SIZE + 480));
  private sipRingPos = 0;
  private readonly sipSsrc = randomInt(1, 0xffffffff);
  private sipSeq = randomInt(0, 0x10000);
  private sipTs = randomInt(0, 0x100000000);
  private sipMarker = true;
  private sipSendRtp = true;
  private sipSendRtcp = true;
  private concealRun = 0;
  private waAudioSeen = false;
  /** WhatsApp receive statistics for a leg that keeps none (werift's path, test legs). */
  private readonly waRx: RtpReceiveStats;
  private readonly waDtmfRx: DtmfReceiver;
  private readonly sipDtmfTx = new DtmfSender();
  private sipDtmfTs = 0;
  private sipPacketsOut = 0;
  private sipOctetsOut = 0;
  // RTCP toward the PBX: a report every RTCP_TICKS, RTT from its report blocks about our stream.
  private readonly sipRtcpRx: RtcpReceiverState;
  private readonly rtcpBuf = Buffer.alloc(64);
  private readonly rtcpParsed: ParsedRtcp = { senderSsrc: 0, srNtpMiddle: -1, blocks: [] };
  private rtcpTicks = 0;
  private sipRttMs: number | undefined;

  // SIP → WhatsApp
  private readonly fifo = new SampleFifo(8000 / 5, 2 * FRAME_SAMPLES); // ≤ 200 ms queued, start at 40 ms
  private readonly pcmIn = new Int16Array(1600);
  private readonly pcmUp = new Int16Array(FRAME_SAMPLES);
  private readonly silence = new Int16Array(FRAME_SAMPLES);
  /** Null when the WhatsApp leg carries G.711 (waLaw): then nothing is Opus-encoded. */
  private readonly opusEnc: OpusEncoder8k | null;
  private readonly waLaw: G711Law | null;
  /** RTP timestamp ticks of a frame on the WhatsApp leg: 960 at Opus's 48 kHz clock, 160 for G.711. */
  private readonly waTicks: number;
  private readonly lossAdapter: OpusLossAdapter | null;
  /** This call's share of the load governor: its encoder, or one with no room to move; null when not governed. */
  private readonly loadShare: GovernedEncoder | null;
  private readonly waOut = new Uint8Array(1500);
  private readonly dtmfOut = new Uint8Array(4);
  private waSeq = randomInt(0, 0x10000);
  private waTs = randomInt(0, 0x100000000);
  private waMarker = true;
  private waDtmfTs = 0;
  private readonly waSendParams: SendRtpParams = { payloadType: 0, sequenceNumber: 0, timestamp: 0, marker: false };
  private readonly sipRx: RtpReceiveStats;
  private readonly sipDtmfRx: DtmfReceiver;
  private readonly waDtmfTx = new DtmfSender();
  private waPacketsOut = 0;
  private sipOtherPt = 0;
  private sipComfortNoisePackets = 0;
  /**
   * Peak of the noise WhatsApp hears while the PBX is in a comfort-noise period (RFC 3389: it sent CN and then nothing
   * until speech resumes); 0: none. Ends once the FIFO plays audio that arrived after the CN packet.
   */
  private cnAmplitude = 0;
  private cnEnding = false;
  private noiseState = 0x2545f491;
  private sipSource: PcmSource | null = null;
  private taps: MediaTap[] = [];
  private tapUser: Int16Array;
  private tapAgent: Int16Array;

  private unsubscribeClock: (() => void) | null = null;
  private waStarted = false;
  private startedAt = 0;
  private readonly timeoutFired: Record<MediaLegName, boolean> = { whatsapp: false, sip: false };
  private readonly timeoutEnabled: Record<MediaLegName, boolean> = { whatsapp: true, sip: true };
  /** When each leg's silence watch (re)started: a leg silent while its watch was off gets a full timeout again. */
  private readonly watchedSince: Record<MediaLegName, number> = { whatsapp: 0, sip: 0 };
  private stopping: Promise<void> | null = null;
  private tickErrors = 0;
  /** Time spent in media ticks (transcoding both ways, jitter buffer, RTP send): for the transcode-time metric. */
  private tickSeconds = 0;
  private tickCount = 0;
  private readonly tickReads: boolean;

  constructor(private readonly wa: WhatsAppMediaLeg, private sip: SipMediaLeg, opts: BridgeOptions) {
    super();
    this.sipCodec = opts.sipCodec;
    this.sipPayloadType = opts.sipPayloadType ?? G711_PAYLOAD_TYPE[opts.sipCodec];
    this.sipDtmfPayloadType = opts.sipDtmfPayloadType ?? null;
    this.clock = opts.clock ?? sharedFrameClock;
    this.tickReads = opts.tickReads ?? true;
    this.now = opts.now ?? monoNow;
    this.log = opts.logger ?? silentLogger;
    this.mediaTimeoutMs = opts.mediaTimeoutMs ?? 30_000;
    this.fecDecode = opts.fecDecode ?? true;
    const { codec, clockRate } = wa.audio;
    this.jb = new JitterBuffer({ minDelayMs: opts.jitterMinMs ?? 20, maxDelayMs: opts.jitterMaxMs ?? 200, clockRate });
    this.waRx = new RtpReceiveStats(clockRate);
    this.waTicks = ticksPerFrame(wa.audio);
    this.waLaw = codec === 'opus' ? null : codec;
    // Meta's SDES offer asks for maxaveragebitrate=20000 (whatsapp-calling.md §4.5): never send more than asked.
    const cap = wa.remoteMaxAverageBitrate;
    const bitrate = opts.opus?.bitrate ?? DEFAULT_OPUS_BITRATE;
    const enc = codec === 'opus' ? new OpusEncoder8k({ ...opts.opus, bitrate: cap !== undefined ? Math.min(bitrate, cap) : bitrate }) : null;
    this.opusEnc = enc;
    // A call with nothing to encode (G.711 toward WhatsApp) still loads the loop, so a saturated loop shows (and refuses
    // new calls) whatever the calls carry.
    this.loadShare = opts.governed ? enc ?? { maxComplexity: 0, minComplexity: 0, setComplexity: () => undefined } : null;
    if (this.loadShare) encoderLoadGovernor().add(this.loadShare);
    const { inbandFec = true, lossAdaptive = true } = opts.opus ?? {};
    this.lossAdapter = enc && inbandFec && lossAdaptive ? new OpusLossAdapter((p) => enc.setExpectedLoss(p), enc.settings.packetLoss) : null;
    this.sipRx = new RtpReceiveStats(8000);
    this.sipRtcpRx = new RtcpReceiverState(this.sipRx);
    this.waDtmfRx = new DtmfReceiver((d) => this.onDigit('whatsapp', d));
    this.sipDtmfRx = new DtmfReceiver((d) => this.onDigit('sip', d));
    this.tapUser = this.tapAgent = this.silence;
    wa.on('audio', this.onWaAudio);
    wa.on('dtmf', this.onWaDtmf);
    wa.on('state', this.onWaState);
    sip.on('rtp', this.onSipRtp);
    sip.on('rtcp', this.onSipRtcp);
  }

  /** Starts the tick: media flows to SIP, media timeouts are watched. Idempotent. */
  start(): void {
    if (this.unsubscribeClock || this.stopping) return;
    this.startedAt = this.now();
    if (this.tickReads) {
      this.wa.readOnTick?.();
      this.sip.readOnTick?.();
    }
    this.unsubscribeClock = this.clock.subscribe(this.onTick);
  }

  /** Lets media flow to WhatsApp; call right after Graph `accept` returned 200. Also starts the tick. */
  startWhatsAppMedia(): void {
    if (this.stopping) return;
    this.start();
    if (this.waStarted) return;
    this.waStarted = true;
    this.waMarker = true;
    // The 20 s "no business media" window is Meta's; ours starts now too.
    this.startedAt = Math.max(this.startedAt, this.now());
  }

  get whatsAppMediaStarted(): boolean {
    return this.waStarted;
  }

  /** Suspends the silence watchdog for a leg (e.g. the PBX put the call on hold with a=sendonly/inactive). */
  setMediaTimeout(leg: MediaLegName, enabled: boolean): void {
    if (enabled && !this.timeoutEnabled[leg]) this.watchedSince[leg] = this.now();
    this.timeoutEnabled[leg] = enabled;
    if (enabled) this.timeoutFired[leg] = false;
  }

  /**
   * What we may send toward the PBX (RFC 3264): no RTP while our answer says recvonly or inactive, and nothing at all,
   * RTCP included, toward c=0.0.0.0 (§8.4). The RTP clock keeps running; the first packet after a pause is marked.
   */
  setSipSending(rtp: boolean, rtcp = true): void {
    if (rtp && !this.sipSendRtp) this.sipMarker = true;
    this.sipSendRtp = rtp;
    this.sipSendRtcp = rtcp;
  }

  /**
   * Hold audio: while a source is set, WhatsApp hears it instead of the SIP side (whose audio is dropped); packets
   * keep flowing toward Meta either way. null resumes the bridge.
   */
  setSipSource(source: PcmSource | null): void {
    this.sipSource = source;
    this.fifo.clear();
    this.cnAmplitude = 0;
  }

  /**
   * The SIP side moved (re-INVITE with another codec, or a transfer to another agent on a new leg): later frames use
   * this codec and leg. Returns the previous leg, which the caller closes; stop() closes the current one.
   */
  setSipMedia(m: { leg?: SipMediaLeg; codec: G711Law; payloadType?: number; dtmfPayloadType?: number | null }): SipMediaLeg {
    const prev = this.sip;
    // Packets that arrived before the change are the old codec's (tick-read legs still hold them).
    prev.pollReceived?.();
    if (m.leg && m.leg !== prev && !this.stopping) {
      prev.off('rtp', this.onSipRtp);
      prev.off('rtcp', this.onSipRtcp);
      m.leg.on('rtp', this.onSipRtp);
      m.leg.on('rtcp', this.onSipRtcp);
      this.sip = m.leg;
      if (this.tickReads && this.unsubscribeClock) m.leg.readOnTick?.();
      this.sipMarker = true;
    }
    this.sipCodec = m.codec;
    this.sipPayloadType = m.payloadType ?? G711_PAYLOAD_TYPE[m.codec];
    this.sipDtmfPayloadType = m.dtmfPayloadType ?? null;
    this.fifo.clear();
    this.cnAmplitude = 0;
    return prev;
  }

  /** Adds a media tap (see MediaTap); returns its removal. With no tap the tick pays one length check. */
  addTap(tap: MediaTap): () => void {
    this.taps = [...this.taps, tap];
    return () => { this.taps = this.taps.filter((t) => t !== tap); };
  }

  /** Queues a DTMF digit toward WhatsApp (RFC 4733 in the Opus stream). */
  sendDtmfToWhatsApp(digit: string, durationMs = 100): void {
    if (this.wa.dtmfPayloadType === null) throw new Error('WhatsApp leg negotiated no telephone-event');
    this.waDtmfTx.enqueue(digitToEvent(digit), durationMs);
  }

  /** Queues a DTMF digit toward SIP. */
  sendDtmfToSip(digit: string, durationMs = 100): void {
    if (this.sipDtmfPayloadType === null) throw new Error('SIP leg negotiated no telephone-event');
    this.sipDtmfTx.enqueue(digitToEvent(digit), durationMs);
  }

  quality(): Record<MediaLegName, LegQuality> {
    const wa = this.wa.receiveStats ?? this.waRx;
    const sip = this.sipRx;
    const waRtt = this.wa.rttMs;
    const sipRtt = this.sipRttMs;
    // With an RTT, half of it stands in for the one-way network delay in the E-model.
    const whatsapp: LegQuality = {
      codec: this.wa.audio.codec,
      packetsIn: wa.packets,
      packetsOut: this.waPacketsOut,
      lost: wa.lost,
      late: this.jb.stats.late,
      jitterMs: round1(wa.jitterMs),
      mos: estimateMos({ codec: this.wa.audio.codec, lossPercent: wa.lossFraction * 100, jitterMs: wa.jitterMs, ...(waRtt !== undefined ? { delayMs: waRtt / 2 } : {}) }),
    };
    if (waRtt !== undefined) whatsapp.rttMs = round1(waRtt);
    const lostAtPeer = this.wa.remotePacketsLost;
    if (lostAtPeer !== undefined) whatsapp.lostAtPeer = Math.max(0, lostAtPeer);
    const sipQ: LegQuality = {
      codec: this.sipCodec,
      packetsIn: sip.packets,
      packetsOut: this.sipPacketsOut,
      lost: sip.lost,
      late: 0,
      jitterMs: round1(sip.jitterMs),
      mos: estimateMos({ codec: this.sipCodec, lossPercent: sip.lossFraction * 100, jitterMs: sip.jitterMs, ...(sipRtt !== undefined ? { delayMs: sipRtt / 2 } : {}) }),
    };
    if (sipRtt !== undefined) sipQ.rttMs = round1(sipRtt);
    return { whatsapp, sip: sipQ };
  }

  /** Internals for diagnostics and tests. */
  get details(): {
    jitterBuffer: JitterBuffer['stats'] & { targetDelayMs: number };
    sipFifo: { queued: number; overflowed: number; underruns: number; trimmed: number };
    /** PBX packets of a payload type that is neither G.711, its telephone-event nor comfort noise: ignored, not loss. */
    sipOtherPayloadTypes: number;
    /** Comfort-noise packets (RFC 3389, PT 13) from the PBX. */
    sipComfortNoisePackets: number;
    tickErrors: number;
    /** Lost WhatsApp frames rebuilt from the next packet's in-band FEC (the rest were concealed). */
    fecRecovered: number;
    /** The Opus encoder's expected loss toward WhatsApp (in-band FEC is sent while it is above 0); 0 with G.711. */
    opusExpectedLossPercent: number;
    /** Its bitrate (media.opusBitrate, capped by the remote's maxaveragebitrate); 0 with G.711. */
    opusBitrate: number;
  } {
    return {
      opusBitrate: this.opusEnc?.settings.bitrate ?? 0,
      fecRecovered: this.fecRecovered,
      opusExpectedLossPercent: this.opusEnc?.settings.packetLoss ?? 0,
      jitterBuffer: { ...this.jb.stats, targetDelayMs: this.jb.targetDelayMs },
      sipFifo: { queued: this.fifo.size, overflowed: this.fifo.overflowed, underruns: this.fifo.underruns, trimmed: this.fifo.trimmed },
      sipOtherPayloadTypes: this.sipOtherPt,
      sipComfortNoisePackets: this.sipComfortNoisePackets,
      tickErrors: this.tickErrors,
    };
  }

  /** Stops the tick, detaches from both legs and closes them; once. */
  stop(): Promise<void> {
    if (this.stopping) return this.stopping;
    this.unsubscribeClock?.();
    this.unsubscribeClock = null;
    this.wa.off('audio', this.onWaAudio);
    this.wa.off('dtmf', this.onWaDtmf);
    this.wa.off('state', this.onWaState);
    this.sip.off('rtp', this.onSipRtp);
    this.sip.off('rtcp', this.onSipRtcp);
    this.fecDec?.destroy();
    this.fecDec = null;
    if (this.loadShare) encoderLoadGovernor().delete(this.loadShare);
    this.stopping = Promise.allSettled([this.wa.close(), this.sip.close()]).then(() => undefined);
    return this.stopping;
  }

  private readonly onWaAudio = (payload: Buffer, info: ReceivedRtpInfo): void => {
    const now = info.arrivedAt ?? this.now();
    if (!this.wa.receiveStats) this.waRx.update(info.sequenceNumber, info.timestamp, now);
    this.jb.push(info.sequenceNumber, info.timestamp, payload, 0, payload.length, now);
  };

  private waFailed = false;

  private readonly onWaState = (state: string): void => {
    // 'disconnected' may recover (ICE keeps checking); 'failed' does not. 'closed' is our own close().
    if (state !== 'failed' || this.waFailed || this.stopping) return;
    this.waFailed = true;
    this.log.warn({ leg: 'whatsapp', state }, 'media leg failed');
    this.emit('media-failed', 'whatsapp', state);
  };

  private readonly onWaDtmf = (payload: Buffer, info: ReceivedRtpInfo): void => {
    const now = info.arrivedAt ?? this.now();
    if (!this.wa.receiveStats) this.waRx.update(info.sequenceNumber, info.timestamp, now);
    this.waDtmfRx.push(info.timestamp, payload, 0, payload.length, now);
  };

  private readonly onSipRtcp = (packet: Buffer): void => {
    const r = this.rtcpParsed;
    if (!parseRtcp(packet, packet.length, r)) return;
    if (r.srNtpMiddle >= 0) this.sipRtcpRx.onSenderReport(r.srNtpMiddle, this.now());
    for (const b of r.blocks) {
      if (b.ssrc !== this.sipSsrc) continue;
      const rtt = rttFromBlock(b, preciseUnixMs());
      if (rtt !== null) this.sipRttMs = this.sipRttMs === undefined ? rtt : 0.8 * this.sipRttMs + 0.2 * rtt;
    }
  };

  /** An SR (or an RR before we sent anything) toward the PBX, with a block about its stream once it sent one. */
  private sendSipRtcp(): void {
    const send = this.sip.sendRtcp;
    if (!send || !this.sipSendRtcp) return;
    const sender = this.sipPacketsOut > 0
      ? { ssrc: this.sipSsrc, unixMs: preciseUnixMs(), rtpTimestamp: this.sipTs, packets: this.sipPacketsOut, octets: this.sipOctetsOut }
      : null;
    const n = writeReport(this.rtcpBuf, this.sipSsrc, sender, this.sipRx.packets > 0 ? this.sipRtcpRx : null, this.now());
    send.call(this.sip, this.rtcpBuf, 0, n);
  }

  private readonly onSipRtp = (packet: Buffer, h: RtpHeader, arrivedAt?: number): void => {
    this.sipRtcpRx.remoteSsrc = h.ssrc;
    const now = arrivedAt ?? this.now();
    const pt = h.payloadType;
    if (pt === this.sipPayloadType) {
      this.onSipAudio(this.sipCodec, packet, h, now);
    } else if (pt === this.sipDtmfPayloadType) {
      this.sipRx.update(h.sequenceNumber, h.timestamp, now);
      this.sipDtmfRx.push(h.timestamp, packet, h.payloadOffset, h.payloadLength, now);
    } else if (pt === PT_PCMU || pt === PT_PCMA) {
      // Both static G.711 types are decoded whatever was negotiated: a PBX that offered `8 0` may send either (RFC 3264
      // §5.1 lets it switch among the listed formats), and dropping one would leave the user hearing silence.
      this.onSipAudio(pt === PT_PCMU ? 'PCMU' : 'PCMA', packet, h, now);
    } else if (pt === PT_CN) {
      // Comfort noise (RFC 3389): the PBX's silence suppression, so not loss; its sequence number and timestamp are
      // the stream's own. WhatsApp hears noise at the level it gives once the queued audio has played.
      this.sipRx.update(h.sequenceNumber, h.timestamp, now);
      this.sipComfortNoisePackets++;
      if (!this.sipSource) this.startComfortNoise(h.payloadLength > 0 ? packet[h.payloadOffset]! & 0x7f : 127);
    } else {
      // Not ours to decode (its timestamps may be on another clock): received, so not lost, and counted apart.
      this.sipRx.countReceived(h.sequenceNumber);
      if (this.sipOtherPt++ === 0) this.log.info({ payloadType: pt }, 'PBX sent a payload type that is not decoded: ignored');
    }
  };

  private onSipAudio(law: G711Law, packet: Buffer, h: RtpHeader, now: number): void {
    this.sipRx.update(h.sequenceNumber, h.timestamp, now);
    const n = decodeG711(law, packet, h.payloadOffset, Math.min(h.payloadLength, this.pcmIn.length), this.pcmIn);
    if (this.cnAmplitude > 0) this.cnEnding = true;
    // Before WhatsApp may hear anything (the agent answered, Graph accept is on its way) the latest 200 ms are kept:
    // the agent's first words are not clipped (§4.7), at the cost of that much delay, trimmed away within seconds.
    if (!this.sipSource) this.fifo.write(this.pcmIn, n, !this.waStarted);
  }

  /**
   * `level` is -dBov (RFC 3389 §3: 0 dBov is a full-scale square wave); no louder than -30 dBov whatever the PBX says,
   * since comfort noise is background. White noise of that RMS has peak RMS·√3.
   */
  private startComfortNoise(level: number): void {
    this.cnAmplitude = 32767 * Math.pow(10, -Math.max(30, level) / 20) * Math.sqrt(3);
    this.cnEnding = false;
  }

  /** One frame of the comfort noise into pcmUp (xorshift32: no allocation, no Math.random per sample). */
  private comfortNoise(): Int16Array {
    const out = this.pcmUp;
    const a = this.cnAmplitude;
    let x = this.noiseState;
    for (let i = 0; i < out.length; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      out[i] = Math.round(((x >>> 0) / 2147483648 - 1) * a);
    }
    this.noiseState = x;
    return out;
  }

  /** A digit the PBX sent in SIP INFO: reported and relayed to WhatsApp as if it had come as RFC 4733. */
  sipInfoDigit(digit: DtmfDigit, durationMs: number): void {
    this.relayDigit('sip', digit, digitToEvent(digit), durationMs);
  }

  private onDigit(from: MediaLegName, d: DtmfDigitEvent): void {
    this.relayDigit(from, d.digit, d.event, d.durationMs);
  }

  private relayDigit(from: MediaLegName, digit: DtmfDigit, event: number, rawDurationMs: number): void {
    this.emit('dtmf', { from, digit, durationMs: rawDurationMs });
    const durationMs = Math.max(60, Math.min(rawDurationMs || 100, 2000));
    if (from === 'whatsapp' && this.sipDtmfPayloadType !== null) this.sipDtmfTx.enqueue(event, durationMs);
    else if (from === 'sip' && this.wa.dtmfPayloadType !== null) this.waDtmfTx.enqueue(event, durationMs);
  }

  private readonly onTick = (skipped: number): void => {
    const t0 = performance.now();
    try {
      if (skipped > 0) {
        // Real time moved on without us: keep the RTP clocks honest so receivers do not drift.
        this.sipTs = (this.sipTs + skipped * FRAME_SAMPLES) >>> 0;
        this.waTs = (this.waTs + skipped * this.waTicks) >>> 0;
      }
      // What arrived since the last tick (tick-read legs; a no-op for legs read on arrival).
      this.wa.pollReceived?.();
      this.sip.pollReceived?.();
      this.tickToSip();
      this.tickToWhatsApp();
      if (this.taps.length > 0) this.runTaps();
      const now = this.now();
      this.waDtmfRx.poll(now);
      this.sipDtmfRx.poll(now);
      this.checkTimeouts(now);
      // RFC 3550's minimum interval: one report every 5 s (the first after 1 s, so RTT shows up early).
      if (++this.rtcpTicks === 50 || this.rtcpTicks % 250 === 0) this.sendSipRtcp();
      if (this.rtcpTicks % 50 === 0) this.lossAdapter?.update(this.wa.remoteFractionLost);
    } catch (err) {
      if (this.tickErrors++ === 0) this.log.error({ err: (err as Error).message }, 'media tick failed');
    }
    this.tickSeconds += (performance.now() - t0) / 1000;
    this.tickCount++;
  };

  private runTaps(): void {
    for (const tap of this.taps) {
      try {
        tap(this.tapUser, this.tapAgent);
      } catch (err) {
        if (this.tickErrors++ === 0) this.log.error({ err: (err as Error).message }, 'media tap failed');
      }
    }
  }

  /** Mean time of one 20 ms media tick so far (undefined before the first tick). */
  meanTickSeconds(): number | undefined {
    return this.tickCount > 0 ? this.tickSeconds / this.tickCount : undefined;
  }

  private tickToSip(): void {
    const ts = this.sipTs;
    this.sipTs = (ts + FRAME_SAMPLES) >>> 0;
    // Advance the jitter buffer every tick, also while DTMF is sent, so audio stays in step.
    const n = this.jb.pop(this.waIn);
    let pcm: Int16Array = this.pcmDown;
    if (n >= 0) {
      this.waAudioSeen = true;
      this.concealRun = 0;
      const dec = this.waDec ?? this.chooseDecoder();
      try {
        dec.decode(this.waIn, this.pcmDown, n);
      } catch {
        dec.conceal(this.pcmDown);
      }
    } else if (this.waAudioSeen && (n === JB_LOST || this.concealRun < 5)) {
      // A lost frame whose successor is here: its in-band FEC rebuilds it. Otherwise conceal it, and the first
      // 100 ms of an underrun; after that, plain silence.
      const m = n === JB_LOST && this.fecDec ? this.jb.peekNext(this.waNext) : -1;
      if (m > 0) {
        this.concealRun = 0;
        this.fecRecovered++;
        try {
          this.fecDec!.decodeFec(this.waNext, this.pcmDown, m);
        } catch {
          this.fecDec!.conceal(this.pcmDown);
        }
      } else {
        this.concealRun++;
        this.waDec!.conceal(this.pcmDown);
      }
    } else {
      void JB_EMPTY;
      pcm = this.silence;
    }
    this.tapUser = pcm === this.pcmDown ? this.pcmDownFrame : pcm;

    if (!this.sipSendRtp) return;
    const buf = this.sipRing[this.sipRingPos]!;
    this.sipRingPos = (this.sipRingPos + 1) % SIP_SEND_RING;
    if (this.sipDtmfPayloadType !== null && this.sipDtmfTx.busy) {
      const info = this.sipDtmfTx.next(buf, RTP_HEADER_SIZE)!;
      if (info.start) this.sipDtmfTs = ts;
      writeRtpHeader(buf, { marker: info.start, payloadType: this.sipDtmfPayloadType, sequenceNumber: this.sipSeq, timestamp: this.sipDtmfTs, ssrc: this.sipSsrc });
      this.sipSeq = (this.sipSeq + 1) & 0xffff;
      if (this.sip.send(buf, 0, RTP_HEADER_SIZE + 4)) {
        this.sipPacketsOut++;
        this.sipOctetsOut += 4;
      }
      if (info.last) this.sipMarker = true;
      return;
    }
    writeRtpHeader(buf, { marker: this.sipMarker, payloadType: this.sipPayloadType, sequenceNumber: this.sipSeq, timestamp: ts, ssrc: this.sipSsrc });
    encodeG711(this.sipCodec, pcm === this.pcmDown ? this.pcmDownFrame : pcm, buf, RTP_HEADER_SIZE);
    if (this.sip.send(buf, 0, RTP_HEADER_SIZE + FRAME_SAMPLES)) {
      this.sipPacketsOut++;
      this.sipOctetsOut += FRAME_SAMPLES;
      this.sipMarker = false;
      this.sipSeq = (this.sipSeq + 1) & 0xffff;
    }
  }

  private chooseDecoder(): OpusDecoder8k | OpusFecDecoder | G711FrameDecoder {
    if (this.waLaw) {
      this.waDec = new G711FrameDecoder(this.waLaw);
      return this.waDec;
    }
    if (this.fecDecode && this.wa.remoteInbandFec && opusFecAvailable()) {
      try {
        this.fecDec = createOpusFecDecoder();
        this.waDec = this.fecDec;
        return this.fecDec;
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, 'Opus FEC decoder unavailable: concealment only');
      }
    }
    this.waDec = new OpusDecoder8k();
    return this.waDec;
  }

  private tickToWhatsApp(): void {
    const ts = this.waTs;
    this.waTs = (ts + this.waTicks) >>> 0;
    this.tapAgent = this.silence;
    if (!this.waStarted) return;
    const p = this.waSendParams;
    const dtmfPt = this.wa.dtmfPayloadType;
    if (dtmfPt !== null && this.waDtmfTx.busy) {
      // Keep the FIFO moving so the audio after the digit is not delayed by the digit's length.
      this.fifo.read(this.pcmUp);
      const info = this.waDtmfTx.next(this.dtmfOut)!;
      if (info.start) this.waDtmfTs = ts;
      p.payloadType = dtmfPt;
      p.sequenceNumber = this.waSeq;
      p.timestamp = this.waDtmfTs;
      p.marker = info.start;
      this.wa.sendRtp(p, this.dtmfOut, 0, 4);
      this.waSeq = (this.waSeq + 1) & 0xffff;
      this.waPacketsOut++;
      if (info.last) this.waMarker = true;
      return;
    }
    let pcm: Int16Array;
    if (this.sipSource) {
      this.sipSource.read(this.pcmUp);
      pcm = this.pcmUp;
    } else {
      if (this.fifo.read(this.pcmUp)) {
        pcm = this.pcmUp;
        if (this.cnEnding) this.cnAmplitude = 0;
      } else {
        pcm = this.cnAmplitude > 0 ? this.comfortNoise() : this.silence;
      }
    }
    this.tapAgent = pcm;
    const n = this.opusEnc ? this.opusEnc.encode(pcm, this.waOut) : encodeG711(this.waLaw!, pcm, this.waOut);
    p.payloadType = this.wa.audio.payloadType;
    p.sequenceNumber = this.waSeq;
    p.timestamp = ts;
    p.marker = this.waMarker;
    this.wa.sendRtp(p, this.waOut, 0, n);
    this.waMarker = false;
    this.waSeq = (this.waSeq + 1) & 0xffff;
    this.waPacketsOut++;
  }

  private checkTimeouts(now: number): void {
    this.checkLeg('whatsapp', this.wa.lastReceivedAt, now);
    this.checkLeg('sip', this.sip.lastReceivedAt, now);
  }

  private checkLeg(leg: MediaLegName, lastReceivedAt: number, now: number): void {
    if (this.timeoutFired[leg] || !this.timeoutEnabled[leg]) return;
    const since = Math.max(lastReceivedAt, this.startedAt, this.watchedSince[leg]);
    if (now - since >= this.mediaTimeoutMs) {
      this.timeoutFired[leg] = true;
      this.log.warn({ leg, silentMs: Math.round(now - since) }, 'media timeout');
      this.emit('media-timeout', leg);
    }
  }
}

function round1(v: number): number {
  return Math.round(v * 10) / 10;
}
