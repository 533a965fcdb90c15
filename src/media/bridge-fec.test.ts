/** The Bridge rebuilds a lost WhatsApp frame from the next packet's in-band FEC when the sender uses it. */
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { speechLikeFrame } from '../../test/audio/tone.js';
import { Bridge } from './bridge.js';
import { ManualFrameClock } from './frame-clock.js';
import { FRAME_SAMPLES, OpusEncoder8k } from './opus-codec.js';
import { usesInbandFec, type ReceivedRtpInfo, type SendRtpParams } from './webrtc-leg.js';
import { audioOf } from './wa-audio-codec.js';

class FakeWa extends EventEmitter {
  audio = audioOf('opus', 111);
  dtmfPayloadType: number | null = 126;
  lastReceivedAt = 0;
  constructor(readonly remoteInbandFec: boolean) {
    super();
  }
  sendRtp(_p: SendRtpParams, _payload: Uint8Array): void {}
  async close(): Promise<void> {}
}
class FakeSip extends EventEmitter {
  lastReceivedAt = 0;
  sent = 0;
  send(): boolean {
    this.sent++;
    return true;
  }
  async close(): Promise<void> {}
}

function run(remoteInbandFec: boolean, fecDecode = true): { fecRecovered: number; lost: number; sent: number } {
  const enc = new OpusEncoder8k({ inbandFec: true, expectedLossPercent: 10 });
  const buf = new Uint8Array(1500);
  const packets = Array.from({ length: 40 }, (_, f) => Buffer.from(buf.subarray(0, enc.encode(speechLikeFrame(f), buf))));
  const wa = new FakeWa(remoteInbandFec);
  const sip = new FakeSip();
  const clock = new ManualFrameClock();
  let now = 0;
  const bridge = new Bridge(wa, sip, { sipCodec: 'PCMU', clock, now: () => now, fecDecode });
  bridge.start();
  const info: ReceivedRtpInfo = { payloadType: 111, sequenceNumber: 0, timestamp: 0, ssrc: 9, marker: false };
  const push = (f: number): void => {
    if (f === 20 || f >= packets.length) return; // frame 20 is lost on the way
    info.sequenceNumber = 1000 + f;
    info.timestamp = f * 960;
    wa.emit('audio', packets[f]!, info);
  };
  push(0);
  push(1);
  for (let f = 0; f < 38; f++) {
    push(f + 2);
    now += 20;
    clock.tick();
  }
  const d = bridge.details;
  void bridge.stop();
  return { fecRecovered: d.fecRecovered, lost: d.jitterBuffer.lost, sent: sip.sent };
}

describe('Bridge in-band FEC', () => {
  it('reads useinbandfec=1 from the Opus fmtp only', () => {
    expect(usesInbandFec('a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n', 111)).toBe(true);
    expect(usesInbandFec('a=fmtp:111 minptime=10; useinbandfec=0\r\n', 111)).toBe(false);
    expect(usesInbandFec('a=fmtp:96 useinbandfec=1\r\na=fmtp:111 minptime=10\r\n', 111)).toBe(false);
  });

  it('rebuilds the lost frame from the next packet when the sender signalled useinbandfec=1', () => {
    const r = run(true);
    expect(r.lost).toBe(1);
    expect(r.fecRecovered).toBe(1);
    expect(r.sent).toBe(38);
  });

  it('conceals instead when the sender did not signal FEC, or FEC decoding is off', () => {
    expect(run(false)).toMatchObject({ lost: 1, fecRecovered: 0 });
    expect(run(true, false)).toMatchObject({ lost: 1, fecRecovered: 0 });
  });
});
