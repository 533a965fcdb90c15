/**
 * A transparent UDP relay placed in front of rtpengine's WebRTC port so the test sees, on the relay's side of the
 * wire, every packet the gateway and rtpengine exchange (no packet-capture tool needed). The offer SDP handed to
 * the gateway names the tap's port instead of rtpengine's; rtpengine then sees the gateway's checks arrive from the
 * tap's address (a peer-reflexive candidate, which an ICE-lite agent accepts like Meta's relays do).
 *
 * Each packet is classified by its first byte (RFC 7983): STUN 0–3, DTLS 20–63, RTP/RTCP 128–191.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';

export type Direction = 'toRelay' | 'fromRelay';

export interface TapStun {
  /** 0x0001 binding request, 0x0101 success response, 0x0111 error response, 0x0011 indication. */
  type: number;
  useCandidate: boolean;
  iceControlling: boolean;
  iceControlled: boolean;
}

export interface TapPacket {
  at: number;
  dir: Direction;
  kind: 'stun' | 'dtls' | 'rtp' | 'rtcp' | 'other';
  length: number;
  stun?: TapStun;
  /** DTLS: content type of the first record and, for a handshake record in epoch 0, the handshake type. */
  dtls?: { contentType: number; handshakeType?: number };
}

const MAGIC_COOKIE = 0x2112a442;

export function parseStun(b: Buffer): TapStun | undefined {
  if (b.length < 20 || b.readUInt32BE(4) !== MAGIC_COOKIE) return undefined;
  const type = b.readUInt16BE(0);
  const len = b.readUInt16BE(2);
  const s: TapStun = { type, useCandidate: false, iceControlling: false, iceControlled: false };
  let pos = 20;
  while (pos + 4 <= 20 + len && pos + 4 <= b.length) {
    const at = b.readUInt16BE(pos);
    const al = b.readUInt16BE(pos + 2);
    if (at === 0x0025) s.useCandidate = true;
    if (at === 0x802a) s.iceControlling = true;
    if (at === 0x8029) s.iceControlled = true;
    pos += 4 + ((al + 3) & ~3);
  }
  return s;
}

export function classify(b: Buffer, dir: Direction, at: number): TapPacket {
  const p: TapPacket = { at, dir, kind: 'other', length: b.length };
  const first = b[0] ?? 255;
  if (first <= 3) {
    const stun = parseStun(b);
    if (stun) {
      p.kind = 'stun';
      p.stun = stun;
    }
  } else if (first >= 20 && first <= 63 && b.length >= 13) {
    p.kind = 'dtls';
    p.dtls = { contentType: first };
    const epoch = b.readUInt16BE(3);
    if (first === 22 && epoch === 0 && b.length >= 14) p.dtls.handshakeType = b[13]!;
  } else if (first >= 128 && first <= 191 && b.length >= 12) {
    const pt = b[1]!;
    p.kind = pt >= 192 && pt <= 223 ? 'rtcp' : 'rtp';
  }
  return p;
}

export interface UdpTap {
  /** Port the gateway is told to send to. */
  readonly port: number;
  readonly packets: TapPacket[];
  close(): Promise<void>;
}

export async function startUdpTap(relay: { host: string; port: number }): Promise<UdpTap> {
  const front: Socket = createSocket('udp4');
  const back: Socket = createSocket('udp4');
  await new Promise<void>((r) => front.bind(0, '127.0.0.1', r));
  await new Promise<void>((r) => back.bind(0, '127.0.0.1', r));
  const packets: TapPacket[] = [];
  let peer: RemoteInfo | undefined;
  front.on('message', (msg, rinfo) => {
    peer = rinfo;
    packets.push(classify(msg, 'toRelay', Date.now()));
    back.send(msg, relay.port, relay.host);
  });
  back.on('message', (msg, rinfo) => {
    if (rinfo.port !== relay.port || !peer) return;
    packets.push(classify(msg, 'fromRelay', Date.now()));
    front.send(msg, peer.port, peer.address);
  });
  return {
    port: front.address().port,
    packets,
    async close() {
      await Promise.all([new Promise<void>((r) => front.close(() => r())), new Promise<void>((r) => back.close(() => r()))]);
    },
  };
}
