/**
 * Simulated WhatsApp user device: one libwebrtc (@roamhq/wrtc) RTCPeerConnection with one audio transceiver.
 *
 *   const user = new WaUser({ waId: '16315553602', name: 'Jane Doe', iceLite?: true, address?: '127.0.0.1' });
 *   const offer = await user.createOffer();     // Meta-like offer (§4.2): m=audio ... 111 126, opus/48000/2
 *                                               // minptime=10;useinbandfec=1, telephone-event/8000 PT 126,
 *                                               // BUNDLE mid "audio", rtcp-mux, setup:actpass, sha-256 fingerprint,
 *                                               // gathering complete, only the UDP host candidate on 127.0.0.1
 *                                               // (+ a=ice-lite at session level unless iceLite: false — libwebrtc is a
 *                                               // full ICE agent, so this only changes what the gateway is told)
 *   await user.applyAnswer(answerSdp);          // the business answer (after pre_accept/accept)
 *   const answer = await user.answerOffer(offer) // business-initiated: answer the gateway's offer (setup:active)
 *   user.play({ toneHz: 1000, levelDbfs?: -12, durationMs? }) | play({ silence: true, durationMs? })
 *       | play({ pcm: Int16Array, sampleRate }) | play({ wavFile }) -> PlayHandle { startedAt, done: Promise<void> }
 *       Audio is pushed as 10 ms frames (480 samples, 48 kHz mono) to nonstandard.RTCAudioSource; silence is sent
 *       whenever nothing plays.
 *   user.recording() -> { samples: Int16Array (48 kHz mono), sampleRate: 48000, startedAt, timeAt(i), indexAt(ms) }
 *       Everything received via nonstandard.RTCAudioSink since the call started (libwebrtc renders silence at
 *       16 kHz before the first packet; chunks are resampled to 48 kHz). clearRecording() empties it.
 *   user.firstMediaAt      ms epoch when getStats() first showed inbound-rtp packetsReceived > 0 (polled 10 ms)
 *   user.waitForMedia(timeoutMs) / user.waitConnected(timeoutMs) / user.inboundStats()
 *   user.sendDtmf(...)    throws: @roamhq/wrtc 0.10 has no RTCDTMFSender (sender.dtmf is undefined)
 *   user.hangUp()         stop media for the current call (the MetaDouble sends the terminate webhook)
 *   await user.close()    closes everything, clears every timer
 *
 * Note: a process that used wrtc may segfault on natural exit; vitest's forks pool is unaffected. Standalone
 * scripts should end with process.exit().
 */
import { createRequire } from 'node:module';
import { readWav, toMono } from '../../audio/wav.js';
import { resampleLinear, ToneOscillator } from '../../audio/tone.js';
import { addSessionAttribute, keepCodecs, metaCodecFilter, renameMid, restrictCandidates, sdpLines, joinSdp, type RtpMap } from './sdp.js';

// ---- minimal typings for the parts of @roamhq/wrtc we use (no DOM lib in this project) ----
export interface WrtcSessionDescription {
  type: 'offer' | 'answer' | 'pranswer' | 'rollback';
  sdp: string;
}
export interface WrtcMediaStreamTrack {
  readonly kind: string;
  readonly id: string;
  enabled: boolean;
  stop(): void;
}
export interface WrtcStats {
  type: string;
  kind?: string;
  packetsReceived?: number;
  bytesReceived?: number;
  packetsSent?: number;
  [k: string]: unknown;
}
export interface WrtcStatsReport {
  forEach(cb: (s: WrtcStats) => void): void;
}
export interface WrtcRtpSender {
  readonly track: WrtcMediaStreamTrack | null;
  readonly dtmf?: unknown;
  replaceTrack(t: WrtcMediaStreamTrack | null): Promise<void>;
  getStats(): Promise<WrtcStatsReport>;
}
export interface WrtcRtpReceiver {
  readonly track: WrtcMediaStreamTrack;
}
export interface WrtcTransceiver {
  readonly mid: string | null;
  readonly sender: WrtcRtpSender;
  readonly receiver: WrtcRtpReceiver;
  direction: string;
}
export interface WrtcPeerConnection {
  readonly localDescription: WrtcSessionDescription | null;
  readonly remoteDescription: WrtcSessionDescription | null;
  readonly iceGatheringState: string;
  readonly iceConnectionState: string;
  readonly connectionState: string;
  addTransceiver(trackOrKind: WrtcMediaStreamTrack | 'audio', init?: { direction?: string }): WrtcTransceiver;
  getTransceivers(): WrtcTransceiver[];
  createOffer(): Promise<WrtcSessionDescription>;
  createAnswer(): Promise<WrtcSessionDescription>;
  setLocalDescription(d: WrtcSessionDescription): Promise<void>;
  setRemoteDescription(d: WrtcSessionDescription): Promise<void>;
  getStats(): Promise<WrtcStatsReport>;
  addEventListener(ev: string, cb: () => void): void;
  removeEventListener(ev: string, cb: () => void): void;
  close(): void;
}
export interface WrtcAudioData {
  samples: Int16Array;
  sampleRate: number;
  bitsPerSample?: number;
  channelCount?: number;
  numberOfFrames?: number;
}
export interface WrtcAudioSource {
  createTrack(): WrtcMediaStreamTrack;
  onData(d: WrtcAudioData): void;
}
export interface WrtcAudioSink {
  ondata: ((d: WrtcAudioData) => void) | null;
  stop(): void;
  readonly stopped: boolean;
}
export interface Wrtc {
  RTCPeerConnection: new (cfg?: { iceServers?: unknown[] }) => WrtcPeerConnection;
  nonstandard: {
    RTCAudioSource: new () => WrtcAudioSource;
    RTCAudioSink: new (track: WrtcMediaStreamTrack) => WrtcAudioSink;
  };
}

let wrtcModule: Wrtc | undefined;
export function loadWrtc(): Wrtc {
  wrtcModule ??= createRequire(import.meta.url)('@roamhq/wrtc') as Wrtc;
  return wrtcModule;
}

export const RATE = 48000;
const FRAME = 480; // 10 ms at 48 kHz

export type PlaySource =
  | { toneHz: number; levelDbfs?: number; durationMs?: number }
  | { silence: true; durationMs?: number }
  | { pcm: Int16Array; sampleRate: number; loop?: boolean }
  | { wavFile: string; loop?: boolean };

export interface PlayHandle {
  /** ms epoch when the first frame of this source was handed to libwebrtc. */
  readonly startedAt: Promise<number>;
  /** Resolves when the source is exhausted (never for an endless tone unless stopped). */
  readonly done: Promise<void>;
}

export interface Recording {
  samples: Int16Array;
  sampleRate: number;
  /** ms epoch of the first recorded chunk's arrival (approx. time of sample 0). */
  startedAt: number;
  /** Approximate wall-clock time (ms epoch) at which sample i was rendered. */
  timeAt(i: number): number;
  /** First sample index rendered at or after ms epoch t (or samples.length). */
  indexAt(t: number): number;
}

interface Chunk {
  at: number;
  offset: number;
  samples: Int16Array;
}

interface Player {
  next(out: Int16Array): boolean; // false = exhausted (out is zero-filled beyond)
  startedAt?: number;
  onStart: (t: number) => void;
  onDone: () => void;
}

export interface WaUserOptions {
  waId: string;
  name?: string;
  /** Advertise a=ice-lite in offers like Meta's relay (default true, §4.2; libwebrtc still runs full ICE and resolves the role conflict). */
  iceLite?: boolean;
  /** Only this host address is kept in the SDP (default 127.0.0.1). */
  address?: string;
  /**
   * Offer and accept PCMU (0) and PCMA (8) beside Opus, as Meta does for a number with audio.additional_codecs (§2.6);
   * default false: Opus and telephone-event only.
   */
  g711?: boolean;
}

function waitFor(pc: WrtcPeerConnection, ev: string, done: () => boolean, timeoutMs: number, what: string): Promise<void> {
  if (done()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const cb = (): void => {
      if (done()) {
        clearTimeout(t);
        pc.removeEventListener(ev, cb);
        resolve();
      }
    };
    const t = setTimeout(() => {
      pc.removeEventListener(ev, cb);
      reject(new Error(`WaUser: ${what} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    pc.addEventListener(ev, cb);
  });
}

export class WaUser {
  readonly waId: string;
  readonly name: string;
  readonly iceLite: boolean;
  readonly address: string;
  private readonly keepCodec: (r: RtpMap) => boolean;
  firstMediaAt: number | undefined;
  private pc: WrtcPeerConnection | undefined;
  private source: WrtcAudioSource | undefined;
  private track: WrtcMediaStreamTrack | undefined;
  private sink: WrtcAudioSink | undefined;
  private feedTimer: NodeJS.Timeout | undefined;
  private statsTimer: NodeJS.Timeout | undefined;
  private feedStart = 0;
  private framesSent = 0;
  private player: Player | undefined;
  private chunks: Chunk[] = [];
  private recorded = 0;
  private mediaWaiters: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
  private readonly frame = new Int16Array(FRAME);

  constructor(opts: WaUserOptions) {
    this.waId = opts.waId;
    this.name = opts.name ?? '';
    this.iceLite = opts.iceLite ?? true;
    this.address = opts.address ?? '127.0.0.1';
    const g711 = (r: RtpMap): boolean => opts.g711 === true && ((r.pt === 0 && r.codec.toUpperCase() === 'PCMU') || (r.pt === 8 && r.codec.toUpperCase() === 'PCMA'));
    this.keepCodec = (r) => metaCodecFilter(r) || g711(r);
  }

  get peer(): WrtcPeerConnection | undefined {
    return this.pc;
  }

  get connectionState(): string {
    return this.pc?.connectionState ?? 'closed';
  }

  /** Fresh peer connection for a new call (closes the previous one). Offerer: adds the transceiver. */
  private newPeer(role: 'offerer' | 'answerer'): WrtcPeerConnection {
    this.stopMedia();
    const wrtc = loadWrtc();
    const pc = new wrtc.RTCPeerConnection({ iceServers: [] });
    const source = new wrtc.nonstandard.RTCAudioSource();
    const track = source.createTrack();
    this.pc = pc;
    this.source = source;
    this.track = track;
    this.firstMediaAt = undefined;
    this.chunks = [];
    this.recorded = 0;
    this.framesSent = 0;
    if (role === 'offerer') this.attach(pc.addTransceiver(track, { direction: 'sendrecv' }));
    this.feedStart = performance.now();
    this.feedTimer = setInterval(() => this.feed(), 10);
    this.feedTimer.unref();
    return pc;
  }

  private attach(tr: WrtcTransceiver): void {
    const sink = new (loadWrtc().nonstandard.RTCAudioSink)(tr.receiver.track);
    sink.ondata = (d) => this.onAudio(d);
    this.sink = sink;
  }

  private async gathered(pc: WrtcPeerConnection): Promise<void> {
    await waitFor(pc, 'icegatheringstatechange', () => pc.iceGatheringState === 'complete', 10_000, 'ICE gathering');
  }

  private finishSdp(sdp: string): string {
    let out = restrictCandidates(sdp, this.address);
    if (this.iceLite) out = addSessionAttribute(out, 'a=ice-lite');
    return out;
  }

  /** Meta-like SDP offer for a user-initiated call. */
  async createOffer(): Promise<string> {
    const pc = this.newPeer('offerer');
    const offer = await pc.createOffer();
    const munged = renameMid(keepCodecs(offer.sdp, this.keepCodec), '0', 'audio');
    await pc.setLocalDescription({ type: 'offer', sdp: munged });
    await this.gathered(pc);
    return this.finishSdp(pc.localDescription!.sdp);
  }

  /** Apply the business answer (pre_accept/accept SDP). */
  async applyAnswer(sdp: string): Promise<void> {
    const pc = this.pc;
    if (!pc) throw new Error('WaUser.applyAnswer: no offer outstanding');
    await pc.setRemoteDescription({ type: 'answer', sdp });
    this.pollStats();
  }

  /** Business-initiated call: answer the gateway's offer like the WhatsApp client (only opus + telephone-event/8000). */
  async answerOffer(offerSdp: string): Promise<string> {
    const pc = this.newPeer('answerer');
    await pc.setRemoteDescription({ type: 'offer', sdp: offerSdp });
    const tr = pc.getTransceivers().find((t) => t.receiver.track.kind === 'audio');
    if (!tr) throw new Error('WaUser.answerOffer: offer has no audio m-line');
    tr.direction = 'sendrecv';
    await tr.sender.replaceTrack(this.track!);
    this.attach(tr);
    const ans = await pc.createAnswer();
    const munged = keepCodecs(ans.sdp, (r) => (r.codec.toLowerCase() === 'opus' && r.clock === 48000)
      || (r.codec.toLowerCase() === 'telephone-event' && r.clock === 8000) || this.keepCodec(r));
    await pc.setLocalDescription({ type: 'answer', sdp: munged });
    await this.gathered(pc);
    this.pollStats();
    return this.finishSdp(pc.localDescription!.sdp);
  }

  sendDtmf(_digits: string): never {
    throw new Error('WaUser.sendDtmf: @roamhq/wrtc 0.10 has no RTCDTMFSender; DTMF from the WhatsApp side is not supported');
  }

  /** Queue a source; it replaces whatever is playing. */
  play(src: PlaySource): PlayHandle {
    let resolveStart!: (t: number) => void;
    let resolveDone!: () => void;
    const startedAt = new Promise<number>((r) => (resolveStart = r));
    const done = new Promise<void>((r) => (resolveDone = r));
    let remaining = 'durationMs' in src && src.durationMs !== undefined ? Math.round((src.durationMs * RATE) / 1000) : Infinity;
    let next: (out: Int16Array) => boolean;
    if ('toneHz' in src) {
      const osc = new ToneOscillator(src.toneHz, RATE, src.levelDbfs ?? -12);
      next = (out) => {
        osc.fill(out);
        if (remaining < out.length) out.fill(0, Math.max(0, remaining));
        remaining -= out.length;
        return remaining > 0;
      };
    } else if ('silence' in src) {
      next = (out) => {
        out.fill(0);
        remaining -= out.length;
        return remaining > 0;
      };
    } else {
      let pcm: Int16Array;
      let loop = src.loop ?? false;
      if ('pcm' in src) pcm = resampleLinear(src.pcm, src.sampleRate, RATE);
      else {
        const w = readWav(src.wavFile);
        pcm = resampleLinear(toMono(w), w.sampleRate, RATE);
        loop = src.loop ?? false;
      }
      let pos = 0;
      next = (out) => {
        for (let i = 0; i < out.length; i++) {
          if (pos >= pcm.length && loop && pcm.length > 0) pos = 0;
          out[i] = pos < pcm.length ? pcm[pos++]! : 0;
        }
        return pos < pcm.length || (loop && pcm.length > 0);
      };
    }
    const prev = this.player;
    this.player = { next, onStart: resolveStart, onDone: resolveDone };
    prev?.onDone();
    return { startedAt, done };
  }

  stopPlaying(): void {
    const p = this.player;
    this.player = undefined;
    p?.onDone();
  }

  private feed(): void {
    const src = this.source;
    if (!src) return;
    const due = Math.floor((performance.now() - this.feedStart) / 10);
    let n = Math.min(due - this.framesSent, 20);
    if (due - this.framesSent > 20) this.framesSent = due - 20; // far behind (event loop stall): drop
    for (; n > 0; n--) {
      const p = this.player;
      if (p) {
        if (p.startedAt === undefined) {
          p.startedAt = Date.now();
          p.onStart(p.startedAt);
        }
        const more = p.next(this.frame);
        if (!more) {
          this.player = undefined;
          p.onDone();
        }
      } else {
        this.frame.fill(0);
      }
      // libwebrtc copies the buffer synchronously
      src.onData({ samples: this.frame, sampleRate: RATE, bitsPerSample: 16, channelCount: 1, numberOfFrames: FRAME });
      this.framesSent++;
    }
  }

  private onAudio(d: WrtcAudioData): void {
    const ch = d.channelCount ?? 1;
    let mono = d.samples;
    if (ch > 1) {
      const n = Math.floor(d.samples.length / ch);
      mono = new Int16Array(n);
      for (let i = 0; i < n; i++) {
        let acc = 0;
        for (let c = 0; c < ch; c++) acc += d.samples[i * ch + c] ?? 0;
        mono[i] = Math.round(acc / ch);
      }
    } else {
      mono = d.samples.slice();
    }
    const s = d.sampleRate === RATE ? mono : resampleLinear(mono, d.sampleRate, RATE);
    this.chunks.push({ at: Date.now(), offset: this.recorded, samples: s });
    this.recorded += s.length;
  }

  private pollStats(): void {
    if (this.statsTimer || this.firstMediaAt !== undefined) return;
    const pc = this.pc;
    const tick = async (): Promise<void> => {
      this.statsTimer = undefined;
      if (this.pc !== pc || !pc) return;
      let got = false;
      try {
        const report = await pc.getStats();
        report.forEach((s) => {
          if (s.type === 'inbound-rtp' && (s.packetsReceived ?? 0) > 0) got = true;
        });
      } catch {
        return;
      }
      if (this.pc !== pc) return;
      if (got) {
        this.firstMediaAt = Date.now();
        for (const w of this.mediaWaiters.splice(0)) w.resolve();
        return;
      }
      this.statsTimer = setTimeout(() => void tick(), 10);
      this.statsTimer.unref();
    };
    this.statsTimer = setTimeout(() => void tick(), 10);
    this.statsTimer.unref();
  }

  waitForMedia(timeoutMs = 10_000): Promise<number> {
    if (this.firstMediaAt !== undefined) return Promise.resolve(this.firstMediaAt);
    return new Promise((resolve, reject) => {
      const w = {
        resolve: (): void => {
          clearTimeout(t);
          resolve(this.firstMediaAt!);
        },
        reject: (e: Error): void => {
          clearTimeout(t);
          reject(e);
        },
      };
      const t = setTimeout(() => {
        this.mediaWaiters = this.mediaWaiters.filter((x) => x !== w);
        reject(new Error(`WaUser ${this.waId}: no media within ${timeoutMs} ms`));
      }, timeoutMs);
      this.mediaWaiters.push(w);
    });
  }

  waitConnected(timeoutMs = 10_000): Promise<void> {
    const pc = this.pc;
    if (!pc) return Promise.reject(new Error('WaUser.waitConnected: no call'));
    return waitFor(pc, 'connectionstatechange', () => pc.connectionState === 'connected', timeoutMs, 'connect');
  }

  async inboundStats(): Promise<{ packetsReceived: number; bytesReceived: number; packetsSent: number }> {
    const out = { packetsReceived: 0, bytesReceived: 0, packetsSent: 0 };
    const pc = this.pc;
    if (!pc) return out;
    const report = await pc.getStats();
    report.forEach((s) => {
      if (s.type === 'inbound-rtp') {
        out.packetsReceived += s.packetsReceived ?? 0;
        out.bytesReceived += s.bytesReceived ?? 0;
      }
      if (s.type === 'outbound-rtp') out.packetsSent += s.packetsSent ?? 0;
    });
    return out;
  }

  recording(): Recording {
    const samples = new Int16Array(this.recorded);
    for (const c of this.chunks) samples.set(c.samples, c.offset);
    const chunks = this.chunks.slice();
    const startedAt = chunks[0]?.at ?? Date.now();
    const timeAt = (i: number): number => {
      // chunk arrival time is when its last sample was rendered
      let lo = 0;
      let hi = chunks.length - 1;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        const c = chunks[mid]!;
        if (c.offset + c.samples.length <= i) lo = mid + 1;
        else hi = mid;
      }
      const c = chunks[lo];
      if (!c) return startedAt;
      return c.at - ((c.offset + c.samples.length - i) * 1000) / RATE;
    };
    const indexAt = (t: number): number => {
      for (const c of chunks) if (c.at >= t) return c.offset;
      return samples.length;
    };
    return { samples, sampleRate: RATE, startedAt, timeAt, indexAt };
  }

  clearRecording(): void {
    this.chunks = [];
    this.recorded = 0;
  }

  /** Stop the current call's media (peer connection closed). */
  hangUp(): void {
    this.stopMedia();
  }

  private stopMedia(): void {
    if (this.feedTimer) clearInterval(this.feedTimer);
    if (this.statsTimer) clearTimeout(this.statsTimer);
    this.feedTimer = undefined;
    this.statsTimer = undefined;
    const p = this.player;
    this.player = undefined;
    p?.onDone();
    if (this.sink) {
      this.sink.ondata = null;
      this.sink.stop();
    }
    const pc = this.pc;
    const track = this.track;
    this.pc = undefined;
    this.sink = undefined;
    this.source = undefined;
    this.track = undefined;
    pc?.close();
    track?.stop();
  }

  async close(): Promise<void> {
    this.stopMedia();
    for (const w of this.mediaWaiters.splice(0)) w.reject(new Error(`WaUser ${this.waId} closed`));
  }
}

/** Strip every a=candidate except those on `address` (for answers produced elsewhere). */
export function onlyCandidatesOn(sdp: string, address: string): string {
  return joinSdp(sdpLines(sdp).filter((l) => !l.startsWith('a=candidate:') || l.split(' ')[4] === address));
}
