import type { GatewayConfig } from './schema.js';

/**
 * Settings a running gateway cannot change (sockets, ports, pools, the store): a reload that changes them still
 * applies everything else, and these are logged as needing a restart. Everything not listed here (numbers, apps,
 * routing, hold, transfer, timeouts, business calls) applies to the next call; live calls keep what they were given.
 */
const RESTART_ONLY: readonly string[] = [
  'http', 'sip.drachtioHost', 'sip.drachtioPort', 'media', 'store', 'calls.maxConcurrent', 'log', 'admin',
  'whatsapp.graphBaseUrl', 'whatsapp.graphApiVersion', 'whatsapp.graphTimeoutMs', 'whatsapp.graphRetries',
];

function at(obj: unknown, path: string): unknown {
  return path.split('.').reduce<unknown>((o, k) => (o !== null && typeof o === 'object' ? (o as Record<string, unknown>)[k] : undefined), obj);
}

export function restartOnlyChanges(old: GatewayConfig, next: GatewayConfig): string[] {
  return RESTART_ONLY.filter((p) => JSON.stringify(at(old, p)) !== JSON.stringify(at(next, p)));
}

/** `next` with the restart-only settings of `old`, so that what the gateway reports is what it runs. */
export function withRestartOnlyFrom(old: GatewayConfig, next: GatewayConfig): GatewayConfig {
  const out = structuredClone(next);
  for (const p of RESTART_ONLY) {
    const keys = p.split('.');
    const last = keys.pop()!;
    const parent = keys.reduce<Record<string, unknown>>((o, k) => o[k] as Record<string, unknown>, out as unknown as Record<string, unknown>);
    parent[last] = structuredClone(at(old, p));
  }
  return out;
}
