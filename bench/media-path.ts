/**
 * N concurrent bridged calls over loopback with real sockets. The gateway side runs in a child process
 * (media-path-worker.ts); this process plays the peers, kept light so they do not eat the machine:
 *
 * - N WhatsApp users: werift does ICE and DTLS (as ICE-controlling full agents against our answer), then RTP runs on
 *   the same tight SRTP path the gateway uses (WebRtcLeg's fast path): pre-encoded 20 ms Opus frames sent on a
 *   phased 20 ms clock, received packets decrypted and counted;
 * - per call a UDP echo standing in for the PBX (like `sipp -rtp_echo`): G.711 from the gateway is sent back.
 *
 * Loss added by the gateway is counted exactly: packets the peers sent that the gateway did not receive (counted
 * after the peers stop), sequence-number gaps in what the gateway sent (at the peers, from the moment they start
 * talking), jitter-buffer late drops and frame ticks the gateway gave up on.
 */
import dgram from 'node:dgram';
import { fork } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { IntervalFrameClock } from '../src/media/frame-clock.js';
import { OpusEncoder8k } from '../src/media/opus-codec.js';
import { PortPool } from '../src/media/port-pool.js';
import { TickSocket, tickReadsAvailable, type TickPacketHandler } from '../src/media/tick-socket.js';
import { WebRtcLeg } from '../src/media/webrtc-leg.js';
import { encodeG711 } from '../src/media/g711.js';
import { ticksPerFrame } from '../src/media/wa-audio-codec.js';
import type { Measured, Totals, WorkerReply, WorkerRequest } from './media-path-worker.js';

/** Talking time before a rung's measurement starts. */
export const WARM_UP_MS = 8000;

export interface SocketRunOptions {
  calls: number;
  seconds: number;
  mediaPath: 'fast' | 'werift';
  complexity: number;
  fec: boolean;
  bitrate: number;
  /** os.setPriority for the gateway process (e.g. -10; needs CAP_SYS_NICE); default: unchanged. */
  priority?: number;
  /** Media planes: the calls spread over this many worker threads of the gateway process, each with its own event loop; default 1. */
  planes?: number;
  /** In-band FEC follows the peers' RTCP loss reports (the shipped default, media.opusFecAdaptive); default true. */
  fecAdaptive?: boolean;
  /** Sockets read on the media tick and sends batched after it (media.tickReads, the shipped default); default true. */
  tickReads?: boolean;
  /** media.opusLoadAdaptive (the shipped default): encoders step down from `complexity` while the loop is busy; default true. */
  loadAdaptive?: boolean;
  /** 'PCMU': Meta carries G.711 (media.whatsappCodecs), so no Opus runs in the gateway; default 'opus'. */
  waCodec?: 'opus' | 'PCMU';
}

export interface SocketRunResult {
  calls: number;
  planes: number;
  fecAdaptive: boolean;
  /** Whether the gateway's sockets were read on the tick (asked for, and the addon loaded). */
  tickReads: boolean;
  /** Calls whose encoder still sent in-band FEC at the end (adaptive: the peers' reports said loss, or none came). */
  callsWithFec: number;
  mediaPath: 'fast' | 'werift';
  fastLegs: number;
  /** The encoders' complexity at the end of the window (below the configured one when the load governor stepped in). */
  encoderComplexity: { min: number; max: number };
  /** The gateway would refuse new calls at the end of the window (media.refuseCallsWhenSaturated). */
  refusingCalls: boolean;
  seconds: number;
  cpuMsPerCallSecond: number;
  /** The kernel's share of cpuMsPerCallSecond (loopback UDP, timers). */
  kernelMsPerCallSecond: number;
  cpuPercentOfOneCore: number;
  /** The synthetic peers' own CPU in the window (this process), so a saturated machine shows. */
  peerCpuPercentOfOneCore: number;
  callsPerCoreByCpu: number;
  lagP50Ms: number;
  lagP99Ms: number;
  lagMaxMs: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  addedLossPackets: number;
  addedLossPercent: number;
  loss: { waIn: number; waOut: number; sipIn: number; sipOut: number; late: number; skippedTicks: number; srtpDropped: number };
  rssPerCallMiB: number;
  /** The gateway's garbage collector in the window: scavenges per second, pause time per second, the longest pause. */
  gc: { scavengesPerSecond: number; pauseMsPerSecond: number; pauseMaxMs: number; fullGcs: number };
  setupSeconds: number;
  holds: boolean;
  /** The run before this one at the same N, when that one broke a limit (bench/run.ts runs a broken rung twice). */
  firstRun?: SocketRunResult;
}

const SETUP_BATCH = 16;

/** Received sequence numbers of one stream: what is missing between the first and the highest. */
class SeqTracker {
  started = false;
  private base = 0;
  private maxExt = 0;
  private count = 0;

  add(seq: number): void {
    if (!this.started) {
      this.started = true;
      this.base = this.maxExt = seq;
      this.count = 1;
      return;
    }
    // Signed 16-bit distance from the highest so far: reordering and wrap-around both work.
    const ext = this.maxExt + (((seq - (this.maxExt & 0xffff)) << 16) >> 16);
    if (ext > this.maxExt) this.maxExt = ext;
    this.count++;
  }

  get lost(): number {
    return this.started ? Math.max(0, this.maxExt - this.base + 1 - this.count) : 0;
  }
}

export async function runSocketCalls(o: SocketRunOptions): Promise<SocketRunResult> {
  const planeCount = Math.max(1, Math.floor(o.planes ?? 1));
  const failures: string[] = [];
  const worker = fork(fileURLToPath(new URL('./media-path-worker.ts', import.meta.url)), [], {
    // BENCH_WORKER_FLAGS: extra Node flags for the gateway process (e.g. --trace-gc).
    execArgv: ['--import', 'tsx', '--expose-gc', ...(process.env.BENCH_WORKER_FLAGS ?? '').split(' ').filter(Boolean)], stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  if (o.priority !== undefined && worker.pid) {
    try {
      os.setPriority(worker.pid, o.priority);
    } catch (err) {
      console.error(`bench: cannot set the gateway process priority: ${(err as Error).message}`);
    }
  }
  const waiters = new Map<string, (m: WorkerReply) => void>();
  worker.on('message', (m: WorkerReply) => {
    if (m.type === 'failed') failures.push(`call ${m.id}: ${m.error}`);
    const key = 'id' in m ? `${m.type}:${m.id}` : m.type;
    const w = waiters.get(key);
    if (w) {
      waiters.delete(key);
      w(m);
    }
  });
  const waitFor = <T extends WorkerReply>(key: string): Promise<T> => new Promise((resolve) => waiters.set(key, (m) => resolve(m as T)));
  const request = <T extends WorkerReply>(msg: WorkerRequest, key: string): Promise<T> => {
    const p = waitFor<T>(key);
    worker.send(msg);
    return p;
  };
  await request({
    type: 'init', mediaPath: o.mediaPath, complexity: o.complexity, fec: o.fec, fecAdaptive: o.fecAdaptive ?? true, tickReads: o.tickReads ?? true, bitrate: o.bitrate,
    ports: [30000, 39998], planes: planeCount, waCodec: o.waCodec ?? 'opus', loadAdaptive: o.loadAdaptive ?? true,
  }, 'ready');

  // The PBX: an echo socket per call, like a phone per call.
  let armed = false;
  const echo = { echoed: 0 };
  const echoes: dgram.Socket[] = [];
  const sipTrackers: SeqTracker[] = [];
  interface Echo { port: number; readOnTick(): void; poll(): void }
  const openEcho = async (): Promise<Echo> => {
    const sock = dgram.createSocket('udp4');
    const track = new SeqTracker();
    sipTrackers.push(track);
    /** Whether to send this datagram back. */
    const take = (m: Uint8Array, length: number): boolean => {
      // The gateway's RTCP goes to the RTP port + 1, which may be another call's echo port (ports are random): an
      // RTCP packet is not that call's RTP, so neither echoed nor counted (its length field would read as a
      // sequence number far away, a burst of phantom loss).
      const pt = length >= 2 ? m[1]! & 0x7f : 0;
      if (pt >= 64 && pt <= 95) return false;
      if (!armed && !track.started) return false;
      if (length >= 12) track.add((m[2]! << 8) | m[3]!);
      if (!armed) return false;
      echo.echoed++;
      return true;
    };
    sock.on('message', (m, rinfo) => {
      if (take(m, m.length)) sock.send(m, rinfo.port, rinfo.address);
    });
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    echoes.push(sock);
    let tick: TickSocket | null = null;
    const onPacket: TickPacketHandler = (m, length, from) => {
      if (take(m, length)) tick!.sendTo(m, 0, length, from);
    };
    return {
      port: sock.address().port,
      // Once the users talk, read on the peers' clock like the gateway reads its own sockets: a datagram then costs
      // no libuv read, Buffer or rinfo, so the peers take less of the machine the gateway is measured on.
      readOnTick: () => { tick = TickSocket.attach(sock); },
      poll: () => { tick?.poll(onPacket); },
    };
  };

  // 50 pre-encoded 20 ms frames of a two-tone signal, looped.
  const g711 = o.waCodec === 'PCMU';
  const enc = new OpusEncoder8k({ complexity: 5, bitrate: 24_000 });
  const frames: Uint8Array[] = [];
  const buf = new Uint8Array(1500);
  const pcm = new Int16Array(160);
  for (let f = 0; f < 50; f++) {
    for (let i = 0; i < 160; i++) {
      const t = (f * 160 + i) / 8000;
      pcm[i] = Math.round(4000 * (Math.sin(2 * Math.PI * 440 * t) + Math.sin(2 * Math.PI * 1000 * t)));
    }
    frames.push(buf.slice(0, g711 ? encodeG711('PCMU', pcm, buf) : enc.encode(pcm, buf)));
  }

  interface Peer { leg: WebRtcLeg; echo: Echo; sent: number; rx: SeqTracker; seq: number; ts: number; frame: number }
  const peers: Peer[] = [];
  const peerPool = new PortPool(20000, 29998);
  const t0 = performance.now();
  for (let base = 0; base < o.calls; base += SETUP_BATCH) {
    const batch = [];
    for (let id = base; id < Math.min(o.calls, base + SETUP_BATCH); id++) {
      batch.push((async () => {
        const leg = await WebRtcLeg.offer({ bindAddress: '127.0.0.1', portPool: peerPool, codecs: g711 ? ['PCMU', 'opus'] : ['opus'] });
        const pbx = await openEcho();
        // A call that never connects (a port taken by another process, say) must fail the rung, not hang the bench.
        const failed = new Promise<never>((_, reject) => {
          waiters.set(`failed:${id}`, (m) => reject(new Error(m.type === 'failed' ? m.error : 'failed')));
          setTimeout(() => reject(new Error('not connected within 30 s')), 30_000).unref();
        });
        failed.catch(() => undefined);
        const connected = waitFor<WorkerReply>(`connected:${id}`);
        const ans = await Promise.race([request<Extract<WorkerReply, { type: 'answer' }>>({ type: 'offer', id, sdp: leg.localSdp, echoPort: pbx.port }, `answer:${id}`), failed]);
        await leg.setRemoteAnswer(ans.sdp);
        await Promise.race([connected, failed]);
        await Promise.race([leg.connected, failed]);
        waiters.delete(`failed:${id}`);
        const p: Peer = { leg, echo: pbx, sent: 0, rx: new SeqTracker(), seq: id * 7, ts: id * 1000, frame: id % 50 };
        // From the moment the users talk: every gap in the gateway's sequence numbers is a packet it lost.
        leg.on('audio', (_payload, info) => { if (armed || p.rx.started) p.rx.add(info.sequenceNumber); });
        peers.push(p);
      })());
    }
    const settled = await Promise.allSettled(batch);
    for (const s of settled) if (s.status === 'rejected') failures.push((s.reason as Error).message);
  }
  const setupSeconds = (performance.now() - t0) / 1000;
  if (failures.length > 0) {
    // Leave nothing behind for the next rung: the gateway process and every peer socket go.
    worker.kill();
    await Promise.all(peers.map((p) => p.leg.close()));
    for (const e of echoes) e.close();
    throw new Error(`bench set-up failed for ${failures.length} calls: ${failures.slice(0, 3).join('; ')}`);
  }

  // The users talk on a steady clock spread over 10 phases, so their packets arrive spread across the gateway's frame.
  const clock = new IntervalFrameClock(20, 5, 10);
  for (const p of peers) {
    p.leg.readOnTick();
    p.echo.readOnTick();
  }
  const unsub = peers.map((p) => clock.subscribe(() => {
    if (!armed) return;
    p.leg.pollReceived();
    p.echo.poll();
    const payload = frames[p.frame++ % frames.length]!;
    p.leg.sendRtp({ payloadType: p.leg.audio.payloadType, sequenceNumber: p.seq++ & 0xffff, timestamp: (p.ts += ticksPerFrame(p.leg.audio)) >>> 0 }, payload);
    p.sent++;
  }));
  armed = true;
  // Steady state is measured: every call of the rung starts talking in the same instant, which no contact center
  // sees, and the gateway's event loop takes several seconds to settle after that (lag and latency tails measured
  // 2–3× higher in the first 5–6 s than after; CPU ~5 % higher).
  await new Promise((r) => setTimeout(r, WARM_UP_MS));
  const peerCpu0 = process.cpuUsage();
  const m = await request<Measured>({ type: 'measure', seconds: o.seconds }, 'measured');
  const peerCpu = process.cpuUsage(peerCpu0);
  armed = false;
  for (const u of unsub) u();
  await new Promise((r) => setTimeout(r, 300));
  const totals = await request<Totals>({ type: 'totals' }, 'totals');
  await new Promise((r) => setTimeout(r, 300));
  await Promise.all(peers.map((p) => p.leg.close()));
  for (const e of echoes) e.close();
  await new Promise<void>((r) => { if (worker.exitCode !== null) r(); else worker.once('exit', () => r()); });

  const sum = (f: (c: Totals['calls'][number]) => number): number => totals.calls.reduce((a, c) => a + f(c), 0);
  const loss = {
    waIn: Math.max(0, peers.reduce((a, p) => a + p.sent, 0) - sum((c) => c.waIn)),
    waOut: peers.reduce((a, p) => a + p.rx.lost, 0),
    sipIn: Math.max(0, echo.echoed - sum((c) => c.sipIn)),
    sipOut: sipTrackers.reduce((a, t) => a + t.lost, 0),
    late: sum((c) => c.late),
    skippedTicks: totals.skippedTicks,
    srtpDropped: sum((c) => c.srtpDropped),
  };
  const packets = sum((c) => c.waIn + c.waOut + c.sipIn + c.sipOut);
  const callsWithFec = totals.calls.filter((c) => c.opusExpectedLossPercent > 0).length;
  const addedLossPackets = loss.waIn + loss.waOut + loss.sipIn + loss.sipOut + loss.late + loss.srtpDropped;
  const callSeconds = m.calls * m.seconds;
  const cpuMsPerCallSecond = m.cpuMs / callSeconds;
  const lagP99Ms = m.lagP99Ms;
  return {
    calls: m.calls, planes: planeCount, fecAdaptive: o.fecAdaptive ?? true, tickReads: (o.tickReads ?? true) && tickReadsAvailable(), callsWithFec, mediaPath: o.mediaPath, fastLegs: m.fastLegs,
    encoderComplexity: o.waCodec === 'PCMU' ? { min: 0, max: 0 } : m.encoderComplexity, refusingCalls: m.saturated, seconds: round(m.seconds),
    cpuMsPerCallSecond: round(cpuMsPerCallSecond),
    kernelMsPerCallSecond: round(m.cpuSystemMs / callSeconds),
    cpuPercentOfOneCore: round((m.cpuMs / (m.seconds * 1000)) * 100),
    peerCpuPercentOfOneCore: round(((peerCpu.user + peerCpu.system) / 1000 / (m.seconds * 1000)) * 100),
    callsPerCoreByCpu: Math.floor(1000 / cpuMsPerCallSecond),
    lagP50Ms: round(m.lagP50Ms), lagP99Ms: round(lagP99Ms), lagMaxMs: round(m.lagMaxMs),
    latencyP50Ms: round(m.latencyP50Ms), latencyP99Ms: round(m.latencyP99Ms),
    addedLossPackets, addedLossPercent: packets > 0 ? round((addedLossPackets / packets) * 100, 4) : 0,
    loss,
    rssPerCallMiB: round((m.rssMiB - m.rssBaseMiB) / m.calls, 3),
    gc: { scavengesPerSecond: round(m.gc.scavenges / m.seconds), pauseMsPerSecond: round(m.gc.pauseTotalMs / m.seconds), pauseMaxMs: round(m.gc.pauseMaxMs), fullGcs: m.gc.fullGcs },
    setupSeconds: round(setupSeconds),
    holds: lagP99Ms < 5 && addedLossPackets === 0 && loss.skippedTicks === 0,
  };
}

function round(v: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [calls = '20', seconds = '10', mediaPath = 'fast', planes = '1'] = process.argv.slice(2);
  runSocketCalls({ calls: Number(calls), seconds: Number(seconds), mediaPath: mediaPath === 'werift' ? 'werift' : 'fast', complexity: 5, fec: true, bitrate: 24_000, planes: Number(planes) }).then(
    (r) => {
      console.log(JSON.stringify(r, null, 2));
      process.exit(0);
    },
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
