/**
 * rtpengine (Debian's rtpengine-daemon, userspace forwarding) as a test peer standing in for Meta's media relay,
 * driven over its ng control protocol (bencode over UDP).
 *
 *   const a = rtpengineAvailable();                   // { ok, bin } or { ok: false, reason }
 *   const rtp = await startRtpengine();               // loopback, free ng port, own media port range
 *   const reply = await rtp.ng({ command: 'offer', 'call-id': 'x', 'from-tag': 'a', sdp, ... });
 *   await rtp.stop();
 */
import type { ChildProcess } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { bdecode, bencode, type BValue } from './bencode.js';
import { freePort } from '../sip/ports.js';
import { spawnTethered } from '../sip/tether.js';

export type RtpengineAvailability = { ok: true; bin: string } | { ok: false; reason: string };

export function rtpengineAvailable(): RtpengineAvailability {
  const env = process.env.RTPENGINE_BIN;
  const candidates = env ? [env] : [...(process.env.PATH ?? '').split(delimiter).filter(Boolean).map((d) => join(d, 'rtpengine')), '/usr/bin/rtpengine'];
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      return { ok: true, bin: c };
    } catch {
      /* next */
    }
  }
  return { ok: false, reason: env ? `RTPENGINE_BIN=${env} is not an executable file` : 'rtpengine not found (apt-get install rtpengine-daemon)' };
}

export type NgDict = { [key: string]: BValue };

export interface Rtpengine {
  readonly ngPort: number;
  readonly portMin: number;
  readonly portMax: number;
  /** Sends one ng command and resolves with the reply dictionary; rejects on result "error" or timeout. */
  ng(cmd: NgDict, timeoutMs?: number): Promise<NgDict>;
  /** Everything rtpengine logged so far (stderr). */
  output(): string;
  stop(): Promise<void>;
}

export interface RtpengineOptions {
  bin?: string;
  /** First media port; the range is 100 ports wide (default: picked from 27000–28999 by pid). */
  portMin?: number;
  logLevel?: number;
  /** rtpengine worker threads; default 1 (see the comment at --num-threads). */
  threads?: number;
  startTimeoutMs?: number;
}

export async function startRtpengine(opts: RtpengineOptions = {}): Promise<Rtpengine> {
  let bin = opts.bin;
  if (bin === undefined) {
    const a = rtpengineAvailable();
    if (!a.ok) throw new Error(a.reason);
    bin = a.bin;
  }
  const ngPort = await freePort({ tcp: false });
  // Below the kernel's ephemeral range (32768+), where peers' free ports land, and outside the gateway's e2e
  // ranges (21000–26199).
  const portMin = opts.portMin ?? 27_000 + (process.pid % 20) * 100;
  const portMax = portMin + 99;
  const args = [
    '--foreground', '--log-stderr', '--no-log-timestamps', '--table=-1',
    '--interface=127.0.0.1', `--listen-ng=127.0.0.1:${ngPort}`,
    `--port-min=${portMin}`, `--port-max=${portMax}`,
    // One worker thread by default. With two, rtpengine 10.5 (userspace forwarding) dropped a DTLS client flight sent
    // as five datagrams back to back (Certificate … Finished, as werift writes it and RFC 6347 allows), retransmissions
    // too: 101 of 430 handshakes unfinished, presumably both threads feeding OpenSSL from the one socket. The gateway
    // now packs each flight into one datagram (src/media/dtls-coalesce.ts); rtpengine-dtls.test.ts checks that
    // against two threads.
    `--log-level=${opts.logLevel ?? 6}`, `--num-threads=${opts.threads ?? 1}`, '--delete-delay=0',
    // Do not read /etc/rtpengine/rtpengine.conf: only the command line counts.
    '--config-file=none',
  ];
  const child: ChildProcess = spawnTethered(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const append = (b: Buffer): void => {
    out += b.toString('utf8');
    if (out.length > 4_000_000) out = out.slice(-2_000_000);
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  let exited = false;
  const exitPromise = new Promise<void>((resolve) => child.once('exit', () => {
    exited = true;
    resolve();
  }));

  const sock: Socket = createSocket('udp4');
  await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', resolve));
  const waiting = new Map<string, { resolve: (d: NgDict) => void; reject: (e: Error) => void }>();
  sock.on('message', (msg) => {
    const sp = msg.indexOf(0x20);
    if (sp < 0) return;
    const cookie = msg.toString('latin1', 0, sp);
    const w = waiting.get(cookie);
    if (!w) return;
    waiting.delete(cookie);
    try {
      const v = bdecode(msg.subarray(sp + 1));
      if (typeof v !== 'object' || v === null || Array.isArray(v) || Buffer.isBuffer(v)) throw new Error('ng reply is not a dictionary');
      if (v.result === 'error') w.reject(new Error(`rtpengine: ${String(v['error-reason'])}`));
      else w.resolve(v);
    } catch (err) {
      w.reject(err as Error);
    }
  });

  const ng = (cmd: NgDict, timeoutMs = 3000): Promise<NgDict> => {
    const cookie = randomBytes(6).toString('hex');
    return new Promise<NgDict>((resolve, reject) => {
      const t = setTimeout(() => {
        waiting.delete(cookie);
        reject(new Error(`rtpengine: no reply to ${String(cmd.command)} within ${timeoutMs} ms`));
      }, timeoutMs);
      waiting.set(cookie, {
        resolve: (d) => { clearTimeout(t); resolve(d); },
        reject: (e) => { clearTimeout(t); reject(e); },
      });
      sock.send(Buffer.concat([Buffer.from(`${cookie} `), bencode(cmd)]), ngPort, '127.0.0.1');
    });
  };

  const stop = async (): Promise<void> => {
    sock.close();
    if (!exited) {
      child.kill('SIGTERM');
      const t = setTimeout(() => { if (!exited) child.kill('SIGKILL'); }, 3000);
      await exitPromise;
      clearTimeout(t);
    }
  };

  try {
    const deadline = Date.now() + (opts.startTimeoutMs ?? 10_000);
    for (;;) {
      if (exited) throw new Error(`rtpengine exited during start-up:\n${out.slice(-4000)}`);
      const pong = await ng({ command: 'ping' }, 300).catch(() => undefined);
      if (pong?.result === 'pong') break;
      if (Date.now() > deadline) throw new Error(`rtpengine did not answer ping on ng port ${ngPort}:\n${out.slice(-4000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { ngPort, portMin, portMax, ng, output: () => out, stop };
}
