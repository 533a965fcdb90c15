import type { DtmfDigit } from '../media/rtp-packet.js';
import type { GatewayConfig } from '../config/schema.js';
import type { Metrics } from '../observability/metrics.js';
import { PortPool } from '../media/port-pool.js';
import { RtpLeg } from '../media/rtp-leg.js';
import { answerWhatsAppOffer, offerWhatsAppLeg, whatsAppLegKeyExchange, type WhatsAppLeg } from '../media/whatsapp-leg.js';
import { Bridge, type MediaLegName, type PcmSource } from '../media/bridge.js';
import { answerDirection, buildSdpAnswer, buildSdpOffer, isNullAddress, parseSdp, type G711Codec, type MediaDirection, type ParsedSdp } from '../sip/sdp.js';
import type { Call } from './call.js';
import type { QualitySummary } from '../store/call-record.js';

/** What an agent's re-offer or answer changed: the direction it asked for (c=0.0.0.0 read as hold), address, codec. */
export interface AgentMediaChange {
  direction: MediaDirection;
  moved: boolean;
  codecChanged: boolean;
}

/** o= of our next SDP in this session: the same id, the version one up (RFC 3264 §8). */
function nextSession(previousLocalSdp: string): { sessionId: string; sessionVersion: number } | Record<string, never> {
  const o = /^o=\S+ (\S+) (\d+)/m.exec(previousLocalSdp);
  return o ? { sessionId: o[1]!, sessionVersion: Number(o[2]) + 1 } : {};
}

/**
 * What we may send the PBX by the direction our SDP gives (RFC 3264): RTP only for sendrecv or sendonly, and nothing
 * at all, RTCP included, toward c=0.0.0.0 (§8.4).
 */
function followDirection(bridge: Bridge, remote: ParsedSdp, ours: MediaDirection): void {
  bridge.setSipSending(ours === 'sendrecv' || ours === 'sendonly', !isNullAddress(remote));
}

/** Owns the RTP port pool and hands each call its media session. */
export class MediaFactory {
  readonly pool: PortPool;
  /** ICE ports toward WhatsApp: one pool, because werift's own range search hands one port to two legs set up at once. */
  readonly webrtcPool: PortPool;
  /** Runs when a call's media starts flowing to WhatsApp (recording with consent, live streams). */
  onMediaStarted?: (call: Call, session: MediaSession) => void;

  constructor(private readonly config: GatewayConfig, private readonly metrics: Metrics) {
    this.pool = new PortPool(config.media.rtpPortMin, config.media.rtpPortMax);
    this.webrtcPool = new PortPool(config.media.webrtcPortMin, config.media.webrtcPortMax);
    metrics.rtpPortsTotal.set(this.pool.size);
    metrics.rtpPortsFree.set(this.pool.free);
  }

  create(call: Call): MediaSession {
    const session = new MediaSession(this.config, this.pool, this.metrics, call, this.webrtcPool);
    session.onStarted = (s) => this.onMediaStarted?.(call, s);
    return session;
  }

  close(): void {
    this.metrics.rtpPortsFree.set(this.pool.free);
  }
}

/**
 * One call's media: the WhatsApp leg (DTLS-SRTP or SDES, see media/whatsapp-leg.ts), the RTP leg toward the PBX and the bridge between them.
 * The steps follow the call flow; close() releases everything whatever step was reached.
 */
export class MediaSession {
  private webrtc?: WhatsAppLeg;
  private rtp?: RtpLeg;
  private bridge?: Bridge;
  private sipRemote?: ParsedSdp;
  private closed = false;
  private infoSender: ((contentType: string, body: string) => Promise<number>) | null = null;
  private infoChain: Promise<void> = Promise.resolve();
  /** Codec preference toward the agent (the route's, else sip.codecs). */
  private codecs: readonly G711Codec[];
  private held = false;
  /** The agent sends us media by its last offer or answer (sendrecv or sendonly): its silence watchdog runs only then. */
  private agentSends = true;
  private mediaStarted = false;
  /** Click-to-call: WhatsApp media runs while the agent still rings (startWhatsAppBeforeAgent); connectSip ends it. */
  private agentPending = false;
  private readonly spareLegs = new Set<RtpLeg>();
  /** The route (routing.routes) the call took, when it took one: live streams may be set per route. */
  routeName?: string;
  /** Set by the factory: see MediaFactory.onMediaStarted. */
  onStarted?: (s: MediaSession) => void;

  constructor(
    private readonly config: GatewayConfig,
    private readonly pool: PortPool,
    private readonly metrics: Metrics,
    private readonly call: Call,
    private readonly webrtcPool: PortPool,
  ) {
    call.setQualitySource(() => this.quality());
    this.codecs = config.sip.codecs;
  }

  get whatsAppSdp(): string {
    if (!this.webrtc) throw new Error('WhatsApp leg not set up');
    return this.webrtc.localSdp;
  }

  /** Answers Meta's offer; throws UnanswerableOfferError for an offer without Opus or that is not SDP. */
  async answerWhatsApp(offerSdp: string): Promise<void> {
    const { media } = this.config;
    this.webrtc = await answerWhatsAppOffer(offerSdp, this.webRtcOptions());
    if (this.closed) await this.webrtc.close();
    const leg = this.webrtc;
    this.call.logger.debug({ sdp: leg.localSdp, keyExchange: whatsAppLegKeyExchange(leg), iceRole: 'iceRole' in leg ? leg.iceRole : undefined, bind: media.bindAddress }, 'WhatsApp SDP answer');
  }

  /** Opens the RTP socket toward the PBX and returns the SDP offer for the INVITE. */
  async sipOffer(codecs?: readonly G711Codec[]): Promise<string> {
    if (codecs) this.codecs = codecs;
    // G.711 from WhatsApp: the same law first, so that a PBX that takes it needs no law conversion.
    const waCodec = this.webrtc?.audio.codec;
    if (waCodec && waCodec !== 'opus' && this.codecs.includes(waCodec)) this.codecs = [waCodec, ...this.codecs.filter((c) => c !== waCodec)];
    this.rtp = await RtpLeg.open({ pool: this.pool, bindAddress: this.config.media.bindAddress, latchAnySource: this.config.media.latchAnySource, logger: this.call.logger });
    this.metrics.rtpPortsFree.set(this.pool.free);
    if (this.closed) await this.closeLegs();
    return buildSdpOffer({ address: this.config.media.sipMediaAddress, port: this.rtp.port, codecs: this.codecs });
  }

  /**
   * Applies the agent's answer and builds the bridge; media toward WhatsApp waits for startWhatsAppMedia(). After
   * startWhatsAppBeforeAgent() the running bridge turns to the agent instead.
   */
  connectSip(answerSdp: string): void {
    if (!this.webrtc || !this.rtp) throw new Error('media legs not set up');
    const remote = parseSdp(answerSdp, { codecs: this.codecs });
    this.call.logger.debug({ sdp: answerSdp }, 'agent SDP answer');
    if (!this.bridge || !this.agentPending) {
      this.startBridge(remote);
      return;
    }
    this.agentPending = false;
    this.rtp.setRemote(remote.address, remote.port);
    this.sipRemote = remote;
    this.bridge.setSipMedia({ codec: remote.codec, payloadType: remote.payloadType, dtmfPayloadType: remote.dtmfPayloadType ?? null });
    this.bridge.setSipSource(null);
    this.bridge.setMediaTimeout('sip', true);
    this.call.logger.info({ codec: remote.codec, remote: `${remote.address}:${remote.port}`, dtmfPt: remote.dtmfPayloadType }, 'media bridged');
    this.notifyStarted();
  }

  /**
   * Click-to-call: the WhatsApp user picked up and the agent (sipOffer() done) is still ringing. Meta's client hangs
   * up after 20 s without business media (§3.2), and an agent may take longer: WhatsApp media starts now, `source`
   * (ringing music, or silence when null) until connectSip() brings the agent in.
   */
  startWhatsAppBeforeAgent(source: PcmSource | null, onTimeout: (leg: MediaLegName) => void, onFailed?: (leg: MediaLegName, cause: string) => void): void {
    if (!this.webrtc || !this.rtp) throw new Error('media legs not set up');
    const bridge = this.createBridge(this.codecs[0] ?? 'PCMU', undefined, null);
    this.agentPending = true;
    bridge.setSipSource(source);
    bridge.setMediaTimeout('sip', false);
    this.startWhatsAppMedia(onTimeout, onFailed);
  }

  // Business-initiated order (the PBX offers, we offer to WhatsApp): offerWhatsApp → answerSip → applyWhatsAppAnswer
  // → bridgeSip once the user picked up → startWhatsAppMedia.

  /**
   * Creates our offer toward WhatsApp: DTLS-SRTP (complete with candidates) or SDES, per the business number's
   * whatsappKeyExchange, else media.whatsappKeyExchange.
   */
  async offerWhatsApp(keyExchange: 'dtls' | 'sdes' = this.config.media.whatsappKeyExchange): Promise<string> {
    this.webrtc = await offerWhatsAppLeg(keyExchange, this.webRtcOptions());
    if (this.closed) await this.webrtc.close();
    this.call.logger.debug({ sdp: this.webrtc.localSdp }, 'WhatsApp SDP offer');
    return this.webrtc.localSdp;
  }

  /** Applies the user's answer from the `connect` webhook; throws UnusableAnswerError. */
  async applyWhatsAppAnswer(answerSdp: string): Promise<void> {
    if (!this.webrtc) throw new Error('WhatsApp leg not set up');
    this.call.logger.debug({ sdp: answerSdp }, 'WhatsApp SDP answer');
    await this.webrtc.setRemoteAnswer(answerSdp);
  }

  /** Opens the RTP socket toward the PBX and answers its offer (G.711); throws SdpError when nothing fits. */
  async answerSip(offerSdp: string): Promise<string> {
    this.rtp = await RtpLeg.open({ pool: this.pool, bindAddress: this.config.media.bindAddress, latchAnySource: this.config.media.latchAnySource, logger: this.call.logger });
    this.metrics.rtpPortsFree.set(this.pool.free);
    if (this.closed) await this.closeLegs();
    const answer = buildSdpAnswer(offerSdp, { address: this.config.media.sipMediaAddress, port: this.rtp.port, codecs: this.config.sip.codecs });
    this.sipRemote = answer.remote;
    this.call.logger.debug({ offer: offerSdp, answer: answer.sdp }, 'PBX SDP offer answered');
    return answer.sdp;
  }

  /** Builds the bridge with the PBX's offer applied by answerSip(). */
  bridgeSip(): void {
    if (!this.webrtc || !this.rtp || !this.sipRemote) throw new Error('media legs not set up');
    this.startBridge(this.sipRemote);
  }

  private startBridge(remote: ParsedSdp): void {
    if (!this.webrtc || !this.rtp) throw new Error('media legs not set up');
    this.rtp.setRemote(remote.address, remote.port);
    this.sipRemote = remote;
    const bridge = this.createBridge(remote.codec, remote.payloadType, remote.dtmfPayloadType ?? null);
    // A PBX may start on hold (sendonly or inactive, or c=0.0.0.0): then nothing goes to it until it resumes.
    followDirection(bridge, remote, answerDirection(remote.direction));
    this.call.logger.info({ codec: remote.codec, remote: `${remote.address}:${remote.port}`, dtmfPt: remote.dtmfPayloadType, direction: remote.direction }, 'media bridged');
  }

  private createBridge(sipCodec: G711Codec, sipPayloadType: number | undefined, sipDtmfPayloadType: number | null): Bridge {
    if (!this.webrtc || !this.rtp) throw new Error('media legs not set up');
    const { media } = this.config;
    this.bridge = new Bridge(this.webrtc, this.rtp, {
      sipCodec,
      ...(sipPayloadType !== undefined ? { sipPayloadType } : {}),
      sipDtmfPayloadType,
      opus: {
        bitrate: media.opusBitrate, complexity: media.opusComplexity, inbandFec: media.opusFec, lossAdaptive: media.opusFecAdaptive,
        minComplexity: media.opusLoadAdaptive ? media.opusMinComplexity : media.opusComplexity,
      },
      // Governed either way, so that saturation is seen; without load adaptation the complexity has no room to move.
      governed: true,
      mediaTimeoutMs: media.mediaTimeoutMs,
      tickReads: media.tickReads,
      logger: this.call.logger,
    });
    this.bridge.start();
    return this.bridge;
  }

  /**
   * Called right after Graph `accept` returned 200: the first packet toward WhatsApp goes out now. onTimeout: a leg
   * carried no media for media.mediaTimeoutMs; onFailed: a leg's transport failed for good (cause
   * `media_failed_<leg>`, e.g. ICE failed or consent expired on the WhatsApp side).
   */
  startWhatsAppMedia(onTimeout: (leg: MediaLegName) => void, onFailed?: (leg: MediaLegName, cause: string) => void): void {
    if (!this.bridge || this.mediaStarted) return;
    this.mediaStarted = true;
    this.bridge.on('media-timeout', onTimeout);
    this.bridge.on('media-failed', (leg, state) => {
      this.call.logger.warn({ leg, state }, 'media leg failed: ending the call');
      onFailed?.(leg, `media_failed_${leg}`);
    });
    this.bridge.on('dtmf', (ev) => {
      const bridge = this.bridge;
      if (ev.from === 'whatsapp' && bridge && bridge.sipDtmfPayloadType === null) {
        this.relayDtmfAsInfo(ev.digit, ev.durationMs);
        return;
      }
      this.call.logger.debug({ from: ev.from, digit: ev.digit, durationMs: ev.durationMs }, 'DTMF relayed');
    });
    this.bridge.startWhatsAppMedia();
    if (!this.agentPending) this.notifyStarted();
  }

  /** Recording and live streams start once both sides are in the call (not on the ringing music). */
  private notifyStarted(): void {
    try {
      this.onStarted?.(this);
    } catch (err) {
      this.call.logger.error({ err: (err as Error).message }, 'media-start hook failed: the call goes on');
    }
  }

  /**
   * Where digits from WhatsApp go when the PBX negotiated no telephone-event (sip.dtmfWithoutTelephoneEvent
   * 'info'): the agent side hands in its current dialog's INFO sender, so transfers keep it right.
   */
  setSipInfoSender(send: (contentType: string, body: string) => Promise<number>): void {
    this.infoSender = send;
  }

  /** A digit the PBX sent in SIP INFO (sip/dtmf-info.ts): toward WhatsApp as RFC 4733, like one sent in RTP. */
  sipInfoDigit(digit: DtmfDigit, durationMs: number): void {
    if (!this.bridge) {
      this.call.logger.debug({ digit }, 'SIP INFO DTMF before media: dropped');
      return;
    }
    this.bridge.sipInfoDigit(digit, durationMs);
  }

  private relayDtmfAsInfo(digit: string, durationMs: number): void {
    const send = this.infoSender;
    if (this.config.sip.dtmfWithoutTelephoneEvent !== 'info' || !send) {
      this.call.logger.debug({ digit }, 'DTMF from WhatsApp dropped: the PBX negotiated no telephone-event');
      return;
    }
    // One INFO at a time, in digit order (RFC 6086 leaves ordering across transactions to the sender).
    const body = `Signal=${digit}\r\nDuration=${Math.max(40, Math.round(durationMs) || 100)}\r\n`;
    this.infoChain = this.infoChain.then(async () => {
      if (this.closed) return;
      try {
        const status = await send('application/dtmf-relay', body);
        if (status >= 300) this.call.logger.warn({ status }, 'SIP INFO DTMF refused by the PBX');
        else this.call.logger.debug({ digit }, 'DTMF relayed as SIP INFO');
      } catch (err) {
        this.call.logger.warn({ err: (err as Error).message }, 'SIP INFO DTMF failed');
      }
    });
  }

  /** The bridge once media is connected: recording and live streams tap it, consent uses its source and DTMF. */
  get activeBridge(): Bridge | undefined {
    return this.closed ? undefined : this.bridge;
  }

  // Hold, media changes and transfer: the agent side moves while the WhatsApp leg stays exactly as it is (Meta
  // accepts no re-INVITE, UPDATE or ICE restart on its leg).

  get onHold(): boolean {
    return this.held;
  }

  /** Hold music to the WhatsApp user (packets keep flowing toward Meta), or back to the agent's audio (null). */
  setHoldSource(source: PcmSource | null): void {
    if (!this.bridge) return;
    this.held = source !== null;
    this.bridge.setSipSource(source);
    // A held agent may send nothing at all (inactive); that is not a dead leg.
    this.bridge.setMediaTimeout('sip', source === null && this.agentSends);
  }

  /**
   * The agent's re-INVITE or UPDATE offer: follows a new RTP address or codec and reports the direction it asks for.
   * Returns our answer (same port, mirrored direction) and what changed. Throws SdpError when nothing fits (488).
   */
  answerAgentReoffer(offerSdp: string, previousLocalSdp: string): AgentMediaChange & { sdp: string } {
    if (!this.rtp || !this.bridge) throw new Error('media not bridged');
    const answer = buildSdpAnswer(offerSdp, {
      address: this.config.media.sipMediaAddress, port: this.rtp.port, codecs: this.codecs, ...nextSession(previousLocalSdp),
    });
    return { sdp: answer.sdp, ...this.followAgent(this.rtp, this.bridge, answer.remote, answer.direction, 're-offer') };
  }

  /**
   * An offerless re-INVITE: our offer for its 200 OK, on the same port and session, sendrecv (the agent's answer says
   * whether it still holds), the codec in use first and the telephone-event payload type in use kept (RFC 3264 §8.3.2).
   */
  agentOfferlessOffer(previousLocalSdp: string): string {
    if (!this.rtp || !this.bridge) throw new Error('media not bridged');
    const current = this.sipRemote;
    const codecs = current ? [current.codec, ...this.codecs.filter((c) => c !== current.codec)] : this.codecs;
    const dtmfPt = current?.dtmfPayloadType;
    return buildSdpOffer({
      address: this.config.media.sipMediaAddress, port: this.rtp.port, codecs, ...nextSession(previousLocalSdp), sameStreamsAs: previousLocalSdp,
      ...(dtmfPt !== undefined && dtmfPt >= 96 && dtmfPt <= 127 ? { dtmfPayloadType: dtmfPt } : {}),
    });
  }

  /** The agent's answer (from the ACK) to agentOfferlessOffer(); throws SdpError when unusable (media stays as it was). */
  applyAgentAnswer(answerSdp: string): AgentMediaChange {
    if (!this.rtp || !this.bridge) throw new Error('media not bridged');
    const remote = parseSdp(answerSdp, { codecs: this.codecs });
    // We offered sendrecv: what we may do is the mirror of what the agent answered.
    return this.followAgent(this.rtp, this.bridge, remote, answerDirection(remote.direction), 'answer');
  }

  /** Media follows the agent's latest SDP: its address and codec, and who may send (RFC 3264 §5.1, §8.4). */
  private followAgent(rtp: RtpLeg, bridge: Bridge, r: ParsedSdp, ours: MediaDirection, what: string): AgentMediaChange {
    const before = this.sipRemote;
    // c=0.0.0.0 (RFC 2543 hold) keeps the old address: there is nowhere new to send.
    const nullAddress = isNullAddress(r);
    const moved = !nullAddress && (!before || before.address !== r.address || before.port !== r.port);
    if (moved) rtp.setRemote(r.address, r.port);
    const codecChanged = !before || before.codec !== r.codec || before.payloadType !== r.payloadType || (before.dtmfPayloadType ?? null) !== (r.dtmfPayloadType ?? null);
    if (codecChanged) bridge.setSipMedia({ codec: r.codec, payloadType: r.payloadType, dtmfPayloadType: r.dtmfPayloadType ?? null });
    if (!nullAddress) this.sipRemote = r;
    followDirection(bridge, r, ours);
    // An agent that sends nothing (inactive, recvonly) is not a dead leg: its silence watchdog waits.
    this.agentSends = r.direction === 'sendrecv' || r.direction === 'sendonly';
    bridge.setMediaTimeout('sip', !this.held && this.agentSends);
    this.call.logger.info({ direction: r.direction, answered: ours, moved, codecChanged, codec: r.codec, remote: `${r.address}:${r.port}` }, `agent ${what} applied`);
    return { direction: r.direction, moved, codecChanged };
  }

  /** A second RTP leg and its SDP offer, for ringing a transfer target while the current agent stays connected. */
  async openSpareSipLeg(): Promise<{ leg: RtpLeg; offer: string }> {
    const leg = await RtpLeg.open({ pool: this.pool, bindAddress: this.config.media.bindAddress, latchAnySource: this.config.media.latchAnySource, logger: this.call.logger });
    this.spareLegs.add(leg);
    this.metrics.rtpPortsFree.set(this.pool.free);
    if (this.closed) await this.closeSpareLeg(leg);
    return { leg, offer: buildSdpOffer({ address: this.config.media.sipMediaAddress, port: leg.port, codecs: this.codecs }) };
  }

  /** The transfer target answered on `leg`: the bridge moves there and the previous agent's leg is closed. */
  async moveSipTo(leg: RtpLeg, answerSdp: string): Promise<void> {
    if (!this.bridge || this.closed) throw new Error('media not bridged');
    const remote = parseSdp(answerSdp, { codecs: this.codecs });
    leg.setRemote(remote.address, remote.port);
    this.spareLegs.delete(leg);
    const prev = this.bridge.setSipMedia({ leg, codec: remote.codec, payloadType: remote.payloadType, dtmfPayloadType: remote.dtmfPayloadType ?? null });
    // A new agent on a new leg: whatever the previous one held or refused is over.
    this.bridge.setSipSending(true);
    this.agentSends = true;
    this.rtp = leg;
    this.sipRemote = remote;
    this.call.logger.info({ codec: remote.codec, remote: `${remote.address}:${remote.port}` }, 'media moved to the transfer target');
    await prev.close();
    this.metrics.rtpPortsFree.set(this.pool.free);
  }

  async closeSpareLeg(leg: RtpLeg): Promise<void> {
    this.spareLegs.delete(leg);
    await leg.close();
    this.metrics.rtpPortsFree.set(this.pool.free);
  }

  quality(): Required<QualitySummary> | undefined {
    return this.bridge?.quality();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const quality = this.quality();
    const tick = this.bridge?.meanTickSeconds();
    if (tick !== undefined) this.metrics.transcodeSeconds.observe(tick);
    if (quality) {
      this.call.quality = quality;
      for (const leg of ['whatsapp', 'sip'] as const) {
        this.metrics.callMos.observe({ leg }, quality[leg].mos);
        this.metrics.rtpPackets.inc({ leg, dir: 'in' }, quality[leg].packetsIn);
        this.metrics.rtpPackets.inc({ leg, dir: 'out' }, quality[leg].packetsOut);
        this.metrics.rtpLost.inc({ leg }, quality[leg].lost);
        this.metrics.rtpJitter.observe({ leg }, quality[leg].jitterMs / 1000);
        const rtt = quality[leg].rttMs;
        if (rtt !== undefined) this.metrics.rtpRtt.observe({ leg }, rtt / 1000);
        if (quality[leg].late > 0) this.metrics.rtpLate.inc({ leg }, quality[leg].late);
      }
      const fec = this.bridge?.details.fecRecovered ?? 0;
      if (fec > 0) this.metrics.fecRecovered.inc(fec);
    }
    const wa = this.webrtc;
    if (wa) {
      const dropped = wa.stats.srtpDropped + wa.stats.srtcpDropped;
      if (dropped > 0) this.metrics.whatsappSrtpDropped.inc({ key_exchange: whatsAppLegKeyExchange(wa) }, dropped);
      if (wa.stats.sendErrors > 0) this.metrics.mediaSendErrors.inc({ leg: 'whatsapp' }, wa.stats.sendErrors);
    }
    const rtp = this.rtp;
    if (rtp) {
      const s = rtp.stats;
      if (s.droppedUnexpectedSource > 0) this.metrics.sipRtpDropped.inc({ reason: 'unexpected_source' }, s.droppedUnexpectedSource);
      if (s.droppedInvalid > 0) this.metrics.sipRtpDropped.inc({ reason: 'invalid' }, s.droppedInvalid);
      if (s.relatched > 0) this.metrics.sipRtpRelatched.inc(s.relatched);
      if (s.sendErrors > 0) this.metrics.mediaSendErrors.inc({ leg: 'sip' }, s.sendErrors);
    }
    await this.closeLegs();
  }

  private async closeLegs(): Promise<void> {
    await this.bridge?.stop();
    await Promise.all([this.webrtc?.close(), this.rtp?.close(), ...[...this.spareLegs].map((l) => l.close())]);
    this.spareLegs.clear();
    this.metrics.rtpPortsFree.set(this.pool.free);
  }

  private webRtcOptions() {
    const { media } = this.config;
    return {
      bindAddress: media.bindAddress === '0.0.0.0' ? undefined : media.bindAddress,
      publicAddress: media.publicAddress || undefined,
      portPool: this.webrtcPool,
      mediaPath: media.webrtcMediaPath,
      codecs: media.whatsappCodecs,
      logger: this.call.logger,
    };
  }
}
