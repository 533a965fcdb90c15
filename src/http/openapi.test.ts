import { describe, expect, it } from 'vitest';
import { configSchema } from '../config/schema.js';
import { startGateway } from '../gateway.js';
import { freePort } from '../../test/peers/sip/ports.js';

describe('/v1/openapi.json', () => {
  it('is served without a key and describes every route the gateway registers, with its roles', async () => {
    const config = configSchema.parse({
      http: { host: '127.0.0.1', port: 0 }, log: { level: 'silent' },
      sip: { drachtioHost: '127.0.0.1', drachtioPort: await freePort({ udp: false }) }, store: { sqlitePath: ':memory:' },
    });
    const gw = await startGateway(config, { graphToken: 't', appSecret: 'a', verifyToken: 'v', drachtioSecret: 'c', adminKeys: new Map() });
    try {
      const res = await fetch(`http://127.0.0.1:${gw.http.port}/v1/openapi.json`);
      expect(res.status).toBe(200);
      const doc = (await res.json()) as { openapi: string; paths: Record<string, Record<string, { 'x-roles'?: string[] }>> };
      expect(doc.openapi).toMatch(/^3\./);
      const missing: string[] = [];
      for (const r of gw.admin.list()) {
        const op = doc.paths[r.path.replace(/:([a-zA-Z]+)/g, '{$1}')]?.[r.method.toLowerCase()];
        if (!op) missing.push(`${r.method} ${r.path}`);
        else if (r.roles !== 'public') expect(op['x-roles'], `${r.method} ${r.path}`).toEqual([...r.roles]);
      }
      expect(missing).toEqual([]);
    } finally {
      await gw.drainAndStop();
    }
  });
});
