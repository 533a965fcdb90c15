/** The Bridge reports a WhatsApp leg whose transport failed for good, so the call can end with a cause. */
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { Bridge, type MediaLegName } from './bridge.js';
import { ManualFrameClock } from './frame-clock.js';
import type { SendRtpParams } from './webrtc-leg.js';

class FakeWa extends EventEmitter {
  opusPayloadType = 111;
  dtmfPayloadType: number | null = 126;
  lastReceivedAt = 0;
  sendRtp(_p: SendRtpParams, _payload: Uint8Array): void {}
  async close(): Promise<void> {}
}
class FakeSip extends EventEmitter {
  lastReceivedAt = 0;
  send(): boolean {
    return true;
  }
  async close(): Promise<void> {}
}

describe("Bridge 'media-failed'", () => {
  it("fires once when the WhatsApp leg's state becomes 'failed', not for a transient 'disconnected', and not after stop()", async () => {
    const wa = new FakeWa();
    const bridge = new Bridge(wa, new FakeSip(), { sipCodec: 'PCMU', clock: new ManualFrameClock(), now: () => 0 });
    const failed: Array<[MediaLegName, string]> = [];
    bridge.on('media-failed', (leg, state) => failed.push([leg, state]));
    bridge.startWhatsAppMedia();
    wa.emit('state', 'disconnected');
    wa.emit('state', 'connected');
    expect(failed).toEqual([]);
    wa.emit('state', 'failed');
    wa.emit('state', 'failed');
    expect(failed).toEqual([['whatsapp', 'failed']]);
    await bridge.stop();
    expect(wa.listenerCount('state')).toBe(0);

    const wa2 = new FakeWa();
    const b2 = new Bridge(wa2, new FakeSip(), { sipCodec: 'PCMU', clock: new ManualFrameClock(), now: () => 0 });
    const later: string[] = [];
    b2.on('media-failed', (_l, s) => later.push(s));
    await b2.stop();
    wa2.emit('state', 'failed');
    expect(later).toEqual([]);
  });
});
