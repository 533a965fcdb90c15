import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SrtcpReporter, type SrtcpCounters } from './srtcp-reporter.js';
import { SrtcpContext, SrtcpGcmContext, type Srtcp } from './srtcp.js';
import { silentLogger } from './types.js';

const counters = (): SrtcpCounters => ({ rtcpIn: 0, rtcpOut: 0, srtcpDropped: 0, sendErrors: 0 });

describe.each([
  ['AES-CM', (k: Buffer, s: Buffer): Srtcp => new SrtcpContext(k, s)],
  ['AES-GCM', (k: Buffer, s: Buffer): Srtcp => new SrtcpGcmContext(k, s)],
])('SrtcpReporter (%s)', (_name, make) => {
  /** Two reporters back to back (the gateway and the user), each with the other's keys for receiving. */
  function pair(intervalMs: number) {
    const ka = randomBytes(16), sa = randomBytes(14), kb = randomBytes(16), sb = randomBytes(14);
    const wire: { toA: Buffer[]; toB: Buffer[] } = { toA: [], toB: [] };
    const ca = counters(), cb = counters();
    const a = new SrtcpReporter({ ssrc: 0xaaaa, counters: ca, log: silentLogger, intervalMs, send: (p) => wire.toB.push(p) > 0 });
    const b = new SrtcpReporter({ ssrc: 0xbbbb, counters: cb, log: silentLogger, intervalMs, send: (p) => wire.toA.push(p) > 0 });
    a.setKeys(make(ka, sa), make(kb, sb));
    b.setKeys(make(kb, sb), make(ka, sa));
    return { a, b, ca, cb, wire };
  }

  it('reads the other side\'s reports: RTT from our SR echoed in its block, its loss figures, our jitter stats', async () => {
    const { a, b, ca, cb, wire } = pair(0);
    // a sends 100 packets; b receives 90 of them (10 lost).
    for (let i = 0; i < 100; i++) {
      a.onRtpSent(60, i * 960);
      if (i % 10 !== 5) b.onRtpReceived(0xaaaa, i, i * 960, performance.now());
    }
    b.onRtpSent(60, 0);
    a.onRtpReceived(0xbbbb, 1, 0, performance.now());
    a.sendReport(); // SR from a
    for (const p of wire.toB.splice(0)) b.onSrtcp(p, p.length);
    await new Promise((r) => setTimeout(r, 30));
    b.sendReport(); // SR from b, with a block about a's stream whose LSR/DLSR echo a's SR
    for (const p of wire.toA.splice(0)) a.onSrtcp(p, p.length);
    expect(ca.rtcpIn).toBe(1);
    expect(cb.rtcpIn).toBe(1);
    expect(ca.rtcpOut).toBe(1);
    expect(a.remotePacketsLost).toBe(10);
    expect(a.remoteFractionLost).toBeCloseTo(10 / 100, 1);
    expect(a.rttMs).toBeGreaterThanOrEqual(0);
    expect(a.rttMs!).toBeLessThan(25); // the 30 ms b held a's SR is DLSR, not round trip
    expect(b.received.packets).toBe(90);
    a.stop();
    b.stop();
  });

  it('measures a sub-millisecond round trip (a peer on the same host or LAN) every time', () => {
    for (let i = 0; i < 50; i++) {
      const { a, b, wire } = pair(0);
      a.onRtpSent(60, 0);
      b.onRtpReceived(0xaaaa, 0, 0, performance.now());
      a.sendReport();
      for (const p of wire.toB.splice(0)) b.onSrtcp(p, p.length);
      const heldUntil = performance.now() + 0.3; // b holds a's SR for 0.3 ms: DLSR, not round trip
      while (performance.now() < heldUntil);
      b.sendReport();
      for (const p of wire.toA.splice(0)) a.onSrtcp(p, p.length);
      expect(a.rttMs).toBeGreaterThanOrEqual(0);
      expect(a.rttMs!).toBeLessThan(20);
      a.stop();
      b.stop();
    }
  });

  it('drops forged, truncated and unkeyed packets and counts them; nothing else changes', () => {
    const { a, b, ca, wire } = pair(0);
    b.onRtpSent(60, 0);
    b.sendReport();
    const good = wire.toA.pop()!;
    const forged = Buffer.from(good);
    forged[forged.length - 20] = forged[forged.length - 20]! ^ 1;
    a.onSrtcp(forged, forged.length);
    a.onSrtcp(good, 10);
    a.onSrtcp(randomBytes(80), 80);
    expect(ca.srtcpDropped).toBe(3);
    expect(ca.rtcpIn).toBe(0);
    const unkeyed = new SrtcpReporter({ ssrc: 1, counters: counters(), log: silentLogger, send: () => true });
    unkeyed.onSrtcp(good, good.length);
    unkeyed.sendReport(); // no keys yet: nothing to send, no throw
    a.onSrtcp(good, good.length);
    expect(ca.rtcpIn).toBe(1);
  });

  it('reports on its own once we send: the first soon, then every interval, and never after stop()', async () => {
    const { a, ca, wire } = pair(40);
    await new Promise((r) => setTimeout(r, 60));
    expect(wire.toB).toHaveLength(0); // nothing sent yet, no reports
    a.onRtpSent(60, 0);
    await new Promise((r) => setTimeout(r, 150));
    expect(ca.rtcpOut).toBeGreaterThanOrEqual(2);
    a.stop();
    const n = wire.toB.length;
    await new Promise((r) => setTimeout(r, 100));
    expect(wire.toB).toHaveLength(n);
  });
});
