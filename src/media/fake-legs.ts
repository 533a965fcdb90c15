/**
 * Test doubles of the two legs a Bridge ties together: no sockets, no codecs, packets injected by the test and the
 * clock read through `now` so that media timeouts can be driven by hand.
 */
import { EventEmitter } from 'node:events';
import { createRtpHeader, readRtpHeader } from './rtp-packet.js';
import type { ReceivedRtpInfo } from './webrtc-leg.js';
import { audioOf } from './wa-audio-codec.js';

export class FakeWhatsAppLeg extends EventEmitter {
  audio = audioOf('opus', 111);
  dtmfPayloadType: number | null = 126;
  lastReceivedAt: number;
  constructor(private readonly now: () => number) {
    super();
    this.lastReceivedAt = now();
  }
  sendRtp(): void {}
  async close(): Promise<void> {}
  inject(kind: 'audio' | 'dtmf', payload: Uint8Array, info: ReceivedRtpInfo): void {
    this.lastReceivedAt = this.now();
    this.emit(kind, Buffer.from(payload), info);
  }
}

export class FakeSipLeg extends EventEmitter {
  lastReceivedAt: number;
  private readonly h = createRtpHeader();
  constructor(private readonly now: () => number) {
    super();
    this.lastReceivedAt = now();
  }
  send(): boolean {
    return true;
  }
  async close(): Promise<void> {}
  inject(pkt: Buffer): void {
    this.lastReceivedAt = this.now();
    readRtpHeader(pkt, this.h);
    this.emit('rtp', pkt, this.h);
  }
}
