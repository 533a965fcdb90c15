import dgram from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { PortPool } from './port-pool.js';
import { RELATCH_PACKETS, RELATCH_SILENCE_MS, RtpLeg } from './rtp-leg.js';
import { writeRtpHeader, type RtpHeader } from './rtp-packet.js';
import { tickReadsAvailable } from './tick-socket.js';
import { silentLogger } from './types.js';

const sockets: dgram.Socket[] = [];
async function peerSocket(address = '127.0.0.1'): Promise<dgram.Socket> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, address, () => r()));
  sockets.push(s);
  return s;
}
afterEach(async () => {
  await Promise.all(sockets.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))));
});

function rtp(seq: number, payloadLen = 160, ssrc = 0x1234): Buffer {
  const b = Buffer.alloc(12 + payloadLen, 0xff);
  writeRtpHeader(b, { marker: false, payloadType: 0, sequenceNumber: seq, timestamp: seq * 160, ssrc });
  return b;
}

function nextRtp(leg: RtpLeg): Promise<{ seq: number; len: number }> {
  return new Promise((resolve) => leg.once('rtp', (pkt: Buffer, h: RtpHeader) => resolve({ seq: h.sequenceNumber, len: h.payloadLength })));
}

function nextMessage(s: dgram.Socket): Promise<Buffer> {
  return new Promise((resolve) => s.once('message', (m) => resolve(m)));
}

const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 30));

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

  it('follows the peer to a new source port (NAT rebinding, media restart) after in-sequence packets while the old one is silent', async () => {
    const pool = new PortPool(46140, 46150);
    const infos: string[] = [];
    const logger = { ...silentLogger, info: (_o: object, msg?: string) => { infos.push(msg ?? ''); } };
    const leg = await RtpLeg.open({ pool, bindAddress: '127.0.0.1', logger });
    const before = await peerSocket();
    const after = await peerSocket(); // the same host from another port
    const offHost = await peerSocket('127.0.0.2');
    leg.setRemote('127.0.0.1', 9);
    const seqs: number[] = [];
    leg.on('rtp', (_p: Buffer, h: RtpHeader) => seqs.push(h.sequenceNumber));
    const burst = (s: dgram.Socket, from: number, n: number, step = 1, ssrc = 0x5678): void => {
      for (let i = 0; i < n; i++) s.send(rtp((from + i * step) & 0xffff, 160, ssrc), leg.port, '127.0.0.1');
    };
    burst(before, 1, 3, 1, 0x1234);
    await settle();
    expect(seqs).toEqual([1, 2, 3]);

    // A second stream while the latched one is live does not take it over, however orderly.
    burst(before, 4, 1, 1, 0x1234);
    burst(after, 100, 6);
    await settle();
    expect(seqs).toEqual([1, 2, 3, 4]);

    await new Promise((r) => setTimeout(r, RELATCH_SILENCE_MS + 50));
    // A host the rules do not allow never takes it; nor do packets out of sequence, nor a run of another SSRC.
    burst(offHost, 100, 8);
    burst(after, 200, 6, 2);
    burst(after, 300, RELATCH_PACKETS - 1);
    burst(after, 300 + RELATCH_PACKETS - 1, 2, 1, 0x9999);
    await settle();
    expect(seqs).toEqual([1, 2, 3, 4]);
    expect(leg.stats.relatched).toBe(0);

    // In sequence from the new port (across the 16-bit wrap): the packet that completes the run is the first taken.
    const latched = new Promise((r) => leg.once('latched', r));
    burst(after, 65534, RELATCH_PACKETS + 2);
    expect(await latched).toEqual({ address: '127.0.0.1', port: after.address().port });
    await settle();
    expect(seqs).toEqual([1, 2, 3, 4, (65534 + RELATCH_PACKETS - 1) & 0xffff, (65534 + RELATCH_PACKETS) & 0xffff, (65534 + RELATCH_PACKETS + 1) & 0xffff]);
    expect(leg.remote).toEqual({ address: '127.0.0.1', port: after.address().port });
    expect(leg.stats.relatched).toBe(1);
    expect(infos).toContain('rtp source moved: latch follows it');
    expect(leg.stats.droppedUnexpectedSource).toBe(6 + 8 + 6 + RELATCH_PACKETS - 1 + 2 + RELATCH_PACKETS - 1);

    // Replies follow; the old source is now the stranger.
    const back = nextMessage(after);
    leg.send(rtp(9));
    expect((await back).readUInt16BE(2)).toBe(9);
    burst(before, 5, 1, 1, 0x1234);
    await settle();
    expect(seqs).toHaveLength(7);
    await leg.close();
    expect(pool.free).toBe(pool.size);
  });

  it('with latchAnySource, lets another host take a silent latch the same way', async () => {
    const pool = new PortPool(46160, 46170);
    const leg = await RtpLeg.open({ pool, bindAddress: '127.0.0.1', latchAnySource: true });
    const first = await peerSocket();
    const moved = await peerSocket('127.0.0.2');
    leg.setRemote('10.1.2.3', 4000);
    const seqs: number[] = [];
    leg.on('rtp', (_p: Buffer, h: RtpHeader) => seqs.push(h.sequenceNumber));
    first.send(rtp(1), leg.port, '127.0.0.1');
    await settle();
    expect(leg.remote).toEqual({ address: '127.0.0.1', port: first.address().port });
    await new Promise((r) => setTimeout(r, RELATCH_SILENCE_MS + 50));
    for (let i = 0; i < RELATCH_PACKETS; i++) moved.send(rtp(50 + i), leg.port, '127.0.0.1');
    await settle();
    expect(seqs).toEqual([1, 50 + RELATCH_PACKETS - 1]);
    expect(leg.remote).toEqual({ address: '127.0.0.2', port: moved.address().port });
    expect(leg.stats.relatched).toBe(1);
    await leg.close();
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

  it('moves the latch to a new source port on the tick path too, with the kernel\'s arrival times', async () => {
    const pool = new PortPool(46180, 46190);
    const leg = await RtpLeg.open({ pool, bindAddress: '127.0.0.1' });
    const before = await peerSocket();
    const after = await peerSocket();
    leg.setRemote('127.0.0.1', before.address().port);
    expect(leg.readOnTick()).toBe(true);
    const seqs: number[] = [];
    leg.on('rtp', (_p: Buffer, h: RtpHeader) => seqs.push(h.sequenceNumber));
    before.send(rtp(1), leg.port, '127.0.0.1');
    await settle();
    leg.pollReceived();
    // Read late on the tick: silence is measured between arrivals, so the wait below is what counts, not the poll.
    await new Promise((r) => setTimeout(r, RELATCH_SILENCE_MS + 50));
    for (let i = 0; i < RELATCH_PACKETS + 1; i++) after.send(rtp(10 + i), leg.port, '127.0.0.1');
    await settle();
    leg.pollReceived();
    expect(seqs).toEqual([1, 10 + RELATCH_PACKETS - 1, 10 + RELATCH_PACKETS]);
    expect(leg.stats.relatched).toBe(1);
    const got = nextMessage(after);
    leg.send(rtp(77));
    expect((await got).readUInt16BE(2)).toBe(77);
    await leg.close();
  });
});
