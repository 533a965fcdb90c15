/**
 * Recording with consent and live audio streams (issue 9). Policies are per tenant (a tenant not listed gets the
 * top-level defaults); live streams are chosen per routing rule's route first, then per tenant.
 */
import { z } from 'zod';

const name = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'a lower-case name such as sales or brand-a');

/** What a tenant's calls get. Every field may be overridden per tenant. */
export const recordingPolicyFields = {
  // off: never; always: from the answer (after consent); on_demand: only when the admin API starts it mid-call.
  policy: z.enum(['off', 'always', 'on_demand']),
  // none: no announcement; announce: the announcement is played and the call goes on (informed consent);
  // explicit: the announcement is played and the user must press one of consentDigits within consentTimeoutMs.
  consent: z.enum(['none', 'announce', 'explicit']),
  consentDigits: z.string().regex(/^[0-9*#]{1,12}$/, 'DTMF digits such as 1'),
  // Counted from the end of the announcement.
  consentTimeoutMs: z.number().int().min(1000).max(60_000),
  // No yes with the explicit policy: the call goes on unrecorded, or ends.
  onNoConsent: z.enum(['proceed_unrecorded', 'end_call']),
  // 8 kHz (any rate is resampled) 16-bit PCM WAV played to the WhatsApp user before bridging; '' = the shipped default.
  announcementFile: z.string(),
  // wav: 16-bit PCM, 8 kHz stereo (<id>.wav); ogg: Opus in Ogg, 8 kHz stereo (<id>.opus, opusBitrate: 48 kbit/s by default). Left = user, right = agent.
  format: z.enum(['wav', 'ogg']),
};

const policyDefaults = {
  policy: 'off', consent: 'announce', consentDigits: '1', consentTimeoutMs: 8000, onNoConsent: 'proceed_unrecorded', announcementFile: '', format: 'wav',
} as const;

export const tenantRecordingSchema = z.strictObject({
  policy: recordingPolicyFields.policy.optional(),
  consent: recordingPolicyFields.consent.optional(),
  consentDigits: recordingPolicyFields.consentDigits.optional(),
  consentTimeoutMs: recordingPolicyFields.consentTimeoutMs.optional(),
  onNoConsent: recordingPolicyFields.onNoConsent.optional(),
  announcementFile: recordingPolicyFields.announcementFile.optional(),
  format: recordingPolicyFields.format.optional(),
});

export const recordingSchema = z.strictObject({
  policy: recordingPolicyFields.policy.default(policyDefaults.policy),
  consent: recordingPolicyFields.consent.default(policyDefaults.consent),
  consentDigits: recordingPolicyFields.consentDigits.default(policyDefaults.consentDigits),
  consentTimeoutMs: recordingPolicyFields.consentTimeoutMs.default(policyDefaults.consentTimeoutMs),
  onNoConsent: recordingPolicyFields.onNoConsent.default(policyDefaults.onNoConsent),
  announcementFile: recordingPolicyFields.announcementFile.default(policyDefaults.announcementFile),
  format: recordingPolicyFields.format.default(policyDefaults.format),
  // Opus bitrate of ogg recordings, both channels together (bit/s).
  opusBitrate: z.number().int().min(12_000).max(128_000).default(48_000),
  // Overrides by tenant name (the tenant of whatsapp.numbers).
  tenants: z.record(z.string().min(1), tenantRecordingSchema).default({}),
  // Files go to <folder>/<tenant>/<call id>.wav or .opus (with a .json beside it).
  folder: z.string().min(1).default('data/recordings'),
  // The RIFF and data sizes are rewritten (wav) or the encoded pages appended (ogg) this often, so a killed process
  // leaves a file any reader opens.
  checkpointMs: z.number().int().min(100).max(10_000).default(1000),
  // Recordings older than this many days are deleted; 0 keeps them forever.
  retentionDays: z.number().int().min(0).default(0),
  retentionSweepMinutes: z.number().int().min(1).default(60),
}).default({ ...policyDefaults, opusBitrate: 48_000, tenants: {}, folder: 'data/recordings', checkpointMs: 1000, retentionDays: 0, retentionSweepMinutes: 60 });

export const streamTargetSchema = z.strictObject({
  url: z.string().regex(/^wss?:\/\/.+/, 'a ws:// or wss:// URL'),
  // 16000 = the 8 kHz audio upsampled (linear), for engines that want 16 kHz.
  sampleRate: z.union([z.literal(8000), z.literal(16000)]).default(8000),
  // separate: two channels interleaved (channel 0 = user, channel 1 = agent); mixed: one channel, both summed.
  channels: z.enum(['separate', 'mixed']).default('separate'),
  // Frames waiting for a slow or reconnecting socket; beyond this the oldest go (and are counted).
  maxQueueFrames: z.number().int().min(1).max(3000).default(50),
  // Above this many bytes unsent in the socket, frames wait in the queue.
  maxBufferedBytes: z.number().int().min(1024).default(64 * 1024),
  // Bytes sent beyond the last ping the server answered: a server further behind than this is slow (see audio-stream.ts).
  maxInFlightBytes: z.number().int().min(1024).default(256 * 1024),
  // Reconnect backoff during the call: doubles from min to max.
  reconnectMinMs: z.number().int().min(10).default(250),
  reconnectMaxMs: z.number().int().min(10).default(5000),
  connectTimeoutMs: z.number().int().min(100).max(30_000).default(3000),
});

export const streamingSchema = z.strictObject({
  targets: z.record(name, streamTargetSchema).default({}),
  // tenant → target name
  tenants: z.record(z.string().min(1), name).default({}),
  // route name (routing.routes) → target name; wins over the tenant's.
  routes: z.record(name, name).default({}),
}).default({ targets: {}, tenants: {}, routes: {} });

export type RecordingConfig = z.infer<typeof recordingSchema>;
export type RecordingPolicy = { [K in keyof typeof recordingPolicyFields]: z.infer<(typeof recordingPolicyFields)[K]> };
export type StreamTarget = z.infer<typeof streamTargetSchema>;
export type StreamingConfig = z.infer<typeof streamingSchema>;

/** The tenant's policy: its overrides over the defaults. */
export function recordingPolicyFor(cfg: RecordingConfig, tenant: string): RecordingPolicy {
  const o = cfg.tenants[tenant] ?? {};
  return {
    policy: o.policy ?? cfg.policy,
    consent: o.consent ?? cfg.consent,
    consentDigits: o.consentDigits ?? cfg.consentDigits,
    consentTimeoutMs: o.consentTimeoutMs ?? cfg.consentTimeoutMs,
    onNoConsent: o.onNoConsent ?? cfg.onNoConsent,
    announcementFile: o.announcementFile ?? cfg.announcementFile,
    format: o.format ?? cfg.format,
  };
}

/** The stream target of a call: its route's, else its tenant's, else none. */
export function streamTargetFor(cfg: StreamingConfig, tenant: string, route?: string): { name: string; target: StreamTarget } | undefined {
  const n = (route !== undefined ? cfg.routes[route] : undefined) ?? cfg.tenants[tenant];
  const target = n !== undefined ? cfg.targets[n] : undefined;
  return n !== undefined && target ? { name: n, target } : undefined;
}

/** Names used by streaming.tenants/routes must be defined targets. */
export function checkStreamingRefs(cfg: { streaming: StreamingConfig }, ctx: z.RefinementCtx): void {
  const { targets } = cfg.streaming;
  for (const key of ['tenants', 'routes'] as const) {
    for (const [k, t] of Object.entries(cfg.streaming[key])) {
      if (!(t in targets)) ctx.addIssue({ code: 'custom', path: ['streaming', key, k], message: `a target defined in streaming.targets (${Object.keys(targets).join(', ') || 'none'})` });
    }
  }
}
