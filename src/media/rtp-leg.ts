/**
 * The SIP-side media leg: one UDP socket carrying plain RTP (RTCP is not used on this leg), bound on a port
 * from the pool. Symmetric RTP (RFC 4961 practice) latches onto the source of the first valid packet so a
 * PBX or phone behind NAT is reached where it really is, not where its SDP says.
 *
 * The latch is re-learned as Asterisk's strictrtp does: a NAT that rebinds, or a PBX whose media restarts on another
 * port, sends from a new source, and the call would go silent and time out. A source the rules allow (the signalled
 * host, or any with latchAnySource) takes the latch over after RELATCH_PACKETS consecutive in-sequence packets while
 * the latched source has been silent RELATCH_SILENCE_MS: one that merely guesses the port cannot take a live stream.
 */
import type dgram from 'node:dgram';
import { EventEmitter } from 'node:events';
import { isIPv6 } from 'node:net';
import type { PortPool } from './port-pool.js';
import { createRtpHeader, readRtpHeader, type RtpHeader } from './rtp-packet.js';
import { copyAddress, formatAddress, numericAddress, sameAddress, sameHost, TickSocket, type NumericAddress } from './tick-socket.js';
import { createMediaSocket } from './udp-socket.js';
import { monoNow, silentLogger, type MediaLogger } from './types.js';

/** Consecutive in-sequence packets (one SSRC) from a new allowed source that move the latch to it... */
export const RELATCH_PACKETS = 4;
/** ...once the latched source has sent nothing for this long (ms). */
export const RELATCH_SILENCE_MS = 100;

export interface RtpLegOptions {
  pool: PortPool;
  /** Local address to bind (config media.bindAddress). */
  bindAddress?: string;
  /** Latch onto the source of the first valid RTP packet (default true). */
  symmetricRtp?: boolean;
  /**
   * Allow latching onto a source IP other than the signalled one (a NATed peer whose SDP carries a private
   * address). Off by default: otherwise anyone who guesses the port can take the stream over (RTP bleed).
   */
  latchAnySource?: boolean;
  logger?: MediaLogger;
}

export interface RtpAddress {
  address: string;
  port: number;
}

export interface RtpLegStats {
  packetsIn: number;
  packetsOut: number;
  bytesIn: number;
  bytesOut: number;
  /** Packets from a source that is not the (latched or signalled) peer. */
  droppedUnexpectedSource: number;
  /** Datagrams that are not RTP v2 (including any RTCP sent to this port). */
  droppedInvalid: number;
  sendErrors: number;
  /** Times the latch moved to a new source (the packets before the move count in droppedUnexpectedSource). */
  relatched: number;
}

export interface RtpLegEvents {
  /**
   * A valid RTP packet from the peer: `header` locates its payload in `packet`, which may be longer than the datagram
   * (on a tick-read socket it is the shared receive slot). Both are reused for the next packet: read them
   * synchronously. `arrivedAt`: when it reached the host (performance.now() scale), which on a tick-read socket is
   * earlier than now.
   */
  rtp: [packet: Buffer, header: RtpHeader, arrivedAt: number];
  /** An RTCP datagram from the peer on port+1. */
  rtcp: [packet: Buffer];
  /** The source latched onto; again each time the latch moves. */
  latched: [source: RtpAddress];
  error: [err: Error];
}

export class RtpLeg extends EventEmitter<RtpLegEvents> {
  readonly stats: RtpLegStats = {
    packetsIn: 0, packetsOut: 0, bytesIn: 0, bytesOut: 0, droppedUnexpectedSource: 0, droppedInvalid: 0, sendErrors: 0, relatched: 0,
  };
  /** monoNow() of the last accepted packet, or of open() while nothing has arrived. */
  lastReceivedAt: number;
  private signalled: RtpAddress | null = null;
  private latchedTo: RtpAddress | null = null;
  /** The same two addresses in numeric form, for the tick-read path (null: not an IP literal, or not latched). */
  private signalledNum: NumericAddress | null = null;
  private latchedNum: NumericAddress | null = null;
  /** Set once the socket is read on the media tick (readOnTick). */
  private tick: TickSocket | null = null;
  private readonly header = createRtpHeader();
  private readonly symmetric: boolean;
  private readonly latchAny: boolean;
  private readonly log: MediaLogger;
  private closing: Promise<void> | null = null;
  /** RTCP on port+1 (RFC 3550 §11); null when that port could not be bound (RTCP is then off for the leg). */
  private rtcpSocket: dgram.Socket | null = null;
  private rtcpTo: RtpAddress | null = null;
  readonly rtcpStats = { in: 0, out: 0, droppedUnexpectedSource: 0 };

  private readonly family: 4 | 6;
  /** Reused for each datagram read on arrival. */
  private readonly arrivalFrom: NumericAddress = { family: 4, port: 0, a0: 0, a1: 0, a2: 0, a3: 0 };
  /** A new source that may take the latch over: its in-sequence run so far (0: none), SSRC and last sequence number. */
  private readonly candidate: NumericAddress = { family: 4, port: 0, a0: 0, a1: 0, a2: 0, a3: 0 };
  private candidateRun = 0;
  private candidateSsrc = 0;
  private candidateSeq = 0;

  private constructor(
    private readonly socket: dgram.Socket,
    readonly port: number,
    readonly localAddress: string,
    private readonly pool: PortPool,
    opts: RtpLegOptions,
  ) {
    super();
    this.symmetric = opts.symmetricRtp ?? true;
    this.latchAny = opts.latchAnySource ?? false;
    this.family = isIPv6(localAddress) ? 6 : 4;
    this.log = opts.logger ?? silentLogger;
    this.lastReceivedAt = monoNow();
    socket.on('message', (msg, rinfo) => this.onMessage(msg, rinfo));
    socket.on('error', (err) => {
      this.log.warn({ err: err.message, port }, 'rtp socket error');
      if (this.listenerCount('error') > 0) this.emit('error', err);
    });
  }

  /** Binds a socket on a free pool port; ports busy in the OS are skipped. */
  static async open(opts: RtpLegOptions): Promise<RtpLeg> {
    const bindAddress = opts.bindAddress ?? '0.0.0.0';
    const attempts = Math.min(opts.pool.free, 16);
    let lastErr: Error | null = null;
    for (let i = 0; i < attempts; i++) {
      const port = opts.pool.acquire();
      const socket = createMediaSocket(isIPv6(bindAddress) ? 'udp6' : 'udp4');
      try {
        await new Promise<void>((resolve, reject) => {
          const onError = (err: Error): void => reject(err);
          socket.once('error', onError);
          socket.bind({ port, address: bindAddress, exclusive: true }, () => {
            socket.off('error', onError);
            resolve();
          });
        });
        const leg = new RtpLeg(socket, port, bindAddress, opts.pool, opts);
        await leg.openRtcp(bindAddress);
        return leg;
      } catch (err) {
        lastErr = err as Error;
        socket.close();
        opts.pool.release(port);
        (opts.logger ?? silentLogger).warn({ port, err: lastErr.message }, 'rtp port busy, trying another');
      }
    }
    if (lastErr) throw new Error(`could not bind an RTP port on ${bindAddress}: ${lastErr.message}`);
    opts.pool.acquire(); // throws the pool's exhaustion error
    throw new Error('unreachable');
  }

  /** Where to send; a new signalled address (re-INVITE) also restarts latching. */
  setRemote(address: string, port: number): void {
    // What arrived before the move belongs to the old address: handle it under the old rules, as arrival reads do.
    this.pollReceived();
    this.signalled = { address, port };
    this.signalledNum = numericAddress(address, port, this.family);
    this.latchedTo = null;
    this.latchedNum = null;
    this.rtcpTo = null;
    this.candidateRun = 0;
  }

  /**
   * From now on the socket is read only by pollReceived(), which the caller runs on every media tick
   * (tick-socket.ts). Returns false, and the socket stays read on arrival, where that is not available.
   */
  readOnTick(): boolean {
    if (!this.tick && !this.closing) this.tick = TickSocket.attach(this.socket, this.stats);
    return this.tick !== null;
  }

  /** Handles every datagram waiting on a tick-read socket (no-op otherwise). */
  pollReceived(): void {
    this.tick?.poll(this.onDatagram);
  }

  get rtcpEnabled(): boolean {
    return this.rtcpSocket !== null;
  }

  /** Sends an RTCP packet to the peer's RTCP address (the one it sends from, else RTP port + 1). */
  sendRtcp(buf: Uint8Array, offset = 0, length = buf.length - offset): boolean {
    const rtp = this.latchedTo ?? this.signalled;
    const to = this.rtcpTo ?? (rtp ? { address: rtp.address, port: rtp.port + 1 } : null);
    if (!to || !this.rtcpSocket || this.closing) return false;
    this.rtcpStats.out++;
    this.rtcpSocket.send(buf, offset, length, to.port, to.address, () => {});
    return true;
  }

  private async openRtcp(bindAddress: string): Promise<void> {
    const socket = createMediaSocket(isIPv6(bindAddress) ? 'udp6' : 'udp4');
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.bind({ port: this.port + 1, address: bindAddress, exclusive: true }, () => {
          socket.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      socket.close();
      this.log.warn({ port: this.port + 1, err: (err as Error).message }, 'rtcp port busy: RTCP off for this leg');
      return;
    }
    socket.on('error', (err) => this.log.warn({ err: err.message, port: this.port + 1 }, 'rtcp socket error'));
    socket.on('message', (msg, rinfo) => {
      const sig = this.latchedTo ?? this.signalled;
      // Same source rule as RTP: the signalled (or latched) host, unless any source may latch.
      if (!sig || (!this.latchAny && rinfo.address !== sig.address)) {
        this.rtcpStats.droppedUnexpectedSource++;
        return;
      }
      if (msg.length < 8 || (msg[0]! >> 6) !== 2) return;
      this.rtcpTo = { address: rinfo.address, port: rinfo.port };
      this.rtcpStats.in++;
      this.emit('rtcp', msg);
    });
    this.rtcpSocket = socket;
  }

  get remote(): RtpAddress | null {
    return this.latchedTo ?? this.signalled;
  }

  get latched(): boolean {
    return this.latchedTo !== null;
  }

  get closed(): boolean {
    return this.closing !== null;
  }

  /** Sends an RTP packet to the peer. The buffer must not be rewritten until the send completes (use a ring). */
  send(buf: Uint8Array, offset = 0, length = buf.length - offset): boolean {
    const to = this.latchedTo ?? this.signalled;
    if (!to || this.closing) return false;
    this.stats.packetsOut++;
    this.stats.bytesOut += length;
    const num = this.tick ? (this.latchedTo ? this.latchedNum : this.signalledNum) : null;
    if (num) {
      if (!this.tick!.sendTo(buf, offset, length, num)) this.stats.sendErrors++;
      return true;
    }
    this.socket.send(buf, offset, length, to.port, to.address, (err) => {
      if (err) this.stats.sendErrors++;
    });
    return true;
  }

  /** Closes the socket and returns the port to the pool, once; later calls return the same promise. */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    const rtcp = this.rtcpSocket;
    this.closing = Promise.all([
      new Promise<void>((resolve) => this.socket.close(() => resolve())),
      rtcp ? new Promise<void>((resolve) => rtcp.close(() => resolve())) : Promise.resolve(),
    ]).then(() => undefined);
    this.pool.release(this.port);
    return this.closing;
  }

  /** Read on arrival: the source in the numeric form the tick path gets, so both take one path. */
  private onMessage(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (!numericAddress(rinfo.address, rinfo.port, this.family, this.arrivalFrom)) return;
    this.onDatagram(msg, msg.length, this.arrivalFrom, monoNow());
  }

  /**
   * A datagram from `from`. Latched: the latched source, or a new allowed one that earns the latch (relatch()). Before:
   * the signalled host, or any source when any may latch.
   */
  private readonly onDatagram = (msg: Buffer, length: number, from: NumericAddress, arrivedAt: number): void => {
    const peer = this.latchedNum;
    let accepted: boolean;
    if (this.latchedTo) {
      accepted = peer !== null && sameAddress(from, peer);
      if (accepted) this.candidateRun = 0;
      else accepted = this.mayLatch(from) && this.relatch(msg, length, from, arrivedAt);
    } else {
      accepted = this.mayLatch(from);
    }
    if (!accepted) {
      this.stats.droppedUnexpectedSource++;
      return;
    }
    if (isMuxedRtcp(msg, length)) {
      this.rtcpStats.in++;
      this.emit('rtcp', msg.subarray(0, length));
      return;
    }
    if (!readRtpHeader(msg, this.header, 0, length)) {
      this.stats.droppedInvalid++;
      return;
    }
    if (!this.latchedTo && this.symmetric) {
      this.latchedTo = { address: formatAddress(from), port: from.port };
      this.latchedNum = { ...from };
      this.log.debug({ source: this.latchedTo, signalled: this.signalled }, 'rtp latched');
      this.emit('latched', this.latchedTo);
    }
    this.stats.packetsIn++;
    this.stats.bytesIn += length;
    this.lastReceivedAt = arrivedAt;
    this.emit('rtp', msg, this.header, arrivedAt);
  };

  /** The source rules: a remote is known, and `from` is on the signalled host or any source may latch. */
  private mayLatch(from: NumericAddress): boolean {
    const sig = this.signalledNum;
    return this.signalled !== null && ((this.symmetric && this.latchAny) || (sig !== null && sameHost(from, sig)));
  }

  /**
   * An RTP packet from an allowed source other than the latched one: counts toward its in-sequence run, and true when
   * that run moves the latch here (this packet is then the new source's first). Allocates only when it moves.
   */
  private relatch(msg: Buffer, length: number, from: NumericAddress, arrivedAt: number): boolean {
    const h = this.header;
    if (isMuxedRtcp(msg, length) || !readRtpHeader(msg, h, 0, length)) return false;
    const c = this.candidate;
    if (this.candidateRun > 0 && sameAddress(from, c) && h.ssrc === this.candidateSsrc && h.sequenceNumber === ((this.candidateSeq + 1) & 0xffff)) {
      this.candidateRun++;
    } else {
      copyAddress(c, from);
      this.candidateSsrc = h.ssrc;
      this.candidateRun = 1;
    }
    this.candidateSeq = h.sequenceNumber;
    const silentMs = arrivedAt - this.lastReceivedAt;
    if (this.candidateRun < RELATCH_PACKETS || silentMs < RELATCH_SILENCE_MS) return false;
    const prev = this.latchedTo;
    const prevNum = this.latchedNum;
    this.latchedTo = { address: formatAddress(from), port: from.port };
    this.latchedNum = { ...from };
    // RTCP follows the RTP source's host; its port is learned again from the peer's next report.
    if (prevNum === null || !sameHost(from, prevNum)) this.rtcpTo = null;
    this.candidateRun = 0;
    this.stats.relatched++;
    this.log.info({ from: prev, to: this.latchedTo, silentMs: Math.round(silentMs), signalled: this.signalled }, 'rtp source moved: latch follows it');
    this.emit('latched', this.latchedTo);
    return true;
  }
}

/** RTCP multiplexed on the RTP port (RFC 5761: PT 64–95 after the marker bit). */
function isMuxedRtcp(msg: Buffer, length: number): boolean {
  return length >= 8 && (msg[0]! >> 6) === 2 && (msg[1]! & 0x7f) >= 64 && (msg[1]! & 0x7f) <= 95;
}
