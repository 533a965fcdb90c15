/**
 * Media sockets read on the media tick instead of on arrival.
 *
 * Read on arrival, each datagram costs a libuv read, a JS callback with a fresh rinfo object and an EventEmitter
 * dispatch, and each send a dgram request object and its own crossing into C++. A bridge only uses what arrived
 * when its 20 ms tick comes, so the tick can fetch it: libuv stops watching the socket, and the tick drains it
 * with one non-blocking recvmmsg (native/udp_batch.c, built by `npm ci`), the source as numbers, no objects.
 * Sends are queued and leave together in one native call when the shared clock's phase is done (afterPhase), or in
 * a microtask right after any other clock's callback (so no extra turn of the loop). Measured at 40 bridged calls: about 14.4 ms of CPU per call-second against 16.1 read
 * on arrival (alternating runs). The loop blocked about 400 times a second either way: it was never woken once
 * per packet, which an earlier estimate here assumed.
 *
 * Arrival times still matter (jitter, the jitter buffer): the kernel stamps each datagram (SO_TIMESTAMPNS) and
 * the handler gets that time, not the tick's.
 *
 * Without the addon (no compiler at install time, not Linux) or with Node internals that differ, attach() returns
 * null and the socket stays read on arrival: slower, same behaviour.
 */
import type dgram from 'node:dgram';
import { isIPv4, isIPv6 } from 'node:net';
import { sharedFrameClock } from './frame-clock.js';
import { loadMediaAddon, type MediaAddon } from './native-addon.js';
import { dgramState, type DgramState, type UdpHandle } from './udp-socket.js';

/** An address in the form the addon reads and writes: IPv4 in a0 (host order), IPv6 in four big-endian words. */
export interface NumericAddress {
  family: 4 | 6;
  port: number;
  a0: number;
  a1: number;
  a2: number;
  a3: number;
}

/** The owner's stats this socket adds to, so bad input and kernel refusals show there instead of vanishing. */
export interface TickSocketCounters {
  /** Datagrams larger than a slot (2 KiB): the kernel cut them, so they were dropped. */
  droppedInvalid: number;
  /** Queued sends the kernel refused. */
  sendErrors: number;
}

/**
 * Called once per datagram. The datagram is `packet[0, length)`: `packet` is the whole slot of a shared area (a view
 * made once, so a packet costs no allocation) and is longer than the datagram. Use it before returning, never keep it.
 * `arrivedAt` is when the kernel received it, on performance.now()'s scale (the poll's own time when the kernel
 * gave none): read on the tick, packets are handled up to 20 ms late, and jitter must be measured on arrival.
 */
export type TickPacketHandler = (packet: Buffer, length: number, from: NumericAddress, arrivedAt: number) => void;

const SLOT = 2048;
const BATCH = 64;
const META_WORDS = 8;
// One receive area for the process: polls run one at a time on the event loop.
const area = Buffer.allocUnsafe(SLOT * BATCH);
const slots = Array.from({ length: BATCH }, (_, i) => area.subarray(i * SLOT, (i + 1) * SLOT));
const meta = new Int32Array(BATCH * META_WORDS);
const ages = new Float64Array(BATCH);
const from: NumericAddress = { family: 4, port: 0, a0: 0, a1: 0, a2: 0, a3: 0 };
let polling = false;

const SEND_SLOT = 1536;
const SEND_MAX = 512;
const sendArea = Buffer.allocUnsafe(SEND_SLOT * SEND_MAX);
const sendMeta = new Int32Array(SEND_MAX * META_WORDS);
const sendOwners: Array<TickSocket | null> = new Array<TickSocket | null>(SEND_MAX).fill(null);
let queued = 0;
let flushScheduled = false;
let flushObserver: ((sent: number) => void) | null = null;

/** Whether sockets can be read on the tick here (the addon loaded). */
export function tickReadsAvailable(): boolean {
  return loadMediaAddon() !== null;
}

/** Sends everything queued by TickSocket.sendTo, in one native call. */
export function flushTickSends(): void {
  flushScheduled = false;
  const n = queued;
  const addon = loadMediaAddon();
  if (n === 0 || !addon) return;
  queued = 0;
  for (let i = 0; i < n; i++) {
    // A socket closed since it queued: its fd number may already belong to another socket.
    if (sendOwners[i]!.closed) sendMeta[i * META_WORDS + 1] = -1;
  }
  addon.sendBatch(sendArea, SEND_SLOT, sendMeta, n);
  for (let i = 0; i < n; i++) {
    const owner = sendOwners[i]!;
    if (sendMeta[i * META_WORDS + 1]! < 0 && !owner.closed) owner.sendFailed();
    sendOwners[i] = null;
  }
  flushObserver?.(n);
}

// Bridges on the shared clock: each phase's sends leave when that phase is done.
sharedFrameClock.afterPhase = flushTickSends;

/** Benchmarks: told how many datagrams each flush handed to the kernel, right after it did. */
export function observeTickFlushes(fn: ((sent: number) => void) | null): void {
  flushObserver = fn;
}

export class TickSocket {
  /** Datagrams larger than a slot: cut off by the kernel, so dropped here. */
  truncated = 0;
  /** recv or send errors other than "nothing waiting". */
  errors = 0;

  private constructor(
    private readonly fd: number,
    private readonly lib: MediaAddon,
    private readonly state: DgramState,
    private readonly handle: UdpHandle,
    private readonly counters: TickSocketCounters,
  ) {}

  get closed(): boolean {
    return this.state.handle !== this.handle;
  }

  /**
   * Takes the reading of a bound socket away from libuv. From then on only poll() reads it: the caller must poll
   * on every tick. Returns null (and changes nothing) when the addon or Node's dgram internals are missing.
   */
  static attach(socket: dgram.Socket, counters: TickSocketCounters = { droppedInvalid: 0, sendErrors: 0 }): TickSocket | null {
    const lib = loadMediaAddon();
    const state = lib ? dgramState(socket) : undefined;
    const handle = state?.handle;
    if (!lib || !state || !handle || typeof handle.fd !== 'number' || handle.fd < 0 || typeof handle.recvStop !== 'function') return null;
    handle.recvStop();
    // Without arrival stamps the poll's time stands in (jitter then reads in whole ticks); not worth refusing.
    lib.timestamps(handle.fd);
    return new TickSocket(handle.fd, lib, state, handle, counters);
  }

  /** @internal flushTickSends reports a refused datagram. */
  sendFailed(): void {
    this.errors++;
    this.counters.sendErrors++;
  }

  /** Reads every waiting datagram and hands each to `onPacket`; returns how many were read. */
  poll(onPacket: TickPacketHandler): number {
    if (this.closed || polling) return 0;
    polling = true;
    let total = 0;
    try {
      for (;;) {
        const n = this.lib.recv(this.fd, area, SLOT, BATCH, meta, ages);
        if (n < 0) {
          this.errors++;
          break;
        }
        const readAt = performance.now();
        for (let i = 0; i < n; i++) {
          const m = i * META_WORDS;
          if (meta[m + 3] !== 0) {
            this.truncated++;
            this.counters.droppedInvalid++;
            continue;
          }
          const family = meta[m + 2]!;
          if (family !== 4 && family !== 6) continue;
          from.family = family;
          from.port = meta[m + 1]!;
          from.a0 = meta[m + 4]! >>> 0;
          from.a1 = meta[m + 5]! >>> 0;
          from.a2 = meta[m + 6]! >>> 0;
          from.a3 = meta[m + 7]! >>> 0;
          const age = ages[i]!;
          onPacket(slots[i]!, meta[m]!, from, age >= 0 ? readAt - age : readAt);
          if (this.closed) return total + i + 1;
        }
        total += n;
        if (n < BATCH) break;
      }
    } finally {
      polling = false;
    }
    return total;
  }

  /**
   * Queues one datagram (copied, so `buf` is free again at once); it leaves with the others when the current
   * event-loop turn's work is done. False when it cannot be sent (socket closed, too large).
   */
  sendTo(buf: Uint8Array, offset: number, length: number, to: NumericAddress): boolean {
    if (this.closed || length > SEND_SLOT) return false;
    if (queued === SEND_MAX) flushTickSends();
    const i = queued++;
    const base = i * SEND_SLOT;
    for (let k = 0; k < length; k++) sendArea[base + k] = buf[offset + k]!;
    const m = i * META_WORDS;
    sendMeta[m] = this.fd;
    sendMeta[m + 1] = length;
    sendMeta[m + 2] = to.family;
    sendMeta[m + 3] = to.port;
    sendMeta[m + 4] = to.a0 | 0;
    sendMeta[m + 5] = to.a1 | 0;
    sendMeta[m + 6] = to.a2 | 0;
    sendMeta[m + 7] = to.a3 | 0;
    sendOwners[i] = this;
    if (!flushScheduled) {
      flushScheduled = true;
      // In a phase of the shared clock its afterPhase sends them; a microtask would only find the queue empty.
      if (!sharedFrameClock.inPhase) queueMicrotask(flushTickSends);
    }
    return true;
  }
}

/**
 * An IP literal and port as a NumericAddress; on an IPv6 socket an IPv4 address becomes its IPv4-mapped form, as
 * the kernel reports such a sender. Null for anything that is not an IP literal.
 */
export function numericAddress(address: string, port: number, socketFamily: 4 | 6 = 4, out?: NumericAddress): NumericAddress | null {
  const to = (family: 4 | 6, a0: number, a1: number, a2: number, a3: number): NumericAddress => {
    if (!out) return { family, port, a0, a1, a2, a3 };
    out.family = family;
    out.port = port;
    out.a0 = a0;
    out.a1 = a1;
    out.a2 = a2;
    out.a3 = a3;
    return out;
  };
  if (isIPv4(address)) {
    const p = address.split('.');
    const v4 = ((+p[0]! << 24) | (+p[1]! << 16) | (+p[2]! << 8) | +p[3]!) >>> 0;
    return socketFamily === 4 ? to(4, v4, 0, 0, 0) : to(6, 0, 0, 0xffff, v4);
  }
  if (!isIPv6(address) || socketFamily !== 6) return null;
  const words = ipv6Words(address);
  return to(6, words[0]!, words[1]!, words[2]!, words[3]!);
}

function ipv6Words(address: string): number[] {
  const bare = address.split('%')[0]!;
  const groups: number[] = [];
  const [head, tail] = bare.includes('::') ? bare.split('::') as [string, string] : [bare, null];
  const parse = (part: string): number[] => {
    if (part === '') return [];
    const out: number[] = [];
    for (const g of part.split(':')) {
      if (g.includes('.')) {
        const v4 = numericAddress(g, 0)!.a0;
        out.push(v4 >>> 16, v4 & 0xffff);
      } else {
        out.push(parseInt(g, 16));
      }
    }
    return out;
  };
  const h = parse(head);
  const t = tail === null ? [] : parse(tail);
  groups.push(...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t);
  return [0, 1, 2, 3].map((w) => ((groups[2 * w]! << 16) | groups[2 * w + 1]!) >>> 0);
}

/** Copies `from` into `to` (no allocation: for addresses kept across packets). */
export function copyAddress(to: NumericAddress, from: NumericAddress): void {
  to.family = from.family;
  to.port = from.port;
  to.a0 = from.a0;
  to.a1 = from.a1;
  to.a2 = from.a2;
  to.a3 = from.a3;
}

export function sameAddress(a: NumericAddress, b: NumericAddress): boolean {
  return a.port === b.port && a.a3 === b.a3 && a.a0 === b.a0 && a.family === b.family && a.a1 === b.a1 && a.a2 === b.a2;
}

export function sameHost(a: NumericAddress, b: NumericAddress): boolean {
  return a.a3 === b.a3 && a.a0 === b.a0 && a.family === b.family && a.a1 === b.a1 && a.a2 === b.a2;
}

/** The text form Node's dgram gives the same sender (rinfo.address). */
export function formatAddress(a: NumericAddress): string {
  if (a.family === 4) return [a.a0 >>> 24, (a.a0 >>> 16) & 255, (a.a0 >>> 8) & 255, a.a0 & 255].join('.');
  if (a.a0 === 0 && a.a1 === 0 && a.a2 === 0xffff) return `::ffff:${formatAddress({ ...a, family: 4, a0: a.a3 })}`;
  const groups = [a.a0, a.a1, a.a2, a.a3].flatMap((w) => [w >>> 16, w & 0xffff]);
  // RFC 5952: the longest run of two or more zero groups becomes "::".
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}
