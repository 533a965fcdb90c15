import dgram from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { Bridge } from './bridge.js';
import { ManualFrameClock } from './frame-clock.js';
import { PortPool } from './port-pool.js';
import { ntpFromUnixMs, ntpMiddle, parseRtcp, rttFromBlock, RtcpReceiverState, RTCP_RR, RTCP_SR, writeReport, type ParsedRtcp } from './rtcp.js';
import { RtpLeg } from './rtp-leg.js';
import { RtpReceiveStats } from './stats.js';
import { FakeWhatsAppLeg } from './fake-legs.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('RTCP reports', () => {
  it('writes an SR with a report block that parses back (fraction lost, cumulative, highest seq, LSR/DLSR)', () => {
    const stats = new RtpReceiveStats(8000);
    // 101..199 with every tenth missing: 99 expected, 9 lost.
    for (let s = 101; s < 200; s++) if (s % 10 !== 0) stats.update(s, s * 160, s * 20);
    const rx = new RtcpReceiverState(stats);
    rx.remoteSsrc = 0xabcdef01;
    rx.onSenderReport(0x12345678, 1000);
    const buf = Buffer.alloc(64);
    const n = writeReport(buf, 0x11111111, { ssrc: 0x11111111, unixMs: 1_700_000_000_000, rtpTimestamp: 4242, packets: 77, octets: 12320 }, rx, 1500);
    expect(n).toBe(52);
    const out: ParsedRtcp = { senderSsrc: 0, srNtpMiddle: -1, blocks: [] };
    expect(parseRtcp(buf, n, out)).toBe(true);
    expect(buf[1]).toBe(RTCP_SR);
    expect(out.senderSsrc).toBe(0x11111111);
    const [sec, frac] = ntpFromUnixMs(1_700_000_000_000);
    expect(out.srNtpMiddle).toBe(ntpMiddle(sec, frac));
    expect(out.blocks).toHaveLength(1);
    const b = out.blocks[0]!;
    expect(b).toMatchObject({ ssrc: 0xabcdef01, cumulativeLost: 9, highestSeq: 199, lsr: 0x12345678 });
    expect(b.fractionLost).toBe(Math.floor((9 << 8) / 99));
    expect(b.dlsr).toBe(Math.round(0.5 * 65536));
    // The next report covers only what came since: nothing new, nothing lost.
    const n2 = writeReport(buf, 0x11111111, null, rx, 2000);
    parseRtcp(buf, n2, out);
    expect(buf[1]).toBe(RTCP_RR);
    expect(out.blocks[0]!.fractionLost).toBe(0);
    expect(out.blocks[0]!.cumulativeLost).toBe(9);
  });

  it('computes the RTT from LSR and DLSR', () => {
    const t0 = 1_700_000_000_000;
    const [sec, frac] = ntpFromUnixMs(t0);
    const lsr = ntpMiddle(sec, frac);
    const rtt = rttFromBlock({ ssrc: 1, fractionLost: 0, cumulativeLost: 0, highestSeq: 0, jitter: 0, lsr, dlsr: Math.round(0.1 * 65536) }, t0 + 160);
    expect(rtt).not.toBeNull();
    expect(Math.abs(rtt! - 60)).toBeLessThan(1);
    expect(rttFromBlock({ ssrc: 1, fractionLost: 0, cumulativeLost: 0, highestSeq: 0, jitter: 0, lsr: 0, dlsr: 0 }, t0)).toBeNull();
  });

  it('reads a round trip that rounding took just below zero as zero, and a clock step as no figure', () => {
    const t0 = 1_700_000_000_000;
    const lsr = ntpMiddle(...ntpFromUnixMs(t0));
    const block = (dlsr: number) => ({ ssrc: 1, fractionLost: 0, cumulativeLost: 0, highestSeq: 0, jitter: 0, lsr, dlsr });
    expect(rttFromBlock(block(2), t0)).toBe(0); // held 2/65536 s longer than the round trip: rounding
    expect(rttFromBlock(block(Math.round(0.5 * 65536)), t0 + 100)).toBeNull(); // held 500 ms of a 100 ms trip
  });
});

describe('RTCP on the SIP leg', () => {
  it('RtpLeg sends RTCP to the RTP port + 1 and hands RTCP from the peer host to the Bridge, which reports an RTT', async () => {
    const pool = new PortPool(46200, 46220);
    const leg = await RtpLeg.open({ pool, bindAddress: '127.0.0.1' });
    cleanups.push(() => leg.close());
    expect(leg.rtcpEnabled).toBe(true);
    // The "PBX": RTP on an even port, RTCP on the next one.
    const rtp = dgram.createSocket('udp4');
    const rtcp = dgram.createSocket('udp4');
    let base = 46300;
    for (;;) {
      try {
        await new Promise<void>((res, rej) => { rtp.once('error', rej); rtp.bind(base, '127.0.0.1', () => res()); });
        await new Promise<void>((res, rej) => { rtcp.once('error', rej); rtcp.bind(base + 1, '127.0.0.1', () => res()); });
        break;
      } catch {
        base += 2;
      }
    }
    cleanups.push(() => new Promise<void>((r) => rtp.close(() => r())), () => new Promise<void>((r) => rtcp.close(() => r())));
    leg.setRemote('127.0.0.1', base);

    const clock = new ManualFrameClock();
    const bridge = new Bridge(new FakeWhatsAppLeg(() => 0), leg, { sipCodec: 'PCMU', clock, mediaTimeoutMs: 60_000 });
    cleanups.push(() => bridge.stop());
    bridge.start();
    // The PBX answers each SR with an RR about our stream, holding the SR's NTP middle bits and a 10 ms DLSR.
    const reports: number[] = [];
    rtcp.on('message', (m, rinfo) => {
      const p: ParsedRtcp = { senderSsrc: 0, srNtpMiddle: -1, blocks: [] };
      if (!parseRtcp(m, m.length, p)) return;
      reports.push(m[1]!);
      if (p.srNtpMiddle < 0) return;
      const rr = Buffer.alloc(32);
      rr[0] = 0x81; rr[1] = RTCP_RR; rr.writeUInt16BE(7, 2); rr.writeUInt32BE(0x5151, 4);
      rr.writeUInt32BE(p.senderSsrc, 8); rr.writeUInt32BE(p.srNtpMiddle, 24); rr.writeUInt32BE(Math.round(0.01 * 65536), 28);
      setTimeout(() => rtcp.send(rr, rinfo.port, rinfo.address), 10);
    });
    clock.tick(50); // 1 s of media: the first report goes out with it
    await new Promise((r) => setTimeout(r, 300));
    expect(reports).toEqual([RTCP_SR]);
    expect(leg.rtcpStats.in).toBe(1);
    const q = bridge.quality().sip;
    expect(q.rttMs).toBeDefined();
    expect(q.rttMs!).toBeGreaterThanOrEqual(0);
    expect(q.rttMs!).toBeLessThan(250);
  });
});
