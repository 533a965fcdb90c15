/**
 * UDP sockets for the media path. Node's dgram resolves every destination before sending, and even an IP literal
 * goes through dns.lookup, which answers on the next tick: each packet then costs an extra tick, and the send reads
 * its buffer only after the caller has moved on (a reused send buffer could be rewritten first). Media peers are
 * always addresses, so literals are answered at once and the packet is handed to the kernel inside send().
 */
import dgram from 'node:dgram';
import dns from 'node:dns';
import { isIP } from 'node:net';

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string, family: number) => void;

/** dgram passes the socket's family (4 or 6) where dns.lookup also takes options. */
export function literalFirstLookup(host: string, family: number | dns.LookupOneOptions, callback: LookupCallback): void {
  const literal = isIP(host);
  if (literal !== 0) callback(null, host, literal);
  else if (typeof family === 'number') dns.lookup(host, family, callback);
  else dns.lookup(host, family, callback);
}

export function createMediaSocket(type: 'udp4' | 'udp6'): dgram.Socket {
  return dgram.createSocket({ type, lookup: literalFirstLookup });
}

type HandleLookup = (address: string, callback: (err: Error | null, ip?: string) => void) => void;

/** The parts of a UDP handle (libuv's uv_udp_t wrapper) the media path touches. */
export interface UdpHandle {
  fd?: number;
  recvStop?: () => number;
  lookup?: HandleLookup;
}

/** dgram's per-socket state (Node 20–22, under a symbol named 'state symbol'): close() nulls handle at once. */
export interface DgramState {
  handle: UdpHandle | null;
}

export function dgramState(socket: dgram.Socket): DgramState | undefined {
  const sym = Object.getOwnPropertySymbols(socket).find((s) => s.description === 'state symbol');
  return sym ? (socket as unknown as Record<symbol, DgramState | undefined>)[sym] : undefined;
}

/**
 * The same for a socket someone else created (werift's ICE socket): its handle's resolver answers literals at once.
 * Relies on Node's dgram internals (the state symbol's handle.lookup, Node 20–22); returns false and changes
 * nothing when they differ.
 */
export function answerLiteralsAtOnce(socket: dgram.Socket): boolean {
  const handle = dgramState(socket)?.handle;
  const original = handle?.lookup;
  if (!handle || typeof original !== 'function') return false;
  handle.lookup = (address, callback) => {
    if (isIP(address) !== 0) callback(null, address);
    else original.call(handle, address, callback);
  };
  return true;
}
