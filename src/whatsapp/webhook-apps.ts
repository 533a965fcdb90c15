/**
 * Webhooks from several Meta apps (one per brand or tenant). Meta signs each delivery with the app's own secret and
 * gives each app one callback URL, so either:
 *   - each app is given its own URL, /webhooks/whatsapp/<app>: only that app's secret is tried; or
 *   - every app posts to /webhooks/whatsapp: every configured secret is tried, each comparison constant-time and all
 *     of them always computed, so timing tells nothing about which secret (if any) matched.
 * Either way the signature is verified over the raw body BEFORE anything is parsed. Once parsed, an event counts only
 * if its phone_number_id belongs to the app whose secret verified it (a brand cannot hang up another brand's calls);
 * numbers the config does not know are left to the call flows, which refuse them (no_route).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { SignatureVerdict } from './signature.js';

export interface WebhookApp {
  /** '' = the default app (WAGW_APP_SECRET). */
  name: string;
  secret: string;
  phoneNumberIds: ReadonlySet<string>;
}

export type AppVerdict = { verdict: 'ok'; app: string } | { verdict: Exclude<SignatureVerdict, 'ok'> | 'unknown_app' };

const HEX_SHA256 = /^[0-9a-f]{64}$/i;

export class WebhookApps {
  private readonly apps: Map<string, WebhookApp>;
  private readonly ownerOf = new Map<string, string>();

  constructor(apps: readonly WebhookApp[]) {
    this.apps = new Map(apps.map((a) => [a.name, a]));
    for (const a of apps) for (const id of a.phoneNumberIds) this.ownerOf.set(id, a.name);
  }

  get names(): string[] {
    return [...this.apps.keys()];
  }

  has(name: string): boolean {
    return this.apps.has(name);
  }

  /** Verifies X-Hub-Signature-256 against the named app's secret, or against every secret when no app is named. */
  verify(rawBody: Buffer, header: string | undefined, appName?: string): AppVerdict {
    if (appName !== undefined && !this.apps.has(appName)) return { verdict: 'unknown_app' };
    if (!header) return { verdict: 'missing' };
    if (!header.startsWith('sha256=')) return { verdict: 'malformed' };
    const hex = header.slice('sha256='.length);
    if (!HEX_SHA256.test(hex)) return { verdict: 'malformed' };
    const given = Buffer.from(hex, 'hex');
    const candidates = appName !== undefined ? [this.apps.get(appName)!] : [...this.apps.values()];
    let matched: string | undefined;
    for (const app of candidates) {
      if (app.secret === '') continue;
      const expected = createHmac('sha256', app.secret).update(rawBody).digest();
      // No early exit: every secret is tried whatever the outcome.
      if (timingSafeEqual(expected, given) && matched === undefined) matched = app.name;
    }
    return matched !== undefined ? { verdict: 'ok', app: matched } : { verdict: 'mismatch' };
  }

  /** May events of this phone number come from this app? Unknown numbers may come from any verified app. */
  accepts(app: string, phoneNumberId: string): boolean {
    const owner = this.ownerOf.get(phoneNumberId);
    return owner === undefined || owner === app;
  }
}

/** The default app (WAGW_APP_SECRET, numbers without `app`) plus every configured one. */
export function buildWebhookApps(
  config: { whatsapp: { apps: { name: string }[]; numbers: { phoneNumberId: string; app: string }[] } },
  secrets: { appSecret: string; apps?: ReadonlyMap<string, { appSecret: string }> },
): WebhookApps {
  const numbersOf = (app: string): Set<string> => new Set(config.whatsapp.numbers.filter((n) => n.app === app).map((n) => n.phoneNumberId));
  return new WebhookApps([
    { name: '', secret: secrets.appSecret, phoneNumberIds: numbersOf('') },
    ...config.whatsapp.apps.map((a) => ({ name: a.name, secret: secrets.apps?.get(a.name)?.appSecret ?? '', phoneNumberIds: numbersOf(a.name) })),
  ]);
}
