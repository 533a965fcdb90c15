/**
 * MetaDouble: Meta's side of WhatsApp Business Calling for end-to-end tests — Graph API double + signed webhooks
 * + simulated WhatsApp users (fact sheet §1–§4).
 *
 *   const meta = new MetaDouble({ appSecret, accessToken, phoneNumberId: '436666719526789',
 *                                 displayPhoneNumber: '13175551399', wabaId: '366634483210360', webhookUrl });
 *   const { graphBaseUrl } = await meta.start();     // http://127.0.0.1:PORT — the gateway appends /v21.0/<pnid>/...
 *   meta.webhookUrl = '...'                          // may be set after start (gateway port known later)
 *
 * User-initiated (§1.2, §2.1):
 *   const user = new WaUser({ waId: '16315553602', name: 'Jane Doe' });
 *   const { callId } = await meta.userCalls(user, { ctaPayload?, deeplinkPayload?, duplicate?: true|n, deliver?: false });
 *     -> real wrtc offer, connect webhook (offer) delivered; pre_accept/accept SDP is applied to the user's peer
 *        (pre_accept's if any, else accept's). No accept within userRingTimeoutMs (45 s) -> terminate webhook.
 *     A plain profile { waId, name } instead of a WaUser gives a static Meta-like offer (signalling only), or
 *     opts.offerSdp (e.g. rtpengine's ICE-lite SDP); read the gateway's answer from graph.calls after waitForAction.
 *   await meta.waitForAction(callId, 'accept');      // GraphRequestLog of the gateway's request (check .status)
 *   await meta.userHangsUp(callId, { errors? });     // terminate webhook (+start_time/end_time/duration if accepted)
 *   gateway reject/terminate -> terminate webhook after webhookDelayMs (30 ms); the user's media is stopped.
 *
 * Business-initiated (§1.3, §1.4) — needs a business number outside +1/+20/+84/+234 (§3.4, else 138013):
 *   meta.addUser(user, { permission: 'temporary' | 'permanent' | 'no_permission', callable? });
 *   gateway POST connect -> user answers the offer (wrtc, or static SDP for a profile), connect webhook with the
 *   answer after answerDelayMs (50 ms), RINGING after ringingDelayMs (50 ms) more.
 *   await meta.waitForConnect(waId) -> CallRecord (the call the gateway placed)
 *   await meta.userAnswers(callId)   -> ACCEPTED status;   await meta.userDeclines(callId) -> REJECTED + terminate
 *   no answer within businessRingTimeoutMs (60 s) -> terminate without start_time. 4 consecutive unanswered ->
 *   permission auto-revoked + automatic call_permission_reply "reject" (§3.1, §1.6).
 *
 * Permissions (§1.6, §2.3–§2.5, §3.1): gateway POST /messages (call_permission_request) is limited 1/24 h,
 *   2/7 days (138009). await meta.userRepliesToPermission(waId, { response: 'accept', isPermanent? }) sends the
 *   reply webhook (context.id = last request wamid) and updates permission state. autoPermissionReply option
 *   answers every request automatically.
 *
 * Media watchdog (WaUser calls): no business RTP within mediaStartTimeoutMs (20 s) of the call being connected, or a
 *   gap of mediaGapTimeoutMs (30 s) -> terminate FAILED with errors[{code:138021}] (§3.2). 0 disables.
 * Failures / chaos: meta.graph.injectFailure(op, {...}) / injectDelay(op, ms); meta.failCall(callId, { code: 138021,
 *   message }) (terminate FAILED + errors[]); meta.webhooks (WebhookSender) hold()/release('lifo'), duplicates,
 *   wrong signature, transform (stale timestamps); meta.sendWebhook(envelope, opts).
 * Inspection: meta.requests (Graph log), meta.webhooks.deliveries, meta.timeline(), meta.graph.calls/users,
 *   meta.errors (exceptions inside the double, e.g. the gateway's SDP rejected by libwebrtc).
 *   await meta.stop() stops timers, server, in-flight webhooks and every WaUser's media (users still need close()).
 */
import { GraphDouble, type ActionEvent, type CallAction, type CallRecord, type GraphRequestLog, type PermissionStatus, type UserRecord } from './graph-double.js';
import {
  connectAnswerWebhook,
  connectOfferWebhook,
  permissionReplyWebhook,
  statusWebhook,
  terminateWebhook,
  unixSeconds,
  WebhookSender,
  type SendOptions,
  type WebhookContext,
  type WebhookDelivery,
  type WebhookEnvelope,
  type WebhookError,
} from './webhook-sender.js';
import { staticMetaAnswer, staticMetaOffer, staticMetaSdesAnswer, staticMetaSdesOffer } from './sdp.js';
import { WaUser } from './wa-user.js';

export interface UserProfile {
  waId: string;
  name?: string;
  /**
   * Business-initiated calls: the device's answer to the gateway's offer (e.g. an SdesUser's), instead of the static
   * Meta-like one.
   */
  answerOffer?: (offerSdp: string) => Promise<string>;
}

export type SimUser = WaUser | UserProfile;

export interface MetaDoubleOptions {
  appSecret: string;
  accessToken: string;
  phoneNumberId: string;
  displayPhoneNumber: string;
  wabaId: string;
  webhookUrl?: string;
  clock?: () => number;
  webhookDelayMs?: number;
  answerDelayMs?: number;
  ringingDelayMs?: number;
  userRingTimeoutMs?: number;
  businessRingTimeoutMs?: number;
  /** Retries of a non-2xx / failed delivery made by the double itself (default 2, 250 ms apart). */
  webhookRetries?: number;
  dailyConnectedCallLimit?: number;
  callPermissionTemplates?: string[];
  autoPermissionReply?: 'accept' | 'accept_permanent' | 'reject';
  /**
   * settings srtp_key_exchange_protocol SDES (§2.6, §4.5): the business's SDP must be RTP/SAVP with a=crypto, and
   * profile users' static offers and answers are SDES ones.
   */
  sdes?: boolean;
  /** settings audio.additional_codecs PCMA/PCMU (§2.6): the business's SDP may carry G.711 instead of Opus. */
  allowG711?: boolean;
  /** WaUser calls only: no business media this long after the call is connected -> 138021 (§3.2; default 20000, 0 = off). */
  mediaStartTimeoutMs?: number;
  /** WaUser calls only: no new business packets this long after media started -> 138021 (§3.2; default 30000, 0 = off). */
  mediaGapTimeoutMs?: number;
}

export interface UserCallOptions {
  ctaPayload?: string;
  deeplinkPayload?: string;
  /** Deliver the connect webhook again (true = once more, n = n more times). */
  duplicate?: boolean | number;
  /** false: build everything but do not deliver (send `envelope` yourself). */
  deliver?: boolean;
  timestamp?: number | string;
  send?: SendOptions;
  /**
   * Profile users only: this offer instead of the static Meta-like one (e.g. a real ICE-lite relay's SDP). The
   * gateway's answer is then in graph.calls.get(callId).preAcceptSdp / .acceptSdp after waitForAction().
   */
  offerSdp?: string;
}

export interface UserCallResult {
  callId: string;
  offerSdp: string;
  envelope: WebhookEnvelope;
  deliveries: WebhookDelivery[];
}

export interface TimelineEntry {
  at: number;
  kind: 'graph' | 'webhook';
  what: string;
  callId?: string;
  status?: number;
}

function isWaUser(u: SimUser): u is WaUser {
  return u instanceof WaUser;
}

export class MetaDouble {
  readonly graph: GraphDouble;
  readonly webhooks: WebhookSender;
  readonly ctx: WebhookContext;
  readonly errors: Error[] = [];
  readonly clock: () => number;
  webhookDelayMs: number;
  answerDelayMs: number;
  ringingDelayMs: number;
  userRingTimeoutMs: number;
  businessRingTimeoutMs: number;
  webhookRetries: number;
  autoPermissionReply: MetaDoubleOptions['autoPermissionReply'];
  mediaStartTimeoutMs: number;
  mediaGapTimeoutMs: number;
  private readonly simUsers = new Map<string, SimUser>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly ringTimers = new Map<string, NodeJS.Timeout>();
  private readonly pending = new Set<Promise<unknown>>();
  private connectWaiters: Array<{ waId: string; resolve: (c: CallRecord) => void; reject: (e: Error) => void }> = [];
  private readonly monitors = new Map<string, NodeJS.Timeout>();
  private stopped = false;

  constructor(opts: MetaDoubleOptions) {
    this.clock = opts.clock ?? Date.now;
    const graphOpts: ConstructorParameters<typeof GraphDouble>[0] = {
      accessToken: opts.accessToken,
      phoneNumberId: opts.phoneNumberId,
      displayPhoneNumber: opts.displayPhoneNumber,
      clock: this.clock,
    };
    if (opts.dailyConnectedCallLimit !== undefined) graphOpts.dailyConnectedCallLimit = opts.dailyConnectedCallLimit;
    if (opts.callPermissionTemplates !== undefined) graphOpts.callPermissionTemplates = opts.callPermissionTemplates;
    if (opts.sdes !== undefined) graphOpts.sdes = opts.sdes;
    if (opts.allowG711 !== undefined) graphOpts.allowG711 = opts.allowG711;
    this.graph = new GraphDouble(graphOpts);
    this.webhooks = new WebhookSender({ url: opts.webhookUrl ?? 'http://127.0.0.1:1/unset', appSecret: opts.appSecret });
    this.ctx = { wabaId: opts.wabaId, phoneNumberId: opts.phoneNumberId, displayPhoneNumber: opts.displayPhoneNumber };
    this.webhookDelayMs = opts.webhookDelayMs ?? 30;
    this.answerDelayMs = opts.answerDelayMs ?? 50;
    this.ringingDelayMs = opts.ringingDelayMs ?? 50;
    this.userRingTimeoutMs = opts.userRingTimeoutMs ?? 45_000;
    this.businessRingTimeoutMs = opts.businessRingTimeoutMs ?? 60_000;
    this.webhookRetries = opts.webhookRetries ?? 2;
    this.autoPermissionReply = opts.autoPermissionReply;
    this.mediaStartTimeoutMs = opts.mediaStartTimeoutMs ?? 20_000;
    this.mediaGapTimeoutMs = opts.mediaGapTimeoutMs ?? 30_000;
    this.graph.onAction((e) => this.onAction(e));
    this.graph.onPermissionRequest((e) => {
      const auto = this.autoPermissionReply;
      if (!auto) return;
      this.later(this.webhookDelayMs, () =>
        this.userRepliesToPermission(e.user.waId, { response: auto === 'reject' ? 'reject' : 'accept', isPermanent: auto === 'accept_permanent', contextId: e.messageId }),
      );
    });
  }

  get webhookUrl(): string {
    return this.webhooks.url;
  }

  set webhookUrl(u: string) {
    this.webhooks.url = u;
  }

  get requests(): GraphRequestLog[] {
    return this.graph.requests;
  }

  async start(): Promise<{ graphBaseUrl: string; port: number }> {
    const { baseUrl, port } = await this.graph.start();
    return { graphBaseUrl: baseUrl, port };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const w of this.connectWaiters.splice(0)) w.reject(new Error('MetaDouble stopped'));
    for (const t of this.monitors.values()) clearTimeout(t);
    this.monitors.clear();
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const t of this.ringTimers.values()) clearTimeout(t);
    this.ringTimers.clear();
    this.webhooks.close();
    await Promise.allSettled([...this.pending]);
    for (const u of this.simUsers.values()) if (isWaUser(u)) u.hangUp();
    await this.graph.stop();
  }

  // ------------------------------------------------------------- helpers

  private later(ms: number, fn: () => Promise<unknown> | void): void {
    if (this.stopped) return;
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (this.stopped) return;
      this.track(Promise.resolve().then(fn));
    }, ms);
    this.timers.add(t);
  }

  private track<T>(p: Promise<T>): void {
    const q = p.catch((e: unknown) => {
      this.errors.push(e instanceof Error ? e : new Error(String(e)));
    });
    this.pending.add(q);
    void q.finally(() => this.pending.delete(q));
  }

  private ts(): string {
    return unixSeconds(this.clock());
  }

  /** Deliver with the double's retry policy. */
  sendWebhook(env: WebhookEnvelope, opts: SendOptions = {}): Promise<WebhookDelivery[]> {
    return this.webhooks.send(env, { retries: this.webhookRetries, ...opts });
  }

  private call(callId: string): CallRecord {
    const c = this.graph.calls.get(callId);
    if (!c) throw new Error(`MetaDouble: unknown call ${callId}`);
    return c;
  }

  private userOf(c: CallRecord): SimUser | undefined {
    return this.simUsers.get(c.userWaId);
  }

  private clearRing(callId: string): void {
    const t = this.ringTimers.get(callId);
    if (t) clearTimeout(t);
    this.ringTimers.delete(callId);
  }

  private ringTimeout(callId: string, ms: number, fn: () => Promise<unknown>): void {
    this.clearRing(callId);
    const t = setTimeout(() => {
      this.ringTimers.delete(callId);
      if (!this.stopped) this.track(fn());
    }, ms);
    this.ringTimers.set(callId, t);
  }

  private terminateEnvelope(c: CallRecord, errors?: WebhookError[]): WebhookEnvelope {
    const biz = c.direction === 'BUSINESS_INITIATED';
    const input: Parameters<typeof terminateWebhook>[1] = {
      callId: c.id,
      from: biz ? this.ctx.displayPhoneNumber : c.userWaId,
      to: biz ? c.userWaId : this.ctx.displayPhoneNumber,
      direction: c.direction,
      timestamp: unixSeconds(c.endedAt ?? this.clock()),
    };
    if (c.acceptedAt !== undefined) {
      const start = Math.floor(c.acceptedAt / 1000);
      const end = Math.floor((c.endedAt ?? this.clock()) / 1000);
      input.startTime = start;
      input.endTime = end;
      input.duration = end - start;
    }
    if (c.bizOpaqueCallbackData !== undefined) input.bizOpaqueCallbackData = c.bizOpaqueCallbackData;
    if (c.ctaPayload !== undefined) input.ctaPayload = c.ctaPayload;
    if (c.deeplinkPayload !== undefined) input.deeplinkPayload = c.deeplinkPayload;
    if (errors && errors.length > 0) {
      input.errors = errors;
      input.status = 'FAILED';
    }
    return terminateWebhook(this.ctx, input);
  }

  private hangUpMedia(c: CallRecord): void {
    const u = this.userOf(c);
    if (u && isWaUser(u)) u.hangUp();
  }

  private afterUnanswered(c: CallRecord): Promise<unknown> {
    const u = this.graph.users.get(c.userWaId);
    if (u && c.direction === 'BUSINESS_INITIATED' && u.consecutiveUnanswered >= 4 && u.permission !== 'no_permission') {
      this.graph.setPermission(u.waId, 'no_permission');
      u.consecutiveUnanswered = 0;
      return this.sendWebhook(
        permissionReplyWebhook(this.ctx, { from: u.waId, name: u.name, response: 'reject', responseSource: 'automatic', timestamp: this.ts() }),
      );
    }
    return Promise.resolve();
  }

  // ------------------------------------------------------------- users

  addUser(user: SimUser, state: { permission?: PermissionStatus; callable?: boolean; permissionExpiresAt?: number } = {}): UserRecord {
    this.simUsers.set(user.waId, user);
    const input: Parameters<GraphDouble['addUser']>[0] = { waId: user.waId, name: user.name ?? '' };
    if (state.permission !== undefined) input.permission = state.permission;
    if (state.callable !== undefined) input.callable = state.callable;
    if (state.permissionExpiresAt !== undefined) input.permissionExpiresAt = state.permissionExpiresAt;
    return this.graph.addUser(input);
  }

  // ------------------------------------------------------------- user-initiated

  async userCalls(user: SimUser, opts: UserCallOptions = {}): Promise<UserCallResult> {
    if (!this.simUsers.has(user.waId) || this.simUsers.get(user.waId) !== user) this.addUser(user);
    if (opts.offerSdp !== undefined && isWaUser(user)) throw new Error('userCalls: offerSdp is for profile users; a WaUser makes its own offer');
    const offerSdp = isWaUser(user) ? await user.createOffer() : (opts.offerSdp ?? (this.graph.sdes ? staticMetaSdesOffer() : staticMetaOffer()));
    const ci: Parameters<GraphDouble['createUserInitiatedCall']>[0] = { userWaId: user.waId, offerSdp };
    if (opts.ctaPayload !== undefined) ci.ctaPayload = opts.ctaPayload;
    if (opts.deeplinkPayload !== undefined) ci.deeplinkPayload = opts.deeplinkPayload;
    const call = this.graph.createUserInitiatedCall(ci);
    const wi: Parameters<typeof connectOfferWebhook>[1] = {
      callId: call.id,
      from: user.waId,
      name: user.name ?? '',
      sdp: offerSdp,
      timestamp: opts.timestamp ?? this.ts(),
    };
    if (opts.ctaPayload !== undefined) wi.ctaPayload = opts.ctaPayload;
    if (opts.deeplinkPayload !== undefined) wi.deeplinkPayload = opts.deeplinkPayload;
    const envelope = connectOfferWebhook(this.ctx, wi);
    this.ringTimeout(call.id, this.userRingTimeoutMs, async () => {
      const c = this.call(call.id);
      if (c.state !== 'ringing' && c.state !== 'pre_accepted') return;
      this.graph.endCall(c, 'timeout');
      this.hangUpMedia(c);
      await this.sendWebhook(this.terminateEnvelope(c));
    });
    let deliveries: WebhookDelivery[] = [];
    if (opts.deliver !== false) {
      const dup = opts.duplicate === true ? 1 : typeof opts.duplicate === 'number' ? opts.duplicate : 0;
      deliveries = await this.sendWebhook(envelope, { duplicates: dup, ...opts.send });
    }
    return { callId: call.id, offerSdp, envelope, deliveries };
  }

  /** The user hangs up (or cancels while ringing): terminate webhook. */
  async userHangsUp(callId: string, opts: { errors?: WebhookError[]; send?: SendOptions } = {}): Promise<WebhookDelivery[]> {
    const c = this.call(callId);
    if (c.state === 'ended') throw new Error(`MetaDouble.userHangsUp: call ${callId} already ended (${c.endReason ?? ''})`);
    this.clearRing(callId);
    this.graph.endCall(c, opts.errors ? 'failed' : 'user_hangup');
    this.hangUpMedia(c);
    const d = await this.sendWebhook(this.terminateEnvelope(c, opts.errors), opts.send);
    await this.afterUnanswered(c);
    return d;
  }

  /** Meta ends the call with an error (e.g. 138021 media receive timeout): terminate FAILED with errors[]. */
  failCall(callId: string, err: { code: number; message: string; details?: string }): Promise<WebhookDelivery[]> {
    const e: WebhookError = { code: err.code, message: err.message, href: 'https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/' };
    if (err.details !== undefined) e.error_data = { details: err.details };
    return this.userHangsUp(callId, { errors: [e] });
  }

  waitForAction(callId: string, action: CallAction, timeoutMs?: number): Promise<GraphRequestLog> {
    return this.graph.waitForAction(callId, action, timeoutMs);
  }

  // ------------------------------------------------------------- business-initiated

  /** Resolves with the next business-initiated call placed to `waId` (or one already placed and not ended). */
  waitForConnect(waId: string, timeoutMs = 10_000): Promise<CallRecord> {
    for (const c of this.graph.calls.values()) {
      if (c.direction === 'BUSINESS_INITIATED' && c.userWaId === waId && c.state !== 'ended') return Promise.resolve(c);
    }
    return new Promise((resolve, reject) => {
      const w = {
        waId,
        resolve: (c: CallRecord): void => {
          clearTimeout(t);
          resolve(c);
        },
        reject: (e: Error): void => {
          clearTimeout(t);
          reject(e);
        },
      };
      const t = setTimeout(() => {
        this.connectWaiters = this.connectWaiters.filter((x) => x !== w);
        reject(new Error(`MetaDouble: no business-initiated connect to ${waId} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.connectWaiters.push(w);
    });
  }

  async userAnswers(callId: string): Promise<WebhookDelivery[]> {
    const c = this.call(callId);
    if (c.direction !== 'BUSINESS_INITIATED') throw new Error('userAnswers: not a business-initiated call');
    if (c.state !== 'calling' && c.state !== 'user_ringing') throw new Error(`userAnswers: call is ${c.state}`);
    this.clearRing(callId);
    this.graph.markAccepted(c);
    this.monitorMedia(c);
    const si: Parameters<typeof statusWebhook>[1] = { callId, status: 'ACCEPTED', recipientId: c.userWaId, timestamp: this.ts() };
    if (c.bizOpaqueCallbackData !== undefined) si.bizOpaqueCallbackData = c.bizOpaqueCallbackData;
    return this.sendWebhook(statusWebhook(this.ctx, si));
  }

  async userDeclines(callId: string): Promise<WebhookDelivery[]> {
    const c = this.call(callId);
    if (c.direction !== 'BUSINESS_INITIATED') throw new Error('userDeclines: not a business-initiated call');
    if (c.state !== 'calling' && c.state !== 'user_ringing') throw new Error(`userDeclines: call is ${c.state}`);
    this.clearRing(callId);
    this.graph.endCall(c, 'user_declined');
    this.hangUpMedia(c);
    const si: Parameters<typeof statusWebhook>[1] = { callId, status: 'REJECTED', recipientId: c.userWaId, timestamp: this.ts() };
    if (c.bizOpaqueCallbackData !== undefined) si.bizOpaqueCallbackData = c.bizOpaqueCallbackData;
    const d1 = await this.sendWebhook(statusWebhook(this.ctx, si));
    const d2 = await this.sendWebhook(this.terminateEnvelope(c));
    await this.afterUnanswered(c);
    return [...d1, ...d2];
  }

  // ------------------------------------------------------------- permissions

  async userRepliesToPermission(
    waId: string,
    r: { response: 'accept' | 'reject'; isPermanent?: boolean; responseSource?: 'user_action' | 'automatic'; contextId?: string | null },
  ): Promise<WebhookDelivery[]> {
    const u = this.graph.users.get(waId) ?? this.graph.addUser({ waId });
    const input: Parameters<typeof permissionReplyWebhook>[1] = {
      from: waId,
      name: u.name,
      response: r.response,
      isPermanent: r.isPermanent ?? false,
      responseSource: r.responseSource ?? 'user_action',
      timestamp: this.ts(),
    };
    const ctxId = r.contextId === null ? undefined : (r.contextId ?? u.lastPermissionRequestId);
    if (ctxId !== undefined) input.contextId = ctxId;
    if (r.response === 'accept') {
      if (r.isPermanent) this.graph.setPermission(waId, 'permanent');
      else {
        const exp = this.clock() + 7 * 24 * 3600 * 1000;
        this.graph.setPermission(waId, 'temporary', exp);
        input.expirationTimestamp = Math.floor(exp / 1000);
      }
    } else {
      this.graph.setPermission(waId, 'no_permission');
    }
    return this.sendWebhook(permissionReplyWebhook(this.ctx, input));
  }

  // ------------------------------------------------------------- reactions to the gateway

  private onAction(e: ActionEvent): void {
    const c = e.call;
    const user = this.userOf(c);
    switch (e.action) {
      case 'pre_accept':
        if (user && isWaUser(user) && c.preAcceptSdp) this.track(user.applyAnswer(c.preAcceptSdp));
        break;
      case 'accept':
        this.clearRing(c.id);
        this.monitorMedia(c);
        if (user && isWaUser(user) && c.preAcceptSdp === undefined && c.acceptSdp) this.track(user.applyAnswer(c.acceptSdp));
        break;
      case 'reject':
      case 'terminate':
        this.clearRing(c.id);
        this.hangUpMedia(c);
        this.later(this.webhookDelayMs, async () => {
          await this.sendWebhook(this.terminateEnvelope(c));
          await this.afterUnanswered(c);
        });
        break;
      case 'connect':
        for (const w of this.connectWaiters.filter((x) => x.waId === c.userWaId)) w.resolve(c);
        this.connectWaiters = this.connectWaiters.filter((x) => x.waId !== c.userWaId);
        this.track(this.deviceAnswers(c, user));
        break;
    }
  }

  private async deviceAnswers(c: CallRecord, user: SimUser | undefined): Promise<void> {
    const answer = user && (isWaUser(user) || user.answerOffer)
      ? await user.answerOffer!(c.offerSdp)
      : this.graph.sdes ? staticMetaSdesAnswer(c.offerSdp) : staticMetaAnswer(c.offerSdp);
    c.answerSdp = answer;
    this.later(this.answerDelayMs, async () => {
      if (c.state === 'ended') return;
      const ai: Parameters<typeof connectAnswerWebhook>[1] = { callId: c.id, to: c.userWaId, sdp: answer, timestamp: this.ts() };
      if (c.bizOpaqueCallbackData !== undefined) ai.bizOpaqueCallbackData = c.bizOpaqueCallbackData;
      await this.sendWebhook(connectAnswerWebhook(this.ctx, ai));
      this.later(this.ringingDelayMs, async () => {
        if (c.state !== 'calling') return;
        c.state = 'user_ringing';
        const si: Parameters<typeof statusWebhook>[1] = { callId: c.id, status: 'RINGING', recipientId: c.userWaId, timestamp: this.ts() };
        if (c.bizOpaqueCallbackData !== undefined) si.bizOpaqueCallbackData = c.bizOpaqueCallbackData;
        await this.sendWebhook(statusWebhook(this.ctx, si));
      });
    });
    this.ringTimeout(c.id, this.businessRingTimeoutMs, async () => {
      if (c.state !== 'calling' && c.state !== 'user_ringing') return;
      this.graph.endCall(c, 'timeout');
      this.hangUpMedia(c);
      await this.sendWebhook(this.terminateEnvelope(c));
      await this.afterUnanswered(c);
    });
  }

  /**
   * The WhatsApp client hangs up when business media does not start within mediaStartTimeoutMs of the call being
   * connected, or stops for mediaGapTimeoutMs (§3.2); modelled as terminate FAILED with 138021.
   */
  private monitorMedia(c: CallRecord): void {
    const user = this.userOf(c);
    if (!user || !isWaUser(user) || this.monitors.has(c.id)) return;
    if (this.mediaStartTimeoutMs <= 0 && this.mediaGapTimeoutMs <= 0) return;
    const since = Date.now();
    let lastCount = 0;
    let lastChange = since;
    const tick = async (): Promise<void> => {
      this.monitors.delete(c.id);
      if (this.stopped || c.state !== 'accepted') return;
      const st = await user.inboundStats().catch(() => undefined);
      if (!st || this.stopped || c.state !== 'accepted') return;
      const now = Date.now();
      if (st.packetsReceived !== lastCount) {
        lastCount = st.packetsReceived;
        lastChange = now;
      }
      const started = lastCount > 0;
      if (!started && this.mediaStartTimeoutMs > 0 && now - since >= this.mediaStartTimeoutMs) {
        await this.failCall(c.id, { code: 138021, message: 'Media receive timeout', details: `no business media within ${this.mediaStartTimeoutMs} ms of connect` });
        return;
      }
      if (started && this.mediaGapTimeoutMs > 0 && now - lastChange >= this.mediaGapTimeoutMs) {
        await this.failCall(c.id, { code: 138021, message: 'Media receive timeout', details: `no business media for ${this.mediaGapTimeoutMs} ms` });
        return;
      }
      this.monitors.set(c.id, setTimeout(() => this.track(tick()), 250));
    };
    this.monitors.set(c.id, setTimeout(() => this.track(tick()), 250));
  }

  // ------------------------------------------------------------- inspection

  /** Graph requests and webhook deliveries merged by time. */
  timeline(): TimelineEntry[] {
    const out: TimelineEntry[] = [];
    for (const r of this.graph.requests) {
      const e: TimelineEntry = { at: r.receivedAt, kind: 'graph', what: r.op ?? `${r.method} ${r.path}` };
      if (r.callId !== undefined) e.callId = r.callId;
      if (r.status !== undefined) e.status = r.status;
      out.push(e);
    }
    for (const d of this.webhooks.deliveries) {
      const v = d.payload?.entry[0]?.changes[0]?.value;
      const call = v?.calls?.[0];
      const st = v?.statuses?.[0];
      const what = call ? call.event : st ? st.status : v?.messages ? 'call_permission_reply' : 'raw';
      const e: TimelineEntry = { at: d.sentAt, kind: 'webhook', what };
      const id = call?.id ?? st?.id;
      if (id !== undefined) e.callId = id;
      if (d.status !== undefined) e.status = d.status;
      out.push(e);
    }
    return out.sort((a, b) => a.at - b.at);
  }
}

export { WaUser } from './wa-user.js';
