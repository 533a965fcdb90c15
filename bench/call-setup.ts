/**
 * What setting up one WhatsApp media leg costs the event loop the media shares: a werift offerer (the user) and our
 * WebRtcLeg answer connect over loopback (ICE, DTLS, SRTP keys), one pair after another, in this process. The steady
 * bench (media-path.ts) measures after set-up; under call churn each new call's set-up holds every live call's
 * packets for as long as its longest synchronous step.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { PortPool } from '../src/media/port-pool.js';
import { WebRtcLeg } from '../src/media/webrtc-leg.js';

export interface CallSetupResult {
  pairs: number;
  /** CPU of both ends per pair (the user's side is a werift leg like ours, so about half is the gateway's). */
  cpuMsPerPair: number;
  wallMsPerPair: number;
  /** Event-loop delay while pairs connect: the longest block, and the 99th percentile. */
  loopBlockMaxMs: number;
  loopBlockP99Ms: number;
}

async function connectPair(pool: PortPool): Promise<void> {
  const user = await WebRtcLeg.offer({ bindAddress: '127.0.0.1', portPool: pool });
  const ours = await WebRtcLeg.answer(user.localSdp, { bindAddress: '127.0.0.1', portPool: pool });
  try {
    await user.setRemoteAnswer(ours.localSdp);
    await Promise.all([user.connected, ours.connected]);
  } finally {
    await Promise.all([user.close(), ours.close()]);
  }
}

export async function runCallSetup(pairs: number): Promise<CallSetupResult> {
  const pool = new PortPool(41000, 42998);
  for (let i = 0; i < 3; i++) await connectPair(pool); // compile werift's handshake paths first
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < pairs; i++) await connectPair(pool);
  const cpu = process.cpuUsage(cpu0);
  const wall = performance.now() - t0;
  delay.disable();
  const round = (v: number): number => Math.round(v * 10) / 10;
  return {
    pairs, cpuMsPerPair: round((cpu.user + cpu.system) / 1000 / pairs), wallMsPerPair: round(wall / pairs),
    loopBlockMaxMs: round(delay.max / 1e6), loopBlockP99Ms: round(delay.percentile(99) / 1e6),
  };
}
