/**
 * A live audio stream of one call to a WebSocket server (transcription, AI). Wire format (README "Live audio
 * stream"): a JSON `start` with the call's metadata and media format, binary messages of 20 ms of 16-bit little-endian
 * PCM, JSON `dtmf` and `mark` events, a JSON `stop` at the end.
 *
 * The media tick only copies a frame into a preallocated ring and offers queued frames to the socket while its
 * unsent backlog (bufferedAmount) is small and the server keeps up. Kernel buffers hide a slow reader for megabytes,
 * so keeping up is also measured in the protocol itself: a ping every 200 ms, and no more than maxInFlightBytes sent
 * beyond the last ping the server answered (a server that does not read does not answer). A slow server makes the
 * ring overflow: the oldest frames go and are counted. A lost connection is retried with backoff during the call; nothing here can fail or delay the call.
 */
import WebSocket from 'ws';
import type { MediaTap } from '../media/bridge.js';
import type { StreamTarget } from '../config/recording-schema.js';
import { urlForLog } from '../observability/url-redaction.js';

export interface StreamCallInfo {
  callId: string;
  waCallId?: string;
  tenant: string;
  route?: string;
  direction: string;
  userWaId: string;
  userName?: string;
  businessNumber: string;
  sipTarget?: string;
}

export interface AudioStreamHooks {
  onDropped?: (frames: number) => void;
  onSent?: (frames: number) => void;
  onConnect?: (result: 'connected' | 'failed') => void;
  log?: (level: 'info' | 'warn', msg: string, fields?: Record<string, unknown>) => void;
}

const FRAME = 160;

export class AudioStream {
  readonly streamId: string;
  framesDropped = 0;
  framesSent = 0;
  connects = 0;
  private ws: WebSocket | null = null;
  private open = false;
  private readonly ring: Buffer[];
  private readonly ringPcm: Int16Array[];
  private head = 0;
  private count = 0;
  /** Frames handed to the tap since the start (the media clock of the stream, 20 ms each). */
  private frameNo = 0;
  private stopped = false;
  private backoffMs: number;
  private retryTimer: NodeJS.Timeout | null = null;
  private readonly pendingJson: string[] = [];
  private readonly channels: number;
  private readonly samplesPerFrame: number;
  private prevUser = 0;
  private prevAgent = 0;
  private bytesSent = 0;
  private bytesAcked = 0;
  private pingAt: number | null = null;

  constructor(private readonly target: StreamTarget, private readonly info: StreamCallInfo, private readonly hooks: AudioStreamHooks = {}) {
    this.streamId = `${info.callId}-s`;
    this.channels = target.channels === 'separate' ? 2 : 1;
    this.samplesPerFrame = (FRAME * target.sampleRate) / 8000;
    const bytes = this.samplesPerFrame * this.channels * 2;
    this.ring = Array.from({ length: target.maxQueueFrames }, () => Buffer.alloc(bytes));
    this.ringPcm = this.ring.map((b) => new Int16Array(b.buffer, b.byteOffset, b.length / 2));
    this.backoffMs = target.reconnectMinMs;
  }

  /** Opens the socket (and re-opens it after a loss until stop()). */
  start(): void {
    if (this.stopped || this.ws) return;
    this.connect();
  }

  /** The media tap: one frame per direction, every 20 ms. */
  readonly tap: MediaTap = (user, agent) => {
    if (this.stopped) return;
    this.frameNo++;
    if (this.count === this.ring.length) {
      this.head = (this.head + 1) % this.ring.length;
      this.count--;
      this.dropped(1);
    }
    this.fill(this.ringPcm[(this.head + this.count) % this.ring.length]!, user, agent);
    this.count++;
    this.pump();
  };

  dtmf(digit: string, durationMs: number): void {
    this.sendJson({ event: 'dtmf', streamId: this.streamId, digit, durationMs, timestampMs: this.frameNo * 20 });
  }

  mark(name: string, data?: Record<string, unknown>): void {
    this.sendJson({ event: 'mark', streamId: this.streamId, name, timestampMs: this.frameNo * 20, ...(data ? { data } : {}) });
  }

  /** Sends what is queued (as far as the socket takes it), the stop message, and closes; once. */
  async stop(reason: string, timeoutMs = 1000): Promise<void> {
    if (this.stopped) return;
    this.pump();
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    const ws = this.ws;
    if (!ws || !this.open) {
      ws?.terminate();
      return;
    }
    // Unsent frames beyond what the socket took are counted as dropped: the server sees a consistent count.
    if (this.count > 0) this.dropped(this.count);
    this.count = 0;
    ws.send(JSON.stringify({ event: 'stop', streamId: this.streamId, reason, framesSent: this.framesSent, framesDropped: this.framesDropped, timestampMs: this.frameNo * 20 }));
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => { ws.terminate(); resolve(); }, timeoutMs);
      t.unref();
      ws.once('close', () => { clearTimeout(t); resolve(); });
      ws.close(1000, 'call ended');
    });
  }

  private fill(out: Int16Array, user: Int16Array, agent: Int16Array): void {
    const up = this.samplesPerFrame !== FRAME;
    if (this.channels === 2) {
      if (!up) {
        for (let i = 0; i < FRAME; i++) { out[2 * i] = user[i]!; out[2 * i + 1] = agent[i]!; }
      } else {
        // 8 → 16 kHz: each input sample, preceded by the midpoint from the previous one.
        let pu = this.prevUser;
        let pa = this.prevAgent;
        for (let i = 0; i < FRAME; i++) {
          const u = user[i]!;
          const a = agent[i]!;
          out[4 * i] = (pu + u) >> 1; out[4 * i + 1] = (pa + a) >> 1;
          out[4 * i + 2] = u; out[4 * i + 3] = a;
          pu = u; pa = a;
        }
        this.prevUser = pu;
        this.prevAgent = pa;
      }
      return;
    }
    let p = this.prevUser;
    for (let i = 0; i < FRAME; i++) {
      const m = user[i]! + agent[i]!;
      const v = m > 32767 ? 32767 : m < -32768 ? -32768 : m;
      if (up) { out[2 * i] = (p + v) >> 1; out[2 * i + 1] = v; p = v; } else out[i] = v;
    }
    this.prevUser = p;
  }

  private pump(): void {
    const ws = this.ws;
    if (!ws || !this.open) return;
    let sent = 0;
    if (this.pingAt === null && this.frameNo % 10 === 0) {
      this.pingAt = this.bytesSent;
      ws.ping();
    }
    while (this.count > 0 && ws.bufferedAmount < this.target.maxBufferedBytes && this.bytesSent - this.bytesAcked < this.target.maxInFlightBytes) {
      // ws copies the frame while masking it, so the ring slot may be reused at once.
      const frame = this.ring[this.head]!;
      ws.send(frame, { binary: true });
      this.bytesSent += frame.length;
      this.head = (this.head + 1) % this.ring.length;
      this.count--;
      sent++;
    }
    if (sent > 0) {
      this.framesSent += sent;
      this.hooks.onSent?.(sent);
    }
  }

  private dropped(n: number): void {
    this.framesDropped += n;
    this.hooks.onDropped?.(n);
  }

  private sendJson(msg: Record<string, unknown>): void {
    if (this.stopped) return;
    const text = JSON.stringify(msg);
    if (this.ws && this.open) this.ws.send(text);
    else if (this.pendingJson.length < 100) this.pendingJson.push(text);
  }

  private startMessage(): string {
    const i = this.info;
    return JSON.stringify({
      event: 'start',
      version: 1,
      streamId: this.streamId,
      reconnect: this.connects > 1,
      timestampMs: this.frameNo * 20,
      call: {
        id: i.callId, waCallId: i.waCallId, tenant: i.tenant, route: i.route, direction: i.direction,
        from: i.userWaId, userName: i.userName, businessNumber: i.businessNumber, sipTarget: i.sipTarget,
      },
      media: {
        encoding: 'audio/l16', byteOrder: 'little-endian', sampleRate: this.target.sampleRate, frameMs: 20,
        channels: this.channels, layout: this.channels === 2 ? ['user', 'agent'] : ['mixed'],
      },
    });
  }

  private connect(): void {
    if (this.stopped) return;
    const ws = new WebSocket(this.target.url, { perMessageDeflate: false, handshakeTimeout: this.target.connectTimeoutMs });
    this.ws = ws;
    ws.on('open', () => {
      if (this.stopped) { ws.terminate(); return; }
      this.open = true;
      this.connects++;
      this.bytesSent = this.bytesAcked = 0;
      this.pingAt = null;
      this.backoffMs = this.target.reconnectMinMs;
      this.hooks.onConnect?.('connected');
      this.hooks.log?.('info', 'audio stream connected', { url: urlForLog(this.target.url), reconnect: this.connects > 1 });
      ws.send(this.startMessage());
      for (const m of this.pendingJson.splice(0)) ws.send(m);
      this.pump();
    });
    // Messages from the server are not part of the protocol; reading them keeps the socket flowing.
    ws.on('message', () => {});
    ws.on('pong', () => {
      if (this.ws !== ws || this.pingAt === null) return;
      this.bytesAcked = this.pingAt;
      this.pingAt = null;
    });
    ws.on('error', (err) => {
      if (!this.open) this.hooks.onConnect?.('failed');
      this.hooks.log?.('warn', 'audio stream error', { url: urlForLog(this.target.url), err: err.message });
    });
    ws.on('close', () => {
      const wasOpen = this.open;
      this.open = false;
      if (this.ws === ws) this.ws = null;
      if (this.stopped) return;
      if (wasOpen) this.hooks.log?.('warn', 'audio stream lost: reconnecting', { url: urlForLog(this.target.url), inMs: this.backoffMs });
      this.retryTimer = setTimeout(() => { this.retryTimer = null; this.connect(); }, this.backoffMs);
      this.retryTimer.unref();
      this.backoffMs = Math.min(this.target.reconnectMaxMs, this.backoffMs * 2);
    });
  }
}
