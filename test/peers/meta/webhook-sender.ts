/**
 * Calling webhooks exactly as in the fact sheet §1.1–§1.6, signed and delivered to the gateway.
 *
 * Builders (pure; all timestamps are strings of unix seconds, `duration` a number):
 *   connectOfferWebhook(ctx, { callId, from, name?, sdp, timestamp?, ctaPayload?, deeplinkPayload? })   §1.2
 *   connectAnswerWebhook(ctx, { callId, to, sdp, timestamp?, bizOpaqueCallbackData? })                   §1.3
 *   statusWebhook(ctx, { callId, status: 'RINGING'|'ACCEPTED'|'REJECTED', recipientId, timestamp?, bizOpaqueCallbackData? }) §1.4
 *   terminateWebhook(ctx, { callId, from, to, direction, status?, timestamp?, startTime?, endTime?, duration?,
 *                           bizOpaqueCallbackData?, ctaPayload?, deeplinkPayload?, errors? })             §1.5
 *   permissionReplyWebhook(ctx, { from, name?, response, isPermanent?, expirationTimestamp?,
 *                                 responseSource?, contextId?, messageId?, timestamp? })                  §1.6
 *   batch(...envelopes) -> one envelope whose entry[] concatenates theirs (Meta may batch up to 1000 updates)
 *   withTimestamp(envelope, unixSeconds) -> deep copy with every calls[]/statuses[]/messages[] timestamp replaced
 *   ctx = { wabaId, phoneNumberId, displayPhoneNumber }
 *
 * Signing: signPayload(appSecret, rawBody) -> 'sha256=' + hex HMAC-SHA256(appSecret, raw bytes).
 *
 * WebhookSender({ url, appSecret, timeoutMs? = 20000 })
 *   send(payload | rawString, { signature?: 'valid'|'wrong'|'missing'|<literal header>, duplicates?: n extra copies,
 *         retries?: n (retry non-2xx/network errors), retryDelayMs?, headers? }) -> Promise<WebhookDelivery[]>
 *   hold() -> queue deliveries instead of sending; release(order?: 'fifo'|'lifo'|number[]) sends the queue
 *       (e.g. hold(); send(connect); send(terminate); release('lifo') => terminate arrives before connect)
 *   transform = (payload) => payload   applied to object payloads before serialisation (e.g. stale timestamps)
 *   deliveries: WebhookDelivery[]      everything sent (seq, rawBody, signatureHeader, status, responseBody, times)
 *   waitIdle()                         resolves when nothing is in flight
 *
 * verifyHandshake(url, { verifyToken, challenge?, mode? = 'subscribe' }) -> { status, body, ok }   §1.1 GET handshake
 */
import { createHmac, randomBytes } from 'node:crypto';

export interface WebhookContext {
  wabaId: string;
  phoneNumberId: string;
  displayPhoneNumber: string;
}

export type CallDirection = 'USER_INITIATED' | 'BUSINESS_INITIATED';
export type CallStatusValue = 'RINGING' | 'ACCEPTED' | 'REJECTED';

export interface WebhookMetadata {
  display_phone_number: string;
  phone_number_id: string;
}

export interface WebhookContact {
  profile?: { name: string };
  wa_id: string;
}

export interface CallEventBody {
  id: string;
  from: string;
  to: string;
  event: 'connect' | 'terminate';
  direction: CallDirection;
  timestamp: string;
  session?: { sdp_type: 'offer' | 'answer'; sdp: string };
  status?: string;
  start_time?: string;
  end_time?: string;
  duration?: number;
  biz_opaque_callback_data?: string;
  cta_payload?: string;
  deeplink_payload?: string;
}

export interface CallStatusBody {
  id: string;
  type: 'call';
  status: CallStatusValue;
  timestamp: string;
  recipient_id: string;
  biz_opaque_callback_data?: string;
}

export interface WebhookError {
  code: number;
  message: string;
  href?: string;
  error_data?: { details: string };
}

export interface PermissionReplyMessage {
  from: string;
  id: string;
  timestamp: string;
  type: 'interactive';
  context?: { from: string; id: string };
  interactive: {
    type: 'call_permission_reply';
    call_permission_reply: {
      response: 'accept' | 'reject';
      is_permanent: boolean;
      expiration_timestamp?: string;
      response_source: 'user_action' | 'automatic';
    };
  };
}

export interface WebhookValue {
  messaging_product: 'whatsapp';
  metadata: WebhookMetadata;
  contacts?: WebhookContact[];
  calls?: CallEventBody[];
  statuses?: CallStatusBody[];
  messages?: PermissionReplyMessage[];
  errors?: WebhookError[];
}

export interface WebhookEnvelope {
  object: 'whatsapp_business_account';
  entry: Array<{ id: string; changes: Array<{ field: 'calls' | 'messages'; value: WebhookValue }> }>;
}

export function unixSeconds(ms: number = Date.now()): string {
  return String(Math.floor(ms / 1000));
}

function envelope(ctx: WebhookContext, field: 'calls' | 'messages', value: Omit<WebhookValue, 'messaging_product' | 'metadata'>): WebhookEnvelope {
  return {
    object: 'whatsapp_business_account',
    entry: [
      {
        id: ctx.wabaId,
        changes: [
          {
            field,
            value: {
              messaging_product: 'whatsapp',
              metadata: { display_phone_number: ctx.displayPhoneNumber, phone_number_id: ctx.phoneNumberId },
              ...value,
            },
          },
        ],
      },
    ],
  };
}

export function newCallId(): string {
  return 'wacid.' + randomBytes(24).toString('base64url');
}

export function newMessageId(): string {
  return 'wamid.' + randomBytes(24).toString('base64url');
}

function ts(t: string | number | undefined): string {
  if (t === undefined) return unixSeconds();
  return typeof t === 'number' ? String(t) : t;
}

export interface ConnectOfferInput {
  callId: string;
  /** WhatsApp user (wa_id). */
  from: string;
  name?: string;
  sdp: string;
  timestamp?: string | number;
  ctaPayload?: string;
  deeplinkPayload?: string;
}

/** §1.2 user-initiated connect carrying Meta's offer. `to` is the business display number. */
export function connectOfferWebhook(ctx: WebhookContext, i: ConnectOfferInput): WebhookEnvelope {
  const call: CallEventBody = {
    id: i.callId,
    from: i.from,
    to: ctx.displayPhoneNumber,
    event: 'connect',
    direction: 'USER_INITIATED',
    timestamp: ts(i.timestamp),
    session: { sdp_type: 'offer', sdp: i.sdp },
  };
  if (i.ctaPayload !== undefined) call.cta_payload = i.ctaPayload;
  if (i.deeplinkPayload !== undefined) call.deeplink_payload = i.deeplinkPayload;
  return envelope(ctx, 'calls', {
    contacts: [{ profile: { name: i.name ?? '' }, wa_id: i.from }],
    calls: [call],
  });
}

export interface ConnectAnswerInput {
  callId: string;
  /** WhatsApp user (wa_id). */
  to: string;
  sdp: string;
  timestamp?: string | number;
  bizOpaqueCallbackData?: string;
}

/** §1.3 business-initiated connect carrying the user's answer. */
export function connectAnswerWebhook(ctx: WebhookContext, i: ConnectAnswerInput): WebhookEnvelope {
  const call: CallEventBody = {
    id: i.callId,
    from: ctx.displayPhoneNumber,
    to: i.to,
    event: 'connect',
    direction: 'BUSINESS_INITIATED',
    timestamp: ts(i.timestamp),
    session: { sdp_type: 'answer', sdp: i.sdp },
  };
  if (i.bizOpaqueCallbackData !== undefined) call.biz_opaque_callback_data = i.bizOpaqueCallbackData;
  return envelope(ctx, 'calls', { contacts: [{ wa_id: i.to }], calls: [call] });
}

export interface StatusInput {
  callId: string;
  status: CallStatusValue;
  recipientId: string;
  timestamp?: string | number;
  bizOpaqueCallbackData?: string;
}

/** §1.4 business-initiated call status (field is still `calls`). */
export function statusWebhook(ctx: WebhookContext, i: StatusInput): WebhookEnvelope {
  const st: CallStatusBody = {
    id: i.callId,
    type: 'call',
    status: i.status,
    timestamp: ts(i.timestamp),
    recipient_id: i.recipientId,
  };
  if (i.bizOpaqueCallbackData !== undefined) st.biz_opaque_callback_data = i.bizOpaqueCallbackData;
  return envelope(ctx, 'calls', { statuses: [st] });
}

export interface TerminateInput {
  callId: string;
  from: string;
  to: string;
  direction: CallDirection;
  /** Default 'COMPLETED' ('FAILED' when errors are given). */
  status?: string;
  timestamp?: string | number;
  /** Present only if the call was picked up (unix seconds). */
  startTime?: string | number;
  endTime?: string | number;
  duration?: number;
  bizOpaqueCallbackData?: string;
  ctaPayload?: string;
  deeplinkPayload?: string;
  errors?: WebhookError[];
}

/** §1.5 terminate; `errors[]` at value level. */
export function terminateWebhook(ctx: WebhookContext, i: TerminateInput): WebhookEnvelope {
  const call: CallEventBody = {
    id: i.callId,
    from: i.from,
    to: i.to,
    event: 'terminate',
    direction: i.direction,
    timestamp: ts(i.timestamp),
    status: i.status ?? (i.errors && i.errors.length > 0 ? 'FAILED' : 'COMPLETED'),
  };
  if (i.startTime !== undefined) call.start_time = String(i.startTime);
  if (i.endTime !== undefined) call.end_time = String(i.endTime);
  if (i.duration !== undefined) call.duration = i.duration;
  if (i.bizOpaqueCallbackData !== undefined) call.biz_opaque_callback_data = i.bizOpaqueCallbackData;
  if (i.ctaPayload !== undefined) call.cta_payload = i.ctaPayload;
  if (i.deeplinkPayload !== undefined) call.deeplink_payload = i.deeplinkPayload;
  const value: Omit<WebhookValue, 'messaging_product' | 'metadata'> = { calls: [call] };
  if (i.errors && i.errors.length > 0) value.errors = i.errors;
  return envelope(ctx, 'calls', value);
}

export interface PermissionReplyInput {
  from: string;
  name?: string;
  response: 'accept' | 'reject';
  isPermanent?: boolean;
  /** Unix seconds; omitted when permanent. */
  expirationTimestamp?: string | number;
  responseSource?: 'user_action' | 'automatic';
  /** wamid of the request, or wacid for an automatic callback permission; omit for profile grants / auto revoke. */
  contextId?: string;
  messageId?: string;
  timestamp?: string | number;
}

/** §1.6 call_permission_reply on field `messages`. */
export function permissionReplyWebhook(ctx: WebhookContext, i: PermissionReplyInput): WebhookEnvelope {
  const reply: PermissionReplyMessage['interactive']['call_permission_reply'] = {
    response: i.response,
    is_permanent: i.isPermanent ?? false,
    response_source: i.responseSource ?? 'user_action',
  };
  if (!reply.is_permanent && i.expirationTimestamp !== undefined) reply.expiration_timestamp = String(i.expirationTimestamp);
  const msg: PermissionReplyMessage = {
    from: i.from,
    id: i.messageId ?? newMessageId(),
    timestamp: ts(i.timestamp),
    type: 'interactive',
    interactive: { type: 'call_permission_reply', call_permission_reply: reply },
  };
  if (i.contextId !== undefined) msg.context = { from: i.from, id: i.contextId };
  return envelope(ctx, 'messages', {
    contacts: [{ profile: { name: i.name ?? '' }, wa_id: i.from }],
    messages: [msg],
  });
}

/** Merge several envelopes into one batched delivery. */
export function batch(...envs: WebhookEnvelope[]): WebhookEnvelope {
  return { object: 'whatsapp_business_account', entry: envs.flatMap((e) => e.entry) };
}

/** Deep copy with every event timestamp replaced (use for stale-webhook tests). */
export function withTimestamp(env: WebhookEnvelope, unix: number | string): WebhookEnvelope {
  const copy = JSON.parse(JSON.stringify(env)) as WebhookEnvelope;
  for (const e of copy.entry) {
    for (const c of e.changes) {
      for (const x of c.value.calls ?? []) x.timestamp = String(unix);
      for (const x of c.value.statuses ?? []) x.timestamp = String(unix);
      for (const x of c.value.messages ?? []) x.timestamp = String(unix);
    }
  }
  return copy;
}

export function signPayload(appSecret: string, rawBody: string | Buffer): string {
  return 'sha256=' + createHmac('sha256', appSecret).update(rawBody).digest('hex');
}

export type SignatureMode = 'valid' | 'wrong' | 'missing';

export interface SendOptions {
  /** 'valid' (default), 'wrong' (HMAC with another secret), 'missing' (no header) or a literal header value. */
  signature?: SignatureMode | { header: string };
  /** Extra identical copies delivered after the first (duplicates). */
  duplicates?: number;
  /** Retry non-2xx/network failures this many times. */
  retries?: number;
  retryDelayMs?: number;
  headers?: Record<string, string>;
}

export interface WebhookDelivery {
  seq: number;
  rawBody: string;
  payload: WebhookEnvelope | undefined;
  signatureHeader: string | undefined;
  attempt: number;
  sentAt: number;
  respondedAt?: number;
  status?: number;
  responseBody?: string;
  error?: string;
}

interface Queued {
  body: string | WebhookEnvelope;
  opts: SendOptions;
  resolve: (d: WebhookDelivery[]) => void;
}

export interface WebhookSenderOptions {
  url: string;
  appSecret: string;
  timeoutMs?: number;
}

export class WebhookSender {
  url: string;
  readonly appSecret: string;
  readonly timeoutMs: number;
  readonly deliveries: WebhookDelivery[] = [];
  transform: ((p: WebhookEnvelope) => WebhookEnvelope) | undefined;
  private seq = 0;
  private held: Queued[] | undefined;
  private inFlight = new Set<Promise<unknown>>();
  private closed = false;
  private readonly controllers = new Set<AbortController>();

  constructor(opts: WebhookSenderOptions) {
    this.url = opts.url;
    this.appSecret = opts.appSecret;
    this.timeoutMs = opts.timeoutMs ?? 20_000;
  }

  /** Queue deliveries until release(). */
  hold(): void {
    this.held ??= [];
  }

  get heldCount(): number {
    return this.held?.length ?? 0;
  }

  /** Send queued deliveries one after another, in the given order; stops holding. */
  async release(order: 'fifo' | 'lifo' | number[] = 'fifo'): Promise<WebhookDelivery[]> {
    const q = this.held ?? [];
    this.held = undefined;
    const idx = Array.isArray(order) ? order : q.map((_, i) => i);
    if (order === 'lifo') idx.reverse();
    const all: WebhookDelivery[] = [];
    for (const i of idx) {
      const item = q[i];
      if (!item) continue;
      const d = await this.deliver(item.body, item.opts);
      item.resolve(d);
      all.push(...d);
    }
    // anything not named in an explicit order is still sent, afterwards
    for (let i = 0; i < q.length; i++) {
      if (idx.includes(i)) continue;
      const item = q[i]!;
      const d = await this.deliver(item.body, item.opts);
      item.resolve(d);
      all.push(...d);
    }
    return all;
  }

  send(body: WebhookEnvelope | string, opts: SendOptions = {}): Promise<WebhookDelivery[]> {
    if (this.held) {
      return new Promise((resolve) => this.held!.push({ body, opts, resolve }));
    }
    return this.deliver(body, opts);
  }

  async waitIdle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  /** Abort in-flight requests and refuse further sends. */
  close(): void {
    this.closed = true;
    for (const c of this.controllers) c.abort();
    for (const q of this.held ?? []) q.resolve([]);
    this.held = undefined;
  }

  private async deliver(body: WebhookEnvelope | string, opts: SendOptions): Promise<WebhookDelivery[]> {
    let payload: WebhookEnvelope | undefined;
    let raw: string;
    if (typeof body === 'string') {
      raw = body;
    } else {
      payload = this.transform ? this.transform(body) : body;
      raw = JSON.stringify(payload);
    }
    const sig = opts.signature ?? 'valid';
    let header: string | undefined;
    if (sig === 'valid') header = signPayload(this.appSecret, raw);
    else if (sig === 'wrong') header = signPayload(this.appSecret + '-wrong', raw);
    else if (sig === 'missing') header = undefined;
    else header = sig.header;
    const out: WebhookDelivery[] = [];
    const copies = 1 + (opts.duplicates ?? 0);
    for (let c = 0; c < copies; c++) {
      const retries = opts.retries ?? 0;
      for (let attempt = 0; attempt <= retries; attempt++) {
        if (this.closed) return out;
        const d = await this.post(raw, payload, header, attempt, opts.headers);
        out.push(d);
        if (d.status !== undefined && d.status >= 200 && d.status < 300) break;
        if (attempt < retries) await new Promise((r) => setTimeout(r, opts.retryDelayMs ?? 250));
      }
    }
    return out;
  }

  private post(
    raw: string,
    payload: WebhookEnvelope | undefined,
    header: string | undefined,
    attempt: number,
    extra: Record<string, string> | undefined,
  ): Promise<WebhookDelivery> {
    const d: WebhookDelivery = { seq: ++this.seq, rawBody: raw, payload, signatureHeader: header, attempt, sentAt: Date.now() };
    this.deliveries.push(d);
    const headers: Record<string, string> = { 'content-type': 'application/json', 'user-agent': 'facebookexternalua', ...extra };
    if (header !== undefined) headers['x-hub-signature-256'] = header;
    const ac = new AbortController();
    this.controllers.add(ac);
    const timer = setTimeout(() => ac.abort(), this.timeoutMs);
    const p = (async (): Promise<WebhookDelivery> => {
      try {
        const res = await fetch(this.url, { method: 'POST', headers, body: raw, signal: ac.signal });
        d.status = res.status;
        d.responseBody = await res.text();
      } catch (e) {
        d.error = e instanceof Error ? e.message : String(e);
      } finally {
        clearTimeout(timer);
        this.controllers.delete(ac);
        d.respondedAt = Date.now();
      }
      return d;
    })();
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
    return p;
  }
}

export interface HandshakeOptions {
  verifyToken: string;
  challenge?: string;
  mode?: string;
}

export interface HandshakeResult {
  status: number;
  body: string;
  challenge: string;
  /** 200 and the body is exactly the challenge. */
  ok: boolean;
}

/** §1.1 GET verify handshake. */
export async function verifyHandshake(url: string, opts: HandshakeOptions): Promise<HandshakeResult> {
  const challenge = opts.challenge ?? String(randomBytes(6).readUIntBE(0, 6));
  const u = new URL(url);
  u.searchParams.set('hub.mode', opts.mode ?? 'subscribe');
  u.searchParams.set('hub.challenge', challenge);
  u.searchParams.set('hub.verify_token', opts.verifyToken);
  const res = await fetch(u, { method: 'GET' });
  const body = await res.text();
  return { status: res.status, body, challenge, ok: res.status === 200 && body === challenge };
}
