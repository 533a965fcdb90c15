import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { PortPool } from './port-pool.js';
import { SdesLeg } from './sdes-leg.js';
import { SrtcpContext, SrtcpGcmContext } from './srtcp.js';
import { SRTP_AEAD_AES_128_GCM, SRTP_AES128_CM_HMAC_SHA1_32, SRTP_AES128_CM_HMAC_SHA1_80, SrtpContext, type SrtpProfile } from './srtp.js';
import { tickReadsAvailable } from './tick-socket.js';
import { UnanswerableOfferError, UnusableAnswerError, type ReceivedRtpInfo } from './webrtc-leg.js';
import { keyExchangeOf, answerWhatsAppOffer } from './whatsapp-leg.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const pool = new PortPool(26000, 26099);

async function udp(): Promise<dgram.Socket & { got: Array<{ msg: Buffer; port: number }> }> {
  const s = dgram.createSocket('udp4') as dgram.Socket & { got: Array<{ msg: Buffer; port: number }> };
  s.got = [];
  s.on('message', (msg, r) => s.got.push({ msg, port: r.port }));
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  cleanups.push(() => new Promise<void>((r) => s.close(() => r())));
  return s;
}

/** Meta's SDES offer (§4.5) pointing at `port` on loopback, with `crypto` lines. */
function offer(port: number, crypto: string[], extra: string[] = []): string {
  return [
    'v=0', 'o=- 1732000000 2 IN IP4 127.0.0.1', 's=-', 'c=IN IP4 127.0.0.1', 't=0 0',
    `m=audio ${port} RTP/SAVP 111 126`, 'a=rtcp-mux', ...crypto, 'a=rtpmap:111 opus/48000/2',
    'a=fmtp:111 maxaveragebitrate=20000;maxplaybackrate=16000;minptime=20;sprop-maxcapturerate=16000;useinbandfec=1',
    'a=rtpmap:126 telephone-event/8000', 'a=ptime:20', 'a=maxptime:20', ...extra, '',
  ].join('\r\n');
}

function cryptoLine(tag: number, material: Buffer, suite = 'AES_CM_128_HMAC_SHA1_80', tail = ''): string {
  return `a=crypto:${tag} ${suite} inline:${material.toString('base64')}${tail}`;
}

/** An SRTP packet from a peer holding `ctx`. */
function srtp(ctx: SrtpContext, seq: number, payload: Buffer, pt = 111, ssrc = 0xabcdef01): Buffer {
  const b = Buffer.alloc(12 + payload.length + 16);
  b[0] = 0x80;
  b[1] = pt;
  b.writeUInt16BE(seq & 0xffff, 2);
  b.writeUInt32BE((seq * 960) >>> 0, 4);
  b.writeUInt32BE(ssrc, 8);
  payload.copy(b, 12);
  return b.subarray(0, ctx.protect(b, 12 + payload.length));
}

/** Our key from the leg's SDP: what a peer decrypts our packets with. */
function ourKey(sdp: string): { tag: number; key: Buffer; salt: Buffer; suite: string } {
  const m = /^a=crypto:(\d+) (\S+) inline:([A-Za-z0-9+/=]+)\r?$/m.exec(sdp)!;
  const k = Buffer.from(m[3]!, 'base64');
  const saltLen = m[2] === 'AEAD_AES_128_GCM' ? 12 : 14;
  expect(k.length).toBe(16 + saltLen);
  return { tag: Number(m[1]), suite: m[2]!, key: k.subarray(0, 16), salt: k.subarray(16) };
}

async function until(fn: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function collect(leg: SdesLeg): Array<{ kind: 'audio' | 'dtmf'; payload: Buffer; info: ReceivedRtpInfo }> {
  const got: Array<{ kind: 'audio' | 'dtmf'; payload: Buffer; info: ReceivedRtpInfo }> = [];
  leg.on('audio', (payload, info) => got.push({ kind: 'audio', payload: Buffer.from(payload), info: { ...info } }));
  leg.on('dtmf', (payload, info) => got.push({ kind: 'dtmf', payload: Buffer.from(payload), info: { ...info } }));
  return got;
}

async function answered(sdp: string, opts: Partial<Parameters<typeof SdesLeg.answer>[1]> = {}): Promise<SdesLeg> {
  const leg = await SdesLeg.answer(sdp, { bindAddress: '127.0.0.1', portPool: pool, ...opts });
  cleanups.push(() => leg.close());
  return leg;
}

describe('SdesLeg answer', () => {
  it('answers Meta\'s SDES offer: RTP/SAVP, our address and pool port, rtcp-mux, a fresh key under the offer\'s tag, no ICE/DTLS', async () => {
    const theirs = randomBytes(30);
    const free = pool.free;
    const leg = await answered(offer(3480, [cryptoLine(5, theirs)]), { publicAddress: '203.0.113.20' });
    expect(pool.free).toBe(free - 1);
    expect(pool.isInUse(leg.port)).toBe(true);
    const lines = leg.localSdp.split('\r\n');
    expect(lines).toContain('c=IN IP4 203.0.113.20');
    expect(lines).toContain(`m=audio ${leg.port} RTP/SAVP 111 126`);
    expect(lines).toContain('a=rtcp-mux');
    expect(lines).toContain('a=rtpmap:111 opus/48000/2');
    expect(lines).toContain('a=rtpmap:126 telephone-event/8000');
    expect(lines).toContain('a=ptime:20');
    expect(lines).toContain('a=sendrecv');
    expect(lines.filter((l) => l.startsWith('a=crypto:'))).toHaveLength(1);
    const k = ourKey(leg.localSdp);
    expect(k.tag).toBe(5);
    expect(k.suite).toBe('AES_CM_128_HMAC_SHA1_80');
    expect(Buffer.concat([k.key, k.salt]).equals(theirs)).toBe(false);
    expect(leg.localSdp).not.toMatch(/ice-|fingerprint|setup:|candidate|UDP\/TLS/);
    expect(leg).toMatchObject({ audio: { codec: 'opus', payloadType: 111 }, dtmfPayloadType: 126, remoteInbandFec: true, remoteMaxAverageBitrate: 20_000, state: 'connected', suite: 'AES_CM_128_HMAC_SHA1_80' });
    expect(leg.remote).toEqual({ address: '127.0.0.1', port: 3480 });
    await leg.close();
    expect(pool.isInUse(leg.port)).toBe(false);
    expect(leg.state).toBe('closed');
  });

  it('announces the bind address when no public address is set, and takes the first supported suite', async () => {
    const leg = await answered(offer(3480, [
      cryptoLine(1, randomBytes(46), 'AES_256_CM_HMAC_SHA1_80'),
      cryptoLine(2, randomBytes(28), 'AEAD_AES_128_GCM'),
      cryptoLine(3, randomBytes(30)),
    ]));
    expect(leg.localSdp).toContain('c=IN IP4 127.0.0.1');
    expect(ourKey(leg.localSdp)).toMatchObject({ tag: 2, suite: 'AEAD_AES_128_GCM' });
  });

  it('leaves a=rtcp-mux out of the answer when the offer has none, and then sends no RTCP', async () => {
    const meta = await udp();
    const sdp = offer(meta.address().port, [cryptoLine(1, randomBytes(30))]).replace('a=rtcp-mux\r\n', '');
    const leg = await answered(sdp, { rtcpIntervalMs: 20 });
    expect(leg.localSdp).not.toContain('a=rtcp-mux');
    leg.sendRtp({ payloadType: 111, sequenceNumber: 1, timestamp: 960 }, Buffer.from([1]));
    leg.sendRtcp();
    await new Promise((r) => setTimeout(r, 100));
    expect(meta.got.map((g) => g.msg[1]! & 0x7f)).toEqual([111]);
  });

  it('refuses malformed or unusable offers with UnanswerableOfferError naming the problem, and holds no port', async () => {
    const free = pool.free;
    const cases: Array<[string, RegExp]> = [
      [offer(3480, ['a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:c2hvcnQ=']), /no usable a=crypto line: a=crypto line ".*inline:\[redacted\]": the key is 5 bytes, AES_CM_128_HMAC_SHA1_80 needs 30/],
      [offer(3480, [cryptoLine(1, randomBytes(46), 'AES_256_CM_HMAC_SHA1_80')]), /AES_256_CM_HMAC_SHA1_80 is not supported/],
      [offer(3480, ['a=crypto:1 AES_CM_128_HMAC_SHA1_80']), /expected "a=crypto:<tag> <suite> inline:<key>"/],
      [offer(3480, [cryptoLine(1, randomBytes(30))]).replace(/a=rtpmap:111 opus\/48000\/2\r\n/, '').replace('RTP/SAVP 111 126', 'RTP/SAVP 0 126'), /offers none of opus/],
      [offer(0, [cryptoLine(1, randomBytes(30))]), /disabled \(port 0\)/],
      [offer(3480, [cryptoLine(1, randomBytes(30))]).replace('c=IN IP4 127.0.0.1', 'c=IN IP4 0.0.0.0'), /no usable connection address/],
      [offer(3480, [cryptoLine(1, randomBytes(30))]).replace('c=IN IP4 127.0.0.1', 'c=IN IP6 2a03:2880::1'), /IPv6 media address/],
    ];
    for (const [sdp, why] of cases) {
      const err = await SdesLeg.answer(sdp, { bindAddress: '127.0.0.1', portPool: pool }).then(() => null, (e: unknown) => e);
      expect(err, String(why)).toBeInstanceOf(UnanswerableOfferError);
      expect((err as Error).message).toMatch(why);
    }
    expect(pool.free).toBe(free);
  });

  it('is chosen by the factory for RTP/SAVP + a=crypto, and an SDES offer no longer falls to the DTLS leg', async () => {
    const sdp = offer(3480, [cryptoLine(1, randomBytes(30))]);
    expect(keyExchangeOf(sdp)).toBe('sdes');
    const leg = await answerWhatsAppOffer(sdp, { bindAddress: '127.0.0.1', portPool: pool });
    cleanups.push(() => leg.close());
    expect(leg).toBeInstanceOf(SdesLeg);
    expect(keyExchangeOf(sdp.replace('RTP/SAVP', 'UDP/TLS/RTP/SAVPF'))).toBe('dtls');
  });
});

describe('SdesLeg media', () => {
  it('carries real SRTP both ways between two legs on loopback (offer → answer), audio and DTMF apart', async () => {
    const a = await SdesLeg.offer({ bindAddress: '127.0.0.1', portPool: pool });
    cleanups.push(() => a.close());
    expect(a.localSdp).toMatch(/^a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:/m);
    const b = await answered(a.localSdp);
    await a.setRemoteAnswer(b.localSdp);
    expect(a.state).toBe('connected');
    const gotA = collect(a);
    const gotB = collect(b);
    for (let i = 0; i < 20; i++) {
      const payload = Buffer.from(`opus frame ${i}`);
      a.sendRtp({ payloadType: 111, sequenceNumber: 100 + i, timestamp: i * 960, marker: i === 0 }, payload);
      b.sendRtp({ payloadType: 111, sequenceNumber: 60000 + i, timestamp: i * 960 }, Buffer.concat([Buffer.alloc(3), payload]), 3);
    }
    a.sendRtp({ payloadType: 126, sequenceNumber: 120, timestamp: 19 * 960 }, Buffer.from([1, 0x80, 0, 160]));
    await until(() => gotA.length >= 20 && gotB.length >= 21, 'packets both ways');
    expect(gotB.filter((g) => g.kind === 'audio').map((g) => g.payload.toString())).toEqual(Array.from({ length: 20 }, (_, i) => `opus frame ${i}`));
    expect(gotB[0]!.info).toMatchObject({ payloadType: 111, sequenceNumber: 100, timestamp: 0, marker: true, ssrc: a.ssrc });
    expect(gotB.find((g) => g.kind === 'dtmf')!.payload).toEqual(Buffer.from([1, 0x80, 0, 160]));
    expect(gotA.map((g) => g.payload.toString())).toEqual(Array.from({ length: 20 }, (_, i) => `opus frame ${i}`));
    expect(gotA[5]!.info).toMatchObject({ sequenceNumber: 60005, ssrc: b.ssrc });
    expect(a.latched && b.latched).toBe(true);
    expect(a.stats.srtpDropped + b.stats.srtpDropped).toBe(0);
    expect(b.lastReceivedAt).toBeGreaterThan(0);
  });

  it('with G.711 preferred (media.whatsappCodecs): offers PCMA first, the answerer takes it, and both carry A-law at 8 kHz', async () => {
    const a = await SdesLeg.offer({ bindAddress: '127.0.0.1', portPool: pool, codecs: ['PCMA', 'opus'] });
    cleanups.push(() => a.close());
    expect(a.localSdp).toMatch(/^m=audio \d+ RTP\/SAVP 8 111 126\r$/m);
    expect(a.localSdp).toMatch(/^a=rtpmap:8 PCMA\/8000\r$/m);
    const b = await answered(a.localSdp, { codecs: ['PCMU', 'PCMA', 'opus'] });
    expect(b.audio).toEqual({ codec: 'PCMA', payloadType: 8, clockRate: 8000 });
    expect(b.localSdp).toMatch(/^m=audio \d+ RTP\/SAVP 8 126\r$/m);
    expect(b.localSdp).not.toMatch(/opus/);
    await a.setRemoteAnswer(b.localSdp);
    expect(a.audio).toEqual({ codec: 'PCMA', payloadType: 8, clockRate: 8000 });
    expect(a.remoteInbandFec).toBe(false);
    const gotB = collect(b);
    for (let i = 0; i < 5; i++) a.sendRtp({ payloadType: 8, sequenceNumber: 10 + i, timestamp: i * 160 }, Buffer.alloc(160, 0xd5));
    await until(() => gotB.length >= 5, 'A-law at the answerer');
    expect(gotB.every((g) => g.kind === 'audio' && g.info.payloadType === 8 && g.payload.length === 160)).toBe(true);
    // An Opus-only answer (a number without G.711 at Meta) is followed too.
    const c = await SdesLeg.offer({ bindAddress: '127.0.0.1', portPool: pool, codecs: ['PCMA', 'opus'] });
    cleanups.push(() => c.close());
    const d = await answered(c.localSdp);
    await c.setRemoteAnswer(d.localSdp);
    expect(c.audio).toEqual({ codec: 'opus', payloadType: 111, clockRate: 48000 });
  });

  it('puts real ciphertext on the wire under the key in its SDP, which the peer decrypts with its own SRTP', async () => {
    const meta = await udp();
    const theirs = randomBytes(30);
    const leg = await answered(offer(meta.address().port, [cryptoLine(9, theirs)]));
    const payload = Buffer.from('this is an opus payload, honestly');
    leg.sendRtp({ payloadType: 111, sequenceNumber: 7, timestamp: 960 }, payload);
    await until(() => meta.got.length === 1, 'a packet at the signalled address');
    const wire = meta.got[0]!.msg;
    expect(wire.length).toBe(12 + payload.length + 10);
    expect(wire.includes(payload)).toBe(false);
    const k = ourKey(leg.localSdp);
    const rx = new SrtpContext(SRTP_AES128_CM_HMAC_SHA1_80, k.key, k.salt);
    const out = { payloadOffset: 0 };
    const n = rx.unprotect(wire, wire.length, out);
    expect(wire.subarray(out.payloadOffset, n).equals(payload)).toBe(true);
    expect(wire.readUInt32BE(8)).toBe(leg.ssrc);
  });

  it('carries AES_CM_128_HMAC_SHA1_32 when that is the suite offered: 4-byte RTP tags both ways', async () => {
    const meta = await udp();
    const theirs = randomBytes(30);
    const leg = await answered(offer(meta.address().port, [cryptoLine(4, theirs, 'AES_CM_128_HMAC_SHA1_32')]));
    expect(ourKey(leg.localSdp)).toMatchObject({ tag: 4, suite: 'AES_CM_128_HMAC_SHA1_32' });
    const got = collect(leg);
    const payload = Buffer.from('a 32-bit tag is enough for voice');
    leg.sendRtp({ payloadType: 111, sequenceNumber: 7, timestamp: 960 }, payload);
    await until(() => meta.got.length === 1, 'a packet at the signalled address');
    const wire = meta.got[0]!.msg;
    expect(wire.length).toBe(12 + payload.length + 4);
    const k = ourKey(leg.localSdp);
    const out = { payloadOffset: 0 };
    const n = new SrtpContext(SRTP_AES128_CM_HMAC_SHA1_32, k.key, k.salt).unprotect(wire, wire.length, out);
    expect(wire.subarray(out.payloadOffset, n).equals(payload)).toBe(true);

    const peer = new SrtpContext(SRTP_AES128_CM_HMAC_SHA1_32, theirs.subarray(0, 16), theirs.subarray(16));
    const pkt = srtp(peer, 100, Buffer.from('from the user'));
    expect(pkt.length).toBe(12 + 13 + 4);
    meta.send(pkt, leg.port, '127.0.0.1');
    await until(() => got.length === 1, 'the user\'s packet decrypted');
    expect(got[0]!.payload.toString()).toBe('from the user');
  });

  // 'on the tick': the socket read by pollReceived() (tick-socket.ts), here every 10 ms as a bridge's tick would.
  it.each(tickReadsAvailable() ? ['on arrival', 'on the tick'] : ['on arrival'])('latches onto the source of authenticated packets only; strangers, forgeries and replays move nothing (read %s)', async (reads) => {
    const signalled = await udp();
    const relay = await udp();
    const stranger = await udp();
    const moved = await udp();
    const theirs = randomBytes(30);
    const leg = await answered(offer(signalled.address().port, [cryptoLine(1, theirs)]));
    if (reads === 'on the tick') {
      expect(leg.readOnTick()).toBe(true);
      const poller = setInterval(() => leg.pollReceived(), 10);
      cleanups.push(() => clearInterval(poller));
    }
    const got = collect(leg);
    const tx = new SrtpContext(SRTP_AES128_CM_HMAC_SHA1_80, theirs.subarray(0, 16), theirs.subarray(16));
    const send = (s: dgram.Socket, pkt: Buffer): void => s.send(pkt, leg.port, '127.0.0.1');
    const ping = (n: number): void => leg.sendRtp({ payloadType: 111, sequenceNumber: n, timestamp: n * 960 }, Buffer.from([n]));

    ping(1);
    await until(() => signalled.got.length === 1, 'first packet to the SDP address');
    // A stranger with no key: dropped, counted, no latch.
    send(stranger, Buffer.concat([Buffer.from([0x80, 111, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4]), randomBytes(30)]));
    await until(() => leg.stats.srtpDropped === 1, 'the stranger dropped');
    expect(leg.latched).toBe(false);
    // The relay sends from an address other than the SDP's (NAT): it has the key, so we follow it.
    const first = srtp(tx, 10, Buffer.from('hello'));
    const replay = Buffer.from(first);
    send(relay, first);
    await until(() => got.length === 1, 'the relay\'s packet');
    expect(leg.remote).toEqual({ address: '127.0.0.1', port: relay.address().port });
    ping(2);
    await until(() => relay.got.length === 1, 'media to the relay');
    // A forged packet (bad tag) from the stranger: dropped and counted; a replay of an old packet: no latch move.
    const forged = srtp(tx, 11, Buffer.from('evil'));
    forged[forged.length - 1] = forged[forged.length - 1]! ^ 0xff;
    send(stranger, forged);
    await until(() => leg.stats.srtpDropped === 2, 'the forgery dropped');
    send(relay, srtp(tx, 12, Buffer.from('more')));
    await until(() => got.length === 2, 'the relay goes on');
    send(stranger, replay);
    await new Promise((r) => setTimeout(r, 100));
    expect(leg.remote!.port).toBe(relay.address().port);
    expect(got.map((g) => g.payload.toString())).not.toContain('evil');
    // The relay's NAT binding moves: newer authenticated packets from the new source take the stream along.
    send(moved, srtp(tx, 13, Buffer.from('moved')));
    await until(() => got.some((g) => g.payload.toString() === 'moved'), 'the moved source');
    expect(leg.remote!.port).toBe(moved.address().port);
    expect(leg.stats.relatched).toBe(1);
    ping(3);
    await until(() => moved.got.length === 1, 'media follows');
    expect(stranger.got).toHaveLength(0);
  });

  it.each([
    ['MKI', SRTP_AES128_CM_HMAC_SHA1_80, 30, 'AES_CM_128_HMAC_SHA1_80', '|2^31|7:4'],
    ['AEAD_AES_128_GCM', SRTP_AEAD_AES_128_GCM, 28, 'AEAD_AES_128_GCM', ''],
  ])('receives from a peer using %s', async (_name, profile, len, suite, tail) => {
    const meta = await udp();
    const theirs = randomBytes(len);
    const leg = await answered(offer(meta.address().port, [cryptoLine(1, theirs, suite, tail)]));
    const got = collect(leg);
    const tx = new SrtpContext(profile as SrtpProfile, theirs.subarray(0, 16), theirs.subarray(16));
    let pkt = srtp(tx, 1, Buffer.from('payload'));
    if (tail.includes(':')) {
      const tag = pkt.subarray(pkt.length - 10);
      const mki = Buffer.alloc(4);
      mki.writeUInt32BE(7);
      pkt = Buffer.concat([pkt.subarray(0, pkt.length - 10), mki, tag]);
    }
    meta.send(pkt, leg.port, '127.0.0.1');
    await until(() => got.length === 1, 'the packet');
    expect(got[0]!.payload.toString()).toBe('payload');
    expect(leg.stats.srtpDropped).toBe(0);
  });

  it('exchanges RTCP over SRTCP: reports give loss and round-trip time; bad SRTCP is dropped without harm', async () => {
    const a = await SdesLeg.offer({ bindAddress: '127.0.0.1', portPool: pool, rtcpIntervalMs: 0 });
    cleanups.push(() => a.close());
    const b = await answered(a.localSdp, { rtcpIntervalMs: 0 });
    await a.setRemoteAnswer(b.localSdp);
    for (let i = 0; i < 10; i++) {
      a.sendRtp({ payloadType: 111, sequenceNumber: i, timestamp: i * 960 }, Buffer.from([i]));
      b.sendRtp({ payloadType: 111, sequenceNumber: i, timestamp: i * 960 }, Buffer.from([i]));
    }
    await until(() => a.stats.packetsIn === 10 && b.stats.packetsIn === 10, 'media');
    b.sendRtcp(); // SR from b (+ RR about a)
    await until(() => a.stats.rtcpIn === 1, 'b\'s report');
    expect(a.remoteFractionLost).toBe(0);
    expect(a.remotePacketsLost).toBe(0);
    a.sendRtcp(); // SR from a with a block about b whose LSR is b's SR
    await until(() => b.stats.rtcpIn === 1, 'a\'s report');
    expect(b.rttMs).toBeGreaterThanOrEqual(0);
    expect(b.rttMs).toBeLessThan(1000);
    // Garbage and a forged SRTCP packet on the muxed port: counted, nothing else happens.
    const s = await udp();
    s.send(Buffer.concat([Buffer.from([0x81, 201, 0, 7]), randomBytes(40)]), a.port, '127.0.0.1');
    s.send(new SrtcpContext(randomBytes(16), randomBytes(14)).protect(Buffer.from([0x80, 201, 0, 1, 1, 2, 3, 4])), a.port, '127.0.0.1');
    s.send(Buffer.from([1, 2, 3]), a.port, '127.0.0.1');
    await until(() => a.stats.srtcpDropped === 2 && a.stats.droppedInvalid === 1, 'bad packets counted');
    expect(a.stats.rtcpIn).toBe(1);
    expect(a.state).toBe('connected');
  });

  it('sends its RTCP reports on its own once media flows', async () => {
    const meta = await udp();
    const theirs = randomBytes(30);
    const leg = await answered(offer(meta.address().port, [cryptoLine(1, theirs)]), { rtcpIntervalMs: 50 });
    leg.sendRtp({ payloadType: 111, sequenceNumber: 1, timestamp: 960 }, Buffer.from([1]));
    await until(() => meta.got.some((g) => g.msg[1] === 200), 'an SRTCP sender report');
    const k = ourKey(leg.localSdp);
    const rtcp = meta.got.find((g) => g.msg[1] === 200)!.msg;
    const plain = new SrtcpContext(k.key, k.salt).unprotect(rtcp);
    expect(plain).not.toBeNull();
    expect(plain!.readUInt32BE(4)).toBe(leg.ssrc);
    expect(plain!.readUInt32BE(20)).toBe(1); // sender's packet count
  });

  it('under AEAD_AES_128_GCM: sends SRTCP reports Meta can read (RFC 7714) and reads Meta\'s, loss included', async () => {
    const meta = await udp();
    const theirs = randomBytes(28);
    const leg = await answered(offer(meta.address().port, [cryptoLine(1, theirs, 'AEAD_AES_128_GCM')]), { rtcpIntervalMs: 50 });
    leg.sendRtp({ payloadType: 111, sequenceNumber: 1, timestamp: 960 }, Buffer.from([1]));
    await until(() => meta.got.some((g) => g.msg[1] === 200), 'an SRTCP sender report');
    const k = ourKey(leg.localSdp);
    expect(k.suite).toBe('AEAD_AES_128_GCM');
    const plain = new SrtcpGcmContext(k.key, k.salt).unprotect(meta.got.find((g) => g.msg[1] === 200)!.msg);
    expect(plain).not.toBeNull();
    expect(plain!.readUInt32BE(4)).toBe(leg.ssrc);
    // Meta's receiver report about our stream: a quarter lost, 7 in all.
    const rr = Buffer.alloc(32);
    rr[0] = 0x81;
    rr[1] = 201;
    rr.writeUInt16BE(7, 2);
    rr.writeUInt32BE(0xabcdef01, 4);
    rr.writeUInt32BE(leg.ssrc, 8);
    rr[12] = 64;
    rr.writeUIntBE(7, 13, 3);
    meta.send(new SrtcpGcmContext(theirs.subarray(0, 16), theirs.subarray(16)).protect(rr), leg.port, '127.0.0.1');
    await until(() => leg.stats.rtcpIn === 1, 'Meta\'s report read');
    expect(leg.remoteFractionLost).toBe(0.25);
    expect(leg.remotePacketsLost).toBe(7);
    expect(leg.stats.srtcpDropped).toBe(0);
  });

  it('rejects an answer that is not SDES or does not pick an offered key', async () => {
    const a = await SdesLeg.offer({ bindAddress: '127.0.0.1', portPool: pool });
    cleanups.push(() => a.close());
    const dtls = offer(3480, []).replace('RTP/SAVP', 'UDP/TLS/RTP/SAVPF') + 'a=fingerprint:sha-256 AA\r\n';
    await expect(a.setRemoteAnswer(dtls)).rejects.toThrow(UnusableAnswerError);
    await expect(a.setRemoteAnswer(dtls)).rejects.toThrow(/not an SDES SDP.*srtp_key_exchange_protocol SDES/);
    await expect(a.setRemoteAnswer(offer(3480, [cryptoLine(4, randomBytes(30))]))).rejects.toThrow(/tag 4 .* was not in our offer/);
    expect(a.state).toBe('new');
  });
});

describe('SdesLeg with hostile input', () => {
  /** Random datagrams (half of them shaped as RTP or RTCP version 2) and every truncation of one good packet. */
  function hostile(good: Buffer): Buffer[] {
    const out: Buffer[] = [];
    for (let i = 0; i < 600; i++) {
      const b = randomBytes(Math.floor(Math.random() * 160));
      if (i % 2 === 0 && b.length > 1) b[0] = 0x80 | (b[0]! & 0x3f);
      if (i % 4 === 0 && b.length > 1) b[1] = 200 + (i % 8); // RTCP packet types: the SRTCP path
      out.push(b);
    }
    for (let cut = 0; cut < good.length; cut++) out.push(Buffer.from(good.subarray(0, cut)));
    return out;
  }

  async function sendAll(to: number, packets: Buffer[]): Promise<void> {
    const s = await udp();
    for (let i = 0; i < packets.length; i++) {
      s.send(packets[i]!, to, '127.0.0.1');
      if (i % 50 === 49) await new Promise((r) => setTimeout(r, 2)); // stay within the loopback buffers
    }
  }

  it.each([
    ['no MKI', ''],
    ['a 4-byte MKI', '|2^31|1:4'],
  ])('drops garbage and truncated packets without throwing, emitting or latching (%s)', async (_name, tail) => {
    const meta = await udp();
    const theirs = randomBytes(30);
    const leg = await answered(offer(meta.address().port, [cryptoLine(1, theirs, 'AES_CM_128_HMAC_SHA1_80', tail)]));
    const got = collect(leg);
    const good = srtp(new SrtpContext(SRTP_AES128_CM_HMAC_SHA1_80, theirs.subarray(0, 16), theirs.subarray(16)), 1, randomBytes(60));
    const packets = hostile(good);
    await sendAll(leg.port, packets);
    await until(() => leg.stats.droppedInvalid + leg.stats.srtpDropped + leg.stats.srtcpDropped >= packets.length * 0.9, 'packets counted');
    expect(got).toEqual([]);
    expect(leg.latched).toBe(false);
    expect(leg.state).toBe('connected');
    expect(leg.stats.packetsIn + leg.stats.rtcpIn).toBe(0);
  });

  it('before Meta\'s answer, counts RTP and RTCP alike as arriving before the keys, not as authentication failures', async () => {
    const leg = await SdesLeg.offer({ bindAddress: '127.0.0.1', portPool: pool });
    cleanups.push(() => leg.close());
    const packets = [
      Buffer.concat([Buffer.from([0x80, 111, 0, 1]), randomBytes(40)]),
      Buffer.concat([Buffer.from([0x81, 201, 0, 7]), randomBytes(40)]),
    ];
    await sendAll(leg.port, packets);
    await until(() => leg.stats.droppedBeforeKeys === 2, 'both counted');
    expect(leg.stats.srtpDropped + leg.stats.srtcpDropped).toBe(0);
  });

  it('refuses an offer whose port dgram cannot send to', async () => {
    const err = await SdesLeg.answer(offer(70000, [cryptoLine(1, randomBytes(30))]), { bindAddress: '127.0.0.1', portPool: pool })
      .then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(UnanswerableOfferError);
    expect((err as Error).message).toMatch(/audio port 70000 is out of range/);
  });
});
