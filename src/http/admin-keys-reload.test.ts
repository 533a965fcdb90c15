import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { configSchema, type Secrets } from '../config/schema.js';
import { startGateway } from '../gateway.js';
import { createLogger } from '../observability/logger.js';
import { freePort } from '../../test/peers/sip/ports.js';

const OLD = 'k-revoked-3b91f0';
const KEPT = 'k-kept-77ac21';
const NEW = 'k-new-c0ffee';

const secrets = (adminKeys: [string, string][]): Secrets =>
  ({ graphToken: 't', appSecret: 'a', verifyToken: 'v', drachtioSecret: 'c', adminKeys: new Map(adminKeys) });

describe('admin API keys on reload (SIGHUP)', () => {
  it('a revoked key is refused from the next request and its event feed closed; new keys work; the log counts keys, never shows them', async () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const l of chunk.toString().split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
        cb();
      },
    });
    const config = configSchema.parse({
      http: { host: '127.0.0.1', port: 0 }, sip: { drachtioHost: '127.0.0.1', drachtioPort: await freePort({ udp: false }) },
      store: { sqlitePath: ':memory:' },
    });
    const gw = await startGateway(config, secrets([[OLD, 'ops:admin'], [KEPT, 'lead:supervisor']]), createLogger('info', sink));
    const base = `http://127.0.0.1:${gw.http.port}`;
    const status = async (key: string): Promise<number> => (await fetch(`${base}/v1/status`, { headers: { authorization: `Bearer ${key}` } })).status;
    try {
      expect(await status(OLD)).toBe(200);
      expect(await status(NEW)).toBe(401);
      const feed = new WebSocket(`ws://127.0.0.1:${gw.http.port}/v1/events`, { headers: { authorization: `Bearer ${OLD}` } });
      const closed = new Promise<number>((resolve) => feed.on('close', (code) => resolve(code)));
      await new Promise<void>((resolve, reject) => { feed.once('message', () => resolve()); feed.once('error', reject); });

      // A reload without secrets (e.g. a test changing routing) keeps the keys.
      gw.reload(config);
      expect(await status(OLD)).toBe(200);

      gw.reload(config, secrets([[KEPT, 'lead:supervisor'], [NEW, 'ops2:admin']]));
      expect(await status(OLD)).toBe(401);
      expect(await status(KEPT)).toBe(200);
      expect(await status(NEW)).toBe(200);
      expect(await closed).toBe(1008);
      const reloaded = lines.filter((l) => l.msg === 'configuration reloaded');
      expect(reloaded.at(-1)).toMatchObject({ adminKeys: 2 });
      const text = JSON.stringify(lines);
      for (const key of [OLD, KEPT, NEW]) expect(text).not.toContain(key);
    } finally {
      await gw.drainAndStop();
    }
  }, 30_000);
});
