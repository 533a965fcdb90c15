/**
 * Test fixture: the admin API and event feed on a real HTTP server, with a real registry and an SQLite store, but no
 * SIP or media: live calls are Call objects driven by the test.
 */
import { Writable } from 'node:stream';
import { createLogger } from '../observability/logger.js';
import { createMetrics, type Metrics } from '../observability/metrics.js';
import { Call, type CallContext } from '../calls/call.js';
import { CallRegistry } from '../calls/registry.js';
import type { CallRecordStore } from '../store/call-record.js';
import { SqliteCallRecordStore } from '../store/sqlite-store.js';
import { AdminRouter } from './admin-router.js';
import { registerAdminApi } from './admin-api.js';
import { EventFeed } from './event-feed.js';
import { startHttpServer, type RunningHttpServer } from './server.js';
import { WebhookReceiver } from './webhook-route.js';
import { RecentMetaNotices } from '../whatsapp/meta-notices.js';

export const KEYS = {
  admin: 'k-admin-7f3a9c',
  supervisor: 'k-super-51bd02',
  reporting: 'k-report-acme-99e1',
  reportingAll: 'k-report-all-1c44',
  /** A supervisor of tenant acme only (name:supervisor:acme:key). */
  supervisorAcme: 'k-super-acme-3d70',
} as const;

export interface AdminFixture {
  base: string;
  wsBase: string;
  http: RunningHttpServer;
  registry: CallRegistry;
  store: CallRecordStore;
  metrics: Metrics;
  feed: EventFeed;
  logLines: () => Record<string, unknown>[];
  /** A live call in the registry, in the state asked for. */
  liveCall(state?: 'offered' | 'ringing' | 'answered', ctx?: Partial<CallContext>): Call;
  close(): Promise<void>;
}

export async function startAdminFixture(opts: { store?: CallRecordStore; maxBufferedBytes?: number; qualityIntervalMs?: number; csvPageSize?: number } = {}): Promise<AdminFixture> {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  const logger = createLogger('info', sink);
  const metrics = createMetrics();
  const store = opts.store ?? new SqliteCallRecordStore(':memory:');
  const registry = new CallRegistry(100, logger);
  const admin = new AdminRouter(new Map([
    [KEYS.admin, 'ops-admin:admin'],
    [KEYS.supervisor, 'floor-lead:supervisor'],
    [KEYS.reporting, 'acme-bi:reporting:acme'],
    [KEYS.reportingAll, 'group-bi:reporting'],
    [KEYS.supervisorAcme, 'acme-lead:supervisor:acme'],
  ]), logger);
  const metaNotices = new RecentMetaNotices();
  metaNotices.record({ field: 'account_update', kind: 'ACCOUNT_RESTRICTION', details: { restrictionType: 'RESTRICTED_BUSINESS_INITIATED_CALLING', expiration: '1795700000' } });
  registerAdminApi(admin, { store, registry, status: () => ({ version: 'test', drachtioConnected: true }), metaNotices: () => metaNotices.list(), csvPageSize: opts.csvPageSize });
  const webhook = new WebhookReceiver({ appSecret: 's', verifyToken: 'v', maxAgeSeconds: 600, logger, metrics, onEvent: () => undefined });
  const http = await startHttpServer({ host: '127.0.0.1', port: 0, logger, metrics, webhook, admin, readiness: () => ({}) });
  const feed = new EventFeed({ server: http.server, admin, events: registry.events, logger, metrics, maxBufferedBytes: opts.maxBufferedBytes ?? 1024 * 1024 });
  if (opts.qualityIntervalMs) registry.events.startQualitySampling(() => registry.list(), opts.qualityIntervalMs);
  const calls: Call[] = [];
  return {
    base: `http://127.0.0.1:${http.port}`,
    wsBase: `ws://127.0.0.1:${http.port}`,
    http, registry, store, metrics, feed,
    logLines: () => lines,
    liveCall(state = 'answered', ctx = {}) {
      const call = new Call({
        direction: 'user_initiated', tenant: 'acme', phoneNumberId: '436666719526789', businessNumber: '13175551399',
        userWaId: '16315553602', userName: 'Jane Doe', sipTarget: 'sip:queue@pbx.example.com', ...ctx,
      }, logger, metrics, (r) => store.write(r));
      call.bindIds({ waCallId: `wacid.${call.id}` });
      registry.add(call);
      registry.indexWaCallId(call, call.waCallId!);
      const path = { offered: ['offered'], ringing: ['offered', 'pre_accepted', 'ringing'], answered: ['offered', 'pre_accepted', 'ringing', 'answered'] } as const;
      for (const s of path[state]) call.transition(s, s);
      calls.push(call);
      return call;
    },
    async close() {
      registry.events.stopQualitySampling();
      await Promise.all(calls.map((c) => c.end({ by: 'gateway', outcome: 'failed', cause: 'test_over' })));
      await feed.close();
      await http.close();
      await store.close();
    },
  };
}
