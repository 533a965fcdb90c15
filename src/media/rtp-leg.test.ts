import dgram from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { PortPool } from './port-pool.js';
import { RtpLeg } from './rtp-leg.js';
import { writeRtpHeader, type RtpHeader } from './rtp-packet.js';
import { tickReadsAvailable } from './tick-socket.js';

const sockets: dgram.Socket[] = [];
async function peerSocket(): Promise<dgram.Socket> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  sockets.push(s);
  return s;
}
afterEach(async () => {
  await Promise.all(sockets.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))));
});

function rtp(seq: number, payloadLen = 160): Buffer {
  const b = Buffer.alloc(12 + payloadLen, 0xff);
  writeRtpHeader(b, { marker: false, payloadType: 0, sequenceNumber: seq, timestamp: seq * 160, ssrc: 0x1234 });
  return b;
}

function nextRtp(leg: RtpLeg): Promise<{ seq: number; len: number }> {
  return new Promise((resolve) => leg.once('rtp', (pkt: Buffer, h: RtpHeader) => resolve({ seq: h.sequenceNumber, len: h.payloadLength })));
}

function nextMessage(s: dgram.Socket): Promise<Buffer> {
  return new Promise((resolve) => s.once('message', (m) => resolve(m)));
}

describe('RtpLeg', () => {
  it('sends and receives RTP over loopback and returns its port exactly once on close', async () => {
    const pool = new PortPool(46000, 46010);
    const leg = await RtpLeg.open({ pool, bindAddress: '127.0.0.1' });
    expect(pool.isInUse(leg.port)).toBe(true);
    expect(pool.free).toBe(pool.size - 1);
    const peer = await peerSocket();
    leg.setRemote('127.0.0.1', peer.address().port);

    const got = nextMessage(peer);
    expect(leg.send(rtp(7))).toBe(true);
    const m = await got;
    expect(m.readUInt16BE(2)).toBe(7);

    const before = leg.lastReceivedAt;
    const rx = nextRtp(leg);
    peer.send(rtp(42), leg.port, '127.0.0.1');
    expect(await rx).toEqual({ seq: 42, len: 160 });
    expect(leg.lastReceivedAt).toBeGreaterThan(before);
    expect(leg.stats).toMatchObject({ packetsIn: 1, packetsOut: 1 });

    const c1 = leg.close();
    const c2 = leg.close();
    expect(c1).toBe(c2);
    await c1;
    expect(pool.free).toBe(pool.size);
    expect(pool.release(leg.port)).toBe(false);
    expect(leg.send(rtp(8))).toBe(false);
  });

  it('latches onto the real source port (NAT) and then drops other sources', async () => {
    const pool = new PortPool(46020, 46030);
    const leg = await RtpLeg.open({ pool, bindAddress: '127.0.0.1' });
    const natted = await peerSocket();
    const intruder = await peerSocket();
    leg.setRemote('127.0.0.1', 9); // SDP port is not where the phone sends from
    const latched = new Promise((r) => leg.once('latched', r));
    const rx = nextRtp(leg);
    natted.send(rtp(1), leg.port, '127.0.0.1');
    expect(await rx).toMatchObject({ seq: 1 });
    expect(await latched).toEqual({ address: '127.0.0.1', port: natted.address().port });
    expect(leg.remote).toEqual({ address: '127.0.0.1', port: natted.address().port });

    // Replies go to the latched source, not the signalled port.
    const back = nextMessage(natted);
    leg.send(rtp(2));
    expect((await back).readUInt16BE(2)).toBe(2);

    intruder.send(rtp(99), leg.port, '127.0.0.1');
    intruder.send(Buffer.from('not rtp'), leg.port, '127.0.0.1');
    const rx2 = nextRtp(leg);
    natted.send(Buffer.from('junk-junk-junk'), leg.port, '127.0.0.1');
    natted.send(rtp(3), leg.port, '127.0.0.1');
    expect(await rx2).toMatchObject({ seq: 3 });
    expect(leg.stats.droppedUnexpectedSource).toBe(2);
    expect(leg.stats.droppedInvalid).toBe(1);
    await leg.close();
    expect(pool.free).toBe(pool.size);
  });

  it('drops everything before a remote is known, and sources from another IP unless allowed', async () => {
    const pool = new PortPool(46040, 46050);
    const leg = await RtpLeg.open({ pool, bindAddress: '127.0.0.1' });
    const peer = await peerSocket();
    peer.send(rtp(1), leg.port, '127.0.0.1');
    await new Promise((r) => setTimeout(r, 30));
    leg.setRemote('127.0.0.2', 4000);
    peer.send(rtp(2), leg.port, '127.0.0.1');
    await new Promise((r) => setTimeout(r, 30));
    expect(leg.stats.droppedUnexpectedSource).toBe(2);
    expect(leg.stats.packetsIn).toBe(0);
    await leg.close();

    const any = await RtpLeg.open({ pool, bindAddress: '127.0.0.1', latchAnySource: true });
    any.setRemote('10.1.2.3', 4000);
    const rx = nextRtp(any);
    peer.send(rtp(5), any.port, '127.0.0.1');
    expect(await rx).toMatchObject({ seq: 5 });
    expect(any.remote).toEqual({ address: '127.0.0.1', port: peer.address().port });
    await any.close();
    expect(pool.free).toBe(pool.size);
  });

  it('skips a port that another process holds', async () => {
    const pool = new PortPool(46060, 46062);
    const squatter = dgram.createSocket('udp4');
    await new Promise<void>((r) => squatter.bind(46060, '127.0.0.1', () => r()));
    sockets.push(squatter);
    const leg = await RtpLeg.open({ pool, bindAddress: '127.0.0.1' });
    expect(leg.port).toBe(46062);
    await leg.close();
    expect(pool.free).toBe(2);
  });
});

describe.skipIf(!tickReadsAvailable())('RtpLeg read on the media tick', () => {
  const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 30));

  it('holds packets until pollReceived(), latches, drops other sources and sends to where it latched', async () => {
    const pool = new PortPool(46100, 46110);
    const leg = await RtpLeg.open({ pool, bindAddress: '127.0.0.1' });
    const phone = await peerSocket();
    const stranger = await peerSocket();
    leg.setRemote('127.0.0.1', 9); // the SDP's port; the phone really sends from another (NAT)
    expect(leg.readOnTick()).toBe(true);
    const seqs: number[] = [];
    leg.on('rtp', (_p: Buffer, h: RtpHeader) => seqs.push(h.sequenceNumber));
    let rtcp = 0;
    leg.on('rtcp', () => rtcp++);
    phone.send(rtp(1), leg.port, '127.0.0.1');
    phone.send(rtp(2), leg.port, '127.0.0.1');
    const rr = Buffer.alloc(8);
    rr[0] = 0x80;
    rr[1] = 201; // RTCP RR multiplexed on the RTP port
    phone.send(rr, leg.port, '127.0.0.1');
    await settle();
    expect(seqs).toEqual([]);
    leg.pollReceived();
    expect(seqs).toEqual([1, 2]);
    expect(rtcp).toBe(1);
    expect(leg.remote).toEqual({ address: '127.0.0.1', port: phone.address().port });

    stranger.send(rtp(3), leg.port, '127.0.0.1');
    phone.send(Buffer.alloc(3000, 0x80), leg.port, '127.0.0.1'); // larger than any RTP we take: cut by the kernel
    await settle();
    leg.pollReceived();
    expect(seqs).toEqual([1, 2]);
    expect(leg.stats.droppedUnexpectedSource).toBe(1);
    expect(leg.stats.droppedInvalid).toBe(1);

    const got = nextMessage(phone);
    expect(leg.send(rtp(77))).toBe(true);
    expect((await got).readUInt16BE(2)).toBe(77);
    expect(leg.stats).toMatchObject({ packetsIn: 2, packetsOut: 1, sendErrors: 0 });
    await leg.close();
    expect(pool.free).toBe(pool.size);
    expect(leg.send(rtp(78))).toBe(false);
  });

  it('a new remote (re-INVITE) first handles what arrived under the old one', async () => {
    const pool = new PortPool(46120, 46130);
    const leg = await RtpLeg.open({ pool, bindAddress: '127.0.0.1' });
    const oldPhone = await peerSocket();
    const newPhone = await peerSocket();
    leg.setRemote('127.0.0.1', oldPhone.address().port);
    leg.readOnTick();
    const seqs: number[] = [];
    leg.on('rtp', (_p: Buffer, h: RtpHeader) => seqs.push(h.sequenceNumber));
    oldPhone.send(rtp(10), leg.port, '127.0.0.1');
    await settle();
    leg.setRemote('127.0.0.1', newPhone.address().port);
    expect(seqs).toEqual([10]);
    // The old packet latched nothing onto the new remote: media goes to the new phone.
    const got = nextMessage(newPhone);
    leg.send(rtp(11));
    expect((await got).readUInt16BE(2)).toBe(11);
    await leg.close();
  });
});
