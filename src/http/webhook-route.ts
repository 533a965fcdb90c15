import type { IncomingMessage, ServerResponse } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { verifySignature } from '../whatsapp/signature.js';
import { MalformedWebhookError, parseWebhook, dedupeKey, type AccountNotice, type CallingEvent, type MalformedChange, type WebhookErrorItem } from '../whatsapp/events.js';
import { RecentKeys } from '../whatsapp/dedupe.js';
import type { WebhookApps } from '../whatsapp/webhook-apps.js';
import { readBody, sendJson } from './server.js';
import { FORWARDED_HEADER, type WebhookForwarder } from './webhook-forwarder.js';

export interface WebhookReceiverOptions {
  appSecret: string;
  verifyToken: string;
  maxAgeSeconds: number;
  /** A user-initiated connect older than this is past Meta's ring window (§3.2); default maxAgeSeconds. */
  userConnectMaxAgeSeconds?: number;
  logger: Logger;
  metrics: Metrics;
  /** Several Meta apps (routing-schema.ts): read at each delivery, so a config reload swaps them. Overrides appSecret. */
  apps?: () => WebhookApps;
  /** Called after the 200 has been sent: Meta times out at ~20 s and retries, so work never delays the answer. */
  onEvent: (ev: CallingEvent) => void;
  /** Meta's notices about the account or a number (§1.7), after they are logged and counted. */
  onNotice?: (n: AccountNotice) => void;
  /**
   * Whether a call the event names is still live here. A `terminate` for a live call is handled however old its
   * timestamp: Meta retries a delivery for days (§1.1), and dropping it as stale would leave the PBX leg up with the
   * user gone. Absent = every stale event is dropped.
   */
  isLiveCall?: (waCallId: string, bizOpaque?: string) => boolean;
  /** The other instances behind the same webhook URL (cluster.peers): deliveries for calls not live here go to them. */
  forwarder?: WebhookForwarder;
}

/**
 * A delivery may batch up to 1000 updates (§1.1); 1000 `connect`s with their SDP offers and contacts come to about
 * 3 MB, and a 413 would make Meta retry the same oversized batch until it gives up.
 */
const WEBHOOK_MAX_BODY_BYTES = 16 * 1024 * 1024;

/** What an operator should read in the log line (§1.7). */
function noticeText(n: AccountNotice): string {
  if (n.field === 'account_update') {
    return n.kind === 'ACCOUNT_RESTRICTION'
      ? 'Meta restricted calling on this account (see restrictionType, expiration)'
      : `Meta account update ${n.kind} (see violationType): calling may be restricted next`;
  }
  const kx = n.details.srtpKeyExchangeProtocol;
  const follow = n.details.phoneNumberId ? 'which our business-initiated offers follow from now on' : 'the notice names no number: set whatsapp.numbers[].whatsappKeyExchange';
  return `Meta calling settings changed for the number${kx ? `: srtp_key_exchange_protocol is ${kx}; ${follow}` : ''}`;
}

function constantTimeEquals(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  return ab.length === bb.length && timingSafeEqual(ab, bb);
}

export class WebhookReceiver {
  private readonly recent = new RecentKeys(60 * 60 * 1000);
  /**
   * Permission replies are taken however late they come, and Meta retries for up to 7 days (§1.1): their keys are kept
   * that long, or a retry would be applied again (an accept resets the ledger's unanswered-call count).
   */
  private readonly recentReplies = new RecentKeys(8 * 24 * 60 * 60 * 1000, 50_000);

  constructor(private readonly opts: WebhookReceiverOptions) {}

  /** `appName`: the handshake came on /webhooks/whatsapp/<app>; an app not configured here is a 404, as for deliveries. */
  verifyHandshake(params: URLSearchParams, res: ServerResponse, appName?: string): void {
    const { verifyToken, logger, metrics } = this.opts;
    if (appName !== undefined && !this.opts.apps?.().has(appName)) {
      metrics.webhooks.inc({ result: 'unknown_app' });
      logger.warn({ app: appName }, 'webhook verification handshake refused: no such app');
      sendJson(res, 404, { error: 'not found' });
      return;
    }
    const ok = params.get('hub.mode') === 'subscribe' && verifyToken !== ''
      && constantTimeEquals(params.get('hub.verify_token') ?? '', verifyToken);
    metrics.webhooks.inc({ result: ok ? 'verify_ok' : 'verify_failed' });
    if (!ok) {
      logger.warn({ mode: params.get('hub.mode') }, 'webhook verification handshake refused');
      sendJson(res, 403, { error: 'verification failed' });
      return;
    }
    const challenge = params.get('hub.challenge') ?? '';
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(challenge);
  }

  async receive(req: IncomingMessage, res: ServerResponse, appName?: string): Promise<void> {
    const { logger, metrics } = this.opts;
    // Passed on by a peer instance (webhook-forwarder.ts): still verified as Meta's, never passed on again.
    const forwarded = req.headers[FORWARDED_HEADER] !== undefined;
    let raw: Buffer;
    try {
      raw = await readBody(req, WEBHOOK_MAX_BODY_BYTES);
    } catch (err) {
      metrics.webhooks.inc({ result: 'malformed' });
      logger.warn({ err: (err as Error).message }, 'webhook body unreadable');
      sendJson(res, 413, { error: 'body too large' });
      return;
    }
    const header = req.headers['x-hub-signature-256'];
    const sig = Array.isArray(header) ? header[0] : header;
    const apps = this.opts.apps?.();
    // The signature is checked over the raw bytes before anything is parsed.
    const checked = apps ? apps.verify(raw, sig, appName) : appName !== undefined ? { verdict: 'unknown_app' as const } : (() => {
      const v = verifySignature(raw, sig, this.opts.appSecret);
      return v === 'ok' ? { verdict: v, app: '' } : { verdict: v };
    })();
    if (checked.verdict === 'unknown_app') {
      metrics.webhooks.inc({ result: 'unknown_app' });
      logger.warn({ app: appName }, 'webhook rejected: no such app');
      sendJson(res, 404, { error: 'not found' });
      return;
    }
    if (checked.verdict !== 'ok') {
      const verdict = checked.verdict;
      metrics.webhooks.inc({ result: 'bad_signature' });
      logger.warn({ verdict, bytes: raw.length, app: appName }, 'webhook rejected: signature check failed');
      sendJson(res, 401, { error: `signature ${verdict}` });
      return;
    }
    const verifiedApp = checked.app;
    let events: CallingEvent[];
    let errors: WebhookErrorItem[];
    let malformed: MalformedChange[];
    let notices: AccountNotice[];
    try {
      ({ events, errors, malformed, notices } = parseWebhook(JSON.parse(raw.toString('utf8'))));
    } catch (err) {
      metrics.webhooks.inc({ result: 'malformed' });
      logger.warn({ err: (err as Error).message }, 'webhook rejected: malformed body');
      sendJson(res, 400, { error: err instanceof MalformedWebhookError ? err.message : 'malformed JSON' });
      return;
    }
    metrics.webhooks.inc({ result: 'ok' });
    sendJson(res, 200, { ok: true });
    for (const e of errors) {
      // Nothing to act on (no call id), but e.g. 131044 means every user-initiated call fails until billing is fixed.
      metrics.webhookEvents.inc({ event: 'error', result: 'logged' });
      logger.warn({ phoneNumberId: e.phoneNumberId, graphCode: e.code, message: e.message, details: e.details }, 'WhatsApp error webhook');
    }
    for (const m of malformed) {
      // Still 200 (a 4xx would only make Meta retry the same body for days), but nothing is done: without the business
      // number's phone_number_id every Graph request (reject, terminate) would go to a wrong path.
      metrics.webhookMalformedItems.inc({ reason: m.reason }, m.items);
      logger.warn({ field: m.field, reason: m.reason, items: m.items, ids: m.ids.slice(0, 10), app: verifiedApp || undefined },
        m.reason === 'no_phone_number_id' ? 'webhook change without metadata.phone_number_id: its events are dropped' : 'unusable webhook items dropped');
    }
    for (const n of notices) {
      metrics.accountNotices.inc({ field: n.field });
      logger.warn({ field: n.field, kind: n.kind, ...n.details, app: verifiedApp || undefined }, noticeText(n));
      try {
        this.opts.onNotice?.(n);
      } catch (err) {
        logger.error({ err: (err as Error).message, field: n.field }, 'account notice handler failed');
      }
    }
    const now = Math.floor(Date.now() / 1000);
    // Why a peer instance needs this delivery too, if it does.
    let forPeers = notices.length > 0 ? 'account_notice' : undefined;
    for (const ev of events) {
      const key = dedupeKey(ev);
      const evName = ev.kind === 'status' ? `status_${ev.status.toLowerCase()}` : ev.kind;
      if (apps && !apps.accepts(verifiedApp, ev.phoneNumberId)) {
        metrics.webhookEvents.inc({ event: evName, result: 'foreign_app' });
        logger.warn({ app: verifiedApp, phoneNumberId: ev.phoneNumberId, event: evName }, 'webhook event for a number of another app dropped');
        continue;
      }
      const ageSeconds = now - ev.timestamp;
      if (ev.kind === 'permission_reply' && !ev.isPermanent && ev.response === 'accept' && ev.expiresAt !== undefined && ev.expiresAt <= now) {
        metrics.webhookEvents.inc({ event: evName, result: 'stale' });
        logger.info({ phoneNumberId: ev.phoneNumberId, waId: ev.userWaId, event: evName, ageSeconds, expiresAt: ev.expiresAt, reason: 'grant_expired' },
          'call permission grant delivered after its expiration_timestamp dropped');
        continue;
      }
      // A permission reply stays true until its expiration_timestamp (or for good) and Meta retries deliveries for up to
      // 7 days (§1.1, §1.6): a late one must still reach the ledger, which orders replies by their own timestamp.
      const ringing = ev.kind === 'connect' && ev.direction === 'USER_INITIATED';
      if (forwarded && ringing) {
        // The instance Meta's delivery reached rings this call. Remembered here as seen, so that a retry of Meta's that
        // lands here does not ring the PBX a second time.
        this.recent.firstSighting(key);
        metrics.webhookEvents.inc({ event: evName, result: 'forwarded_skipped' });
        continue;
      }
      if (!forwarded) forPeers ??= this.peerMayNeed(ev);
      const maxAge = ringing ? Math.min(this.opts.maxAgeSeconds, this.opts.userConnectMaxAgeSeconds ?? Infinity) : this.opts.maxAgeSeconds;
      const stale = ev.kind !== 'permission_reply' && ageSeconds > maxAge;
      if (stale && !(ev.kind === 'terminate' && this.opts.isLiveCall?.(ev.callId, ev.bizOpaque))) {
        metrics.webhookEvents.inc({ event: evName, result: 'stale' });
        // Still a customer who called: handed on (once) to be recorded as a missed call, unless it is older than any
        // delivery the dedupe window remembers.
        const missed = ev.kind === 'connect' && ringing && ageSeconds <= this.opts.maxAgeSeconds && this.recent.firstSighting(key);
        logger.warn({ waCallId: 'callId' in ev ? ev.callId : undefined, event: evName, ageSeconds, maxAgeSeconds: maxAge },
          missed ? 'user-initiated connect older than Meta\'s ring window: the user no longer rings, recorded as missed' : 'stale webhook event dropped');
        if (missed) this.handOn({ ...ev, pastRingWindow: true }, evName);
        continue;
      }
      if (!(ev.kind === 'permission_reply' ? this.recentReplies : this.recent).firstSighting(key)) {
        metrics.webhookEvents.inc({ event: evName, result: 'duplicate' });
        logger.info({ waCallId: 'callId' in ev ? ev.callId : undefined, event: evName }, 'duplicate webhook event ignored');
        continue;
      }
      metrics.webhookEvents.inc({ event: evName, result: stale ? 'accepted_stale' : 'accepted' });
      if (stale) logger.warn({ waCallId: 'callId' in ev ? ev.callId : undefined, event: evName, ageSeconds }, 'stale terminate for a call still live here: handled');
      this.handOn(ev, evName);
    }
    const forwarder = this.opts.forwarder;
    if (forPeers && !forwarded && forwarder?.enabled) {
      forwarder.forward(raw, sig, new URL(req.url ?? '/', 'http://gateway').pathname, forPeers);
    }
  }

  /** A new user-initiated call (for the peers' dedupe), a permission reply (each keeps a ledger), or a call not live here. */
  private peerMayNeed(ev: CallingEvent): string | undefined {
    if (ev.kind === 'permission_reply') return 'permission_reply';
    if (ev.kind === 'connect' && ev.direction === 'USER_INITIATED') return 'new_call';
    return this.opts.isLiveCall?.(ev.callId, ev.bizOpaque) ? undefined : 'call_not_here';
  }

  private handOn(ev: CallingEvent, evName: string): void {
    try {
      this.opts.onEvent(ev);
    } catch (err) {
      this.opts.logger.error({ err: (err as Error).message, event: evName }, 'webhook event handler failed');
    }
  }
}
