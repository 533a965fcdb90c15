/**
 * A WhatsApp user seen at the RTP level, for what libwebrtc (@roamhq/wrtc) cannot do: it has no RTCDTMFSender and
 * does not surface received telephone-events. ICE and DTLS-SRTP run on werift (through the gateway's own WebRtcLeg
 * class, which carries Meta's SDP rules: Opus 111, telephone-event/8000 126, one SSRC), so every packet this user
 * sees or sends is real SRTP on the wire. It plays a steady 440 Hz in Opus, sends RFC 4733 digits in the Opus
 * stream (same SSRC, timestamps on the 48 kHz clock like Meta's), and records every telephone-event it receives.
 *
 * Use as a profile user: meta.userCalls({ waId }, { offerSdp: user.offerSdp }), then
 * user.applyAnswer(graph.calls.get(callId).preAcceptSdp).
 */
import { DtmfSender } from '../../../src/media/dtmf.js';
import { IntervalFrameClock } from '../../../src/media/frame-clock.js';
import { OpusEncoder8k } from '../../../src/media/opus-codec.js';
import { digitToEvent, eventToDigit, readTelephoneEvent, type TelephoneEvent } from '../../../src/media/rtp-packet.js';
import { WebRtcLeg } from '../../../src/media/webrtc-leg.js';

export interface ReceivedEvent {
  digit: string;
  /** RTP timestamp of the event (the same for all its packets). */
  timestamp: number;
  end: boolean;
  duration: number;
  marker: boolean;
  sequenceNumber: number;
  at: number;
}

export class RtpLevelUser {
  readonly events: ReceivedEvent[] = [];
  audioPackets = 0;
  private readonly clock = new IntervalFrameClock(20);
  private readonly enc = new OpusEncoder8k();
  private readonly frames: Uint8Array[] = [];
  private readonly dtmf = new DtmfSender();
  private readonly dtmfBuf = new Uint8Array(4);
  private seq = 4000;
  private ts = 90_000;
  private dtmfTs = 0;
  private frame = 0;
  private marker = true;
  private stopClock: (() => void) | null = null;

  private constructor(readonly leg: WebRtcLeg) {
    const pcm = new Int16Array(160);
    const out = new Uint8Array(1500);
    for (let f = 0; f < 50; f++) {
      for (let i = 0; i < 160; i++) pcm[i] = Math.round(6000 * Math.sin((2 * Math.PI * 440 * (f * 160 + i)) / 8000));
      this.frames.push(out.slice(0, this.enc.encode(pcm, out)));
    }
    const ev: TelephoneEvent = { event: 0, end: false, volume: 0, duration: 0 };
    leg.on('audio', () => { this.audioPackets++; });
    leg.on('dtmf', (payload, info) => {
      if (!readTelephoneEvent(payload, 0, payload.length, ev)) return;
      this.events.push({
        digit: eventToDigit(ev.event) ?? '?', timestamp: info.timestamp, end: ev.end, duration: ev.duration,
        marker: info.marker, sequenceNumber: info.sequenceNumber, at: performance.now(),
      });
    });
  }

  static async create(): Promise<RtpLevelUser> {
    return new RtpLevelUser(await WebRtcLeg.offer({ bindAddress: '127.0.0.1', opusPayloadType: 111, dtmfPayloadType: 126 }));
  }

  get offerSdp(): string {
    return this.leg.localSdp;
  }

  /** Applies the gateway's answer, waits for ICE + DTLS, then talks (440 Hz) every 20 ms. */
  async applyAnswer(sdp: string): Promise<void> {
    await this.leg.setRemoteAnswer(sdp);
    await this.leg.connected;
    this.stopClock ??= this.clock.subscribe(() => this.tick());
  }

  /** Queues RFC 4733 digits (each durationMs long); they replace the audio packets while they play. */
  sendDigits(digits: string, durationMs = 120): void {
    for (const d of digits) this.dtmf.enqueue(digitToEvent(d), durationMs);
  }

  get sendingDigits(): boolean {
    return this.dtmf.busy;
  }

  /** Digits received: one per distinct event timestamp that reached its end packet, in arrival order. */
  receivedDigits(): string {
    const done = new Map<number, string>();
    for (const e of this.events) if (e.end && !done.has(e.timestamp)) done.set(e.timestamp, e.digit);
    return [...done.values()].join('');
  }

  async close(): Promise<void> {
    this.stopClock?.();
    this.stopClock = null;
    await this.leg.close();
  }

  private tick(): void {
    const ts = this.ts;
    this.ts = (this.ts + 960) >>> 0;
    if (this.dtmf.busy) {
      const info = this.dtmf.next(this.dtmfBuf)!;
      if (info.start) this.dtmfTs = ts;
      this.leg.sendRtp({ payloadType: this.leg.dtmfPayloadType ?? 126, sequenceNumber: this.seq++ & 0xffff, timestamp: this.dtmfTs, marker: info.start }, this.dtmfBuf);
      if (info.last) this.marker = true;
      return;
    }
    this.leg.sendRtp({ payloadType: this.leg.audio.payloadType, sequenceNumber: this.seq++ & 0xffff, timestamp: ts, marker: this.marker }, this.frames[this.frame++ % 50]!);
    this.marker = false;
  }
}
