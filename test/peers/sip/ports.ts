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
 * suite (a clean-clone CI run lost a test to that). Test files run one at a time (vitest.config.ts).
 */
const STABLE_MIN = 29_000;
const STABLE_MAX = 32_767;

/**
 * A loopback port that is currently free. `udp`/`tcp` say which protocols must be free on it (default both); `span`
 * ports from it on are checked and reserved together (a peer's RTP range, RTCP on +1, baresip's TLS on +1); `even`
 * for RTP. Ports handed out by this process are not handed out again.
 */
export async function freePort(opts: { udp?: boolean; tcp?: boolean; even?: boolean; span?: number; host?: string } = {}): Promise<number> {
  const host = opts.host ?? '127.0.0.1';
  const needUdp = opts.udp ?? true;
  const needTcp = opts.tcp ?? true;
  const span = Math.max(1, opts.span ?? 1);
  const free = async (port: number): Promise<boolean> =>
    !handedOut.has(port) && (!needTcp || (await tcpFree(port, host)) !== undefined) && (!needUdp || (await udpFree(port, host)) !== undefined);
  for (let i = 0; i < 200; i++) {
    let first = STABLE_MIN + Math.floor(Math.random() * (STABLE_MAX - STABLE_MIN + 2 - span));
    if (opts.even && first % 2 !== 0) first -= 1;
    const ports = Array.from({ length: span }, (_, k) => first + k);
    let all = true;
    for (const p of ports) if (!(all = await free(p))) break;
    if (!all) continue;
    for (const p of ports) handedOut.add(p);
    return first;
  }
  throw new Error('freePort: no free port found');
}

/**
 * Starts a peer again, on fresh ports, when its start failed on a port in use: another process may take a port
 * between freePort's check and the peer's bind, and some peers use ports beside the checked ones. Only when the
 * peer picks its own ports (`ownPorts`): a port the caller fixed would fail again.
 */
export async function retryOnPortInUse<T>(ownPorts: boolean, start: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start();
    } catch (err) {
      if (!ownPorts || attempt >= 3 || !/Address already in use|errno = 98/.test((err as Error).message)) throw err;
    }
  }
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
