import dgram from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { flushTickSends, formatAddress, numericAddress, sameAddress, TickSocket, tickReadsAvailable, type NumericAddress } from './tick-socket.js';

const sockets: dgram.Socket[] = [];
async function bound(type: 'udp4' | 'udp6' = 'udp4', address = '127.0.0.1'): Promise<dgram.Socket> {
  const s = dgram.createSocket(type);
  await new Promise<void>((r) => s.bind(0, address, () => r()));
  sockets.push(s);
  return s;
}
afterEach(async () => {
  await Promise.all(sockets.splice(0).map((s) => new Promise<void>((r) => {
    try {
      s.close(() => r());
    } catch {
      r(); // already closed by the test
    }
  })));
});

const settle = (ms = 30): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('numeric addresses', () => {
  it('round-trips IPv4, IPv6 and IPv4-mapped addresses to the text dgram reports', () => {
    expect(numericAddress('10.1.2.3', 5004)).toEqual({ family: 4, port: 5004, a0: 0x0a010203, a1: 0, a2: 0, a3: 0 });
    for (const [text, family] of [['192.168.0.254', 4], ['2001:db8::1', 6], ['fe80::1:0:0:2', 6], ['::1', 6], ['2001:db8:0:1:1:1:1:1', 6]] as const) {
      const n = numericAddress(text, 1, family)!;
      expect(formatAddress(n)).toBe(text);
    }
    // An IPv4 peer as an IPv6 socket sees it.
    const mapped = numericAddress('127.0.0.1', 9, 6)!;
    expect(mapped).toMatchObject({ family: 6, a0: 0, a1: 0, a2: 0xffff, a3: 0x7f000001 });
    expect(formatAddress(mapped)).toBe('::ffff:127.0.0.1');
    expect(sameAddress(mapped, numericAddress('::ffff:127.0.0.1', 9, 6)!)).toBe(true);
    expect(sameAddress(mapped, numericAddress('::ffff:127.0.0.1', 10, 6)!)).toBe(false);
    expect(numericAddress('pbx.example.com', 5060)).toBeNull();
    expect(numericAddress('2001:db8::1', 5060, 4)).toBeNull();
  });
});

describe('TickSocket', () => {
  // npm ci builds the addon (scripts/build-native.mjs); on Linux a missing addon is a broken install, not a skip.
  it('is available on Linux (the addon built at install)', () => {
    expect(process.platform !== 'linux' || tickReadsAvailable()).toBe(true);
  });

  it.skipIf(!tickReadsAvailable())('takes reading away from libuv: datagrams wait until poll(), which hands each over with its source', async () => {
    const rx = await bound();
    const tx = await bound();
    let arrivals = 0;
    rx.on('message', () => arrivals++);
    const ts = TickSocket.attach(rx)!;
    expect(ts).not.toBeNull();
    for (const word of ['one', 'two', 'three']) tx.send(Buffer.from(word), rx.address().port, '127.0.0.1');
    await settle();
    expect(arrivals).toBe(0);
    const got: Array<{ text: string; from: NumericAddress }> = [];
    expect(ts.poll((packet, length, from) => got.push({ text: packet.toString('utf8', 0, length), from: { ...from } }))).toBe(3);
    expect(got.map((g) => g.text)).toEqual(['one', 'two', 'three']);
    expect(got.every((g) => sameAddress(g.from, numericAddress('127.0.0.1', tx.address().port)!))).toBe(true);
    expect(ts.poll(() => {
      throw new Error('nothing should be waiting');
    })).toBe(0);
    expect(arrivals).toBe(0);
  });

  it.skipIf(!tickReadsAvailable())('gives each datagram the time the kernel received it, not the time of the poll', async () => {
    const rx = await bound();
    const tx = await bound();
    const ts = TickSocket.attach(rx)!;
    tx.send(Buffer.from('early'), rx.address().port, '127.0.0.1');
    await settle(80);
    tx.send(Buffer.from('late'), rx.address().port, '127.0.0.1');
    await settle(10);
    const at: Record<string, number> = {};
    ts.poll((p, length, _from, arrivedAt) => {
      at[p.toString('utf8', 0, length)] = arrivedAt;
    });
    const now = performance.now();
    expect(now - at.early!).toBeGreaterThan(70);
    expect(now - at.early!).toBeLessThan(2000);
    expect(at.late! - at.early!).toBeGreaterThan(70);
    expect(now - at.late!).toBeGreaterThanOrEqual(0);
  });

  it.skipIf(!tickReadsAvailable())('drains more than one receive batch in a single poll', async () => {
    const rx = await bound();
    const tx = await bound();
    const ts = TickSocket.attach(rx)!;
    for (let i = 0; i < 150; i++) tx.send(Buffer.from([i]), rx.address().port, '127.0.0.1');
    await settle(60);
    const seen: number[] = [];
    expect(ts.poll((p) => seen.push(p[0]!))).toBe(150);
    expect(seen).toEqual(Array.from({ length: 150 }, (_, i) => i));
  });

  it.skipIf(!tickReadsAvailable())('queues sends, copies the bytes at once and sends them after the current turn, in order', async () => {
    const rx = await bound();
    const tx = await bound();
    const ts = TickSocket.attach(tx)!;
    const got: string[] = [];
    rx.on('message', (m, rinfo) => got.push(`${m.toString()}@${rinfo.port}`));
    const to = numericAddress('127.0.0.1', rx.address().port)!;
    const buf = Buffer.from('xxfirstxx');
    expect(ts.sendTo(buf, 2, 5, to)).toBe(true);
    buf.write('secon', 2); // the caller's buffer is free again once sendTo returns
    expect(ts.sendTo(buf, 2, 5, to)).toBe(true);
    await settle();
    expect(got).toEqual([`first@${tx.address().port}`, `secon@${tx.address().port}`]);
    expect(ts.errors).toBe(0);
  });

  it.skipIf(!tickReadsAvailable())('never touches a socket after close(): queued sends are dropped, poll and sendTo do nothing', async () => {
    const rx = await bound();
    const tx = dgram.createSocket('udp4');
    await new Promise<void>((r) => tx.bind(0, '127.0.0.1', () => r()));
    const ts = TickSocket.attach(tx)!;
    let got = 0;
    rx.on('message', () => got++);
    const to = numericAddress('127.0.0.1', rx.address().port)!;
    expect(ts.sendTo(Buffer.from('late'), 0, 4, to)).toBe(true);
    tx.close();
    expect(ts.closed).toBe(true);
    // A new socket may take over the fd number at once; the queued datagram must not leave through it.
    const reuse = await bound();
    flushTickSends();
    expect(ts.sendTo(Buffer.from('after'), 0, 5, to)).toBe(false);
    expect(ts.poll(() => {})).toBe(0);
    await settle();
    expect(got).toBe(0);
    expect(ts.errors).toBe(0);
    reuse.unref();
  });

  it.skipIf(!tickReadsAvailable())('works on IPv6 sockets, IPv4-mapped peers included', async () => {
    const rx = await bound('udp6', '::');
    const tx = await bound();
    const ts = TickSocket.attach(rx)!;
    tx.send(Buffer.from('v4'), rx.address().port, '127.0.0.1');
    await settle();
    let source = '';
    expect(ts.poll((_p, _length, from) => {
      source = `${formatAddress(from)}:${from.port}`;
    })).toBe(1);
    expect(source).toBe(`::ffff:127.0.0.1:${tx.address().port}`);
    const back = new Promise<string>((r) => tx.once('message', (m) => r(m.toString())));
    ts.sendTo(Buffer.from('reply'), 0, 5, numericAddress('127.0.0.1', tx.address().port, 6)!);
    expect(await back).toBe('reply');
  });
});
