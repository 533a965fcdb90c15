/**
 * The gateway's media path per call-second without sockets: for each call and each 20 ms frame, one SRTP Opus
 * packet in from WhatsApp (unprotect, header, jitter buffer, Opus decode at 8 kHz, G.711, RTP header out) and one
 * G.711 packet in from SIP (header, G.711 decode, FIFO, Opus encode, RTP header, SRTP protect), driven by a manual
 * frame clock through the real Bridge. Inputs are prepared before the clock starts, so only gateway work is timed.
 *
 * 'fast' is the packet work WebRtcLeg's fast path does (src/media/srtp.ts, a plain header reader); 'werift' is what
 * werift's media path does per packet (SrtpSession, RtpPacket objects) for comparison in the same run.
 * `waCodec` 'PCMU': Meta carries G.711 (media.whatsappCodecs): the same path with no Opus codec at all.
 */
import { EventEmitter } from 'node:events';
import { RtpHeader as WeriftRtpHeader, RtpPacket, SrtpSession } from 'werift';
import { Bridge, type SipMediaLeg, type WhatsAppMediaLeg } from '../src/media/bridge.js';
import { ManualFrameClock } from '../src/media/frame-clock.js';
import { encodeG711 } from '../src/media/g711.js';
import { FRAME_SAMPLES, OpusEncoder8k, type OpusEncoderOptions } from '../src/media/opus-codec.js';
import { createRtpHeader, readRtpFields, readRtpHeader, writeRtpPacket, type RtpHeader } from '../src/media/rtp-packet.js';
import { SRTP_AES128_CM_HMAC_SHA1_80, SrtpContext } from '../src/media/srtp.js';
import type { ReceivedRtpInfo, SendRtpParams } from '../src/media/webrtc-leg.js';
import { audioOf, type WhatsAppAudio } from '../src/media/wa-audio-codec.js';

export type PacketPath = 'fast' | 'werift';

const KEY = Buffer.alloc(16, 7);
const SALT = Buffer.alloc(14, 9);

/** A WhatsApp leg minus the socket: the same packet work as WebRtcLeg on either path. */
class SocketlessWaLeg extends EventEmitter implements WhatsAppMediaLeg {
  readonly audio: WhatsAppAudio;
  readonly dtmfPayloadType = 126;
  /** Meta's offers say useinbandfec=1, so the gateway decodes on the FEC-capable decoder. */
  readonly remoteInbandFec = true;
  /** A clean network: the user's receiver reports say nothing was lost (adaptive FEC then stays off). */
  readonly remoteFractionLost = 0;
  lastReceivedAt = performance.now();
  sent = 0;
  private readonly tx = new SrtpContext(SRTP_AES128_CM_HMAC_SHA1_80, KEY, SALT);
  private readonly rx = new SrtpContext(SRTP_AES128_CM_HMAC_SHA1_80, KEY, SALT);
  private readonly w = new SrtpSession({ profile: SRTP_AES128_CM_HMAC_SHA1_80, keys: { localMasterKey: KEY, localMasterSalt: SALT, remoteMasterKey: KEY, remoteMasterSalt: SALT } });
  private readonly ring = Array.from({ length: 8 }, () => Buffer.alloc(1500));
  private pos = 0;
  private readonly out = { payloadOffset: 0 };
  private readonly info: ReceivedRtpInfo = { payloadType: 0, sequenceNumber: 0, timestamp: 0, ssrc: 0, marker: false };

  constructor(private readonly path: PacketPath, waCodec: 'opus' | 'PCMU') {
    super();
    this.audio = waCodec === 'opus' ? audioOf('opus', 111) : audioOf('PCMU', 0);
  }

  sendRtp(p: SendRtpParams, payload: Uint8Array, offset = 0, length = payload.length - offset): void {
    if (this.path === 'werift') {
      const header = new WeriftRtpHeader({ payloadType: p.payloadType, sequenceNumber: p.sequenceNumber & 0xffff, timestamp: p.timestamp >>> 0, marker: p.marker ?? false, ssrc: 1234 });
      const pkt = new RtpPacket(header, Buffer.from(payload.subarray(offset, offset + length)));
      this.w.encrypt(pkt.payload, pkt.header);
    } else {
      const buf = this.ring[this.pos]!;
      this.pos = (this.pos + 1) & 7;
      this.tx.protect(buf, writeRtpPacket(buf, p, 1234, payload, offset, length));
    }
    this.sent++;
  }

  /** One received datagram (a fresh buffer, as dgram hands out). */
  deliver(data: Buffer): void {
    this.lastReceivedAt = performance.now();
    if (this.path === 'werift') {
      const rtp = RtpPacket.deSerialize(this.w.decrypt(data));
      const h = rtp.header;
      const info = this.info;
      info.payloadType = h.payloadType; info.sequenceNumber = h.sequenceNumber; info.timestamp = h.timestamp; info.ssrc = h.ssrc; info.marker = h.marker;
      this.emit('audio', rtp.payload, info);
      return;
    }
    const n = this.rx.unprotect(data, data.length, this.out);
    if (n < 0) throw new Error('bench input failed SRTP authentication');
    const info = this.info;
    readRtpFields(data, info);
    this.emit('audio', data.subarray(this.out.payloadOffset, n), info);
  }

  async close(): Promise<void> {}
}

class SocketlessSipLeg extends EventEmitter implements SipMediaLeg {
  lastReceivedAt = performance.now();
  sent = 0;
  private readonly h: RtpHeader = createRtpHeader();
  send(): boolean {
    this.sent++;
    return true;
  }
  deliver(data: Buffer): void {
    this.lastReceivedAt = performance.now();
    if (readRtpHeader(data, this.h)) this.emit('rtp', data, this.h);
  }
  async close(): Promise<void> {}
}

export interface SocketlessResult {
  path: PacketPath;
  calls: number;
  callSeconds: number;
  msPerCallSecond: number;
}

/** `calls` bridges for `frames` 20 ms frames each; CPU time of the gateway work only. */
export function runSocketless(path: PacketPath, opus: OpusEncoderOptions, calls = 20, frames = 500, waCodec: 'opus' | 'PCMU' = 'opus'): SocketlessResult {
  // Inputs: a speech-like signal, Opus-encoded and SRTP-protected as a WhatsApp client would send it.
  const enc = new OpusEncoder8k({ complexity: 5, bitrate: 24_000 });
  const opusFrames: Buffer[] = [];
  const g711Frames: Buffer[] = [];
  const pcm = new Int16Array(FRAME_SAMPLES);
  const tmp = new Uint8Array(1500);
  for (let f = 0; f < 50; f++) {
    for (let i = 0; i < FRAME_SAMPLES; i++) {
      const t = (f * FRAME_SAMPLES + i) / 8000;
      pcm[i] = Math.round(5000 * (0.6 + 0.4 * Math.sin(2 * Math.PI * 3 * t)) * (Math.sin(2 * Math.PI * 220 * t) + 0.5 * Math.sin(2 * Math.PI * 660 * t)));
    }
    opusFrames.push(Buffer.from(tmp.subarray(0, enc.encode(pcm, tmp))));
    const g = Buffer.alloc(12 + FRAME_SAMPLES);
    encodeG711('PCMU', pcm, g, 12);
    g711Frames.push(g);
  }
  const peerTx = new SrtpContext(SRTP_AES128_CM_HMAC_SHA1_80, KEY, SALT);
  const waIn: Buffer[] = [];
  const sipIn: Buffer[] = [];
  for (let f = 0; f < frames; f++) {
    const g711 = waCodec === 'PCMU';
    const o = g711 ? g711Frames[f % 50]!.subarray(12) : opusFrames[f % 50]!;
    const b = Buffer.alloc(12 + o.length + 10);
    b[0] = 0x80; b[1] = g711 ? 0 : 111; b.writeUInt16BE(f & 0xffff, 2); b.writeUInt32BE((f * (g711 ? 160 : 960)) >>> 0, 4); b.writeUInt32BE(0x5eed, 8);
    o.copy(b, 12);
    waIn.push(b.subarray(0, peerTx.protect(b, 12 + o.length)));
    const s = Buffer.from(g711Frames[f % 50]!);
    s[0] = 0x80; s[1] = 0; s.writeUInt16BE(f & 0xffff, 2); s.writeUInt32BE((f * 160) >>> 0, 4); s.writeUInt32BE(0xabc, 8);
    sipIn.push(s);
  }

  const clock = new ManualFrameClock();
  const legs: Array<{ wa: SocketlessWaLeg; sip: SocketlessSipLeg; bridge: Bridge }> = [];
  for (let c = 0; c < calls; c++) {
    const wa = new SocketlessWaLeg(path, waCodec);
    const sip = new SocketlessSipLeg();
    const bridge = new Bridge(wa, sip, { sipCodec: 'PCMU', sipDtmfPayloadType: 101, opus, clock, mediaTimeoutMs: 3_600_000 });
    bridge.startWhatsAppMedia();
    legs.push({ wa, sip, bridge });
  }
  const step = (f: number): void => {
    for (const l of legs) {
      // A per-call copy, as each datagram arrives in its own buffer (and unprotect works in place).
      l.wa.deliver(Buffer.from(waIn[f]!));
      l.sip.deliver(Buffer.from(sipIn[f]!));
    }
    clock.tick();
  };
  const warm = Math.min(100, frames);
  for (let f = 0; f < warm; f++) step(f);
  const cpu0 = process.cpuUsage();
  for (let f = warm; f < frames; f++) step(f);
  const cpu = process.cpuUsage(cpu0);
  for (const l of legs) void l.bridge.stop();
  const callSeconds = (calls * (frames - warm)) / 50;
  const sent = legs.reduce((a, l) => a + l.wa.sent + l.sip.sent, 0);
  if (sent < calls * (frames - warm)) throw new Error(`bench: the bridges sent too little (${sent})`);
  return { path, calls, callSeconds, msPerCallSecond: (cpu.user + cpu.system) / 1000 / callSeconds };
}
