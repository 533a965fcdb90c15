import dgram from 'node:dgram';
import { EventEmitter } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { detectTone } from '../../test/audio/goertzel.js';
import { Bridge, type BridgeDtmfEvent, type MediaLegName } from './bridge.js';
import { DtmfSender } from './dtmf.js';
import { IntervalFrameClock, ManualFrameClock, sharedFrameClock } from './frame-clock.js';
import { decodeG711, encodeG711 } from './g711.js';
import { OpusDecoder8k, OpusEncoder8k } from './opus-codec.js';
import { PortPool } from './port-pool.js';
import { RtpLeg } from './rtp-leg.js';
import { RtpReceiveStats } from './stats.js';
import { createRtpHeader, readRtpHeader, readTelephoneEvent, writeRtpHeader, type RtpHeader, type TelephoneEvent } from './rtp-packet.js';
import { openUdpHandles, WrtcPeer } from './test-wrtc-peer.js';
import { monoNow } from './types.js';
import { WebRtcLeg, type ReceivedRtpInfo, type SendRtpParams } from './webrtc-leg.js';
import { RTCPeerConnection, RTCRtpCodecParameters, RtpHeader as WeriftRtpHeader, RtpPacket, type RTCRtpTransceiver } from 'werift';
import { audioOf } from './wa-audio-codec.js';
import { encoderLoadGovernor } from './encoder-load-governor.js';

interface SentWa { payloadType: number; sequenceNumber: number; timestamp: number; marker: boolean; payload: Uint8Array }

/** Fake monotonic time for the manual-clock tests: advanced 20 ms per tick by tickAt(). */
let fakeNow = 1000;
function tickAt(clock: ManualFrameClock, n = 1): void {
  for (let i = 0; i < n; i++) {
    fakeNow += 20;
    clock.tick(1);
  }
}

/** What the bridge sent toward WhatsApp, decoded to 8 kHz samples. */
function decodeSent(sent: readonly SentWa[]): number[] {
  const dec = new OpusDecoder8k();
  const frame = new Int16Array(960);
  const out: number[] = [];
  for (const p of sent) {
    const n = dec.decode(p.payload, frame);
    for (let i = 0; i < n; i++) out.push(frame[i]!);
  }
  return out;
}

class FakeWa extends EventEmitter {
  audio = audioOf('opus', 111);
  dtmfPayloadType: number | null = 126;
  remoteMaxAverageBitrate?: number;
  receiveStats?: RtpReceiveStats;
  lastReceivedAt = fakeNow;
  sent: SentWa[] = [];
  closes = 0;
  sendRtp(p: SendRtpParams, payload: Uint8Array, offset = 0, length = payload.length - offset): void {
    this.sent.push({ payloadType: p.payloadType, sequenceNumber: p.sequenceNumber, timestamp: p.timestamp, marker: !!p.marker, payload: payload.slice(offset, offset + length) });
  }
  async close(): Promise<void> {
    this.closes++;
  }
  inject(kind: 'audio' | 'dtmf', payload: Uint8Array, info: ReceivedRtpInfo): void {
    this.lastReceivedAt = fakeNow;
    this.emit(kind, Buffer.from(payload), info);
  }
}

class FakeSip extends EventEmitter {
  lastReceivedAt = fakeNow;
  sent: Buffer[] = [];
  closes = 0;
  private readonly h = createRtpHeader();
  send(buf: Uint8Array, offset = 0, length = buf.length - offset): boolean {
    this.sent.push(Buffer.from(buf.subarray(offset, offset + length)));
    return true;
  }
  async close(): Promise<void> {
    this.closes++;
  }
  inject(pkt: Buffer): void {
    this.lastReceivedAt = fakeNow;
    expect(readRtpHeader(pkt, this.h)).toBe(true);
    this.emit('rtp', pkt, this.h);
  }
}

function sine(freq: number, n: number, start: number, rate = 8000, amp = 8000): Int16Array {
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.round(amp * Math.sin((2 * Math.PI * freq * (start + i)) / rate));
  return out;
}

function sipPacket(seq: number, pt: number, payload: Uint8Array, marker = false, timestamp = seq * 160): Buffer {
  const b = Buffer.alloc(12 + payload.length);
  writeRtpHeader(b, { marker, payloadType: pt, sequenceNumber: seq, timestamp, ssrc: 0xabc });
  b.set(payload, 12);
  return b;
}

function headers(bufs: Buffer[]): RtpHeader[] {
  return bufs.map((b) => {
    const h = createRtpHeader();
    expect(readRtpHeader(b, h)).toBe(true);
    return h;
  });
}

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('Bridge (fake legs, manual clock)', () => {
  function setup(opts: { sipDtmfPayloadType?: number | null; mediaTimeoutMs?: number } = {}) {
    const wa = new FakeWa();
    const sip = new FakeSip();
    const clock = new ManualFrameClock();
    const bridge = new Bridge(wa, sip, { sipCodec: 'PCMU', sipDtmfPayloadType: opts.sipDtmfPayloadType ?? 101, clock, now: () => fakeNow, mediaTimeoutMs: opts.mediaTimeoutMs ?? 30_000 });
    cleanups.push(() => bridge.stop());
    return { wa, sip, clock, bridge };
  }

  it('takes the WhatsApp receive figures from the leg when it keeps them (what its RTCP tells Meta), counting nothing twice', () => {
    const { wa, bridge } = setup();
    const legRx = new RtpReceiveStats(48000);
    wa.receiveStats = legRx;
    bridge.start();
    for (const seq of [10, 11, 12, 13, 14]) {
      // The leg counts every packet it authenticated; seq 12 has a payload type it hands on to nobody.
      legRx.update(seq, seq * 960, fakeNow + seq * 20);
      if (seq !== 12) wa.emit('audio', Buffer.alloc(3), { payloadType: 111, sequenceNumber: seq, timestamp: seq * 960, ssrc: 1, marker: false, arrivedAt: fakeNow + seq * 20 });
    }
    // The record shows the leg's figures (5 in, none lost), not a count of its own (4 in, 1 lost).
    expect(bridge.quality().whatsapp).toMatchObject({ packetsIn: 5, lost: 0 });
  });

  it('keeps the Opus encoder at or below the remote\'s maxaveragebitrate (Meta\'s SDES offer says 20000)', () => {
    const wa = new FakeWa();
    wa.remoteMaxAverageBitrate = 20_000;
    const capped = new Bridge(wa, new FakeSip(), { sipCodec: 'PCMU', clock: new ManualFrameClock(), opus: { bitrate: 24_000 } });
    const free = new Bridge(new FakeWa(), new FakeSip(), { sipCodec: 'PCMU', clock: new ManualFrameClock(), opus: { bitrate: 24_000 } });
    cleanups.push(() => capped.stop(), () => free.stop());
    expect(capped.details.opusBitrate).toBe(20_000);
    expect(free.details.opusBitrate).toBe(24_000);
  });

  it('sends nothing to WhatsApp before startWhatsAppMedia, then one packet per tick with continuous seq/ts', () => {
    const { wa, sip, clock, bridge } = setup();
    bridge.start();
    tickAt(clock, 10);
    expect(wa.sent).toHaveLength(0);
    expect(sip.sent).toHaveLength(10); // SIP gets (silent) G.711 from the start
    bridge.startWhatsAppMedia();
    tickAt(clock, 50);
    expect(wa.sent).toHaveLength(50);
    expect(wa.sent[0]!.marker).toBe(true);
    expect(wa.sent.slice(1).every((p) => !p.marker)).toBe(true);
    for (let i = 1; i < wa.sent.length; i++) {
      expect(wa.sent[i]!.sequenceNumber).toBe((wa.sent[i - 1]!.sequenceNumber + 1) & 0xffff);
      expect(wa.sent[i]!.timestamp).toBe((wa.sent[i - 1]!.timestamp + 960) >>> 0);
      expect(wa.sent[i]!.payloadType).toBe(111);
    }
    // Encoded silence is still a real Opus packet (no DTX): Meta must see packets.
    expect(wa.sent.every((p) => p.payload.length >= 1)).toBe(true);
    const sh = headers(sip.sent);
    for (let i = 1; i < sh.length; i++) {
      expect(sh[i]!.sequenceNumber).toBe((sh[i - 1]!.sequenceNumber + 1) & 0xffff);
      expect(sh[i]!.timestamp).toBe((sh[i - 1]!.timestamp + 160) >>> 0);
      expect(sh[i]!.ssrc).toBe(sh[0]!.ssrc);
      expect(sh[i]!.payloadLength).toBe(160);
    }
    expect(sip.sent[5]!.subarray(12).every((b) => b === 0xff)).toBe(true); // PCMU silence
  });

  it('keeps RTP timestamps in step with real time when the clock skips ticks', () => {
    const { wa, clock, bridge } = setup();
    bridge.startWhatsAppMedia();
    tickAt(clock, 1);
    fakeNow += 80;
    clock.tick(1, 3);
    expect(wa.sent[1]!.timestamp - wa.sent[0]!.timestamp).toBe(4 * 960);
    expect(wa.sent[1]!.sequenceNumber - wa.sent[0]!.sequenceNumber).toBe(1);
  });

  it('keeps the agent\'s audio from before startWhatsAppMedia (the latest 200 ms): the first packets to WhatsApp carry it (§4.7)', () => {
    const { wa, sip, clock, bridge } = setup();
    bridge.start();
    const g = new Uint8Array(160);
    // 300 ms of the agent's 440 Hz while Graph accept is on its way; nothing goes to WhatsApp yet.
    for (let f = 0; f < 15; f++) {
      encodeG711('PCMU', sine(440, 160, f * 160), g);
      sip.inject(sipPacket(f, 0, g));
      tickAt(clock, 1);
    }
    expect(wa.sent).toHaveLength(0);
    bridge.startWhatsAppMedia();
    tickAt(clock, 10);
    const out = decodeSent(wa.sent);
    // 200 ms kept: the first ten frames are the agent's tone (Opus needs a frame or two to settle).
    expect(detectTone(Int16Array.from(out.slice(320, 1600)), 8000, 440).detected).toBe(true);
    expect(bridge.details.sipFifo.overflowed).toBe(0);
  });

  it('transcodes SIP PCMU 440 Hz into Opus toward WhatsApp', () => {
    const { wa, sip, clock, bridge } = setup();
    bridge.startWhatsAppMedia();
    const g = new Uint8Array(160);
    for (let f = 0; f < 60; f++) {
      encodeG711('PCMU', sine(440, 160, f * 160), g);
      sip.inject(sipPacket(f, 0, g));
      tickAt(clock, 1);
    }
    const out = decodeSent(wa.sent);
    const tail = Int16Array.from(out.slice(-4000));
    expect(detectTone(tail, 8000, 440).detected).toBe(true);
    expect(bridge.quality().sip).toMatchObject({ packetsIn: 60, lost: 0 });
  });

  it('a call with nothing to encode still counts toward the load governor (saturation), and leaves it when stopped', async () => {
    const governor = encoderLoadGovernor();
    const before = governor.size;
    const wa = new FakeWa();
    wa.audio = audioOf('PCMU', 0);
    const bridge = new Bridge(wa, new FakeSip(), { sipCodec: 'PCMU', clock: new ManualFrameClock(), governed: true });
    expect(governor.size).toBe(before + 1);
    await bridge.stop();
    expect(governor.size).toBe(before);
  });

  it('with G.711 on the WhatsApp leg (Meta carries it): µ-law both ways on an 8 kHz clock, no Opus, a lost frame repeated', () => {
    const wa = new FakeWa();
    wa.audio = audioOf('PCMU', 0);
    const sip = new FakeSip();
    const clock = new ManualFrameClock();
    const bridge = new Bridge(wa, sip, { sipCodec: 'PCMA', sipDtmfPayloadType: 101, clock, now: () => fakeNow });
    cleanups.push(() => bridge.stop());
    bridge.startWhatsAppMedia();
    const g = new Uint8Array(160);
    for (let f = 0; f < 60; f++) {
      encodeG711('PCMA', sine(440, 160, f * 160), g);
      sip.inject(sipPacket(f, 8, g));
      encodeG711('PCMU', sine(1000, 160, f * 160), g);
      if (f !== 30) wa.inject('audio', g, { payloadType: 0, sequenceNumber: 100 + f, timestamp: f * 160, ssrc: 1, marker: false });
      tickAt(clock, 1);
    }
    // Toward WhatsApp: PCMU frames of 160 bytes, timestamps 160 apart, 440 Hz.
    const toWa = wa.sent.filter((p) => p.payloadType === 0);
    expect(toWa.length).toBe(wa.sent.length);
    expect(toWa.every((p) => p.payload.length === 160)).toBe(true);
    expect(toWa.slice(1).map((p, i) => (p.timestamp - toWa[i]!.timestamp) >>> 0)).toEqual(Array(toWa.length - 1).fill(160));
    const pcm = new Int16Array(160);
    const heard: number[] = [];
    for (const p of toWa.slice(-25)) {
      decodeG711('PCMU', p.payload, 0, 160, pcm);
      heard.push(...pcm);
    }
    expect(detectTone(Int16Array.from(heard), 8000, 440).snrDb).toBeGreaterThan(20);
    // Toward the PBX: A-law 1 kHz; the lost frame (30) is a repeat of the one before, not silence.
    const toSip: number[] = [];
    for (const b of sip.sent) {
      decodeG711('PCMA', b, 12, b.length - 12, pcm);
      toSip.push(...pcm);
    }
    expect(detectTone(Int16Array.from(toSip.slice(-4000)), 8000, 1000).snrDb).toBeGreaterThan(20);
    expect(bridge.details).toMatchObject({ opusBitrate: 0, opusExpectedLossPercent: 0 });
    const q = bridge.quality().whatsapp;
    expect(q).toMatchObject({ packetsIn: 59, lost: 1 });
    const rms = (a: number[]) => Math.sqrt(a.reduce((s, v) => s + v * v, 0) / a.length);
    const frames = Array.from({ length: sip.sent.length }, (_, i) => rms(toSip.slice(i * 160, i * 160 + 160)));
    expect(Math.min(...frames.slice(10))).toBeGreaterThan(1000);
  });

  it('bounds SIP → WhatsApp latency when the PBX sends faster than our clock', () => {
    const { sip, clock, bridge } = setup();
    bridge.startWhatsAppMedia();
    const g = new Uint8Array(160).fill(0x55);
    let seq = 0;
    for (let t = 0; t < 600; t++) {
      sip.inject(sipPacket(seq++, 0, g));
      if (t % 40 === 0) sip.inject(sipPacket(seq++, 0, g)); // 2.5 % fast
      tickAt(clock, 1);
    }
    const fifo = bridge.details.sipFifo;
    expect(fifo.trimmed).toBeGreaterThan(0);
    expect(fifo.queued).toBeLessThanOrEqual(160 * 6);
    expect(fifo.overflowed).toBe(0);
  });

  it('transcodes WhatsApp Opus 1 kHz into PCMU toward SIP, concealing a lost packet', () => {
    const { wa, sip, clock, bridge } = setup();
    bridge.start();
    const enc = new OpusEncoder8k();
    const pkt = new Uint8Array(1500);
    for (let f = 0; f < 60; f++) {
      const n = enc.encode(sine(1000, 160, f * 160), pkt);
      if (f !== 30) wa.inject('audio', pkt.subarray(0, n), { payloadType: 111, sequenceNumber: 7000 + f, timestamp: f * 960, ssrc: 1, marker: false });
      tickAt(clock, 1);
    }
    const pcm = new Int16Array(160);
    const out: number[] = [];
    for (const b of sip.sent) {
      decodeG711('PCMU', b, 12, b.length - 12, pcm);
      out.push(...pcm);
    }
    expect(detectTone(Int16Array.from(out.slice(-4000)), 8000, 1000).detected).toBe(true);
    const q = bridge.quality().whatsapp;
    expect(q.packetsIn).toBe(59);
    expect(q.lost).toBe(1);
    // With a one-frame buffer a missing packet shows up as a loss or as an underrun; either way it is concealed.
    expect(bridge.details.jitterBuffer.lost + bridge.details.jitterBuffer.underruns).toBeGreaterThanOrEqual(1);
  });

  it('relays DTMF WhatsApp → SIP and SIP → WhatsApp as one RFC 4733 event each', () => {
    const { wa, sip, clock, bridge } = setup();
    const digits: BridgeDtmfEvent[] = [];
    bridge.on('dtmf', (d) => digits.push(d));
    bridge.startWhatsAppMedia();
    tickAt(clock, 2);

    // WhatsApp sends '7' for 100 ms: DTMF packets share the 48 kHz audio timestamp base.
    const tx = new DtmfSender();
    tx.enqueue(7, 100);
    const te = new Uint8Array(4);
    let seq = 100;
    for (let info = tx.next(te); info; info = tx.next(te)) {
      wa.inject('dtmf', te, { payloadType: 126, sequenceNumber: seq++, timestamp: 480000, ssrc: 1, marker: info.start });
      tickAt(clock, 1);
    }
    tickAt(clock, 10);
    expect(digits).toEqual([{ from: 'whatsapp', digit: '7', durationMs: 100 }]);
    const sipDtmf = headers(sip.sent).map((h, i) => ({ h, b: sip.sent[i]! })).filter(({ h }) => h.payloadType === 101);
    const ev: TelephoneEvent = { event: 0, end: false, volume: 0, duration: 0 };
    const evs = sipDtmf.map(({ h, b }) => (readTelephoneEvent(b, h.payloadOffset, h.payloadLength, ev), { ...ev, ts: h.timestamp, m: h.marker }));
    expect(evs.length).toBe(7);
    expect(evs[0]).toMatchObject({ event: 7, m: true, end: false, duration: 160 });
    expect(evs.filter((e) => e.end)).toHaveLength(3);
    expect(new Set(evs.map((e) => e.ts)).size).toBe(1);

    // SIP sends '#' (PT 101, 8 kHz clock) → WhatsApp PT 126, timestamp on the 48 kHz stream, duration in 8 kHz units.
    const tx2 = new DtmfSender();
    tx2.enqueue(11, 80);
    let s2 = 900;
    for (let info = tx2.next(te); info; info = tx2.next(te)) {
      sip.inject(sipPacket(s2++, 101, te, info.start, 777_000));
      tickAt(clock, 1);
    }
    tickAt(clock, 10);
    expect(digits[1]).toEqual({ from: 'sip', digit: '#', durationMs: 80 });
    const waDtmf = wa.sent.filter((p) => p.payloadType === 126);
    expect(waDtmf.length).toBe(3 + 3);
    const waEvs = waDtmf.map((p) => (readTelephoneEvent(p.payload, 0, 4, ev), { ...ev }));
    expect(waEvs.map((e) => e.duration)).toEqual([160, 320, 480, 640, 640, 640]);
    expect(new Set(waDtmf.map((p) => p.timestamp)).size).toBe(1);
    // Audio and DTMF share one sequence space with no gaps.
    for (let i = 1; i < wa.sent.length; i++) expect(wa.sent[i]!.sequenceNumber).toBe((wa.sent[i - 1]!.sequenceNumber + 1) & 0xffff);
    // The audio after the digit resumes at the stream clock (event ts + elapsed), with a marker.
    const lastDtmfIdx = wa.sent.lastIndexOf(waDtmf[waDtmf.length - 1]!);
    const after = wa.sent[lastDtmfIdx + 1]!;
    expect(after.payloadType).toBe(111);
    expect(after.marker).toBe(true);
    expect(after.timestamp).toBe((waDtmf[0]!.timestamp + 6 * 960) >>> 0);
  });

  it("emits 'media-timeout' once for the silent leg only, and not for a leg on hold", async () => {
    const { wa, sip, clock, bridge } = setup({ mediaTimeoutMs: 60 });
    const timeouts: MediaLegName[] = [];
    bridge.on('media-timeout', (leg) => timeouts.push(leg));
    bridge.start();
    for (let i = 0; i < 4; i++) {
      sip.lastReceivedAt = fakeNow;
      tickAt(clock, 1);
    }
    expect(timeouts).toEqual(['whatsapp']);
    bridge.setMediaTimeout('sip', false);
    tickAt(clock, 10);
    expect(timeouts).toEqual(['whatsapp']);
    void wa;
  });

  it('a leg whose watch comes back on (end of hold) gets a full media timeout from then, however long it was silent', () => {
    const { sip, clock, bridge } = setup({ mediaTimeoutMs: 60 });
    const timeouts: MediaLegName[] = [];
    bridge.on('media-timeout', (leg) => timeouts.push(leg));
    bridge.setMediaTimeout('whatsapp', false);
    bridge.start();
    sip.lastReceivedAt = fakeNow;
    bridge.setMediaTimeout('sip', false);
    tickAt(clock, 10); // 200 ms on hold, nothing from the agent
    bridge.setMediaTimeout('sip', true);
    tickAt(clock, 2);
    expect(timeouts).toEqual([]);
    tickAt(clock, 3);
    expect(timeouts).toEqual(['sip']);
  });

  it('stop() is idempotent: unsubscribes from the clock and closes each leg once', async () => {
    const { wa, sip, clock, bridge } = setup();
    bridge.startWhatsAppMedia();
    expect(clock.subscribers).toBe(1);
    const p = bridge.stop();
    expect(bridge.stop()).toBe(p);
    await p;
    expect(clock.subscribers).toBe(0);
    expect([wa.closes, sip.closes]).toEqual([1, 1]);
    expect(wa.listenerCount('audio') + sip.listenerCount('rtp')).toBe(0);
    tickAt(clock, 5);
    expect(wa.sent).toHaveLength(0);
  });
});

describe('Bridge (real legs: libwebrtc peer ⇄ WebRtcLeg ⇄ Bridge ⇄ RtpLeg ⇄ UDP)', () => {
  it('carries 1 kHz WhatsApp → SIP as PCMU and 440 Hz SIP → WhatsApp, then releases everything', async () => {
    const udpBefore = openUdpHandles();
    const pool = new PortPool(48000, 48010);
    const peer = new WrtcPeer();
    cleanups.push(() => peer.close());
    const offer = await peer.createOffer();
    const wa = await WebRtcLeg.answer(offer, { bindAddress: '127.0.0.1' });
    const sipLeg = await RtpLeg.open({ pool, bindAddress: '127.0.0.1' });
    const phone = dgram.createSocket('udp4');
    await new Promise<void>((r) => phone.bind(0, '127.0.0.1', () => r()));
    cleanups.push(() => new Promise<void>((r) => phone.close(() => r())));
    sipLeg.setRemote('127.0.0.1', phone.address().port);

    const bridge = new Bridge(wa, sipLeg, { sipCodec: 'PCMU', sipDtmfPayloadType: 101, mediaTimeoutMs: 10_000 });
    cleanups.push(() => bridge.stop());
    const timeouts: MediaLegName[] = [];
    bridge.on('media-timeout', (l) => timeouts.push(l));
    bridge.start();

    await peer.acceptAnswer(wa.localSdp);
    await Promise.all([wa.connected, peer.connected()]);
    bridge.startWhatsAppMedia(); // as after Graph accept → 200

    // The "phone": records PCMU and plays 440 Hz PCMU every 20 ms.
    const heardAtPhone: number[] = [];
    const pcm = new Int16Array(160);
    const h = createRtpHeader();
    phone.on('message', (m) => {
      if (readRtpHeader(m, h) && h.payloadType === 0) {
        decodeG711('PCMU', m, h.payloadOffset, h.payloadLength, pcm);
        heardAtPhone.push(...pcm);
      }
    });
    let seq = 0;
    const g = new Uint8Array(160);
    // A PBX sends on a steady clock; setInterval drifts a few percent late and would drain our queue.
    const phoneClock = new IntervalFrameClock(20);
    const stopPhone = phoneClock.subscribe(() => {
      encodeG711('PCMU', sine(440, 160, seq * 160), g);
      phone.send(sipPacket(seq++ & 0xffff, 0, g), sipLeg.port, '127.0.0.1');
    });
    cleanups.push(stopPhone);
    peer.play(1000);

    await new Promise((r) => setTimeout(r, 2000));
    stopPhone();
    peer.stopPlaying();

    const atPhone = Int16Array.from(heardAtPhone.slice(-4000));
    expect(atPhone.length).toBe(4000);
    const phone1k = detectTone(atPhone, 8000, 1000);
    const atUser = peer.recent(500);
    const user440 = detectTone(atUser, 48000, 440);
    expect(phone1k.detected).toBe(true);
    expect(user440.detected).toBe(true);
    expect(detectTone(atUser, 48000, 1000).ratio).toBeLessThan(0.05);
    expect(timeouts).toEqual([]);
    const q = bridge.quality();
    expect(q.whatsapp.packetsIn).toBeGreaterThan(50);
    expect(q.sip.packetsIn).toBeGreaterThan(50);
    expect(q.whatsapp.packetsOut).toBeGreaterThan(50);
    expect(q.sip.packetsOut).toBeGreaterThan(50);
    console.log('bridge e2e:', JSON.stringify({ phone1kSnrDb: phone1k.snrDb.toFixed(1), user440SnrDb: user440.snrDb.toFixed(1), quality: q, jb: bridge.details.jitterBuffer }));

    await bridge.stop();
    await bridge.stop();
    expect(sipLeg.closed).toBe(true);
    expect(wa.state).toBe('closed');
    expect(pool.free).toBe(pool.size);
    peer.close();
    expect(sharedFrameClock.subscribers).toBe(0);
    await new Promise<void>((r) => phone.close(() => r()));
    cleanups.splice(0);
    await new Promise((r) => setTimeout(r, 100));
    expect(openUdpHandles()).toBeLessThanOrEqual(udpBefore);
  });

  it('relays RFC 4733 DTMF both ways over the real SRTP and UDP paths', async () => {
    const pool = new PortPool(48020, 48030);
    // An ICE-lite werift peer stands in for Meta's relay (libwebrtc in @roamhq/wrtc has no DTMF sender).
    const codecs = [
      new RTCRtpCodecParameters({ mimeType: 'audio/opus', clockRate: 48000, channels: 2, payloadType: 111 }),
      new RTCRtpCodecParameters({ mimeType: 'audio/telephone-event', clockRate: 8000, channels: 1, payloadType: 126 }),
    ];
    const meta = new RTCPeerConnection({
      iceLite: true, iceServers: [], iceUseIpv6: false, iceInterfaceAddresses: { udp4: '127.0.0.1' }, iceAdditionalHostAddresses: ['127.0.0.1'],
      codecs: { audio: codecs, video: [] },
    });
    cleanups.push(() => meta.close());
    const metaRx: Array<{ pt: number; ts: number; payload: Buffer }> = [];
    meta.onTrack.subscribe((track) => track.onReceiveRtp.subscribe((rtp) => metaRx.push({ pt: rtp.header.payloadType, ts: rtp.header.timestamp, payload: rtp.payload })));
    const t: RTCRtpTransceiver = meta.addTransceiver('audio', { direction: 'sendrecv' });
    await meta.setLocalDescription(await meta.createOffer());
    const wa = await WebRtcLeg.answer(meta.localDescription!.sdp, { bindAddress: '127.0.0.1' });
    const sipLeg = await RtpLeg.open({ pool, bindAddress: '127.0.0.1' });
    const phone = dgram.createSocket('udp4');
    await new Promise<void>((r) => phone.bind(0, '127.0.0.1', () => r()));
    cleanups.push(() => new Promise<void>((r) => phone.close(() => r())));
    sipLeg.setRemote('127.0.0.1', phone.address().port);
    const bridge = new Bridge(wa, sipLeg, { sipCodec: 'PCMA', sipDtmfPayloadType: 101 });
    cleanups.push(() => bridge.stop());
    const digits: BridgeDtmfEvent[] = [];
    bridge.on('dtmf', (d) => digits.push(d));
    bridge.start();
    await meta.setRemoteDescription({ type: 'answer', sdp: wa.localSdp });
    await wa.connected;
    bridge.startWhatsAppMedia();

    const phoneRx: Array<{ pt: number; ts: number; ev: TelephoneEvent }> = [];
    const h = createRtpHeader();
    phone.on('message', (m) => {
      if (!readRtpHeader(m, h)) return;
      const ev: TelephoneEvent = { event: 0, end: false, volume: 0, duration: 0 };
      if (h.payloadType === 101) readTelephoneEvent(m, h.payloadOffset, h.payloadLength, ev);
      phoneRx.push({ pt: h.payloadType, ts: h.timestamp, ev });
    });

    // "WhatsApp user" presses 4: telephone-event PT 126 on the audio stream, 48 kHz timestamp, 8 kHz durations.
    const te = new Uint8Array(4);
    const tx = new DtmfSender();
    tx.enqueue(4, 120);
    const teCodec = t.codecs.find((c) => c.payloadType === 126)!;
    const opusCodec = t.sender.codec;
    let seq = 1;
    for (let info = tx.next(te); info; info = tx.next(te)) {
      t.sender.codec = teCodec; // werift stamps the sender codec's PT on every packet
      void t.sender.sendRtp(new RtpPacket(new WeriftRtpHeader({ payloadType: 126, sequenceNumber: seq++, timestamp: 960_000, marker: info.start }), Buffer.from(te)));
      t.sender.codec = opusCodec;
      await new Promise((r) => setTimeout(r, 20));
    }
    // The phone presses 9: PT 101 on the 8 kHz clock.
    const tx2 = new DtmfSender();
    tx2.enqueue(9, 100);
    let s2 = 500;
    for (let info = tx2.next(te); info; info = tx2.next(te)) {
      phone.send(sipPacket(s2++, 101, te, info.start, 160_000), sipLeg.port, '127.0.0.1');
      await new Promise((r) => setTimeout(r, 20));
    }
    await new Promise((r) => setTimeout(r, 400));

    expect(digits).toEqual([{ from: 'whatsapp', digit: '4', durationMs: 120 }, { from: 'sip', digit: '9', durationMs: 100 }]);
    const atPhone = phoneRx.filter((p) => p.pt === 101);
    expect(atPhone.length).toBe(8); // 120 ms: 5 updates (160..800) + 3 end packets at 960
    expect(atPhone[0]!.ev).toMatchObject({ event: 4, end: false, duration: 160 });
    expect(atPhone.at(-1)!.ev).toMatchObject({ event: 4, end: true, duration: 960 });
    expect(new Set(atPhone.map((p) => p.ts)).size).toBe(1);
    expect(phoneRx.some((p) => p.pt === 8)).toBe(true); // PCMA audio around the digit
    const atMeta = metaRx.filter((p) => p.pt === 126);
    expect(atMeta.map((p) => p.payload[0])).toEqual(new Array(atMeta.length).fill(9));
    expect(atMeta.filter((p) => (p.payload[1]! & 0x80) !== 0)).toHaveLength(3);
    expect(new Set(atMeta.map((p) => p.ts)).size).toBe(1);
    expect(metaRx.some((p) => p.pt === 111)).toBe(true);
    await bridge.stop();
    expect(pool.free).toBe(pool.size);
  });
});
