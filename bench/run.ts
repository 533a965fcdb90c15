/**
 * `npm run bench`: how fast the media engine is, as ratios measured in one run on this machine.
 *
 *  1. floor: Opus decode + encode (shipped encoder settings) and G.711 both ways for one call-second, nothing else;
 *     and what each encoder complexity costs in quality on speech (bench/encoder-quality.ts);
 *  2. the gateway's media path per call-second without sockets (bench/media-socketless.ts), on the fast SRTP path
 *     and on werift's per-packet path, and the fast path's ratio to the floor; what setting up one WhatsApp media
 *     leg (ICE, DTLS) costs the event loop the media shares (bench/call-setup.ts);
 *  3. N concurrent bridged calls over loopback with real sockets (bench/media-path.ts) for N = 50, 75, 100, 150, 200, 400,
 *     stopping at the first N that breaks a limit (event-loop lag p99 ≥ 5 ms, any added loss, any skipped tick) in two
 *     runs, then two bisection steps between the largest N that held and the first that broke;
 *  4. the same with G.711 toward WhatsApp (Meta transcoding, media.whatsappCodecs): no Opus in the gateway, from 1.5×
 *     the headline up by half again each rung until one breaks (not the headline).
 *
 * Prints tables and writes bench/results/latest.json (and a dated copy). Takes 4–8 minutes.
 *
 *   npm run bench [-- --calls 50,100,200,400] [--seconds 8] [--media-path fast|werift] [--complexity 5] [--fec 1]
 *                 [--fec-adaptive 0] [--load-adaptive 0] [--priority -10] [--planes 2] [--g711 0]
 */
import { readFileSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { codecFloorMs, runCodecFloor } from './codec-floor.js';
import { runCallSetup } from './call-setup.js';
import { runEncoderQuality } from './encoder-quality.js';
import { runSocketCalls, WARM_UP_MS, type SocketRunResult } from './media-path.js';
import { runSocketless } from './media-socketless.js';
import { opusFastPath } from '../src/media/opus-codec.js';
import { tickReadsAvailable } from '../src/media/tick-socket.js';
import { SRTP_AEAD_AES_128_GCM, SRTP_AES128_CM_HMAC_SHA1_80, SrtpContext, type SrtpProfile } from '../src/media/srtp.js';
import { SrtpReferenceContext } from '../src/media/srtp-reference.js';
import { nativeSrtpAvailable } from '../src/media/srtp-native.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

const ladder = arg('calls', '50,75,100,150,200,400').split(',').map(Number).filter((n) => n > 0);
const seconds = Number(arg('seconds', '8'));
const mediaPath = arg('media-path', 'fast') === 'werift' ? 'werift' : 'fast';
// --priority -10: run the gateway process at a higher scheduling priority, so other load on a shared machine
// disturbs its lag figures less (production media hosts do the same). Off by default.
const priorityArg = arg('priority', '');
const priority = priorityArg === '' ? undefined : Number(priorityArg);
// --planes 2: spread the calls over two worker threads of the gateway process (a media plane per core).
const planes = Math.max(1, Number(arg('planes', '1')) || 1);
// The shipped defaults (config media.opusComplexity / opusFec / opusFecAdaptive / opusBitrate). The peers report no
// loss (loopback), so with adaptive FEC the encoders run without FEC after the first receiver report, and the floor
// is measured the same way; --fec-adaptive 0 puts FEC (5 % expected loss) in every packet, floor included.
const fecAdaptive = arg('fec-adaptive', '1') !== '0';
const tickReads = arg('tick-reads', '1') !== '0';
// media.opusLoadAdaptive (shipped on): the encoders step down from --complexity while the gateway's loop is over 80 %
// busy; each rung reports the complexity they ran at. --load-adaptive 0: --complexity at every load.
const loadAdaptive = arg('load-adaptive', '1') !== '0';
const opus = {
  complexity: Number(arg('complexity', '5')), inbandFec: arg('fec', '1') !== '0', bitrate: Number(arg('bitrate', '24000')),
  lossAdaptive: fecAdaptive, expectedLossPercent: fecAdaptive ? 0 : undefined,
};

/** Share of time some task waited for a CPU over the last 10 s (Linux PSI): other load on a shared machine. */
function cpuPressure(): number | null {
  try {
    const m = /some avg10=([\d.]+)/.exec(readFileSync('/proc/pressure/cpu', 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

function round(v: number, d = 2): number {
  const f = 10 ** d;
  return Math.round(v * f) / f;
}

/**
 * CPU per wake-up of an idle event loop (a 1 ms interval for a second), in µs. On a VM this is often tens of µs,
 * and a gateway at moderate load wakes for most packets and ticks: it explains much of the CPU above the codecs.
 */
async function idleWakeupCostUs(): Promise<number> {
  let wakeups = 0;
  const cpu0 = process.cpuUsage();
  const timer = setInterval(() => wakeups++, 1);
  await new Promise((r) => setTimeout(r, 1000));
  clearInterval(timer);
  const cpu = process.cpuUsage(cpu0);
  return round((cpu.user + cpu.system) / Math.max(1, wakeups), 1);
}

const started = Date.now();
const machine = {
  cpuModel: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length, node: process.version,
  platform: `${process.platform}-${process.arch}`, totalMemMiB: Math.round(os.totalmem() / 2 ** 20),
  cpuPressureAtStart: cpuPressure(),
  idleWakeupCpuUs: await idleWakeupCostUs(),
};
console.log(`machine: ${machine.cpuModel}, ${machine.cores} cores, Node ${machine.node}, CPU pressure (PSI some avg10) ${machine.cpuPressureAtStart ?? 'n/a'} %, ${machine.idleWakeupCpuUs} µs CPU per idle event-loop wake-up`);

// 1 + 2, interleaved three times; the minimum of each is the least disturbed by other load on the machine.
const floorRuns: number[] = [];
const fastRuns: number[] = [];
const weriftRuns: number[] = [];
const g711Runs: number[] = [];
for (let round_ = 0; round_ < 3; round_++) {
  floorRuns.push(codecFloorMs(opus));
  fastRuns.push(runSocketless('fast', opus, 20, 400).msPerCallSecond);
  weriftRuns.push(runSocketless('werift', opus, 20, 400).msPerCallSecond);
  g711Runs.push(runSocketless('fast', opus, 20, 400, 'PCMU').msPerCallSecond);
}
const floorMs = Math.min(...floorRuns);
const fastMs = Math.min(...fastRuns);
const weriftMs = Math.min(...weriftRuns);
const g711Ms = Math.min(...g711Runs);
const floorRatio = fastMs / floorMs;
console.log('\nCPU per call-second (both directions), no sockets — min of 3 interleaved runs');
console.table([
  { what: 'floor: Opus dec+enc, G.711 both ways', msPerCallSecond: round(floorMs), ratioToFloor: 1, callsPerCore: Math.floor(1000 / floorMs) },
  { what: 'media path, fast SRTP (shipped)', msPerCallSecond: round(fastMs), ratioToFloor: round(fastMs / floorMs), callsPerCore: Math.floor(1000 / fastMs) },
  { what: "media path, werift's packet path", msPerCallSecond: round(weriftMs), ratioToFloor: round(weriftMs / floorMs), callsPerCore: Math.floor(1000 / weriftMs) },
  { what: 'media path, G.711 toward WhatsApp (no Opus)', msPerCallSecond: round(g711Ms), ratioToFloor: round(g711Ms / floorMs), callsPerCore: Math.floor(1000 / g711Ms) },
]);

const codecTable = runCodecFloor(2000);
console.log('\nCodec cost per setting (µs per 20 ms frame)');
console.table(codecTable);

// What stepping the encoder down under load costs in quality (bench/encoder-quality.ts).
const encoderQuality = runEncoderQuality([0, 2, 3, 5, 9], opus.bitrate);
console.log('\nOpus encoder quality by complexity, espeak-ng speech through G.711 (log-spectral distance: lower is closer)');
if (typeof encoderQuality === 'string') console.log(`skipped: ${encoderQuality}`);
else console.table(encoderQuality);

// SRTP alone: one protect + unprotect of an 82-byte RTP packet (a 20 ms Opus frame), consecutive sequence numbers.
function srtpPairMicros(make: (p: SrtpProfile, k: Buffer, s: Buffer) => Pick<SrtpContext, 'protect' | 'unprotect'>, profile: SrtpProfile, n: number): number {
  const key = Buffer.alloc(16, 7), salt = Buffer.alloc(14, 9);
  const tx = make(profile, key, salt), rx = make(profile, key, salt);
  const buf = Buffer.alloc(1500, 0x55).fill(0, 0, 12);
  buf[0] = 0x80; buf[1] = 111; buf.writeUInt32BE(0x12345678, 8);
  const out = { payloadOffset: 0 };
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    buf.writeUInt16BE(i & 0xffff, 2);
    if (rx.unprotect(buf, tx.protect(buf, 82), out) < 0) throw new Error('SRTP bench: authentication failed');
  }
  return Number(process.hrtime.bigint() - t0) / 1000 / n;
}
const srtpTable = ([['AES_CM_128_HMAC_SHA1_80', SRTP_AES128_CM_HMAC_SHA1_80], ['AEAD_AES_128_GCM', SRTP_AEAD_AES_128_GCM]] as const).map(([profile, p]) => {
  const old: number[] = [];
  const js: number[] = [];
  const native: number[] = [];
  for (let r = 0; r < 3; r++) {
    old.push(srtpPairMicros((...a) => new SrtpReferenceContext(...a), p, 20_000));
    js.push(srtpPairMicros((...a) => new SrtpContext(...a, { native: false }), p, 100_000));
    native.push(srtpPairMicros((...a) => new SrtpContext(...a), p, 100_000));
  }
  const best = (v: number[]): number => round(Math.min(...v));
  return { profile, oldPerPacketCipherUs: best(old), jsUs: best(js), nativeUs: nativeSrtpAvailable() ? best(native) : null, speedup: round(Math.min(...old) / Math.min(...native), 1) };
});
console.log('\nSRTP µs per protect+unprotect pair (old-style per-packet cipher, our JS path, our OpenSSL path), min of 3, one hot context');
console.table(srtpTable);

const callSetup = await runCallSetup(20);
console.log('\nWhatsApp media leg set-up (ICE + DTLS over loopback, werift user ⇄ our answer, both in this process), 20 pairs');
console.table([callSetup]);

// 3. The ladder.
/** The rung with the most calls. */
const largest = (rs: SocketRunResult[]): SocketRunResult | undefined => rs.reduce<SocketRunResult | undefined>((a, b) => (!a || b.calls > a.calls ? b : a), undefined);
const rows: SocketRunResult[] = [];
const tableRow = (r: SocketRunResult): Record<string, number | string | boolean> => ({
  N: r.calls, planes: r.planes, path: r.mediaPath, cpuMsPerCallS: r.cpuMsPerCallSecond, cpuPctOfCore: r.cpuPercentOfOneCore,
  encoderCx: r.encoderComplexity.min === r.encoderComplexity.max ? r.encoderComplexity.min : `${r.encoderComplexity.min}-${r.encoderComplexity.max}`,
  callsPerCoreByCpu: r.callsPerCoreByCpu, lagP50: r.lagP50Ms, lagP99: r.lagP99Ms, latP50: r.latencyP50Ms, latP99: r.latencyP99Ms,
  lossPct: r.addedLossPercent, skipped: r.loss.skippedTicks, rssMiBPerCall: r.rssPerCallMiB, gcPerS: r.gc.scavengesPerSecond,
  gcMaxMs: r.gc.pauseMaxMs, refusing: r.refusingCalls, holds: r.holds,
});
const runOnce = async (calls: number, waCodec: 'opus' | 'PCMU'): Promise<SocketRunResult | null> => {
  process.stdout.write(`\n${calls} calls (${mediaPath} path${waCodec === 'opus' ? '' : ', G.711 toward WhatsApp'}): setting up…`);
  try {
    const r = await runSocketCalls({ calls, seconds, mediaPath, complexity: opus.complexity, fec: opus.inbandFec, fecAdaptive, tickReads, bitrate: opus.bitrate, priority, planes, waCodec, loadAdaptive });
    console.log(` set up in ${r.setupSeconds} s, measured ${r.seconds} s`);
    console.table([tableRow(r)]);
    return r;
  } catch (err) {
    console.log(` failed: ${(err as Error).message}`);
    return null;
  }
};
// A rung that breaks runs once more, and the better run counts, as the floor takes the least disturbed of three: on
// a shared VM other load only ever makes a run worse (CPU per call-second moved by ±20 % between identical runs
// here). The broken run stays in latest.json (`firstRun`).
const runRung = async (calls: number, waCodec: 'opus' | 'PCMU' = 'opus', into = rows): Promise<SocketRunResult | null> => {
  const first = await runOnce(calls, waCodec);
  if (first?.holds) {
    into.push(first);
    return first;
  }
  console.log(`${calls} calls broke a limit: running it again`);
  const second = await runOnce(calls, waCodec);
  const r = second?.holds || !first ? second : first;
  if (r) into.push(r === second && first ? { ...r, firstRun: first } : r);
  return r;
};
let broke: number | null = null;
for (const calls of ladder) {
  const r = await runRung(calls);
  if (!r?.holds) {
    broke = calls;
    break;
  }
}
// Between the largest N that held (or 0) and the first that broke, halve the gap twice (to multiples of 5), so the
// headline is not just the rung below.
if (broke !== null) {
  let low = Math.max(0, ...rows.filter((r) => r.holds).map((r) => r.calls));
  let high = broke;
  for (let step = 0; step < 2; step++) {
    const mid = Math.round((low + high) / 2 / 5) * 5;
    if (mid <= low || mid >= high) break;
    const r = await runRung(mid);
    if (r?.holds) low = mid;
    else high = mid;
  }
}
rows.sort((a, b) => a.calls - b.calls);

// G.711 toward WhatsApp (media.whatsappCodecs, Meta transcoding): no Opus in the gateway. Not the headline, which is
// about transcoding; its own ladder, by half again each rung, from the transcoding headline up (skip with --g711 0).
const g711Rows: SocketRunResult[] = [];
if (arg('g711', '1') !== '0') {
  const start = Math.max(50, ...rows.filter((r) => r.holds).map((r) => r.calls));
  for (let calls = Math.round(start * 1.5 / 5) * 5; calls <= 1000; calls = Math.round(calls * 1.5 / 5) * 5) {
    const r = await runRung(calls, 'PCMU', g711Rows);
    if (!r?.holds) break;
  }
}
const g711Holding = g711Rows.filter((r) => r.holds);
const g711Headline = largest(g711Holding);

// Before/after: werift's own media path at the first rung, same settings, same run (skip with --compare 0).
let comparison: SocketRunResult | null = null;
if (arg('compare', '1') !== '0' && mediaPath === 'fast' && ladder.length > 0) {
  const calls = ladder[0]!;
  process.stdout.write(`\n${calls} calls on werift's media path, for comparison: setting up…`);
  try {
    comparison = await runSocketCalls({ calls, seconds, mediaPath: 'werift', complexity: opus.complexity, fec: opus.inbandFec, fecAdaptive, tickReads, bitrate: opus.bitrate, priority, planes, loadAdaptive });
    console.log(` set up in ${comparison.setupSeconds} s`);
  } catch (err) {
    console.log(` failed: ${(err as Error).message}`);
  }
}

const LATENCY_TARGET_MS = 3;
const holding = rows.filter((r) => r.holds);
const headline = largest(holding) ?? rows[0];
// Near a full core the headline's latency p99 grows with every stall the loop must catch up from; the largest rung
// that also kept latency p99 under the target is the figure to plan capacity by.
const withinLatency = largest(holding.filter((r) => r.latencyP99Ms < LATENCY_TARGET_MS));
const perCore = (calls: number): number => Math.floor(calls / Math.min(planes, machine.cores));
const result = {
  at: new Date().toISOString(),
  durationSeconds: Math.round((Date.now() - started) / 1000),
  machine: { ...machine, cpuPressureAtEnd: cpuPressure() },
  settings: { opus, opusLoadAdaptive: loadAdaptive, fecAdaptive, tickReads: tickReads && tickReadsAvailable(), mediaPath, seconds, warmUpSeconds: WARM_UP_MS / 1000, opusFastPath, gatewayPriority: priority ?? null, planes },
  // Headline: the largest N that held lag p99 < 5 ms with zero added loss (0 when none did), per core the planes used.
  callsPerCore: holding.length > 0 ? perCore(headline!.calls) : 0,
  callsPerCoreWithinLatencyTarget: withinLatency ? perCore(withinLatency.calls) : 0,
  latencyTargetMs: LATENCY_TARGET_MS,
  callsPerCoreByCpu: headline?.callsPerCoreByCpu ?? null,
  floorRatio: round(floorRatio),
  lagP99Ms: headline?.lagP99Ms ?? null,
  latencyP99Ms: headline?.latencyP99Ms ?? null,
  rssPerCallMiB: headline?.rssPerCallMiB ?? null,
  headlineCalls: headline?.calls ?? null,
  // The encoders' complexity at the headline: below settings.opus.complexity when the load governor stepped in.
  headlineEncoderComplexity: headline?.encoderComplexity ?? null,
  // The headline's CPU per call-second with sockets over this run's floor: the VM's speed moves both, so this ratio
  // compares runs made at different times (the calls-per-core figures do not).
  socketFloorRatio: headline ? round(headline.cpuMsPerCallSecond / floorMs) : null,
  floor: { msPerCallSecond: round(floorMs), runs: floorRuns.map((v) => round(v)) },
  mediaPathNoSockets: {
    fast: { msPerCallSecond: round(fastMs), ratioToFloor: round(fastMs / floorMs), runs: fastRuns.map((v) => round(v)) },
    werift: { msPerCallSecond: round(weriftMs), ratioToFloor: round(weriftMs / floorMs), runs: weriftRuns.map((v) => round(v)) },
    // Meta carrying G.711 (media.whatsappCodecs): no Opus in the gateway; not the headline, which is about transcoding.
    g711ToWhatsApp: { msPerCallSecond: round(g711Ms), ratioToFloor: round(g711Ms / floorMs), runs: g711Runs.map((v) => round(v)) },
  },
  codecs: codecTable,
  encoderQuality: typeof encoderQuality === 'string' ? { skipped: encoderQuality } : encoderQuality,
  srtp: srtpTable,
  callSetup,
  calls: rows,
  // The same ladder rules with G.711 toward WhatsApp: callsPerCore is the largest N that held, per core.
  g711ToWhatsApp: {
    callsPerCore: g711Headline ? perCore(g711Headline.calls) : 0,
    cpuMsPerCallSecond: g711Headline?.cpuMsPerCallSecond ?? null,
    rows: g711Rows,
  },
  weriftPathComparison: comparison,
};

console.log('\nConcurrent calls over loopback (gateway process only; lag/latency in ms)');
console.table([...rows, ...(comparison ? [comparison] : [])].map(tableRow));
const cx = result.headlineEncoderComplexity;
console.log(`\nheadline: ${result.callsPerCore} calls per core holding lag p99 < 5 ms with no added loss` +
  (cx ? `, Opus encoders at complexity ${cx.min === cx.max ? cx.min : `${cx.min}-${cx.max}`} (configured ${opus.complexity}${loadAdaptive ? ', load-adaptive' : ''})` : '') +
  ` (CPU alone would allow ${result.callsPerCoreByCpu ?? '?'}); floor ratio ${result.floorRatio}; with sockets ${result.socketFloorRatio ?? '?'}× the floor;` +
  ` CPU pressure from other processes ${machine.cpuPressureAtStart ?? 'n/a'} → ${result.machine.cpuPressureAtEnd ?? 'n/a'} %`);
console.log(`latency p99 at the headline ${result.latencyP99Ms ?? '?'} ms; ${result.callsPerCoreWithinLatencyTarget} calls per core also kept it under ${LATENCY_TARGET_MS} ms` +
  (withinLatency ? ` (${withinLatency.latencyP99Ms} ms at ${withinLatency.calls} calls)` : ''));
if (g711Rows.length > 0) {
  console.log('\nG.711 toward WhatsApp (no Opus in the gateway)');
  console.table(g711Rows.map(tableRow));
  console.log(`G.711 toward WhatsApp: ${result.g711ToWhatsApp.callsPerCore} calls per core by the same rule`);
}

const dir = fileURLToPath(new URL('./results/', import.meta.url));
mkdirSync(dir, { recursive: true });
writeFileSync(`${dir}latest.json`, JSON.stringify(result, null, 2) + '\n');
writeFileSync(`${dir}bench-${result.at.replace(/[:.]/g, '-')}.json`, JSON.stringify(result, null, 2) + '\n');
console.log(`written: bench/results/latest.json (${result.durationSeconds} s)`);
process.exit(0);
