/**
 * Configuration reload on SIGHUP in the real process: a config that fails validation (or lacks an app's secret) is
 * refused as a whole with every problem logged and the running one kept; a valid one is applied. Needs no SIP peer.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { freePort } from '../peers/sip/ports.js';

let child: ChildProcess | undefined;
afterEach(() => {
  child?.kill('SIGKILL');
  child = undefined;
});

const good = (extraNumber = '') => `
whatsapp:
  numbers:
    - phoneNumberId: "111"
      displayNumber: "441111111111"
      route: sales
${extraNumber}
routing:
  routes:
    sales:
      targets: [sip:sales@127.0.0.1:5090]
`;

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('configuration reload (SIGHUP)', () => {
  it('refuses an invalid config as a whole, keeps running, then applies a valid one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wagw-reload-'));
    const file = join(dir, 'gw.yaml');
    writeFileSync(file, good());
    const httpPort = await freePort({ udp: false });
    child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      env: {
        PATH: process.env.PATH ?? '', WAGW_APP_SECRET: 'x', WAGW_GRAPH_TOKEN: 't', WAGW_CONFIG: file,
        WAGW_HTTP_PORT: String(httpPort), WAGW_HTTP_HOST: '127.0.0.1', WAGW_SIP_DRACHTIO_PORT: String(await freePort({ udp: false })),
        WAGW_STORE_SQLITE_PATH: join(dir, 'gw.sqlite'), WAGW_MEDIA_RTP_PORT_MIN: '48100', WAGW_MEDIA_RTP_PORT_MAX: '48199',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout!.on('data', (b: Buffer) => { out += b.toString(); });
    child.stderr!.on('data', (b: Buffer) => { out += b.toString(); });
    const metric = async (result: string): Promise<number> => {
      const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
      return Number(new RegExp(`wagw_config_reloads_total\\{result="${result}"\\} (\\d+)`).exec(text)?.[1] ?? 0);
    };
    await until('HTTP up', async () => { try { return (await fetch(`http://127.0.0.1:${httpPort}/healthz`)).ok; } catch { return false; } });

    // A dangling route name and a bad time zone: both reported, nothing applied.
    writeFileSync(file, good().replace('route: sales', 'route: nope') + `  schedules:\n    s:\n      timeZone: Mars/Base\n`);
    child.kill('SIGHUP');
    await until('reload refused', () => out.includes('configuration reload refused'));
    const refused = out.split('\n').find((l) => l.includes('configuration reload refused'))!;
    expect(refused).toContain('whatsapp.numbers.0.route');
    expect(refused).toContain('routing.schedules.s.timeZone');
    expect(await metric('rejected')).toBe(1);

    // An app without its secrets in the environment is refused too, naming the variables.
    writeFileSync(file, good('    - phoneNumberId: "222"\n      displayNumber: "442222222222"\n      app: brand-b\n      route: sales').replace('whatsapp:\n', 'whatsapp:\n  apps: [{ name: brand-b }]\n'));
    child.kill('SIGHUP');
    await until('second refusal', async () => (await metric('rejected')) === 2);
    // The metric can be read before the refusal's log line has come through the child's stdout pipe.
    await until('second refusal logged', () => out.includes('configuration reload refused') && out.split('configuration reload refused').length > 2);
    expect(out).toContain('WAGW_APP_SECRET_BRAND_B');
    expect(out).not.toContain('configuration reloaded');

    writeFileSync(file, good('    - phoneNumberId: "333"\n      displayNumber: "443333333333"\n      sipTarget: sip:legacy@127.0.0.1:5091'));
    child.kill('SIGHUP');
    await until('reload applied', () => out.includes('configuration reloaded'));
    expect(await metric('applied')).toBe(1);
    expect(child.exitCode).toBeNull();
    expect((await fetch(`http://127.0.0.1:${httpPort}/healthz`)).status).toBe(200);
  }, 60_000);

  it('re-reads WAGW_ADMIN_KEYS_FILE: a revoked key stops working; a refused reload never logs a password', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wagw-reload-'));
    const file = join(dir, 'gw.yaml');
    const keys = join(dir, 'admin-keys');
    writeFileSync(file, good());
    writeFileSync(keys, 'ops:admin:k-revoke-me-4411,lead:supervisor:k-keep-me-9020\n');
    const httpPort = await freePort({ udp: false });
    child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      env: {
        PATH: process.env.PATH ?? '', WAGW_APP_SECRET: 'x', WAGW_GRAPH_TOKEN: 't', WAGW_CONFIG: file, WAGW_ADMIN_KEYS_FILE: keys,
        WAGW_HTTP_PORT: String(httpPort), WAGW_HTTP_HOST: '127.0.0.1', WAGW_SIP_DRACHTIO_PORT: String(await freePort({ udp: false })),
        WAGW_STORE_SQLITE_PATH: join(dir, 'gw.sqlite'), WAGW_MEDIA_RTP_PORT_MIN: '48200', WAGW_MEDIA_RTP_PORT_MAX: '48299',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout!.on('data', (b: Buffer) => { out += b.toString(); });
    child.stderr!.on('data', (b: Buffer) => { out += b.toString(); });
    const status = async (key: string): Promise<number> =>
      (await fetch(`http://127.0.0.1:${httpPort}/v1/status`, { headers: { authorization: `Bearer ${key}` } })).status;
    await until('HTTP up', async () => { try { return (await fetch(`http://127.0.0.1:${httpPort}/healthz`)).ok; } catch { return false; } });
    expect(await status('k-revoke-me-4411')).toBe(200);

    // A mistyped database URL in the reloaded file: refused, and the log line shows neither user nor password.
    writeFileSync(file, `${good()}store:\n  databaseUrl: "postgress://gw:S3cretPw@db.internal/calls"\n`);
    child.kill('SIGHUP');
    await until('reload refused', () => out.includes('configuration reload refused'));
    expect(out).toContain('store.databaseUrl');
    expect(out).not.toContain('S3cretPw');

    writeFileSync(file, good());
    writeFileSync(keys, 'lead:supervisor:k-keep-me-9020\n');
    child.kill('SIGHUP');
    await until('reload applied', () => out.includes('configuration reloaded'));
    expect(await status('k-revoke-me-4411')).toBe(401);
    expect(await status('k-keep-me-9020')).toBe(200);
    const applied = out.split('\n').find((l) => l.includes('configuration reloaded'))!;
    expect(JSON.parse(applied)).toMatchObject({ adminKeys: 1 });
    expect(out).not.toMatch(/k-revoke-me|k-keep-me/);
  }, 60_000);
});
