import { z } from 'zod';

const port = z.number().int().min(1).max(65535);
const sipUri = z.string().regex(/^sips?:[^\s]+$/, 'a SIP URI such as sip:queue@pbx.example.com');

/** One WhatsApp business number the gateway answers for, and where its calls ring. */
export const businessNumberSchema = z.strictObject({
  phoneNumberId: z.string().regex(/^\d+$/, 'the numeric Graph phone-number id'),
  displayNumber: z.string().regex(/^\+?\d{6,15}$/, 'the number in E.164 digits'),
  sipTarget: sipUri,
  tenant: z.string().min(1).default('default'),
});

export const configSchema = z.strictObject({
  http: z.strictObject({
    host: z.string().min(1).default('0.0.0.0'),
    // 0 asks the OS for a free port (tests).
    port: z.number().int().min(0).max(65535).default(8080),
  }).default({ host: '0.0.0.0', port: 8080 }),
  log: z.strictObject({
    level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  }).default({ level: 'info' }),
  whatsapp: z.strictObject({
    graphBaseUrl: z.string().url().default('https://graph.facebook.com'),
    graphApiVersion: z.string().regex(/^v\d+\.\d+$/, 'a Graph API version such as v21.0').default('v21.0'),
    graphTimeoutMs: z.number().int().min(100).max(60_000).default(5000),
    graphRetries: z.number().int().min(0).max(5).default(2),
    webhookMaxAgeSeconds: z.number().int().min(10).default(600),
    numbers: z.array(businessNumberSchema).default([]),
  }).default({ graphBaseUrl: 'https://graph.facebook.com', graphApiVersion: 'v21.0', graphTimeoutMs: 5000, graphRetries: 2, webhookMaxAgeSeconds: 600, numbers: [] }),
  sip: z.strictObject({
    drachtioHost: z.string().min(1).default('127.0.0.1'),
    drachtioPort: port.default(9022),
    ringTimeoutMs: z.number().int().min(1000).max(55_000).default(25_000),
    codecs: z.array(z.enum(['PCMU', 'PCMA'])).min(1).default(['PCMU', 'PCMA']),
  }).default({ drachtioHost: '127.0.0.1', drachtioPort: 9022, ringTimeoutMs: 25_000, codecs: ['PCMU', 'PCMA'] }),
  media: z.strictObject({
    bindAddress: z.string().min(1).default('0.0.0.0'),
    sipMediaAddress: z.string().min(1).default('127.0.0.1'),
    publicAddress: z.string().default(''),
    rtpPortMin: port.default(40000),
    rtpPortMax: port.default(40999),
    webrtcPortMin: port.default(41000),
    webrtcPortMax: port.default(41999),
    mediaTimeoutMs: z.number().int().min(1000).default(30_000),
    opusBitrate: z.number().int().min(6000).max(128_000).default(24_000),
    opusComplexity: z.number().int().min(0).max(10).default(5),
    opusFec: z.boolean().default(true),
  }).default({
    bindAddress: '0.0.0.0', sipMediaAddress: '127.0.0.1', publicAddress: '', rtpPortMin: 40000, rtpPortMax: 40999,
    webrtcPortMin: 41000, webrtcPortMax: 41999, mediaTimeoutMs: 30_000, opusBitrate: 24_000, opusComplexity: 5, opusFec: true,
  }),
  calls: z.strictObject({
    maxConcurrent: z.number().int().min(1).default(500),
    drainDeadlineMs: z.number().int().min(0).default(30_000),
    setupTimeoutMs: z.number().int().min(1000).default(45_000),
  }).default({ maxConcurrent: 500, drainDeadlineMs: 30_000, setupTimeoutMs: 45_000 }),
  admin: z.strictObject({
    // Period of call.quality events on /v1/events for answered calls, in ms.
    eventQualityIntervalMs: z.number().int().min(250).default(5000),
    // A feed client whose unsent backlog exceeds this many bytes is disconnected rather than slowing the gateway.
    eventClientMaxBufferedBytes: z.number().int().min(1024).default(1024 * 1024),
  }).default({ eventQualityIntervalMs: 5000, eventClientMaxBufferedBytes: 1024 * 1024 }),
  store: z.strictObject({
    sqlitePath: z.string().min(1).default('data/gateway.sqlite'),
    // postgres://user@host:5432/db — when set, call records go to PostgreSQL instead of SQLite. May hold a password:
    // prefer WAGW_STORE_DATABASE_URL (or PGPASSWORD) to a config file.
    databaseUrl: z.string().regex(/^(postgres(ql)?:\/\/.+)?$/, 'empty, or a postgres:// URL').default(''),
    // Call records offered more than this many days ago are deleted; 0 keeps them forever.
    retentionDays: z.number().int().min(0).default(0),
    // How often the retention sweep runs, in minutes.
    retentionSweepMinutes: z.number().int().min(1).default(60),
  }).default({ sqlitePath: 'data/gateway.sqlite', databaseUrl: '', retentionDays: 0, retentionSweepMinutes: 60 }),
}).superRefine((cfg, ctx) => {
  for (const [section, min, max] of [['media', 'rtpPortMin', 'rtpPortMax'], ['media', 'webrtcPortMin', 'webrtcPortMax']] as const) {
    if (cfg[section][min] > cfg[section][max]) {
      ctx.addIssue({ code: 'custom', path: [section, max], message: `a port not below ${section}.${min} (${cfg[section][min]})` });
    }
  }
  const ids = new Set<string>();
  cfg.whatsapp.numbers.forEach((n, i) => {
    if (ids.has(n.phoneNumberId)) ctx.addIssue({ code: 'custom', path: ['whatsapp', 'numbers', i, 'phoneNumberId'], message: 'a phone-number id listed only once' });
    ids.add(n.phoneNumberId);
  });
});

export type GatewayConfig = z.infer<typeof configSchema>;
export type BusinessNumber = z.infer<typeof businessNumberSchema>;

/** Secrets never live in config files: only the environment (or a file the environment names). */
export interface Secrets {
  graphToken: string;
  appSecret: string;
  verifyToken: string;
  drachtioSecret: string;
  adminKeys: Map<string, string>;
}
