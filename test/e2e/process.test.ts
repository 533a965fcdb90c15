/**
 * The gateway as a process: the README's start command, exit code 78 on bad config, health and readiness as
 * drachtio-server comes and goes, and a clean exit 0 on SIGTERM.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { drachtioAvailable, noteSkipped, startDrachtio, type DrachtioServer } from '../peers/drachtio.js';
import { freePort } from '../peers/sip/ports.js';

const drachtio = drachtioAvailable();
if (!drachtio.ok) noteSkipped(drachtio.reason, 1, 'process readiness');

interface Proc { child: ChildProcess; stdout: () => string; stderr: () => string; exit: Promise<number | null> }

function startProcess(env: Record<string, string>): Proc {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    env: { PATH: process.env.PATH ?? '', WAGW_APP_SECRET: 'x', WAGW_GRAPH_TOKEN: 'secret-token-value', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (b: Buffer) => { out += b.toString(); });
  child.stderr!.on('data', (b: Buffer) => { err += b.toString(); });
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, stdout: () => out, stderr: () => err, exit };
}

async function getJson(url: string): Promise<{ status: number; body: Record<string, unknown> } | undefined> {
  try {
    const res = await fetch(url);
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  } catch {
    return undefined;
  }
}

async function poll<T>(get: () => Promise<T>, done: (v: T) => boolean, timeoutMs: number): Promise<T> {
  const until = Date.now() + timeoutMs;
  let v = await get();
  while (!done(v) && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 200));
    v = await get();
  }
  return v;
}

let proc: Proc | undefined;
let server: DrachtioServer | undefined;
afterEach(async () => {
  proc?.child.kill('SIGKILL');
  proc = undefined;
  await server?.stop();
  server = undefined;
});

describe('gateway process', () => {
  it('stops with exit code 78 and one line per problem on bad configuration', async () => {
    proc = startProcess({ WAGW_HTTP_PORT: 'eighty', WAGW_LOG_LEVEL: 'loud' });
    expect(await proc.exit).toBe(78);
    const lines = proc.stderr().trim().split('\n');
    expect(lines).toEqual([
      'config error: http.port = "eighty" (from WAGW_HTTP_PORT): expected a value of type number',
      expect.stringContaining('config error: log.level = "loud" (from WAGW_LOG_LEVEL)'),
    ]);
  }, 30_000);

  it.skipIf(!drachtio.ok)('is alive at once, ready only once drachtio-server is up, and exits 0 on SIGTERM', async () => {
    const httpPort = await freePort({ udp: false });
    const adminPort = await freePort({ udp: false });
    proc = startProcess({
      WAGW_HTTP_PORT: String(httpPort), WAGW_HTTP_HOST: '127.0.0.1', WAGW_SIP_DRACHTIO_PORT: String(adminPort),
      WAGW_STORE_SQLITE_PATH: join(mkdtempSync(join(tmpdir(), 'wagw-proc-')), 'gw.sqlite'),
      WAGW_MEDIA_RTP_PORT_MIN: '24000', WAGW_MEDIA_RTP_PORT_MAX: '24099', WAGW_MEDIA_WEBRTC_PORT_MIN: '24200', WAGW_MEDIA_WEBRTC_PORT_MAX: '24399',
    });
    const base = `http://127.0.0.1:${httpPort}`;
    const health = await poll(() => getJson(`${base}/healthz`), (r) => r !== undefined, 20_000);
    expect(health?.status).toBe(200);
    const notReady = await getJson(`${base}/readyz`);
    expect(notReady?.status).toBe(503);
    expect(notReady?.body).toMatchObject({ ready: false, checks: { drachtio: false, store: true, accepting: true } });

    server = await startDrachtio({ adminPort });
    const ready = await poll(() => getJson(`${base}/readyz`), (r) => r?.status === 200, 20_000);
    expect(ready?.status).toBe(200);
    expect(ready?.body).toMatchObject({ ready: true, checks: { drachtio: true } });
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/^wagw_drachtio_connected 1$/m);
    expect(metrics).toContain('process_cpu_user_seconds_total');

    proc.child.kill('SIGTERM');
    expect(await proc.exit).toBe(0);
    const logs = proc.stdout();
    expect(logs).toContain('draining');
    expect(logs).not.toContain('secret-token-value');
    for (const line of logs.trim().split('\n')) expect(() => JSON.parse(line)).not.toThrow();
  }, 60_000);
});
