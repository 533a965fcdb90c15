/**
 * A throwaway PostgreSQL cluster for tests: initdb in a temp dir, `postgres` on a free loopback port (socket in the
 * temp dir too), stopped and removed by stop(). PostgreSQL refuses to run as root, so as root the cluster belongs to
 * the `postgres` user (Debian's package creates it) or `nobody`, and runs through runuser.
 *
 * Binaries: $PG_BIN (a folder holding initdb and postgres), else the newest /usr/lib/postgresql/<v>/bin (Debian),
 * else initdb on PATH. Suites use `describe.skipIf(!pg.ok)` and noteSkipped() so a missing PostgreSQL is loud.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { accessSync, chownSync, constants, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { delimiter, join } from 'node:path';
import pg from 'pg';
import { freePort, waitForTcp } from './sip/ports.js';
import { spawnTethered } from './sip/tether.js';

export type PostgresAvailability = { ok: true; binDir: string } | { ok: false; reason: string };

const executable = (p: string): boolean => {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
};
const hasServer = (dir: string): boolean => executable(join(dir, 'initdb')) && executable(join(dir, 'postgres')) && executable(join(dir, 'pg_ctl'));

export function postgresAvailable(): PostgresAvailability {
  const env = process.env.PG_BIN;
  if (env) return hasServer(env) ? { ok: true, binDir: env } : { ok: false, reason: `PG_BIN=${env} holds no initdb/postgres/pg_ctl` };
  const debian = '/usr/lib/postgresql';
  if (existsSync(debian)) {
    const versions = readdirSync(debian).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
    for (const v of versions) if (hasServer(join(debian, v, 'bin'))) return { ok: true, binDir: join(debian, v, 'bin') };
  }
  for (const dir of (process.env.PATH ?? '').split(delimiter)) if (dir && hasServer(dir)) return { ok: true, binDir: dir };
  return { ok: false, reason: 'PostgreSQL server binaries not found (apt-get install postgresql, or set PG_BIN)' };
}

export interface PostgresServer {
  readonly port: number;
  /** URL of the cluster's `postgres` database (superuser wagw, trust auth on loopback). */
  readonly adminUrl: string;
  /** Creates a fresh database and returns its URL. */
  createDatabase(name: string): Promise<string>;
  stop(): Promise<void>;
}

const SUPERUSER = 'wagw';

/** Which OS user runs the cluster: ourselves unless we are root. */
function clusterUser(): { name: string; uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  for (const name of ['postgres', 'nobody']) {
    const id = spawnSync('id', ['-u', name], { encoding: 'utf8' });
    const gid = spawnSync('id', ['-g', name], { encoding: 'utf8' });
    if (id.status === 0 && gid.status === 0) return { name, uid: Number(id.stdout.trim()), gid: Number(gid.stdout.trim()) };
  }
  throw new Error('running as root and neither a postgres nor a nobody user exists to run PostgreSQL');
}

export async function startPostgres(opts: { binDir?: string } = {}): Promise<PostgresServer> {
  let binDir = opts.binDir;
  if (!binDir) {
    const a = postgresAvailable();
    if (!a.ok) throw new Error(a.reason);
    binDir = a.binDir;
  }
  const user = clusterUser();
  const dir = mkdtempSync(join(tmpdir(), 'wagw-pg-'));
  const data = join(dir, 'data');
  if (user) chownSync(dir, user.uid, user.gid);
  const asUser = (bin: string, args: string[]): [string, string[]] =>
    user ? ['runuser', ['-u', user.name, '--', join(binDir, bin), ...args]] : [join(binDir, bin), args];

  try {
    const [cmd, args] = asUser('initdb', ['-D', data, '-U', SUPERUSER, '--auth=trust', '-E', 'UTF8', '--no-sync', '--no-instructions']);
    execFileSync(cmd, args, { stdio: 'pipe', cwd: dir });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    const e = err as { stderr?: Buffer; message: string };
    throw new Error(`initdb failed: ${e.stderr?.toString() || e.message}`);
  }
  const port = await freePort({ udp: false });
  const [cmd, args] = asUser('postgres', [
    '-D', data, '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1',
    // A test cluster: durability is not the point, speed is.
    '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off', '-c', 'max_connections=50',
  ]);
  const child = spawnTethered(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir }, dir);
  let output = '';
  child.stdout?.on('data', (b: Buffer) => { output += b.toString(); });
  child.stderr?.on('data', (b: Buffer) => { output += b.toString(); });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const adminUrl = `postgres://${SUPERUSER}@127.0.0.1:${port}/postgres`;
  try {
    await waitForTcp(port, '127.0.0.1', 20_000);
    await waitAcceptingQueries(adminUrl, 20_000);
  } catch (err) {
    child.kill('SIGTERM');
    await exited;
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`PostgreSQL did not start: ${(err as Error).message}\n${output}`);
  }
  let stopped: Promise<void> | undefined;
  return {
    port,
    adminUrl,
    async createDatabase(name: string) {
      const c = new pg.Client({ connectionString: adminUrl });
      await c.connect();
      try {
        await c.query(`CREATE DATABASE "${name.replace(/"/g, '')}"`);
      } finally {
        await c.end();
      }
      return `postgres://${SUPERUSER}@127.0.0.1:${port}/${encodeURIComponent(name)}`;
    },
    stop() {
      stopped ??= (async () => {
        // Fast shutdown: open connections are closed rather than waited for.
        const [c, a] = asUser('pg_ctl', ['stop', '-D', data, '-m', 'fast', '-w', '-t', '20']);
        spawnSync(c, a, { stdio: 'ignore', cwd: dir });
        const timer = setTimeout(() => child.kill('SIGTERM'), 25_000);
        await exited;
        clearTimeout(timer);
        rmSync(dir, { recursive: true, force: true });
      })();
      return stopped;
    },
  };
}

async function waitAcceptingQueries(url: string, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const c = new pg.Client({ connectionString: url });
    c.on('error', () => undefined);
    try {
      await c.connect();
      await c.query('SELECT 1');
      await c.end();
      return;
    } catch (err) {
      await c.end().catch(() => undefined);
      if (Date.now() > until) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** For messages: who runs the cluster. */
export const postgresRunsAs = (): string => clusterUser()?.name ?? userInfo().username;
