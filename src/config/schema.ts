import { z } from 'zod';
import { appSchema, checkRoutingRefs, holdSchema, numberRoutingFields, routingSchema, transferSchema } from './routing-schema.js';
import { checkStreamingRefs, recordingSchema, streamingSchema } from './recording-schema.js';
import { checkNumberRuleRefs, pbxTrunkFields } from './pbx-trunk-schema.js';
import { checkMediaPorts, mediaPort, sipMediaAddress } from './media-schema.js';

const port = z.number().int().min(1).max(65535);

/** One WhatsApp business number the gateway answers for, and where its calls ring. */
export const businessNumberSchema = z.strictObject({
  phoneNumberId: z.string().regex(/^\d+$/, 'the numeric Graph phone-number id'),
  displayNumber: z.string().regex(/^\+?\d{6,15}$/, 'the number in E.164 digits'),
  tenant: z.string().min(1).default('default'),
  // What our business-initiated offers use for this number, when it differs from media.whatsappKeyExchange: Meta's
  // srtp_key_exchange_protocol is a setting of each number (§2.6), and an offer of the other kind fails.
  whatsappKeyExchange: z.enum(['dtls', 'sdes']).optional(),
  // A sandbox or public test number: Meta's limits there are 25 permission requests a day and 100 a week, and 5 / 10
  // unanswered calls in a row for the warning / the revoke (§3.1), which the ledger then applies instead.
  sandbox: z.boolean().default(false),
  ...numberRoutingFields,
});

/** Business-initiated calls from the PBX (issue 5): who may dial out, as which number, and Meta's permission rules. */
export const businessCallsSchema = z.strictObject({
  // Toll-fraud guard: source addresses (IPv4, or IPv4 CIDR) whose INVITEs may place calls. Empty = nobody.
  allowedSources: z.array(z.string().regex(/^\d{1,3}(\.\d{1,3}){3}(\/\d{1,2})?$/, 'an IPv4 address or CIDR such as 10.0.0.0/8')).default([]),
  // Business number (Graph phone-number id, one of whatsapp.numbers) that places SIP-originated calls; '' = the
  // only configured number. An X-WA-Phone-Number-Id header may pick another configured number.
  defaultPhoneNumberId: z.string().regex(/^\d*$/, 'a numeric Graph phone-number id').default(''),
  // Country calling codes of business numbers that may not place business-initiated calls (§3.4: US/CA, EG, VN, NG);
  // '1' covers US/Canadian area codes only (calls/business-region.ts); other entries are plain prefixes.
  blockedCountryCodes: z.array(z.string().regex(/^\d{1,4}$/, 'a country calling code such as 44')).default(['1', '20', '84', '234']),
  // Lifetime of a temporary permission when the reply carries no expiration_timestamp (§3.1: 7 days; older docs 72 h).
  permissionDefaultExpirySeconds: z.number().int().min(60).default(7 * 24 * 3600),
  // A ledger entry older than this is refreshed from GET call_permissions before a call.
  permissionStaleSeconds: z.number().int().min(0).default(15 * 60),
  // When a call is refused for lack of permission, send a call permission request (if the limits allow).
  requestPermissionOnRefusal: z.boolean().default(false),
  // Per tenant override of requestPermissionOnRefusal.
  requestPermissionOnRefusalByTenant: z.record(z.string(), z.boolean()).default({}),
  // Body text of the automatic free-form request, and a template name: the template goes when the user's 24 h
  // customer-service window is not known to be open (free-form is allowed only inside it, §2.3), free-form otherwise.
  permissionRequestText: z.string().max(1024).default('We would like to call you on WhatsApp.'),
  permissionRequestTemplate: z.string().default(''),
  // Meta's ring timeout for business-initiated calls is undocumented; the gateway gives up after this long (480).
  ringTimeoutMs: z.number().int().min(5000).max(120_000).default(60_000),
  // Estimated cost: price per minute by callee country calling code, billed in 6-second pulses (§3.5).
  currency: z.string().regex(/^[A-Z]{3}$/, 'an ISO 4217 code such as USD').default('USD'),
  ratesPerMinute: z.record(z.string().regex(/^\d{1,4}$/), z.number().min(0)).default({}),
  // Price per minute for countries missing from ratesPerMinute.
  defaultRatePerMinute: z.number().min(0).default(0),
  // Toll-fraud guard mode, SIP digest realm and business-number rules (pbx-trunk-schema.ts).
  ...pbxTrunkFields,
});

export const BUSINESS_CALLS_DEFAULTS = businessCallsSchema.parse({});

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
    // The Calling API needs Graph v17.0 or later (§2): an older version fails every call at its first request.
    graphApiVersion: z.string().regex(/^v\d+\.\d+$/, 'a Graph API version such as v21.0')
      .refine((v) => Number(v.slice(1).split('.')[0]) >= 17, 'the WhatsApp Calling API needs Graph API v17.0 or later').default('v21.0'),
    graphTimeoutMs: z.number().int().min(100).max(60_000).default(5000),
    graphRetries: z.number().int().min(0).max(5).default(2),
    webhookMaxAgeSeconds: z.number().int().min(10).default(600),
    // A user-initiated connect can be accepted for 30–60 s only (§3.2); ringing the PBX for an older one rings for nobody.
    userConnectMaxAgeSeconds: z.number().int().min(10).default(60),
    numbers: z.array(businessNumberSchema).default([]),
    // Webhook apps besides the default one (routing-schema.ts): numbers name theirs in `app`.
    apps: z.array(appSchema).default([]),
  }).default({ graphBaseUrl: 'https://graph.facebook.com', graphApiVersion: 'v21.0', graphTimeoutMs: 5000, graphRetries: 2, webhookMaxAgeSeconds: 600, userConnectMaxAgeSeconds: 60, numbers: [], apps: [] }),
  sip: z.strictObject({
    drachtioHost: z.string().min(1).default('127.0.0.1'),
    drachtioPort: port.default(9022),
    ringTimeoutMs: z.number().int().min(1000).max(55_000).default(25_000),
    // A target that sends no 18x or final response within this long is given up (408) and the next one tried; 0 = off.
    responseTimeoutMs: z.number().int().min(0).max(55_000).default(8000),
    codecs: z.array(z.enum(['PCMU', 'PCMA'])).min(1).default(['PCMU', 'PCMA']),
    // DTMF from WhatsApp when the PBX negotiated no telephone-event: SIP INFO application/dtmf-relay, or dropped.
    dtmfWithoutTelephoneEvent: z.enum(['info', 'drop']).default('info'),
    // Meta forbids the PSTN on any leg (§3.6; sip/target-policy.ts): INVITEs only to these hosts (names, *.domain,
    // IPv4/CIDR; empty = any), and never to a user=phone URI unless refuseUserPhoneTargets is off.
    allowedTargetHosts: z.array(z.string().min(1)).default([]),
    refuseUserPhoneTargets: z.boolean().default(true),
  }).default({ drachtioHost: '127.0.0.1', drachtioPort: 9022, ringTimeoutMs: 25_000, responseTimeoutMs: 8000, codecs: ['PCMU', 'PCMA'], dtmfWithoutTelephoneEvent: 'info', allowedTargetHosts: [], refuseUserPhoneTargets: true }),
  media: z.strictObject({
    bindAddress: z.string().min(1).default('0.0.0.0'),
    sipMediaAddress: sipMediaAddress.default('127.0.0.1'),
    publicAddress: z.string().default(''),
    rtpPortMin: mediaPort.default(20000),
    rtpPortMax: mediaPort.default(24999),
    webrtcPortMin: mediaPort.default(25000),
    webrtcPortMax: mediaPort.default(29999),
    mediaTimeoutMs: z.number().int().min(1000).default(30_000),
    opusBitrate: z.number().int().min(6000).max(128_000).default(24_000),
    opusComplexity: z.number().int().min(0).max(10).default(5),
    // While the media event loop is more than 80 % busy, encoders step down from opusComplexity toward
    // opusMinComplexity (one level a second), and back up once it is below 70 % for 5 s: late ticks would cost every
    // call gaps, a lower complexity costs a little spectral detail. Off: opusComplexity always.
    opusLoadAdaptive: z.boolean().default(true),
    opusMinComplexity: z.number().int().min(0).max(10).default(0),
    // New calls are refused (PBX: 503 "Media capacity reached", WhatsApp: reject) while the media loop is over 95 %
    // busy with the encoders already at their lowest complexity: one more call would make every call's audio late.
    refuseCallsWhenSaturated: z.boolean().default(true),
    // How busy "over" is. Lower keeps the latency tail short at the cost of capacity: the bench held added latency
    // p99 under 3 ms up to about 75-88 % of a core, and 5-6 ms at 93 %.
    saturationBusyPercent: z.number().min(50).max(100).default(95),
    opusFec: z.boolean().default(true),
    // FEC follows the loss the user's RTCP reports (as libwebrtc does): on until the first report, then only while
    // loss is reported. Off: FEC in every packet (expected loss fixed at 5 %), about 30 % more encoder CPU.
    opusFecAdaptive: z.boolean().default(true),
    // Symmetric RTP toward the PBX may latch onto a source address other than the SDP's (phones behind NAT whose
    // SDP names a private address). Off: only the signalled address may take the stream (no RTP bleed).
    latchAnySource: z.boolean().default(false),
    // RTP on the WhatsApp leg: 'fast' (our SRTP straight on the ICE socket once DTLS is up) or 'werift' (werift's
    // own RTP sender/receiver: slower, kept as the fallback).
    webrtcMediaPath: z.enum(['fast', 'werift']).default('fast'),
    // What business-initiated calls offer to WhatsApp: 'dtls' (ICE + DTLS-SRTP) or 'sdes' (RTP/SAVP with a=crypto);
    // must match the number's srtp_key_exchange_protocol at Meta. User-initiated calls follow Meta's offer either way.
    whatsappKeyExchange: z.enum(['dtls', 'sdes']).default('dtls'),
    // Audio codecs toward WhatsApp, in preference order: Opus always works; PCMU/PCMA only once the number's
    // audio.additional_codecs is set at Meta (then Meta transcodes, and a G.711 PBX needs no Opus codec here at all).
    whatsappCodecs: z.array(z.enum(['opus', 'PCMU', 'PCMA'])).min(1)
      .refine((c) => c.includes('opus'), 'a list that keeps opus: Meta always carries Opus, G.711 only when enabled at Meta')
      .refine((c) => new Set(c).size === c.length, 'each codec once').default(['opus']),
    // Media sockets read on the 20 ms media tick (one recvmmsg per socket, sends batched) instead of a JS callback
    // per packet; needs the batched UDP addon that `npm ci` builds, else sockets are read on arrival.
    tickReads: z.boolean().default(true),
  }).default({
    bindAddress: '0.0.0.0', sipMediaAddress: '127.0.0.1', publicAddress: '', rtpPortMin: 20000, rtpPortMax: 24999,
    webrtcPortMin: 25000, webrtcPortMax: 29999, mediaTimeoutMs: 30_000, opusBitrate: 24_000, opusComplexity: 5, opusLoadAdaptive: true,
    opusMinComplexity: 0, refuseCallsWhenSaturated: true, saturationBusyPercent: 95, opusFec: true, opusFecAdaptive: true, latchAnySource: false, webrtcMediaPath: 'fast', whatsappKeyExchange: 'dtls', whatsappCodecs: ['opus'], tickReads: true,
  }),
  calls: z.strictObject({
    maxConcurrent: z.number().int().min(1).default(500),
    drainDeadlineMs: z.number().int().min(0).default(30_000),
    setupTimeoutMs: z.number().int().min(1000).default(30_000),
  }).default({ maxConcurrent: 500, drainDeadlineMs: 30_000, setupTimeoutMs: 30_000 }),
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
  businessCalls: businessCallsSchema.default(BUSINESS_CALLS_DEFAULTS),
  cluster: z.strictObject({
    // The other gateway instances behind the same webhook URL, as http(s)://host:port of their HTTP listener. A
    // delivery naming a call not live here, a new user-initiated call, a permission reply or an account notice is
    // passed on with Meta's signature (so every instance needs the same apps and secrets). Empty: a single instance.
    peers: z.array(z.string().url().regex(/^https?:\/\//, 'an http(s):// base URL such as http://10.0.0.2:8080')).default([]),
    forwardTimeoutMs: z.number().int().min(100).max(30_000).default(2000),
  }).default({ peers: [], forwardTimeoutMs: 2000 }),
  routing: routingSchema,
  hold: holdSchema,
  transfer: transferSchema,
  recording: recordingSchema,
  streaming: streamingSchema,
}).superRefine((cfg, ctx) => {
  checkRoutingRefs(cfg, ctx);
  checkStreamingRefs(cfg, ctx);
  checkNumberRuleRefs(cfg, ctx);
  checkMediaPorts(cfg.media, ctx);
  const ids = new Set<string>();
  cfg.whatsapp.numbers.forEach((n, i) => {
    if (ids.has(n.phoneNumberId)) ctx.addIssue({ code: 'custom', path: ['whatsapp', 'numbers', i, 'phoneNumberId'], message: 'a phone-number id listed only once' });
    ids.add(n.phoneNumberId);
  });
});

export type GatewayConfig = z.infer<typeof configSchema>;
export type BusinessNumber = z.infer<typeof businessNumberSchema>;
export type BusinessCallsConfig = z.infer<typeof businessCallsSchema>;

/** Secrets never live in config files: only the environment (or a file the environment names). */
export interface Secrets {
  graphToken: string;
  appSecret: string;
  verifyToken: string;
  drachtioSecret: string;
  adminKeys: Map<string, string>;
  /** Per webhook app (whatsapp.apps): WAGW_APP_SECRET_<APP>, WAGW_GRAPH_TOKEN_<APP> (config/app-secrets.ts). */
  apps?: Map<string, { appSecret: string; graphToken: string }>;
  /** SIP digest credentials of PBX trunks (username → password): WAGW_SIP_CREDENTIALS ("user:password,…"). */
  sipCredentials?: Map<string, string>;
  /** What the gateway answers a PBX's 401/407 with, by target host: WAGW_SIP_OUTBOUND_CREDENTIALS ("host=user:password,…"). */
  sipOutboundCredentials?: Map<string, { username: string; password: string }>;
}
