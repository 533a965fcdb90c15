/**
 * The plain RTP/AVP leg behind rtpengine: stands in for the WhatsApp user's audio as Meta's relay forwards it.
 * Opus 48 kHz mono in 20 ms packets on PT 111 (opus/48000/2 in SDP; RFC 7587 allows mono streams), encoded and
 * decoded with @evan/opus. Like Meta's relay it sends nothing until the gateway's first packet has arrived, then
 * a continuous stream: silence, or a tone while play() runs.
 */
import { createSocket, type Socket } from 'node:dgram';
import { Decoder, Encoder } from '@evan/opus';
import { ToneOscillator } from '../../audio/tone.js';

const RATE = 48_000;
const FRAME = 960;

export interface EndpointRecording {
  samples: Int16Array;
  /** Wall-clock ms when sample i arrived (its packet's arrival time plus its offset in the packet). */
  timeAt(i: number): number;
}

export class OpusRtpEndpoint {
  readonly socket: Socket;
  /** Date.now() of the first RTP packet received from rtpengine (i.e. first media from the gateway). */
  firstPacketAt: number | undefined;
  packetsIn = 0;
  packetsOut = 0;
  decodeErrors = 0;
  private remote: { host: string; port: number } | undefined;
  private readonly enc = new Encoder({ channels: 1, sample_rate: RATE, application: 'voip' });
  private readonly dec = new Decoder({ channels: 1, sample_rate: RATE });
  private frames: Array<{ at: number; pcm: Int16Array }> = [];
  private timer: NodeJS.Timeout | undefined;
  private seq = Math.floor(Math.random() * 0xffff);
  private ts = Math.floor(Math.random() * 0xffffffff);
  private readonly ssrc = Math.floor(Math.random() * 0xffffffff) >>> 0;
  private tone: { osc: ToneOscillator; framesLeft: number; startedAt?: number; resolveStart: (t: number) => void; resolveDone: () => void } | undefined;
  private readonly pcm = new Int16Array(FRAME);

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('message', (msg) => this.onPacket(msg));
  }

  static async open(): Promise<OpusRtpEndpoint> {
    const s = createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
    return new OpusRtpEndpoint(s);
  }

  get port(): number {
    return this.socket.address().port;
  }

  /** Where to send (rtpengine's plain-side port, from its answer reply). Sending starts with the first packet in. */
  setRemote(host: string, port: number): void {
    this.remote = { host, port };
  }

  /** Plays a tone burst; startedAt resolves with the wall-clock time its first frame went out. */
  play(o: { toneHz: number; levelDbfs: number; durationMs: number }): { startedAt: Promise<number>; done: Promise<void> } {
    let resolveStart!: (t: number) => void;
    let resolveDone!: () => void;
    const startedAt = new Promise<number>((r) => (resolveStart = r));
    const done = new Promise<void>((r) => (resolveDone = r));
    this.tone = { osc: new ToneOscillator(o.toneHz, RATE, o.levelDbfs), framesLeft: Math.round(o.durationMs / 20), resolveStart, resolveDone };
    return { startedAt, done };
  }

  recording(): EndpointRecording {
    const samples = new Int16Array(this.frames.reduce((n, f) => n + f.pcm.length, 0));
    const starts: number[] = [];
    let off = 0;
    for (const f of this.frames) {
      starts.push(off);
      samples.set(f.pcm, off);
      off += f.pcm.length;
    }
    const frames = this.frames;
    return {
      samples,
      timeAt(i: number): number {
        let k = frames.length - 1;
        while (k > 0 && starts[k]! > i) k--;
        return frames[k]!.at + ((i - starts[k]!) * 1000) / RATE;
      },
    };
  }

  clearRecording(): void {
    this.frames = [];
  }

  close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    return new Promise((r) => this.socket.close(() => r()));
  }

  private onPacket(msg: Buffer): void {
    if (msg.length < 12 || (msg[0]! & 0xc0) !== 0x80) return;
    const pt = msg[1]! & 0x7f;
    if (pt >= 72 && pt <= 95) return; // RTCP
    const now = Date.now();
    this.packetsIn++;
    if (this.firstPacketAt === undefined) {
      this.firstPacketAt = now;
      this.startSending();
    }
    if (pt !== 111) return;
    let off = 12 + (msg[0]! & 0x0f) * 4;
    if (msg[0]! & 0x10) off += 4 + msg.readUInt16BE(off + 2) * 4;
    try {
      const out = this.dec.decode(msg.subarray(off));
      this.frames.push({ at: now, pcm: new Int16Array(out.buffer.slice(out.byteOffset, out.byteOffset + out.byteLength)) });
    } catch {
      this.decodeErrors++;
    }
  }

  /** 20 ms pacing against the wall clock so bursts of timer lateness do not stretch the stream. */
  private startSending(): void {
    const t0 = Date.now();
    let sent = 0;
    this.timer = setInterval(() => {
      const due = Math.floor((Date.now() - t0) / 20) + 1;
      while (sent < due) {
        this.sendFrame();
        sent++;
      }
    }, 10);
  }

  private sendFrame(): void {
    if (!this.remote) return;
    const tone = this.tone;
    if (tone) {
      tone.osc.fill(this.pcm);
      if (tone.startedAt === undefined) {
        tone.startedAt = Date.now();
        tone.resolveStart(tone.startedAt);
      }
      if (--tone.framesLeft <= 0) {
        this.tone = undefined;
        tone.resolveDone();
      }
    } else {
      this.pcm.fill(0);
    }
    const payload = this.enc.encode(this.pcm);
    const h = Buffer.alloc(12);
    h[0] = 0x80;
    h[1] = 111;
    h.writeUInt16BE(this.seq, 2);
    h.writeUInt32BE(this.ts >>> 0, 4);
    h.writeUInt32BE(this.ssrc, 8);
    this.seq = (this.seq + 1) & 0xffff;
    this.ts = (this.ts + FRAME) >>> 0;
    this.socket.send(Buffer.concat([h, payload]), this.remote.port, this.remote.host);
    this.packetsOut++;
  }
}
