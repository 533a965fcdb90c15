/** The Bridge's media tap: each tick's 8 kHz PCM per direction, for recording and live streaming. */
import { describe, expect, it } from 'vitest';
import { detectTone } from '../../test/audio/goertzel.js';
import { Bridge } from './bridge.js';
import { ManualFrameClock } from './frame-clock.js';
import { encodeG711 } from './g711.js';
import { OpusEncoder8k } from './opus-codec.js';
import { writeRtpHeader } from './rtp-packet.js';
import { FakeSipLeg, FakeWhatsAppLeg } from './fake-legs.js';

let now = 1000;
function sine(freq: number, n: number, start: number): Int16Array {
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.round(8000 * Math.sin((2 * Math.PI * freq * (start + i)) / 8000));
  return out;
}

function setup() {
  const clock = new ManualFrameClock();
  const wa = new FakeWhatsAppLeg(() => now);
  const sip = new FakeSipLeg(() => now);
  const bridge = new Bridge(wa, sip, { sipCodec: 'PCMU', clock, now: () => now });
  const enc = new OpusEncoder8k();
  const opus = new Uint8Array(1500);
  const g711 = Buffer.alloc(12 + 160);
  let f = 0;
  /** One 20 ms frame: WhatsApp sends 1 kHz, the agent 440 Hz, then the tick runs. */
  const frame = (): void => {
    const n = enc.encode(sine(1000, 160, f * 160), opus);
    wa.inject('audio', opus.subarray(0, n), { payloadType: 111, sequenceNumber: 100 + f, timestamp: f * 960, ssrc: 1, marker: false });
    writeRtpHeader(g711, { marker: false, payloadType: 0, sequenceNumber: f, timestamp: f * 160, ssrc: 7 });
    encodeG711('PCMU', sine(440, 160, f * 160), g711, 12);
    sip.inject(g711);
    f++;
    now += 20;
    clock.tick(1);
  };
  return { clock, wa, sip, bridge, frame };
}

describe('Bridge media tap', () => {
  it('gives each tick one 160-sample frame per direction: the user\'s tone toward the agent, the agent\'s toward the user', () => {
    const { bridge, frame } = setup();
    bridge.startWhatsAppMedia();
    const user: number[] = [];
    const agent: number[] = [];
    let calls = 0;
    bridge.addTap((u, a) => {
      calls++;
      expect(u.length).toBe(160);
      expect(a.length).toBe(160);
      user.push(...u);
      agent.push(...a);
    });
    for (let i = 0; i < 100; i++) frame();
    expect(calls).toBe(100);
    const u = Int16Array.from(user.slice(-8000));
    const a = Int16Array.from(agent.slice(-8000));
    expect(detectTone(u, 8000, 1000).detected).toBe(true);
    expect(detectTone(u, 8000, 440).detected).toBe(false);
    expect(detectTone(a, 8000, 440).detected).toBe(true);
    expect(detectTone(a, 8000, 1000).detected).toBe(false);
  });

  it('reports silence toward the user before WhatsApp media starts, and the hold source while one is set', () => {
    const { bridge, frame } = setup();
    bridge.start();
    const agent: number[] = [];
    bridge.addTap((_u, a) => { agent.push(...a); });
    for (let i = 0; i < 20; i++) frame();
    expect(agent.every((s) => s === 0)).toBe(true);
    bridge.startWhatsAppMedia();
    let phase = 0;
    bridge.setSipSource({ read(out) { out.set(sine(2000, out.length, phase)); phase += out.length; } });
    agent.length = 0;
    for (let i = 0; i < 50; i++) frame();
    expect(detectTone(Int16Array.from(agent), 8000, 2000).detected).toBe(true);
  });

  it('stops calling a removed tap, and a throwing tap neither stops the tick nor the other taps', () => {
    const { bridge, frame } = setup();
    bridge.startWhatsAppMedia();
    let a = 0;
    let b = 0;
    const removeA = bridge.addTap(() => { a++; });
    bridge.addTap(() => { b++; throw new Error('broken subscriber'); });
    for (let i = 0; i < 10; i++) frame();
    removeA();
    for (let i = 0; i < 10; i++) frame();
    expect(a).toBe(10);
    expect(b).toBe(20);
    expect(bridge.quality().sip.packetsOut).toBeGreaterThanOrEqual(19);
  });

  it('hands the same arrays every tick (no allocation per frame)', () => {
    const { bridge, frame } = setup();
    bridge.startWhatsAppMedia();
    const seen = new Set<Int16Array>();
    bridge.addTap((u, a) => { seen.add(u); seen.add(a); });
    for (let i = 0; i < 50; i++) frame();
    // The decode buffer's frame view, the FIFO frame and the shared silence at most.
    expect(seen.size).toBeLessThanOrEqual(3);
  });
});
