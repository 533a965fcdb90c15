/** Free loopback ports for test peers (SIP needs the same number free on UDP and TCP). */
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';

function tcpFree(port: number, host: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(undefined));
    srv.listen({ port, host, exclusive: true }, () => {
      const addr = srv.address();
      const p = typeof addr === 'object' && addr !== null ? addr.port : undefined;
      srv.close(() => resolve(p));
    });
  });
}

function udpFree(port: number, host: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    const sock = createSocket('udp4');
    sock.once('error', () => {
      sock.close();
      resolve(undefined);
    });
    sock.bind(port, host, () => {
      const p = sock.address().port;
      sock.close(() => resolve(p));
    });
  });
}

const handedOut = new Set<number>();

/**
 * Ports are picked below Linux's ephemeral range (32768–60999), above the media port ranges the tests configure
 * (20000–28999): a port picked from the ephemeral range, free when checked, could be handed by the kernel to any
 * socket bound to port 0 before the peer bound it, or between two runs of a peer that keeps its port for a whole
 * suite (a clean-clone CI run lost a test to that). Each vitest worker picks from a slice of its own.
 */
const STABLE_BASE = 29_000;
const SLICE = 400;
const SLICES = 9; // 29000–32599
const slice = (Number(process.env.VITEST_POOL_ID ?? 1) - 1) % SLICES;

/**
 * A loopback port that is currently free. `udp`/`tcp` say which protocols must be free on it
 * (default both). Ports handed out by this process are not handed out again. `even` for RTP.
 */
export async function freePort(opts: { udp?: boolean; tcp?: boolean; even?: boolean; host?: string } = {}): Promise<number> {
  const host = opts.host ?? '127.0.0.1';
  const needUdp = opts.udp ?? true;
  const needTcp = opts.tcp ?? true;
  for (let i = 0; i < 200; i++) {
    const candidate = STABLE_BASE + slice * SLICE + Math.floor(Math.random() * SLICE);
    if (handedOut.has(candidate) || (opts.even && candidate % 2 !== 0)) continue;
    if (needTcp && (await tcpFree(candidate, host)) === undefined) continue;
    if (needUdp && (await udpFree(candidate, host)) === undefined) continue;
    handedOut.add(candidate);
    return candidate;
  }
  throw new Error('freePort: no free port found');
}

/** Resolves when a TCP connect to host:port succeeds (polling), rejects after timeoutMs. */
export async function waitForTcp(port: number, host = '127.0.0.1', timeoutMs = 10_000): Promise<void> {
  const { connect } = await import('node:net');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ port, host });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listening on tcp ${host}:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
