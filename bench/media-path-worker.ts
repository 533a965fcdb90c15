/**
 * Gateway side of bench/media-path.ts, in its own process so its CPU time is measured alone:
 * WebRtcLeg (answer) ⇄ Bridge ⇄ RtpLeg per call, driven by IPC messages from the parent.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Bridge } from '../src/media/bridge.js';
import { sharedFrameClock } from '../src/media/frame-clock.js';
import { PortPool } from '../src/media/port-pool.js';
import { RtpLeg } from '../src/media/rtp-leg.js';
import { WebRtcLeg } from '../src/media/webrtc-leg.js';

export type WorkerRequest =
  | { type: 'offer'; id: number; sdp: string; echoPort: number; complexity: number; fec: boolean }
  | { type: 'measure'; seconds: number }
  | { type: 'stop' };

export type WorkerReply =
  | { type: 'answer'; id: number; sdp: string }
  | { type: 'connected'; id: number }
  | { type: 'measured'; calls: number; cpuMs: number; seconds: number; lagP50Ms: number; lagP99Ms: number; lagMaxMs: number;
      packetsInWa: number; packetsOutWa: number; packetsInSip: number; packetsOutSip: number; skippedTicks: number }
  | { type: 'stopped' };

const pool = new PortPool(30000, 39998);
const bridges: Bridge[] = [];

function send(msg: WorkerReply): void {
  process.send!(msg);
}

function totals(): { packetsInWa: number; packetsOutWa: number; packetsInSip: number; packetsOutSip: number } {
  const t = { packetsInWa: 0, packetsOutWa: 0, packetsInSip: 0, packetsOutSip: 0 };
  for (const b of bridges) {
    const q = b.quality();
    t.packetsInWa += q.whatsapp.packetsIn;
    t.packetsOutWa += q.whatsapp.packetsOut;
    t.packetsInSip += q.sip.packetsIn;
    t.packetsOutSip += q.sip.packetsOut;
  }
  return t;
}

process.on('message', async (msg: WorkerRequest) => {
  if (msg.type === 'offer') {
    const wa = await WebRtcLeg.answer(msg.sdp, { bindAddress: '127.0.0.1' });
    const sip = await RtpLeg.open({ pool, bindAddress: '127.0.0.1' });
    sip.setRemote('127.0.0.1', msg.echoPort);
    const bridge = new Bridge(wa, sip, { sipCodec: 'PCMU', sipDtmfPayloadType: 101, opus: { complexity: msg.complexity, inbandFec: msg.fec } });
    bridges.push(bridge);
    bridge.start();
    send({ type: 'answer', id: msg.id, sdp: wa.localSdp });
    await wa.connected;
    bridge.startWhatsAppMedia();
    send({ type: 'connected', id: msg.id });
  } else if (msg.type === 'measure') {
    const h = monitorEventLoopDelay({ resolution: 1 });
    const before = totals();
    const skipped0 = sharedFrameClock.skippedTotal;
    // BENCH_PROFILE=<file>: a CPU profile of the measurement window only (steady state, no set-up).
    const profileTo = process.env.BENCH_PROFILE;
    const session = profileTo ? new Session() : null;
    if (session) {
      session.connect();
      await session.post('Profiler.enable');
      await session.post('Profiler.start');
    }
    h.enable();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, msg.seconds * 1000));
    const cpu = process.cpuUsage(cpu0);
    const seconds = (performance.now() - t0) / 1000;
    h.disable();
    if (session && profileTo) {
      const { profile } = await session.post('Profiler.stop');
      writeFileSync(profileTo, JSON.stringify(profile));
      session.disconnect();
    }
    const after = totals();
    send({
      type: 'measured', calls: bridges.length, cpuMs: (cpu.user + cpu.system) / 1000, seconds,
      lagP50Ms: h.percentile(50) / 1e6, lagP99Ms: h.percentile(99) / 1e6, lagMaxMs: h.max / 1e6,
      packetsInWa: after.packetsInWa - before.packetsInWa, packetsOutWa: after.packetsOutWa - before.packetsOutWa,
      packetsInSip: after.packetsInSip - before.packetsInSip, packetsOutSip: after.packetsOutSip - before.packetsOutSip,
      skippedTicks: sharedFrameClock.skippedTotal - skipped0,
    });
  } else if (msg.type === 'stop') {
    await Promise.all(bridges.map((b) => b.stop()));
    send({ type: 'stopped' });
    process.disconnect();
  }
});
