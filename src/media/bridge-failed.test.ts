/** The Bridge reports a WhatsApp leg whose transport failed for good, so the call can end with a cause. */
import { describe, expect, it } from 'vitest';
import { Bridge, type MediaLegName } from './bridge.js';
import { ManualFrameClock } from './frame-clock.js';
import { FakeSipLeg, FakeWhatsAppLeg } from './fake-legs.js';

describe("Bridge 'media-failed'", () => {
  it("fires once when the WhatsApp leg's state becomes 'failed', not for a transient 'disconnected', and not after stop()", async () => {
    const wa = new FakeWhatsAppLeg(() => 0);
    const bridge = new Bridge(wa, new FakeSipLeg(() => 0), { sipCodec: 'PCMU', clock: new ManualFrameClock(), now: () => 0 });
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

    const wa2 = new FakeWhatsAppLeg(() => 0);
    const b2 = new Bridge(wa2, new FakeSipLeg(() => 0), { sipCodec: 'PCMU', clock: new ManualFrameClock(), now: () => 0 });
    const later: string[] = [];
    b2.on('media-failed', (_l, s) => later.push(s));
    await b2.stop();
    wa2.emit('state', 'failed');
    expect(later).toEqual([]);
  });
});
