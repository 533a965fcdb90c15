/**
 * A two-sided UDP relay that impairs the WhatsApp leg like a bad mobile network: random loss and random delay
 * (jitter, hence reordering) on media packets, in both directions. STUN and DTLS pass untouched so the set-up is
 * the same as without it; what is tested is the media engine, not ICE retransmissions.
 *
 *   user (libwebrtc) ⇄ [userSide]  relay  [gatewaySide] ⇄ gateway
 *
 * Each side is told only about the relay: the user's offer names `gatewaySide` as the user's candidate (what the
 * gateway connects to), and the gateway's answer names `userSide` (what the user connects to). `ImpairedWaUser`
 * does both rewrites around a WaUser.
 */
import { createSocket, type Socket } from 'node:dgram';
import { WaUser, type WaUserOptions } from './wa-user.js';

export interface ImpairmentOptions {
  /** Probability (0–1) that a media packet is dropped. */
  loss: number;
  /** Each media packet is delayed by a uniform random 0..jitterMs. */
  jitterMs: number;
  /** PRNG seed, so a failure can be replayed. */
  seed?: number;
}

export interface DirectionStats {
  media: number;
  dropped: number;
  other: number;
}

export interface ImpairRelay {
  readonly userSidePort: number;
  readonly gatewaySidePort: number;
  /** toGateway: what the user sent toward the gateway; toUser: the other way. */
  readonly stats: { toGateway: DirectionStats; toUser: DirectionStats };
  setUser(address: string, port: number): void;
  setGateway(address: string, port: number): void;
  close(): Promise<void>;
}

/** mulberry32: a small seeded PRNG. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function bound(): Promise<Socket> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  return s;
}

export async function startImpairRelay(opts: ImpairmentOptions): Promise<ImpairRelay> {
  const rand = prng(opts.seed ?? 4733);
  const userSide = await bound();
  const gatewaySide = await bound();
  let user: { address: string; port: number } | null = null;
  let gateway: { address: string; port: number } | null = null;
  const stats = { toGateway: { media: 0, dropped: 0, other: 0 }, toUser: { media: 0, dropped: 0, other: 0 } };
  const timers = new Set<NodeJS.Timeout>();
  let closed = false;

  const forward = (msg: Buffer, out: Socket, to: { address: string; port: number } | null, st: DirectionStats): void => {
    if (!to || closed) return;
    // RFC 7983: 128–191 is RTP/RTCP (SRTP/SRTCP here); STUN (0–3) and DTLS (20–63) are not impaired.
    if (msg[0]! < 128 || msg[0]! > 191) {
      st.other++;
      out.send(msg, to.port, to.address);
      return;
    }
    st.media++;
    if (rand() < opts.loss) {
      st.dropped++;
      return;
    }
    const delay = rand() * opts.jitterMs;
    const t = setTimeout(() => {
      timers.delete(t);
      if (!closed) out.send(msg, to.port, to.address);
    }, delay);
    timers.add(t);
  };
  userSide.on('message', (m) => forward(m, gatewaySide, gateway, stats.toGateway));
  gatewaySide.on('message', (m) => forward(m, userSide, user, stats.toUser));

  return {
    userSidePort: userSide.address().port,
    gatewaySidePort: gatewaySide.address().port,
    stats,
    setUser: (address, port) => { user = { address, port }; },
    setGateway: (address, port) => { gateway = { address, port }; },
    close: async () => {
      closed = true;
      for (const t of timers) clearTimeout(t);
      await Promise.all([userSide, gatewaySide].map((s) => new Promise<void>((r) => s.close(() => r()))));
    },
  };
}

/** The first UDP host candidate's address and port. */
export function firstUdpCandidate(sdp: string): { address: string; port: number } {
  const m = /^a=candidate:\S+ \d+ udp \d+ (\S+) (\d+) typ /im.exec(sdp);
  if (!m) throw new Error('no UDP candidate in the SDP');
  return { address: m[1]!, port: Number(m[2]) };
}

/** Every UDP candidate (and the m=/c= default) now names 127.0.0.1:<port>; TCP candidates go. */
export function candidatesVia(sdp: string, port: number): string {
  return sdp
    .split(/\r\n/)
    .filter((l) => !(/^a=candidate:/.test(l) && / tcp /i.test(l)))
    .map((l) => {
      const c = /^(a=candidate:\S+ \d+ udp \d+ )\S+ \d+( typ .*)$/i.exec(l);
      if (c) return `${c[1]}127.0.0.1 ${port}${c[2]}`;
      if (l.startsWith('m=audio ')) return l.replace(/^m=audio \d+ /, `m=audio ${port} `);
      if (l.startsWith('c=IN IP4 ')) return 'c=IN IP4 127.0.0.1';
      return l;
    })
    .join('\r\n');
}

/** A WaUser whose media to and from the gateway runs through an ImpairRelay. */
export class ImpairedWaUser extends WaUser {
  constructor(opts: WaUserOptions, private readonly relay: ImpairRelay) {
    super(opts);
  }

  override async createOffer(): Promise<string> {
    const sdp = await super.createOffer();
    const own = firstUdpCandidate(sdp);
    this.relay.setUser(own.address, own.port);
    return candidatesVia(sdp, this.relay.gatewaySidePort);
  }

  override async applyAnswer(sdp: string): Promise<void> {
    const gw = firstUdpCandidate(sdp);
    this.relay.setGateway(gw.address, gw.port);
    return super.applyAnswer(candidatesVia(sdp, this.relay.userSidePort));
  }
}
