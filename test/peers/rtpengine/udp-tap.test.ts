import { describe, expect, it } from 'vitest';
import { classify } from './udp-tap.js';

function stun(type: number, attrs: Array<[number, Buffer]>): Buffer {
  const body = Buffer.concat(attrs.map(([t, v]) => {
    const h = Buffer.alloc(4);
    h.writeUInt16BE(t, 0);
    h.writeUInt16BE(v.length, 2);
    return Buffer.concat([h, v, Buffer.alloc((4 - (v.length % 4)) % 4)]);
  }));
  const h = Buffer.alloc(20);
  h.writeUInt16BE(type, 0);
  h.writeUInt16BE(body.length, 2);
  h.writeUInt32BE(0x2112a442, 4);
  return Buffer.concat([h, body]);
}

describe('udp-tap classify', () => {
  it('reads ICE role and nomination from a binding request, skipping padded attributes', () => {
    const p = classify(stun(0x0001, [[0x0006, Buffer.from('ab:c')], [0x802a, Buffer.alloc(8)], [0x0025, Buffer.alloc(0)]]), 'toRelay', 1);
    expect(p.kind).toBe('stun');
    expect(p.stun).toEqual({ type: 0x0001, useCandidate: true, iceControlling: true, iceControlled: false });
    expect(classify(stun(0x0101, [[0x8029, Buffer.alloc(8)]]), 'fromRelay', 2).stun?.iceControlled).toBe(true);
  });
  it('tells DTLS handshakes, RTP and RTCP apart', () => {
    const hello = Buffer.alloc(30);
    hello[0] = 22;
    hello[13] = 1;
    expect(classify(hello, 'toRelay', 0).dtls).toEqual({ contentType: 22, handshakeType: 1 });
    const rtp = Buffer.alloc(20);
    rtp[0] = 0x80;
    rtp[1] = 111;
    expect(classify(rtp, 'toRelay', 0).kind).toBe('rtp');
    rtp[1] = 200;
    expect(classify(rtp, 'toRelay', 0).kind).toBe('rtcp');
    expect(classify(Buffer.from([0x00, 0x01, 0, 0]), 'toRelay', 0).kind).toBe('other');
  });
});
