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
 * A loopback port that is currently free. `udp`/`tcp` say which protocols must be free on it
 * (default both). Ports handed out by this process are not handed out again. `even` for RTP.
 */
export async function freePort(opts: { udp?: boolean; tcp?: boolean; even?: boolean; host?: string } = {}): Promise<number> {
  const host = opts.host ?? '127.0.0.1';
  const needUdp = opts.udp ?? true;
  const needTcp = opts.tcp ?? true;
  for (let i = 0; i < 200; i++) {
    // Let the kernel pick a candidate from its ephemeral range, then check the other protocol.
    const candidate = needTcp ? await tcpFree(0, host) : await udpFree(0, host);
    if (candidate === undefined || handedOut.has(candidate)) continue;
    if (opts.even && candidate % 2 !== 0) continue;
    if (needTcp && needUdp && (await udpFree(candidate, host)) === undefined) continue;
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
