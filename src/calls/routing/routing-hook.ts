/**
 * The optional HTTP routing hook: POST the call's context as JSON, get a decision back within a deadline.
 *
 * Request body:  { waCallId, phoneNumberId, displayNumber, tenant, from, name?, ctaPayload?, deeplinkPayload?,
 *                  staticRoute }                      (staticRoute: what the static rules chose, for reference)
 * Answer (200, JSON), one of:
 *   { "target": "sip:…" }  |  { "targets": ["sip:…", …] }   ring these (failover, the static route's codecs/timeout)
 *   { "route": "<name>" }                                    use a configured route (its hours still apply)
 *   { "action": "reject" }                                   reject the WhatsApp call
 * Anything else, a non-2xx status, a network error or no complete answer within timeoutMs → undefined (the caller
 * falls back to the static rule). The reason is returned for the log and the metric.
 */
import type { RoutingHookConfig } from '../../config/routing-schema.js';

export interface HookContext {
  waCallId: string;
  phoneNumberId: string;
  displayNumber: string;
  tenant: string;
  from: string;
  name?: string;
  ctaPayload?: string;
  deeplinkPayload?: string;
  staticRoute: string;
}

export type HookDecision = { kind: 'targets'; targets: string[] } | { kind: 'route'; route: string } | { kind: 'reject' };

export type HookResult = { ok: true; decision: HookDecision } | { ok: false; reason: 'timeout' | 'error' | 'bad_answer'; detail: string };

const SIP_URI = /^sips?:[^\s]+$/;

export function parseHookAnswer(body: unknown): HookDecision | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const b = body as Record<string, unknown>;
  if (typeof b.target === 'string' && SIP_URI.test(b.target)) return { kind: 'targets', targets: [b.target] };
  if (Array.isArray(b.targets) && b.targets.length > 0 && b.targets.length <= 16 && b.targets.every((t) => typeof t === 'string' && SIP_URI.test(t))) {
    return { kind: 'targets', targets: b.targets as string[] };
  }
  if (typeof b.route === 'string' && b.route.length > 0) return { kind: 'route', route: b.route };
  if (b.action === 'reject') return { kind: 'reject' };
  return undefined;
}

export async function askRoutingHook(hook: RoutingHookConfig, ctx: HookContext): Promise<HookResult> {
  const signal = AbortSignal.timeout(hook.timeoutMs);
  try {
    const res = await fetch(hook.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(ctx),
      signal,
    });
    const text = await res.text();
    if (!res.ok) return { ok: false, reason: 'error', detail: `HTTP ${res.status}` };
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return { ok: false, reason: 'bad_answer', detail: 'not JSON' };
    }
    const decision = parseHookAnswer(body);
    return decision ? { ok: true, decision } : { ok: false, reason: 'bad_answer', detail: 'no target, targets, route or action' };
  } catch (err) {
    if (signal.aborted) return { ok: false, reason: 'timeout', detail: `no answer within ${hook.timeoutMs} ms` };
    return { ok: false, reason: 'error', detail: (err as Error).message };
  }
}
