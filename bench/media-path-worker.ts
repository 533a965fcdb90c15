/**
 * Gateway side of bench/media-path.ts, in its own process so that its CPU time, event-loop lag and memory are its
 * own: per call a WebRtcLeg (answering the peer's offer, SRTP) ⇄ Bridge ⇄ RtpLeg (plain RTP to the parent's echo),
 * on the shared phased frame clock, exactly as the gateway runs them. Driven by IPC from the parent.
 *
 * With `planes` > 1 the calls run in that many worker threads of this process (a media plane per thread, each with
 * its own event loop and frame clock); the main thread only routes the parent's requests, and measures CPU and
 * memory for the whole process while each plane measures its own event-loop lag and latency.
 *
 * Added one-way latency is measured where it arises: every packet the bridges send is timed against the deadline
 * of the tick that produced it (IntervalFrameClock.tickDeadline), so it is the time the gateway adds beyond its
 * 20 ms schedule (event-loop lateness + the work done before this call's send in its phase), not the jitter
 * buffer's or the SIP queue's target delay.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { PerformanceObserver, constants as perfConstants, monitorEventLoopDelay, type PerformanceEntry } from 'node:perf_hooks';
import { Worker, isMainThread, parentPort } from 'node:worker_threads';
import { Bridge } from '../src/media/bridge.js';
import { encoderLoadGovernor } from '../src/media/encoder-load-governor.js';
import { sharedFrameClock } from '../src/media/frame-clock.js';
import { PortPool } from '../src/media/port-pool.js';
import { RtpLeg } from '../src/media/rtp-leg.js';
import { observeTickFlushes, tickReadsAvailable } from '../src/media/tick-socket.js';
import { WebRtcLeg } from '../src/media/webrtc-leg.js';

export type WorkerRequest =
  | {
    type: 'init'; mediaPath: 'fast' | 'werift'; complexity: number; fec: boolean; fecAdaptive: boolean; tickReads: boolean; bitrate: number;
    /** media.opusLoadAdaptive: the encoders step down from `complexity` while the plane's loop is busy. */
    loadAdaptive: boolean;
    /** 'PCMU': the peers offer G.711 beside Opus and the gateway takes it (media.whatsappCodecs [PCMU, PCMA, opus]). */
    waCodec: 'opus' | 'PCMU';
    ports: [number, number]; planes: number;
  }
  | { type: 'offer'; id: number; sdp: string; echoPort: number }
  | { type: 'measure'; seconds: number }
  | { type: 'totals' };

export interface Measured {
  type: 'measured';
  calls: number;
  cpuMs: number;
  /** Of cpuMs, time in the kernel (UDP send/receive over loopback, timers, epoll). */
  cpuSystemMs: number;
  seconds: number;
  lagP50Ms: number;
  lagP99Ms: number;
  lagMaxMs: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  latencySamples: number;
  rssMiB: number;
  rssBaseMiB: number;
  fastLegs: number;
  /** The Opus encoders' complexity at the end of the window, lowest and highest over the planes (load-adaptive). */
  encoderComplexity: { min: number; max: number };
  /** The load governor found a plane saturated at the end of the window: the gateway would refuse new calls. */
  saturated: boolean;
  /** Garbage collections in the window: young-generation scavenges, full (mark-compact) collections, pauses. */
  gc: { scavenges: number; fullGcs: number; pauseTotalMs: number; pauseMaxMs: number };
}

export interface Totals {
  type: 'totals';
  /** Per call. skippedTicks: frame ticks the clock gave up on during the measurement window. */
  calls: Array<{ id: number; waIn: number; waOut: number; sipIn: number; sipOut: number; late: number; srtpDropped: number; opusExpectedLossPercent: number }>;
  skippedTicks: number;
}

export type WorkerReply =
  | { type: 'ready' }
  | { type: 'answer'; id: number; sdp: string }
  | { type: 'connected'; id: number }
  | { type: 'failed'; id: number; error: string }
  | Measured
  | Totals;

// Port ranges come with 'init': several media planes run side by side.
let wpool = new PortPool(30000, 34998);
let spool = new PortPool(35000, 39998);
const calls: Array<{ id: number; wa: WebRtcLeg; sip: RtpLeg; bridge: Bridge }> = [];
let settings: Extract<WorkerRequest, { type: 'init' }> | null = null;
let rssBase = 0;
let skippedAtStart = 0;
let skippedInWindow = 0;

// Latency samples (ms) of the measurement window, in a preallocated ring: no allocation per packet.
const samples = new Float64Array(1 << 21);
let sampleCount = 0;
let recording = false;
// With tick reads, sends leave together after the tick (tick-socket.ts): a send's latency ends at that flush.
const pendingDeadlines = new Float64Array(1 << 14);
let pendingCount = 0;
let deferredSends = false;
function record(): void {
  if (!recording) return;
  if (!deferredSends) samples[sampleCount++ & (samples.length - 1)] = performance.now() - sharedFrameClock.tickDeadline;
  else if (pendingCount < pendingDeadlines.length) pendingDeadlines[pendingCount++] = sharedFrameClock.tickDeadline;
}
observeTickFlushes(() => {
  const now = performance.now();
  for (let i = 0; i < pendingCount; i++) samples[sampleCount++ & (samples.length - 1)] = now - pendingDeadlines[i]!;
  pendingCount = 0;
});

let send = (msg: WorkerReply): void => {
  process.send!(msg);
};

const LAG_PROBE_MS = Number(process.env.BENCH_LAG_PROBE_MS ?? 1);

/** A probe interval (ns) as event-loop lag (ms): how much later than LAG_PROBE_MS the probe ran. */
function lagMs(intervalNs: number): number {
  return Math.max(0, intervalNs / 1e6 - LAG_PROBE_MS);
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function onOffer(msg: Extract<WorkerRequest, { type: 'offer' }>): Promise<void> {
  const s = settings!;
  const wa = await WebRtcLeg.answer(msg.sdp, { bindAddress: '127.0.0.1', portPool: wpool, mediaPath: s.mediaPath, codecs: s.waCodec === 'PCMU' ? ['PCMU', 'PCMA', 'opus'] : ['opus'] });
  const sip = await RtpLeg.open({ pool: spool, bindAddress: '127.0.0.1' });
  sip.setRemote('127.0.0.1', msg.echoPort);
  // Time each send against its tick's deadline (see the file comment); the wrappers cost two clock reads.
  const sipSend = sip.send.bind(sip);
  sip.send = (buf, offset, length) => {
    record();
    return sipSend(buf, offset, length);
  };
  const waSend = wa.sendRtp.bind(wa);
  wa.sendRtp = (params, payload, offset, length) => {
    record();
    waSend(params, payload, offset, length);
  };
  const bridge = new Bridge(wa, sip, {
    sipCodec: 'PCMU', sipDtmfPayloadType: 101, mediaTimeoutMs: 3_600_000,
    opus: { complexity: s.complexity, inbandFec: s.fec, bitrate: s.bitrate, lossAdaptive: s.fecAdaptive, minComplexity: s.loadAdaptive ? 0 : s.complexity },
    governed: true,
    tickReads: s.tickReads,
  });
  calls.push({ id: msg.id, wa, sip, bridge });
  bridge.start();
  send({ type: 'answer', id: msg.id, sdp: wa.localSdp });
  await wa.connected;
  bridge.startWhatsAppMedia();
  send({ type: 'connected', id: msg.id });
}

async function onRequest(msg: WorkerRequest): Promise<void> {
  if (msg.type === 'init') {
    settings = msg;
    deferredSends = msg.tickReads && tickReadsAvailable();
    const [lo, hi] = msg.ports;
    const mid = lo + Math.floor((hi - lo) / 4) * 2;
    wpool = new PortPool(lo, mid - 2);
    spool = new PortPool(mid, hi);
    global.gc?.();
    rssBase = process.memoryUsage().rss;
    send({ type: 'ready' });
  } else if (msg.type === 'offer') {
    onOffer(msg).catch((err: Error) => send({ type: 'failed', id: msg.id, error: err.message }));
  } else if (msg.type === 'measure') {
    // The probe is a timer re-armed every LAG_PROBE_MS; the histogram holds whole intervals, so the lag is the excess.
    const h = monitorEventLoopDelay({ resolution: LAG_PROBE_MS });
    // BENCH_PROFILE=<file>: a CPU profile of the measurement window only (steady state, no set-up);
    // BENCH_HEAP_PROFILE=<file>: where that window allocates (V8's sampling heap profiler, every 4 KiB).
    const profileTo = process.env.BENCH_PROFILE;
    const heapTo = process.env.BENCH_HEAP_PROFILE;
    const session = profileTo || heapTo ? new Session() : null;
    if (session) {
      session.connect();
      if (profileTo) {
        await session.post('Profiler.enable');
        await session.post('Profiler.start');
      }
      if (heapTo) await session.post('HeapProfiler.startSampling', { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
    }
    // Pauses of this isolate's collector: what an allocation per packet costs the latency tail.
    const gc = { scavenges: 0, fullGcs: 0, pauseTotalMs: 0, pauseMaxMs: 0 };
    const gcObserver = new PerformanceObserver((list) => {
      for (const e of list.getEntries() as Array<PerformanceEntry & { detail?: { kind?: number } }>) {
        if (e.detail?.kind === perfConstants.NODE_PERFORMANCE_GC_MINOR) gc.scavenges++;
        else if (e.detail?.kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR) gc.fullGcs++;
        gc.pauseTotalMs += e.duration;
        gc.pauseMaxMs = Math.max(gc.pauseMaxMs, e.duration);
      }
    });
    gcObserver.observe({ entryTypes: ['gc'] });
    sampleCount = 0;
    recording = true;
    skippedAtStart = sharedFrameClock.skippedTotal;
    h.enable();
    // Stalls: a 1 ms interval that fires late; the CPU this process used meanwhile says whether the stall was its
    // own work (CPU ≈ gap) or the machine not running it (CPU ≈ 0).
    const stalls: Array<{ gapMs: number; cpuMs: number }> = [];
    let lastT = performance.now();
    let lastCpu = process.cpuUsage();
    const stallTimer = process.env.BENCH_STALLS ? setInterval(() => {
      const t = performance.now();
      const c = process.cpuUsage();
      if (t - lastT > 15) stalls.push({ gapMs: Math.round(t - lastT), cpuMs: Math.round((c.user + c.system - lastCpu.user - lastCpu.system) / 1000) });
      lastT = t;
      lastCpu = c;
    }, 1) : null;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, msg.seconds * 1000));
    const cpu = process.cpuUsage(cpu0);
    const seconds = (performance.now() - t0) / 1000;
    h.disable();
    gcObserver.disconnect();
    if (stallTimer) {
      clearInterval(stallTimer);
      console.error('stalls (gap ms / own CPU ms):', stalls.map((x) => `${x.gapMs}/${x.cpuMs}`).join(' '));
    }
    recording = false;
    skippedInWindow = sharedFrameClock.skippedTotal - skippedAtStart;
    if (session && profileTo) {
      const { profile } = await session.post('Profiler.stop');
      writeFileSync(profileTo, JSON.stringify(profile));
    }
    if (session && heapTo) {
      const { profile } = await session.post('HeapProfiler.stopSampling');
      writeFileSync(heapTo, JSON.stringify(profile));
    }
    session?.disconnect();
    const s = settings!;
    const encoderNow = s.loadAdaptive ? Math.max(0, s.complexity - encoderLoadGovernor().level) : s.complexity;
    const n = Math.min(sampleCount, samples.length);
    const sorted = samples.slice(0, n).sort();
    send({
      type: 'measured', calls: calls.length, cpuMs: (cpu.user + cpu.system) / 1000, cpuSystemMs: cpu.system / 1000, seconds,
      lagP50Ms: lagMs(h.percentile(50)), lagP99Ms: lagMs(h.percentile(99)), lagMaxMs: lagMs(h.max),
      latencyP50Ms: percentile(sorted, 50), latencyP99Ms: percentile(sorted, 99), latencySamples: n,
      rssMiB: process.memoryUsage().rss / 2 ** 20, rssBaseMiB: rssBase / 2 ** 20,
      fastLegs: calls.filter((c) => c.wa.mediaPath === 'fast').length, gc,
      encoderComplexity: { min: encoderNow, max: encoderNow }, saturated: encoderLoadGovernor().saturated,
    });
  } else if (msg.type === 'totals') {
    // What the peers sent last may still wait in the sockets for the next tick (tick reads): read it first. Then
    // stop the ticks (synchronously, in stop()) so nothing more is sent, and read the final counters.
    for (const c of calls) {
      c.wa.pollReceived();
      c.sip.pollReceived();
    }
    const stops = calls.map((c) => c.bridge.stop());
    const out: Totals['calls'] = calls.map((c) => {
      const q = c.bridge.quality();
      return {
        id: c.id, waIn: c.wa.stats.packetsIn, waOut: q.whatsapp.packetsOut, sipIn: q.sip.packetsIn, sipOut: q.sip.packetsOut,
        late: q.whatsapp.late, srtpDropped: c.wa.stats.srtpDropped, opusExpectedLossPercent: c.bridge.details.opusExpectedLossPercent,
      };
    });
    const skippedTicks = skippedInWindow;
    await Promise.all(stops);
    send({ type: 'totals', calls: out, skippedTicks });
    if (isMainThread) setTimeout(() => process.exit(0), 50);
  }
}

/** Spreads the calls over `planes` worker threads; CPU and memory are the process's, lag and latency the worst plane's. */
async function route(init: Extract<WorkerRequest, { type: 'init' }>): Promise<void> {
  const code = `import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(import.meta.url)}); })`;
  const planes = Array.from({ length: init.planes }, () => new Worker(code, { eval: true }));
  const collect = <T extends WorkerReply>(type: T['type']): Promise<T[]> => Promise.all(planes.map((w) => new Promise<T>((resolve) => {
    const on = (m: WorkerReply): void => {
      if (m.type !== type) return;
      w.off('message', on);
      resolve(m as T);
    };
    w.on('message', on);
  })));
  for (const w of planes) {
    w.on('message', (m: WorkerReply) => {
      if (m.type === 'answer' || m.type === 'connected' || m.type === 'failed') send(m);
    });
    w.on('error', (err) => console.error('media plane failed:', err));
  }
  const [lo, hi] = init.ports;
  const span = Math.floor((hi - lo) / init.planes / 2) * 2;
  const ready = collect('ready');
  planes.forEach((w, k) => w.postMessage({ ...init, planes: 1, ports: [lo + k * span, lo + (k + 1) * span - 2] }));
  await ready;
  global.gc?.();
  rssBase = process.memoryUsage().rss;
  send({ type: 'ready' });
  process.on('message', async (msg: WorkerRequest) => {
    if (msg.type === 'offer') {
      planes[msg.id % planes.length]!.postMessage(msg);
    } else if (msg.type === 'measure') {
      const cpu0 = process.cpuUsage();
      const measured = collect<Measured>('measured');
      for (const w of planes) w.postMessage(msg);
      const ms = await measured;
      const cpu = process.cpuUsage(cpu0);
      send({
        type: 'measured', calls: ms.reduce((a, m) => a + m.calls, 0),
        cpuMs: (cpu.user + cpu.system) / 1000, cpuSystemMs: cpu.system / 1000, seconds: Math.max(...ms.map((m) => m.seconds)),
        lagP50Ms: Math.max(...ms.map((m) => m.lagP50Ms)), lagP99Ms: Math.max(...ms.map((m) => m.lagP99Ms)),
        lagMaxMs: Math.max(...ms.map((m) => m.lagMaxMs)), latencyP50Ms: Math.max(...ms.map((m) => m.latencyP50Ms)),
        latencyP99Ms: Math.max(...ms.map((m) => m.latencyP99Ms)), latencySamples: ms.reduce((a, m) => a + m.latencySamples, 0),
        rssMiB: process.memoryUsage().rss / 2 ** 20, rssBaseMiB: rssBase / 2 ** 20, fastLegs: ms.reduce((a, m) => a + m.fastLegs, 0),
        encoderComplexity: { min: Math.min(...ms.map((m) => m.encoderComplexity.min)), max: Math.max(...ms.map((m) => m.encoderComplexity.max)) },
        saturated: ms.some((m) => m.saturated),
        gc: {
          scavenges: ms.reduce((a, m) => a + m.gc.scavenges, 0), fullGcs: ms.reduce((a, m) => a + m.gc.fullGcs, 0),
          pauseTotalMs: ms.reduce((a, m) => a + m.gc.pauseTotalMs, 0), pauseMaxMs: Math.max(...ms.map((m) => m.gc.pauseMaxMs)),
        },
      });
    } else if (msg.type === 'totals') {
      const totals = collect<Totals>('totals');
      for (const w of planes) w.postMessage(msg);
      const ts = await totals;
      send({ type: 'totals', calls: ts.flatMap((t) => t.calls), skippedTicks: ts.reduce((a, t) => a + t.skippedTicks, 0) });
      setTimeout(() => process.exit(0), 50);
    }
  });
}

if (!isMainThread) {
  send = (msg) => parentPort!.postMessage(msg);
  parentPort!.on('message', (msg: WorkerRequest) => void onRequest(msg));
} else {
  process.once('message', (first: WorkerRequest) => {
    if (first.type === 'init' && first.planes > 1) {
      void route(first);
    } else {
      process.on('message', (msg: WorkerRequest) => void onRequest(msg));
      void onRequest(first);
    }
  });
}
