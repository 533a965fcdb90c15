import { describe, expect, it } from 'vitest';
import { coalesceDtlsFlights } from './dtls-coalesce.js';

function record(type: number, len: number): Buffer {
  const b = Buffer.alloc(len, 0xab);
  b[0] = type;
  return b;
}

describe('coalesceDtlsFlights', () => {
  it('joins the records of one burst into one datagram, in order, and leaves other packets alone', async () => {
    const sent: Buffer[] = [];
    const conn = { send: async (d: Buffer): Promise<void> => void sent.push(d) };
    coalesceDtlsFlights(conn);
    const flight = [record(22, 421), record(22, 91), record(22, 100), record(20, 14), record(22, 61)];
    const rtp = record(0x80, 100);
    const done = Promise.all([...flight.map((r) => conn.send(r)), conn.send(rtp)]);
    // The RTP packet is not held back behind the flight.
    expect(sent).toEqual([rtp]);
    await done;
    expect(sent).toHaveLength(2);
    expect(sent[1]).toEqual(Buffer.concat(flight));
  });

  it('splits a flight that would exceed the datagram size, never a record', async () => {
    const sent: Buffer[] = [];
    const conn = { send: async (d: Buffer): Promise<void> => void sent.push(d) };
    coalesceDtlsFlights(conn, 1200);
    const flight = [record(22, 700), record(22, 400), record(22, 300), record(20, 14)];
    await Promise.all(flight.map((r) => conn.send(r)));
    expect(sent.map((d) => d.length)).toEqual([1100, 314]);
    expect(Buffer.concat(sent)).toEqual(Buffer.concat(flight));
  });

  it('sends later bursts (retransmissions) as datagrams of their own', async () => {
    const sent: Buffer[] = [];
    const conn = { send: async (d: Buffer): Promise<void> => void sent.push(d) };
    coalesceDtlsFlights(conn);
    await Promise.all([conn.send(record(22, 50)), conn.send(record(22, 60))]);
    await Promise.all([conn.send(record(22, 50)), conn.send(record(22, 60))]);
    expect(sent.map((d) => d.length)).toEqual([110, 110]);
  });
});
