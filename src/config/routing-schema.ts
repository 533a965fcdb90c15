/**
 * The routing part of the configuration (issue 8): webhook apps, routes (ordered SIP targets with failover or
 * round-robin, codecs, ring timeout, business hours, outside-hours action), schedules in IANA time zones, routing
 * rules by CTA / deep-link payload, the optional HTTP routing hook, hold and transfer settings.
 *
 * Cross-references (a number's route, a rule's route, a route's schedule) are checked by checkRoutingRefs() from the
 * config schema's superRefine, so a reload with a dangling name is refused as a whole.
 */
import { z } from 'zod';

const sipUri = z.string().regex(/^sips?:[^\s]+$/, 'a SIP URI such as sip:queue@pbx.example.com');
const name = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'a lower-case name such as sales or brand-a');
const codec = z.enum(['PCMU', 'PCMA']);

function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** "09:00-17:30"; "00:00-24:00" is the whole day. */
const timeRange = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d-(([01]\d|2[0-3]):[0-5]\d|24:00)$/, 'a range such as 09:00-17:30')
  .refine((r) => r.slice(0, 5) < r.slice(6), 'a range whose end is after its start');
const isoDate = z.string().regex(/^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$/, 'a date such as 2026-12-25');

const days = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
export type Weekday = (typeof days)[number];
export const WEEKDAYS = days;

export const scheduleSchema = z.strictObject({
  timeZone: z.string().refine(isTimeZone, 'an IANA time zone such as Europe/London'),
  // Opening hours per weekday, local time; a day not listed is closed.
  weekly: z.strictObject({
    mon: z.array(timeRange).default([]), tue: z.array(timeRange).default([]), wed: z.array(timeRange).default([]),
    thu: z.array(timeRange).default([]), fri: z.array(timeRange).default([]), sat: z.array(timeRange).default([]),
    sun: z.array(timeRange).default([]),
  }).default({ mon: [], tue: [], wed: [], thu: [], fri: [], sat: [], sun: [] }),
  // Closed all day ("2026-12-25"), or closed for part of the day ({date, closed: "12:00-24:00"}).
  holidays: z.array(z.union([isoDate, z.strictObject({ date: isoDate, closed: timeRange })])).default([]),
});

export const routeSchema = z.strictObject({
  // Tried in order (failover) or starting at the next one each call (round_robin); the next is tried after a 5xx,
  // a 408/no answer within ringTimeoutMs, or an unreachable target. A 4xx/6xx (busy, decline) ends the search.
  targets: z.array(sipUri).min(1),
  strategy: z.enum(['failover', 'round_robin']).default('failover'),
  codecs: z.array(codec).min(1).optional(),
  ringTimeoutMs: z.number().int().min(1000).max(55_000).optional(),
  // Schedule name (routing.schedules); no schedule = always open.
  hours: name.optional(),
  // Outside hours: reject the WhatsApp call, or ring another route (whose own hours are not checked again).
  outsideHours: z.strictObject({ action: z.enum(['reject', 'route']), route: name.optional() }).default({ action: 'reject' }),
  // Recording policy, told to the PBX in X-WA-Recording (the gateway itself records nothing).
  recording: z.enum(['off', 'on', 'pbx_default']).default('pbx_default'),
});

export const routingRuleSchema = z.strictObject({
  ctaPayload: z.string().min(1).optional(),
  deeplinkPayload: z.string().min(1).optional(),
  route: name,
}).refine((r) => r.ctaPayload !== undefined || r.deeplinkPayload !== undefined, 'a rule with ctaPayload or deeplinkPayload');

export const routingHookSchema = z.strictObject({
  url: z.string().url(),
  // The whole answer must arrive within this long, or the static rule is used.
  timeoutMs: z.number().int().min(50).max(10_000).default(1500),
});

/** Fields of a business number that concern routing (merged into the number's schema). */
export const numberRoutingFields = {
  // Webhook app the number belongs to (whatsapp.apps); '' = the default app (WAGW_APP_SECRET, WAGW_GRAPH_TOKEN).
  app: z.union([z.literal(''), name]).default(''),
  // Legacy single target; equivalent to a route with targets [sipTarget].
  sipTarget: sipUri.optional(),
  // Default route when no rule matches (routing.routes).
  route: name.optional(),
  rules: z.array(routingRuleSchema).default([]),
  hook: routingHookSchema.optional(),
};

export const appSchema = z.strictObject({
  // Callback URL /webhooks/whatsapp/<name>; secrets WAGW_APP_SECRET_<NAME> and WAGW_GRAPH_TOKEN_<NAME>.
  name,
});

export const routingSchema = z.strictObject({
  schedules: z.record(name, scheduleSchema).default({}),
  routes: z.record(name, routeSchema).default({}),
  // Used for numbers without their own hook.
  hook: routingHookSchema.optional(),
}).default({ schedules: {}, routes: {} });

export const holdSchema = z.strictObject({
  // 8 kHz (or any rate: it is resampled) mono or stereo 16-bit PCM WAV, looped; '' = the shipped default.
  musicFile: z.string().default(''),
  // Level applied to the file, in dB (negative = quieter).
  gainDb: z.number().min(-40).max(12).default(0),
}).default({ musicFile: '', gainDb: 0 });

export const transferSchema = z.strictObject({
  // When the transfer target does not answer: back to the agent who transferred (if still there), or end the call.
  onFailure: z.enum(['return', 'end']).default('return'),
  ringTimeoutMs: z.number().int().min(1000).max(55_000).default(20_000),
  // Play hold music to the WhatsApp user while the transfer target rings.
  holdMusicWhileRinging: z.boolean().default(true),
}).default({ onFailure: 'return', ringTimeoutMs: 20_000, holdMusicWhileRinging: true });

export type Schedule = z.infer<typeof scheduleSchema>;
export type RouteConfig = z.infer<typeof routeSchema>;
export type RoutingRule = z.infer<typeof routingRuleSchema>;
export type RoutingHookConfig = z.infer<typeof routingHookSchema>;
export type RoutingConfig = z.infer<typeof routingSchema>;
export type HoldConfig = z.infer<typeof holdSchema>;
export type TransferConfig = z.infer<typeof transferSchema>;

interface RefsInput {
  whatsapp: { apps: { name: string }[]; numbers: { app: string; sipTarget?: string | undefined; route?: string | undefined; rules: RoutingRule[] }[] };
  routing: RoutingConfig;
}

/** Every name a config uses must be defined; reported one issue per dangling reference. */
export function checkRoutingRefs(cfg: RefsInput, ctx: z.RefinementCtx): void {
  const { routes, schedules } = cfg.routing;
  const apps = new Set(cfg.whatsapp.apps.map((a) => a.name));
  cfg.whatsapp.apps.forEach((a, i) => {
    if (cfg.whatsapp.apps.findIndex((b) => b.name === a.name) !== i) ctx.addIssue({ code: 'custom', path: ['whatsapp', 'apps', i, 'name'], message: 'an app name listed only once' });
  });
  cfg.whatsapp.numbers.forEach((n, i) => {
    const at = ['whatsapp', 'numbers', i];
    if (n.app !== '' && !apps.has(n.app)) ctx.addIssue({ code: 'custom', path: [...at, 'app'], message: `an app listed in whatsapp.apps (${[...apps].join(', ') || 'none'})` });
    if (n.sipTarget === undefined && n.route === undefined) ctx.addIssue({ code: 'custom', path: [...at, 'route'], message: 'a route name (or a sipTarget)' });
    if (n.sipTarget !== undefined && n.route !== undefined) ctx.addIssue({ code: 'custom', path: [...at, 'sipTarget'], message: 'either sipTarget or route, not both' });
    if (n.route !== undefined && !(n.route in routes)) ctx.addIssue({ code: 'custom', path: [...at, 'route'], message: `a route defined in routing.routes (${Object.keys(routes).join(', ') || 'none'})` });
    n.rules.forEach((r, j) => {
      if (!(r.route in routes)) ctx.addIssue({ code: 'custom', path: [...at, 'rules', j, 'route'], message: `a route defined in routing.routes (${Object.keys(routes).join(', ') || 'none'})` });
    });
  });
  for (const [routeName, r] of Object.entries(routes)) {
    const at = ['routing', 'routes', routeName];
    if (r.hours !== undefined && !(r.hours in schedules)) ctx.addIssue({ code: 'custom', path: [...at, 'hours'], message: `a schedule defined in routing.schedules (${Object.keys(schedules).join(', ') || 'none'})` });
    if (r.outsideHours.action === 'route') {
      if (r.outsideHours.route === undefined) ctx.addIssue({ code: 'custom', path: [...at, 'outsideHours', 'route'], message: 'the overflow route name' });
      else if (!(r.outsideHours.route in routes)) ctx.addIssue({ code: 'custom', path: [...at, 'outsideHours', 'route'], message: 'a route defined in routing.routes' });
    }
  }
}
