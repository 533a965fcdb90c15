/**
 * Test-only: a libwebrtc peer (@roamhq/wrtc) that plays a tone and records what it hears, standing in for the
 * WhatsApp user's client. Not imported by production code.
 */
import { createRequire } from 'node:module';

interface AudioData {
  samples: Int16Array;
  sampleRate: number;
  bitsPerSample?: number;
  channelCount: number;
  numberOfFrames?: number;
}
interface WrtcTrack { stop(): void }
interface WrtcSource { createTrack(): WrtcTrack; onData(d: AudioData): void }
interface WrtcSink { ondata: ((d: AudioData) => void) | null; stop(): void }
interface WrtcTransceiver { receiver: { track: WrtcTrack } }
interface WrtcDescription { type: string; sdp: string }
interface WrtcPeerConnection {
  addTrack(track: WrtcTrack): unknown;
  getTransceivers(): WrtcTransceiver[];
  createOffer(): Promise<WrtcDescription>;
  createAnswer(): Promise<WrtcDescription>;
  setLocalDescription(d: WrtcDescription): Promise<void>;
  setRemoteDescription(d: WrtcDescription): Promise<void>;
  localDescription: WrtcDescription | null;
  iceGatheringState: string;
  connectionState: string;
  onicegatheringstatechange: (() => void) | null;
  onconnectionstatechange: (() => void) | null;
  close(): void;
}
interface Wrtc {
  RTCPeerConnection: new (cfg?: object) => WrtcPeerConnection;
  nonstandard: { RTCAudioSource: new () => WrtcSource; RTCAudioSink: new (t: WrtcTrack) => WrtcSink };
}

const require = createRequire(import.meta.url);
const wrtc = require('@roamhq/wrtc') as Wrtc;

export class WrtcPeer {
  readonly pc = new wrtc.RTCPeerConnection({ iceServers: [] });
  private readonly source = new wrtc.nonstandard.RTCAudioSource();
  private readonly track = this.source.createTrack();
  private sink: WrtcSink | null = null;
  private timer: NodeJS.Timeout | null = null;
  private phase = 0;
  /** Everything heard since the output rate last changed, mono at heardRate. */
  readonly heard: number[] = [];

  constructor() {
    this.pc.addTrack(this.track);
  }

  async createOffer(): Promise<string> {
    const offer = await this.pc.createOffer();
    await this.pc.setLocalDescription(offer);
    await this.gathered();
    return this.pc.localDescription!.sdp;
  }

  async acceptAnswer(sdp: string): Promise<void> {
    await this.pc.setRemoteDescription({ type: 'answer', sdp });
    this.record();
  }

  async answer(offerSdp: string): Promise<string> {
    await this.pc.setRemoteDescription({ type: 'offer', sdp: offerSdp });
    const ans = await this.pc.createAnswer();
    await this.pc.setLocalDescription(ans);
    await this.gathered();
    this.record();
    return this.pc.localDescription!.sdp;
  }

  connected(timeoutMs = 10_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`wrtc peer not connected (${this.pc.connectionState})`)), timeoutMs);
      const check = (): void => {
        if (this.pc.connectionState === 'connected') {
          clearTimeout(t);
          resolve();
        }
      };
      this.pc.onconnectionstatechange = check;
      check();
    });
  }

  /** Plays a sine in 10 ms 48 kHz frames, as a browser microphone would. */
  play(freqHz: number, amplitude = 8000): void {
    this.stopPlaying();
    const frame = new Int16Array(480);
    this.timer = setInterval(() => {
      for (let i = 0; i < 480; i++) {
        frame[i] = Math.round(amplitude * Math.sin(this.phase));
        this.phase += (2 * Math.PI * freqHz) / 48000;
      }
      this.source.onData({ samples: frame, sampleRate: 48000, bitsPerSample: 16, channelCount: 1, numberOfFrames: 480 });
    }, 10);
  }

  stopPlaying(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** The rate of what recent() returns: libwebrtc plays Opus at 48 kHz, G.711 at 8 kHz. */
  heardRate = 48000;

  /** The last `ms` of recorded audio, at heardRate. */
  recent(ms: number): Int16Array {
    const n = Math.min(this.heard.length, (ms * this.heardRate) / 1000);
    return Int16Array.from(this.heard.slice(this.heard.length - n));
  }

  close(): void {
    this.stopPlaying();
    this.sink?.stop();
    this.sink = null;
    this.track.stop();
    this.pc.close();
  }

  private record(): void {
    const remote = this.pc.getTransceivers()[0]?.receiver.track;
    if (!remote || this.sink) return;
    this.sink = new wrtc.nonstandard.RTCAudioSink(remote);
    this.sink.ondata = (d) => {
      const ch = d.channelCount;
      // libwebrtc's output rate follows the codec once packets flow (silence before may come at another rate).
      if (d.sampleRate !== this.heardRate) {
        this.heardRate = d.sampleRate;
        this.heard.length = 0;
      }
      for (let i = 0; i < d.samples.length; i += ch) this.heard.push(d.samples[i]!);
    };
  }

  private gathered(): Promise<void> {
    return new Promise((resolve) => {
      if (this.pc.iceGatheringState === 'complete') return resolve();
      this.pc.onicegatheringstatechange = () => {
        if (this.pc.iceGatheringState === 'complete') resolve();
      };
    });
  }
}

/** UDP handles currently open in this process (for leak checks). */
export function openUdpHandles(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'UDPWrap').length;
}
