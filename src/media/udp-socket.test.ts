import dgram from 'node:dgram';
import { describe, expect, it } from 'vitest';
import { answerLiteralsAtOnce, createMediaSocket } from './udp-socket.js';

/** Sends one buffer three times, rewriting it between sends as the media rings do; returns what arrived. */
async function sendRewrittenBuffer(tx: dgram.Socket): Promise<number[]> {
  const rx = createMediaSocket('udp4');
  await new Promise<void>((r) => rx.bind(0, '127.0.0.1', () => r()));
  const got: number[] = [];
  const all = new Promise<void>((r) => rx.on('message', (m) => {
    got.push(m[0]!);
    if (got.length === 3) r();
  }));
  const buf = Buffer.alloc(4);
  for (const v of [1, 2, 3]) {
    buf[0] = v;
    tx.send(buf, 0, 4, rx.address().port, '127.0.0.1');
  }
  await all;
  tx.close();
  rx.close();
  return got;
}

describe('createMediaSocket', () => {
  it('hands a packet to an address to the kernel inside send(): a buffer rewritten right after is not what arrives', async () => {
    expect(await sendRewrittenBuffer(createMediaSocket('udp4'))).toEqual([1, 2, 3]);
  });

  it('does the same for a socket made elsewhere (werift\'s ICE socket)', async () => {
    const tx = dgram.createSocket('udp4');
    expect(answerLiteralsAtOnce(tx)).toBe(true);
    await new Promise<void>((r) => tx.bind(0, '127.0.0.1', () => r()));
    expect(await sendRewrittenBuffer(tx)).toEqual([1, 2, 3]);
  });

  it('still resolves names', async () => {
    const rx = createMediaSocket('udp4');
    const tx = createMediaSocket('udp4');
    await new Promise<void>((r) => rx.bind(0, '127.0.0.1', () => r()));
    const got = new Promise<Buffer>((r) => rx.once('message', (m) => r(m)));
    tx.send(Buffer.from('hi'), rx.address().port, 'localhost');
    expect((await got).toString()).toBe('hi');
    tx.close();
    rx.close();
  });
});
