/**
 * drachtio-server as a test peer: finds the binary, starts it on free loopback ports with a generated
 * config file in a temp dir, waits until it listens, stops it and removes the temp dir.
 *
 * Binary lookup: $DRACHTIO_BIN, then `drachtio` on PATH, then /opt/drachtio/bin/drachtio.
 * Suites use `describe.skipIf(!d.ok)` and call `noteSkipped()` so the skip is loud and counted
 * (one line "<count>\t<reason>" appended to $WAGW_SKIP_LOG, read by scripts/test-summary.mjs).
 */
import type { ChildProcess } from 'node:child_process';
import { accessSync, appendFileSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { freePort, retryOnPortInUse, waitForTcp } from './sip/ports.js';
import { spawnTethered } from './sip/tether.js';

export type DrachtioAvailability = { ok: true; bin: string } | { ok: false; reason: string };

const FALLBACK_BIN = '/opt/drachtio/bin/drachtio';

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Where drachtio-server is, or why it cannot be used. */
export function drachtioAvailable(): DrachtioAvailability {
  const env = process.env.DRACHTIO_BIN;
  if (env !== undefined && env !== '') {
    return isExecutable(env) ? { ok: true, bin: env } : { ok: false, reason: `DRACHTIO_BIN=${env} is not an executable file` };
  }
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, 'drachtio');
    if (isExecutable(candidate)) return { ok: true, bin: candidate };
  }
  if (isExecutable(FALLBACK_BIN)) return { ok: true, bin: FALLBACK_BIN };
  return { ok: false, reason: 'drachtio-server not found (set DRACHTIO_BIN)' };
}

/** The reason of the first peer that is missing, or undefined when every one is there. */
export function firstMissing(...peers: ({ ok: true } | { ok: false; reason: string })[]): string | undefined {
  for (const p of peers) if (!p.ok) return p.reason;
  return undefined;
}

const warned = new Set<string>();

/**
 * Report that `count` tests of `suite` are skipped for `reason`: console.warn once per reason+suite and one line
 * "<count>\t<reason>" appended to $WAGW_SKIP_LOG when set.
 */
export function noteSkipped(reason: string, count: number, suite = ''): void {
  const key = `${reason}\u0000${suite}`;
  if (warned.has(key)) return;
  warned.add(key);
  console.warn(`SKIPPED: ${reason} — ${count} SIP tests skipped${suite ? ` (${suite})` : ''}`);
  const log = process.env.WAGW_SKIP_LOG;
  if (log) {
    try {
      appendFileSync(log, `${count}\t${reason}\n`);
    } catch (err) {
      console.warn(`could not append to WAGW_SKIP_LOG=${log}: ${String(err)}`);
    }
  }
}

export interface DrachtioServerOptions {
  /** Shared secret for application connections (default "cymru"). */
  secret?: string;
  /** Admin (application) TCP port; default a free one. Pass a fixed one to restart on the same port. */
  adminPort?: number;
  /** SIP port (UDP and TCP); default a free one. */
  sipPort?: number;
  /** drachtio log level (default "info"; "debug" shows SIP). */
  logLevel?: 'notice' | 'error' | 'warning' | 'info' | 'debug';
  /** Binary; default from drachtioAvailable(). */
  bin?: string;
  startTimeoutMs?: number;
}

export interface DrachtioServer {
  readonly host: '127.0.0.1';
  readonly adminPort: number;
  readonly sipPort: number;
  readonly secret: string;
  /** sip:127.0.0.1:<sipPort> — where SIP peers send requests for the app. */
  readonly sipUri: string;
  /** pid of the watchdog that runs drachtio (SIGTERM to it stops drachtio). */
  readonly pid: number;
  /** Connection options for SipAgent / srf.connect. */
  readonly connectOptions: { host: string; port: number; secret: string };
  /** Everything drachtio printed so far. */
  output(): string;
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of running) {
      try {
        child.kill('SIGKILL');
      } catch {
        /* already gone */
      }
    }
  });
}

/** Start drachtio-server on loopback. Resolves when the admin port accepts connections and SIP is bound. */
export function startDrachtio(opts: DrachtioServerOptions = {}): Promise<DrachtioServer> {
  return retryOnPortInUse(opts.adminPort === undefined && opts.sipPort === undefined, () => startDrachtioOnce(opts));
}

async function startDrachtioOnce(opts: DrachtioServerOptions): Promise<DrachtioServer> {
  let bin = opts.bin;
  if (bin === undefined) {
    const a = drachtioAvailable();
    if (!a.ok) throw new Error(a.reason);
    bin = a.bin;
  }
  const secret = opts.secret ?? 'cymru';
  const adminPort = opts.adminPort ?? (await freePort({ udp: false }));
  const sipPort = opts.sipPort ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), 'wagw-drachtio-'));
  const config = join(dir, 'drachtio.conf.xml');
  writeFileSync(
    config,
    [
      '<drachtio>',
      `  <admin port="${adminPort}" secret="${secret}">127.0.0.1</admin>`,
      '  <sip>',
      '    <contacts>',
      `      <contact>sip:127.0.0.1:${sipPort};transport=udp,tcp</contact>`,
      '    </contacts>',
      '  </sip>',
      '  <logging>',
      '    <console/>',
      `    <loglevel>${opts.logLevel ?? 'info'}</loglevel>`,
      '    <sofia-loglevel>3</sofia-loglevel>',
      '  </logging>',
      '</drachtio>',
      '',
    ].join('\n'),
  );
  const child = spawnTethered(bin, ['-f', config], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] }, dir);
  installExitHook();
  running.add(child);
  let out = '';
  const append = (b: Buffer): void => {
    out += b.toString('utf8');
    if (out.length > 2_000_000) out = out.slice(-1_000_000);
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  let exited = false;
  const exitPromise = new Promise<void>((resolve) => {
    child.once('exit', () => {
      exited = true;
      running.delete(child);
      resolve();
    });
  });
  const cleanupDir = (): void => rmSync(dir, { recursive: true, force: true });

  const stop = async (): Promise<void> => {
    if (!exited) {
      child.kill('SIGTERM');
      const t = setTimeout(() => {
        if (!exited) child.kill('SIGKILL');
      }, 3000);
      await exitPromise;
      clearTimeout(t);
    }
    cleanupDir();
  };

  try {
    const timeout = opts.startTimeoutMs ?? 10_000;
    await Promise.race([
      waitForTcp(adminPort, '127.0.0.1', timeout),
      exitPromise.then(() => {
        throw new Error(`drachtio exited during start-up:\n${out.slice(-4000)}`);
      }),
    ]);
    // SIP transports are created right after the admin listener; wait for the log line.
    const deadline = Date.now() + timeout;
    while (!out.includes('Starting sofia event loop') && !exited && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    if (exited) throw new Error(`drachtio exited during start-up:\n${out.slice(-4000)}`);
  } catch (err) {
    await stop();
    throw err;
  }

  if (child.pid === undefined) throw new Error('drachtio has no pid');
  return {
    host: '127.0.0.1',
    adminPort,
    sipPort,
    secret,
    sipUri: `sip:127.0.0.1:${sipPort}`,
    pid: child.pid,
    connectOptions: { host: '127.0.0.1', port: adminPort, secret },
    output: () => out,
    stop,
  };
}
