/** The webhook route with several Meta apps: per-app URL, try-every-secret URL, events only for the app's own numbers. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHmac } from 'node:crypto';
import { createLogger } from '../observability/logger.js';
import { createMetrics } from '../observability/metrics.js';
import type { CallingEvent } from '../whatsapp/events.js';
import { buildWebhookApps } from '../whatsapp/webhook-apps.js';
import { startHttpServer, type RunningHttpServer } from './server.js';
import { WebhookReceiver } from './webhook-route.js';

const events: CallingEvent[] = [];
const metrics = createMetrics();
let server: RunningHttpServer;
let base: string;
const sign = (body: string, secret: string) => `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
let seq = 0;
function connect(phoneNumberId: string): string {
  return JSON.stringify({
    object: 'whatsapp_business_account',
    entry: [{ id: '1', changes: [{ field: 'calls', value: {
      messaging_product: 'whatsapp', metadata: { display_phone_number: '441', phone_number_id: phoneNumberId },
      calls: [{ id: `wacid.${++seq}`, from: '4477', to: '441', event: 'connect', direction: 'USER_INITIATED',
        timestamp: String(Math.floor(Date.now() / 1000)), session: { sdp_type: 'offer', sdp: 'v=0\r\n' } }],
    } }] }],
  });
}
const post = (path: string, body: string, secret: string) =>
  fetch(`${base}${path}`, { method: 'POST', body, headers: { 'content-type': 'application/json', 'x-hub-signature-256': sign(body, secret) } });

beforeAll(async () => {
  const logger = createLogger('silent');
  const apps = buildWebhookApps(
    { whatsapp: { apps: [{ name: 'brand-b' }], numbers: [{ phoneNumberId: '111', app: '' }, { phoneNumberId: '222', app: 'brand-b' }] } },
    { appSecret: 'secret-a', apps: new Map([['brand-b', { appSecret: 'secret-b' }]]) },
  );
  const webhook = new WebhookReceiver({ appSecret: 'secret-a', verifyToken: 'v', maxAgeSeconds: 600, logger, metrics, onEvent: (ev) => events.push(ev), apps: () => apps });
  server = await startHttpServer({ host: '127.0.0.1', port: 0, logger, metrics, webhook, readiness: () => ({ ok: true }) });
  base = `http://127.0.0.1:${server.port}`;
});
afterAll(() => server.close());

describe('webhooks from several Meta apps', () => {
  it('per-app URL: only that app\'s secret verifies; unknown app 404', async () => {
    expect((await post('/webhooks/whatsapp/brand-b', connect('222'), 'secret-b')).status).toBe(200);
    expect((await post('/webhooks/whatsapp/brand-b', connect('222'), 'secret-a')).status).toBe(401);
    expect((await post('/webhooks/whatsapp/brand-c', connect('222'), 'secret-b')).status).toBe(404);
    expect(events.at(-1)?.phoneNumberId).toBe('222');
  });
  it('shared URL: any configured secret verifies, but an app cannot speak for another app\'s number', async () => {
    const before = events.length;
    expect((await post('/webhooks/whatsapp', connect('111'), 'secret-a')).status).toBe(200);
    expect((await post('/webhooks/whatsapp', connect('222'), 'secret-b')).status).toBe(200);
    expect(events.length).toBe(before + 2);
    expect((await post('/webhooks/whatsapp', connect('111'), 'secret-b')).status).toBe(200);
    expect((await post('/webhooks/whatsapp/brand-b', connect('111'), 'secret-b')).status).toBe(200);
    expect(events.length).toBe(before + 2);
    const dropped = (await metrics.webhookEvents.get()).values.find((v) => v.labels.result === 'foreign_app')?.value;
    expect(dropped).toBe(2);
    expect((await post('/webhooks/whatsapp', connect('111'), 'nobody')).status).toBe(401);
  });
});
