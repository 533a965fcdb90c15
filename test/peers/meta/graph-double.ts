/**
 * Graph API double for WhatsApp Business Calling (fact sheet §2.1–§2.8, §3.1–§3.4).
 *
 *   const graph = new GraphDouble({ accessToken, phoneNumberId, displayPhoneNumber, clock? });
 *   const { baseUrl } = await graph.start();        // http://127.0.0.1:PORT ; requests go to /vNN.0/<phone-number-id>/...
 *   await graph.stop();
 *
 * Endpoints (any /vNN.0/ prefix with NN >= 17; `Authorization: Bearer <accessToken>` else 401 code 190 OAuthException):
 *   POST /{pnid}/calls            action = connect | pre_accept | accept | reject | terminate   (§2.1)
 *   GET  /{pnid}/call_permissions?user_wa_id=                                               (§2.5)
 *   POST /{pnid}/messages         interactive call_permission_request, or a template whose name is listed in
 *                                 `callPermissionTemplates`; any other message gets a plain message response (§2.3/2.4)
 * Errors use the §2.7 shape {"error":{message,type,code,error_data:{details},fbtrace_id}} with §2.8 codes/HTTP statuses.
 *
 * Call states: USER_INITIATED  ringing -> pre_accepted -> accepted -> ended
 *              BUSINESS_INITIATED  calling -> (user_ringing) -> accepted -> ended
 *   pre_accept: only USER_INITIATED in `ringing`; accept: `ringing`|`pre_accepted`, SDP must equal pre_accept SDP
 *   byte-for-byte; reject: USER_INITIATED before accept; terminate: any state but ended. Anything else -> code 100.
 *   Unknown call_id -> code 100 "Invalid call id".
 * connect checks, in order: 138013 (business number country +1/+20/+84/+234), 138001 (user not registered or
 *   uncallable), 138006 (no or expired permission), 138003 (a call with that user is active), 138012 (connected
 *   business-initiated calls in 24 h >= `dailyConnectedCallLimit`, default 100; details give next allowed time),
 *   138005 (10000 connects / 24 h), 138002 (1000 concurrent), then SDP validation (code 100).
 * Permission requests: 138013 as above, 138017 (permanent permission exists), 138009 (1 per 24 h, 2 per 7 days per
 *   user; both windows reset when any call with the user is connected).
 *
 * Inspection / control:
 *   graph.requests: GraphRequestLog[]            every request (method, path, op, callId, body, times, status, response)
 *   graph.calls: Map<callId, CallRecord>;  graph.users: Map<waId, UserRecord>
 *   graph.addUser({ waId, name?, callable?, permission? })   permission: 'no_permission'|'temporary'|'permanent'
 *   graph.injectFailure(op, { status, code, message?, details?, times?, afterProcessing? })   next `times` (default 1)
 *                                                  requests of op fail (afterProcessing: carried out, answer lost)
 *   graph.injectDelay(op, ms, times?)              delay handling of the next request(s) of op
 *   graph.waitForRequest(pred, timeoutMs?) / graph.waitForAction(callId, action, timeoutMs?)   resolve when answered
 *   graph.strictSdp = true                          SDP warnings become code-100 errors
 *   graph.onAction(listener)                        called after every *successful* call action (used by MetaDouble)
 *   graph.onPermissionRequest(listener)             called after every accepted permission request
 *   graph.createUserInitiatedCall(...) / graph.endCall(...) / graph.markAccepted(...)   state changes by MetaDouble
 * ops: 'connect'|'pre_accept'|'accept'|'reject'|'terminate'|'call_permissions'|'messages'
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { validateBusinessSdp } from './sdp.js';
import { newCallId, newMessageId, type CallDirection } from './webhook-sender.js';

export type CallAction = 'connect' | 'pre_accept' | 'accept' | 'reject' | 'terminate';
export type GraphOp = CallAction | 'call_permissions' | 'messages';
export type PermissionStatus = 'no_permission' | 'temporary' | 'permanent';
export type CallState = 'ringing' | 'pre_accepted' | 'calling' | 'user_ringing' | 'accepted' | 'ended';

export interface GraphRequestLog {
  seq: number;
  method: string;
  path: string;
  query: Record<string, string>;
  version?: number;
  phoneNumberId?: string;
  op?: GraphOp;
  callId?: string;
  body: unknown;
  rawBody: string;
  authorization?: string;
  receivedAt: number;
  respondedAt?: number;
  status?: number;
  response?: unknown;
  sdpWarnings?: string[];
}

export interface GraphErrorBody {
  error: {
    message: string;
    type: string;
    code: number;
    error_subcode?: number;
    error_data?: { messaging_product?: 'whatsapp'; details: string };
    fbtrace_id: string;
  };
}

export interface CallRecord {
  id: string;
  direction: CallDirection;
  userWaId: string;
  state: CallState;
  createdAt: number;
  /** Meta's offer (user-initiated) or the business offer (business-initiated). */
  offerSdp: string;
  preAcceptSdp?: string;
  acceptSdp?: string;
  /** The user's answer (business-initiated). */
  answerSdp?: string;
  bizOpaqueCallbackData?: string;
  ctaPayload?: string;
  deeplinkPayload?: string;
  acceptedAt?: number;
  endedAt?: number;
  endReason?: 'user_hangup' | 'business_terminate' | 'business_reject' | 'user_declined' | 'timeout' | 'failed';
}

export interface UserRecord {
  waId: string;
  name: string;
  callable: boolean;
  permission: PermissionStatus;
  /** ms epoch; temporary permissions only. */
  permissionExpiresAt?: number;
  /** ms times of accepted permission requests (since the last connected call). */
  permissionRequests: number[];
  /** wamid of the last permission request. */
  lastPermissionRequestId?: string;
  /** ms times business-initiated calls were connected. */
  connectedBusinessCalls: number[];
  consecutiveUnanswered: number;
}

export interface AddUserInput {
  waId: string;
  name?: string;
  callable?: boolean;
  permission?: PermissionStatus;
  /** ms epoch, default now + 7 days for temporary. */
  permissionExpiresAt?: number;
}

export interface InjectedFailure {
  status: number;
  code: number;
  message?: string;
  details?: string;
  type?: string;
  times?: number;
  /** Carry the request out, then answer with the failure: Meta did it but the response was lost (a 5xx or timeout). */
  afterProcessing?: boolean;
}

export interface ActionEvent {
  action: CallAction;
  call: CallRecord;
  request: GraphRequestLog;
}

export interface PermissionRequestEvent {
  user: UserRecord;
  messageId: string;
  request: GraphRequestLog;
}

export interface GraphDoubleOptions {
  accessToken: string;
  phoneNumberId: string;
  displayPhoneNumber: string;
  /** ms epoch clock (default Date.now); drives limits, expirations, timestamps. */
  clock?: () => number;
  dailyConnectedCallLimit?: number;
  callPermissionTemplates?: string[];
  /** settings: calling status ENABLED (default true) — false gives 138000 on /calls. */
  callingEnabled?: boolean;
  /** settings: SIP enabled — gives 131055 on /calls. */
  sipEnabled?: boolean;
  /** settings: audio.additional_codecs contains PCMA/PCMU. */
  allowG711?: boolean;
  /** settings: srtp_key_exchange_protocol SDES. */
  sdes?: boolean;
}

const DAY = 24 * 3600 * 1000;
const RESTRICTED_COUNTRY_PREFIXES = ['1', '20', '84', '234']; // US+CA (NANP), EG, VN, NG  (§3.4)

export class GraphError extends Error {
  constructor(
    readonly status: number,
    readonly code: number,
    message: string,
    readonly details?: string,
    readonly type = 'OAuthException',
    readonly subcode?: number,
  ) {
    super(message);
  }
  body(): GraphErrorBody {
    const error: GraphErrorBody['error'] = {
      message: this.message,
      type: this.type,
      code: this.code,
      fbtrace_id: 'A' + randomBytes(8).toString('hex'),
    };
    if (this.subcode !== undefined) error.error_subcode = this.subcode;
    if (this.details !== undefined) error.error_data = { messaging_product: 'whatsapp', details: this.details };
    return { error };
  }
}

const invalidParam = (details: string, message = '(#100) Invalid parameter'): GraphError => new GraphError(400, 100, message, details);

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

interface Waiter {
  pred: (r: GraphRequestLog) => boolean;
  resolve: (r: GraphRequestLog) => void;
  reject: (e: Error) => void;
}

export class GraphDouble {
  readonly accessToken: string;
  readonly phoneNumberId: string;
  readonly displayPhoneNumber: string;
  readonly requests: GraphRequestLog[] = [];
  readonly calls = new Map<string, CallRecord>();
  readonly users = new Map<string, UserRecord>();
  readonly clock: () => number;
  dailyConnectedCallLimit: number;
  callPermissionTemplates: string[];
  callingEnabled: boolean;
  sipEnabled: boolean;
  allowG711: boolean;
  sdes: boolean;
  strictSdp = false;
  private server: Server | undefined;
  private seq = 0;
  private readonly failures = new Map<GraphOp, InjectedFailure[]>();
  private readonly delays = new Map<GraphOp, Array<{ ms: number; times: number }>>();
  private readonly waiters = new Set<Waiter>();
  private readonly actionListeners: Array<(e: ActionEvent) => void> = [];
  private readonly permissionListeners: Array<(e: PermissionRequestEvent) => void> = [];
  private readonly connectTimes: number[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(opts: GraphDoubleOptions) {
    this.accessToken = opts.accessToken;
    this.phoneNumberId = opts.phoneNumberId;
    this.displayPhoneNumber = opts.displayPhoneNumber;
    this.clock = opts.clock ?? Date.now;
    this.dailyConnectedCallLimit = opts.dailyConnectedCallLimit ?? 100;
    this.callPermissionTemplates = opts.callPermissionTemplates ?? [];
    this.callingEnabled = opts.callingEnabled ?? true;
    this.sipEnabled = opts.sipEnabled ?? false;
    this.allowG711 = opts.allowG711 ?? false;
    this.sdes = opts.sdes ?? false;
  }

  async start(): Promise<{ baseUrl: string; port: number }> {
    const server = createServer((req, res) => void this.handle(req, res));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const port = (server.address() as AddressInfo).port;
    return { baseUrl: `http://127.0.0.1:${port}`, port };
  }

  get baseUrl(): string {
    const a = this.server?.address();
    if (!a || typeof a === 'string') throw new Error('GraphDouble not started');
    return `http://127.0.0.1:${a.port}`;
  }

  async stop(): Promise<void> {
    for (const w of [...this.waiters]) w.reject(new Error('GraphDouble stopped'));
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  // ---------------------------------------------------------------- control

  addUser(input: AddUserInput): UserRecord {
    const existing = this.users.get(input.waId);
    const permission = input.permission ?? existing?.permission ?? 'no_permission';
    const u: UserRecord = existing ?? {
      waId: input.waId,
      name: input.name ?? '',
      callable: true,
      permission: 'no_permission',
      permissionRequests: [],
      connectedBusinessCalls: [],
      consecutiveUnanswered: 0,
    };
    if (input.name !== undefined) u.name = input.name;
    if (input.callable !== undefined) u.callable = input.callable;
    if (!existing || input.permission !== undefined) this.setPermission(u.waId, permission, input.permissionExpiresAt, u);
    this.users.set(u.waId, u);
    return u;
  }

  setPermission(waId: string, status: PermissionStatus, expiresAt?: number, rec?: UserRecord): void {
    const u = rec ?? this.users.get(waId) ?? this.addUser({ waId });
    u.permission = status;
    if (status === 'temporary') u.permissionExpiresAt = expiresAt ?? this.clock() + 7 * DAY;
    else delete u.permissionExpiresAt;
  }

  /** Effective permission (temporary expires silently, §1.6). */
  permissionOf(u: UserRecord): PermissionStatus {
    if (!u.callable) return 'no_permission';
    if (u.permission === 'temporary' && (u.permissionExpiresAt ?? 0) <= this.clock()) return 'no_permission';
    return u.permission;
  }

  injectFailure(op: GraphOp, f: InjectedFailure): void {
    const list = this.failures.get(op) ?? [];
    list.push({ ...f, times: f.times ?? 1 });
    this.failures.set(op, list);
  }

  /** Drops failures and delays no request took (a test that failed before its request must not leave them to the next). */
  clearInjected(): void {
    this.failures.clear();
    this.delays.clear();
  }

  injectDelay(op: GraphOp, ms: number, times = 1): void {
    const list = this.delays.get(op) ?? [];
    list.push({ ms, times });
    this.delays.set(op, list);
  }

  onAction(l: (e: ActionEvent) => void): void {
    this.actionListeners.push(l);
  }

  onPermissionRequest(l: (e: PermissionRequestEvent) => void): void {
    this.permissionListeners.push(l);
  }

  waitForRequest(pred: (r: GraphRequestLog) => boolean, timeoutMs = 10_000): Promise<GraphRequestLog> {
    const done = this.requests.find((r) => r.respondedAt !== undefined && pred(r));
    if (done) return Promise.resolve(done);
    return new Promise((resolve, reject) => {
      const w: Waiter = {
        pred,
        resolve: (r) => {
          clearTimeout(t);
          this.waiters.delete(w);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(t);
          this.waiters.delete(w);
          reject(e);
        },
      };
      const t = setTimeout(() => {
        this.waiters.delete(w);
        reject(new Error(`GraphDouble: no matching request within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.add(w);
    });
  }

  /** Resolves with the logged request once the gateway's `action` on `callId` has been answered (any status). */
  waitForAction(callId: string, action: CallAction, timeoutMs = 10_000): Promise<GraphRequestLog> {
    return this.waitForRequest((r) => r.op === action && r.callId === callId, timeoutMs).catch((e: unknown) => {
      throw new Error(`GraphDouble: gateway did not call ${action} on ${callId} within ${timeoutMs} ms (${String(e)})`);
    });
  }

  /** Requests of the given ops (default all /calls actions) for a call, in arrival order. */
  actionsFor(callId: string): GraphRequestLog[] {
    return this.requests.filter((r) => r.callId === callId);
  }

  createUserInitiatedCall(i: { userWaId: string; offerSdp: string; ctaPayload?: string; deeplinkPayload?: string; callId?: string }): CallRecord {
    const c: CallRecord = {
      id: i.callId ?? newCallId(),
      direction: 'USER_INITIATED',
      userWaId: i.userWaId,
      state: 'ringing',
      createdAt: this.clock(),
      offerSdp: i.offerSdp,
    };
    if (i.ctaPayload !== undefined) c.ctaPayload = i.ctaPayload;
    if (i.deeplinkPayload !== undefined) c.deeplinkPayload = i.deeplinkPayload;
    this.calls.set(c.id, c);
    if (!this.users.has(i.userWaId)) this.addUser({ waId: i.userWaId });
    return c;
  }

  /** Mark a call connected (user-initiated accept or business-initiated ACCEPTED). Resets request windows. */
  markAccepted(c: CallRecord): void {
    c.state = 'accepted';
    c.acceptedAt = this.clock();
    const u = this.users.get(c.userWaId);
    if (u) {
      u.permissionRequests = []; // §3.1: both windows reset after any connected call
      if (c.direction === 'BUSINESS_INITIATED') {
        u.connectedBusinessCalls.push(c.acceptedAt);
        u.consecutiveUnanswered = 0;
      }
    }
  }

  endCall(c: CallRecord, reason: NonNullable<CallRecord['endReason']>): void {
    if (c.state === 'ended') return;
    const wasAccepted = c.state === 'accepted';
    c.state = 'ended';
    c.endedAt = this.clock();
    c.endReason = reason;
    const u = this.users.get(c.userWaId);
    if (u && c.direction === 'BUSINESS_INITIATED' && !wasAccepted) u.consecutiveUnanswered++;
  }

  activeCallWith(waId: string): CallRecord | undefined {
    for (const c of this.calls.values()) if (c.userWaId === waId && c.state !== 'ended') return c;
    return undefined;
  }

  // ---------------------------------------------------------------- HTTP

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const raw = await readBody(req).catch(() => '');
    const query: Record<string, string> = {};
    url.searchParams.forEach((v, k) => (query[k] = v));
    const log: GraphRequestLog = {
      seq: ++this.seq,
      method: req.method ?? 'GET',
      path: url.pathname,
      query,
      body: undefined,
      rawBody: raw,
      receivedAt: Date.now(),
    };
    if (req.headers.authorization !== undefined) log.authorization = req.headers.authorization;
    this.requests.push(log);
    let status = 200;
    let response: unknown;
    try {
      response = await this.route(log, req);
    } catch (e) {
      const ge = e instanceof GraphError ? e : new GraphError(500, 1, 'An unknown error occurred', String(e), 'OAuthException');
      status = ge.status;
      response = ge.body();
    }
    log.status = status;
    log.response = response;
    log.respondedAt = Date.now();
    const text = JSON.stringify(response);
    res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', 'content-length': Buffer.byteLength(text) });
    res.end(text, () => {
      for (const w of [...this.waiters]) if (w.pred(log)) w.resolve(log);
    });
  }

  private async route(log: GraphRequestLog, req: IncomingMessage): Promise<unknown> {
    const m = /^\/v(\d+)\.0\/([^/]+)\/([^/]+)\/?$/.exec(log.path);
    if (!m) throw new GraphError(400, 2500, 'Unknown path components: ' + log.path, undefined, 'OAuthException');
    log.version = Number(m[1]);
    log.phoneNumberId = m[2]!;
    const edge = m[3]!;
    if (log.authorization !== `Bearer ${this.accessToken}`) {
      throw new GraphError(401, 190, 'Invalid OAuth access token - Cannot parse access token', undefined, 'OAuthException');
    }
    let op: GraphOp | undefined;
    if (edge === 'calls' && log.method === 'POST') op = 'connect';
    else if (edge === 'call_permissions' && log.method === 'GET') op = 'call_permissions';
    else if (edge === 'messages' && log.method === 'POST') op = 'messages';
    if (log.method === 'POST') {
      const ct = req.headers['content-type'] ?? '';
      try {
        log.body = log.rawBody === '' ? {} : (JSON.parse(log.rawBody) as unknown);
      } catch {
        if (ct.includes('json')) throw invalidParam('Request body is not valid JSON');
        log.body = Object.fromEntries(new URLSearchParams(log.rawBody));
      }
    }
    if (op === 'connect' && isRecord(log.body)) {
      const a = log.body['action'];
      if (a === 'connect' || a === 'pre_accept' || a === 'accept' || a === 'reject' || a === 'terminate') op = a;
      const cid = log.body['call_id'];
      if (typeof cid === 'string') log.callId = cid;
    }
    if (op !== undefined) log.op = op;
    if (op === undefined) throw new GraphError(400, 100, `Unsupported ${log.method} request on edge '${edge}'`, undefined, 'GraphMethodException', 33);
    if (log.phoneNumberId !== this.phoneNumberId) {
      throw new GraphError(
        400,
        100,
        `Unsupported post request. Object with ID '${log.phoneNumberId}' does not exist, cannot be loaded due to missing permissions, or does not support this operation.`,
        undefined,
        'GraphMethodException',
        33,
      );
    }
    if (log.version < 17) throw invalidParam(`Calling requires Graph API v17.0 or later (got v${log.version}.0)`);
    const delay = this.take(this.delays, op);
    if (delay) await new Promise<void>((r) => {
      const t = setTimeout(() => { this.timers.delete(t); r(); }, delay.ms);
      this.timers.add(t);
    });
    const fail = this.take(this.failures, op);
    const failure = fail && new GraphError(fail.status, fail.code, fail.message ?? `Injected failure (#${fail.code})`, fail.details, fail.type ?? 'OAuthException');
    if (failure && !fail.afterProcessing) throw failure;
    const result: unknown = await (op === 'call_permissions' ? this.callPermissions(log) : op === 'messages' ? this.messages(log) : this.callAction(op, log));
    if (failure) throw failure;
    return result;
  }

  private take<T extends { times?: number }>(map: Map<GraphOp, T[]>, op: GraphOp): T | undefined {
    const list = map.get(op);
    const first = list?.[0];
    if (!list || !first) return undefined;
    first.times = (first.times ?? 1) - 1;
    if (first.times <= 0) list.shift();
    return first;
  }

  private emitAction(action: CallAction, call: CallRecord, request: GraphRequestLog): void {
    for (const l of this.actionListeners) l({ action, call, request });
  }

  private businessCountryRestricted(): boolean {
    return RESTRICTED_COUNTRY_PREFIXES.some((p) => this.displayPhoneNumber.replace(/^\+/, '').startsWith(p));
  }

  private checkSdp(log: GraphRequestLog, session: unknown, expectType: 'offer' | 'answer'): string {
    if (!isRecord(session)) throw invalidParam('session is required');
    if (session['sdp_type'] !== expectType) throw invalidParam(`session.sdp_type must be "${expectType}"`);
    const sdp = session['sdp'];
    const v = validateBusinessSdp(sdp, { role: expectType, allowG711: this.allowG711, sdes: this.sdes });
    log.sdpWarnings = v.warnings;
    const errs = this.strictSdp ? [...v.errors, ...v.warnings] : v.errors;
    if (errs.length > 0) throw invalidParam(`Invalid SDP: ${errs.join('; ')}`, '(#100) Invalid parameter: SDP validation failed');
    return sdp as string;
  }

  private callAction(action: CallAction, log: GraphRequestLog): unknown {
    const body = log.body;
    if (!isRecord(body)) throw invalidParam('Request body must be a JSON object');
    if (body['messaging_product'] !== 'whatsapp') throw invalidParam('messaging_product must be "whatsapp"');
    if (this.sipEnabled) throw new GraphError(400, 131055, 'Calling Graph API is not allowed: the number is SIP-enabled');
    if (!this.callingEnabled) throw new GraphError(401, 138000, 'Calling is not enabled for this business phone number');
    const opaque = body['biz_opaque_callback_data'];
    if (opaque !== undefined && (typeof opaque !== 'string' || opaque.length > 512)) {
      throw invalidParam('biz_opaque_callback_data must be a string of at most 512 characters');
    }
    const ok = { messaging_product: 'whatsapp', success: true };
    if (action === 'connect') return this.connect(log, body);

    const callId = body['call_id'];
    if (typeof callId !== 'string') throw invalidParam('call_id is required');
    const call = this.calls.get(callId);
    if (!call) throw invalidParam(`Invalid call id: ${callId}`, '(#100) Invalid parameter: call_id');
    if (call.state === 'ended') throw invalidParam(`Call ${callId} is already completed/failed (${call.endReason ?? 'ended'})`);
    switch (action) {
      case 'pre_accept': {
        if (call.direction !== 'USER_INITIATED') throw invalidParam('pre_accept is only valid for user-initiated calls');
        if (call.state !== 'ringing') throw invalidParam(`Call ${callId} is already in progress (${call.state})`);
        call.preAcceptSdp = this.checkSdp(log, body['session'], 'answer');
        call.state = 'pre_accepted';
        break;
      }
      case 'accept': {
        if (call.direction !== 'USER_INITIATED') throw invalidParam('accept is only valid for user-initiated calls');
        if (call.state !== 'ringing' && call.state !== 'pre_accepted') throw invalidParam(`Call ${callId} is already in progress (${call.state})`);
        const sdp = this.checkSdp(log, body['session'], 'answer');
        if (call.preAcceptSdp !== undefined && sdp !== call.preAcceptSdp) {
          throw invalidParam('SDP in accept does not match the SDP sent in pre_accept', '(#100) Invalid parameter: session.sdp');
        }
        call.acceptSdp = sdp;
        if (typeof opaque === 'string') call.bizOpaqueCallbackData = opaque;
        this.markAccepted(call);
        break;
      }
      case 'reject': {
        if (call.direction !== 'USER_INITIATED') throw invalidParam('reject is only valid for user-initiated calls; use terminate');
        if (call.state === 'accepted') throw invalidParam(`Call ${callId} is already in progress (accepted); use terminate`);
        this.endCall(call, 'business_reject');
        break;
      }
      case 'terminate': {
        this.endCall(call, 'business_terminate');
        break;
      }
    }
    this.emitAction(action, call, log);
    return ok;
  }

  private connect(log: GraphRequestLog, body: Record<string, unknown>): unknown {
    const to = body['to'];
    if (typeof to !== 'string' || !/^\+?\d{6,15}$/.test(to)) throw invalidParam('to must be a WhatsApp user phone number');
    const waId = to.replace(/^\+/, '');
    const now = this.clock();
    if (this.businessCountryRestricted()) {
      throw new GraphError(400, 138013, 'Business-initiated calling is not available for this business phone number (country)');
    }
    const u = this.users.get(waId);
    if (!u || !u.callable) throw new GraphError(400, 138001, 'Receiver is uncallable');
    if (this.permissionOf(u) === 'no_permission') throw new GraphError(401, 138006, 'No approved call permission from the recipient');
    if (this.activeCallWith(waId)) throw new GraphError(400, 138003, 'Duplicate call: a call with this user is already ongoing');
    const recent = u.connectedBusinessCalls.filter((t) => t > now - DAY);
    if (recent.length >= this.dailyConnectedCallLimit) {
      const next = Math.ceil(((recent[0] ?? now) + DAY) / 1000);
      throw new GraphError(400, 138012, 'Business-initiated connected call limit reached', `Next call allowed after ${next} (unix seconds); ${new Date(next * 1000).toISOString()}`);
    }
    while (this.connectTimes.length > 0 && (this.connectTimes[0] ?? 0) <= now - DAY) this.connectTimes.shift();
    if (this.connectTimes.length >= 10_000) throw new GraphError(429, 138005, 'Call rate limit exceeded');
    let active = 0;
    for (const c of this.calls.values()) if (c.state !== 'ended') active++;
    if (active >= 1000) throw new GraphError(429, 138002, 'Concurrent call limit reached');
    const sdp = this.checkSdp(log, body['session'], 'offer');
    this.connectTimes.push(now);
    const call: CallRecord = {
      id: newCallId(),
      direction: 'BUSINESS_INITIATED',
      userWaId: waId,
      state: 'calling',
      createdAt: now,
      offerSdp: sdp,
    };
    const opaque = body['biz_opaque_callback_data'];
    if (typeof opaque === 'string') call.bizOpaqueCallbackData = opaque;
    this.calls.set(call.id, call);
    log.callId = call.id;
    this.emitAction('connect', call, log);
    return { messaging_product: 'whatsapp', calls: [{ id: call.id }] };
  }

  private requestLimits(u: UserRecord): { day: number[]; week: number[] } {
    const now = this.clock();
    return {
      day: u.permissionRequests.filter((t) => t > now - DAY),
      week: u.permissionRequests.filter((t) => t > now - 7 * DAY),
    };
  }

  private callPermissions(log: GraphRequestLog): unknown {
    const waId = log.query['user_wa_id'];
    if (!waId) throw invalidParam('user_wa_id is required');
    const u = this.users.get(waId.replace(/^\+/, '')) ?? {
      waId,
      name: '',
      callable: true,
      permission: 'no_permission' as const,
      permissionRequests: [],
      connectedBusinessCalls: [],
      consecutiveUnanswered: 0,
    };
    const now = this.clock();
    const status = this.permissionOf(u);
    const permission: { status: PermissionStatus; expiration_time?: number } = { status };
    if (status === 'temporary' && u.permissionExpiresAt !== undefined) permission.expiration_time = Math.floor(u.permissionExpiresAt / 1000);
    const { day, week } = this.requestLimits(u);
    type Limit = { time_period: string; max_allowed: number; current_usage: number; limit_expiration_time?: number };
    const lim = (period: string, max: number, used: number[], windowMs: number): Limit => {
      const l: Limit = { time_period: period, max_allowed: max, current_usage: used.length };
      if (used.length >= max) l.limit_expiration_time = Math.ceil(((used[0] ?? now) + windowMs) / 1000);
      return l;
    };
    const reqLimits = [lim('PT24H', 1, day, DAY), lim('P7D', 2, week, 7 * DAY)];
    const calls = u.connectedBusinessCalls.filter((t) => t > now - DAY);
    const callLimits = [lim('PT24H', this.dailyConnectedCallLimit, calls, DAY)];
    const restricted = this.businessCountryRestricted();
    return {
      messaging_product: 'whatsapp',
      permission,
      actions: [
        {
          action_name: 'send_call_permission_request',
          can_perform_action: !restricted && status !== 'permanent' && u.callable && reqLimits.every((l) => l.current_usage < l.max_allowed),
          limits: reqLimits,
        },
        {
          action_name: 'start_call',
          can_perform_action: !restricted && status !== 'no_permission' && calls.length < this.dailyConnectedCallLimit,
          limits: callLimits,
        },
      ],
    };
  }

  private messages(log: GraphRequestLog): unknown {
    const body = log.body;
    if (!isRecord(body)) throw invalidParam('Request body must be a JSON object');
    if (body['messaging_product'] !== 'whatsapp') throw invalidParam('messaging_product must be "whatsapp"');
    const to = body['to'];
    if (typeof to !== 'string' || to === '') throw invalidParam('to is required');
    const waId = to.replace(/^\+/, '');
    const type = body['type'];
    const interactive = body['interactive'];
    const template = body['template'];
    const isPermissionRequest =
      (type === 'interactive' && isRecord(interactive) && interactive['type'] === 'call_permission_request') ||
      (type === 'template' && isRecord(template) && typeof template['name'] === 'string' && this.callPermissionTemplates.includes(template['name']));
    const messageId = newMessageId();
    const response = { messaging_product: 'whatsapp', contacts: [{ input: to, wa_id: waId }], messages: [{ id: messageId }] };
    if (!isPermissionRequest) return response;
    if (type === 'interactive' && isRecord(interactive)) {
      const action = interactive['action'];
      if (!isRecord(action) || action['name'] !== 'call_permission_request') {
        throw invalidParam('interactive.action.name must be "call_permission_request"');
      }
    }
    if (this.businessCountryRestricted()) {
      throw new GraphError(400, 138013, 'Business-initiated calling (and call permission requests) not available for this business phone number');
    }
    const u = this.users.get(waId) ?? this.addUser({ waId });
    if (this.permissionOf(u) === 'permanent') throw new GraphError(400, 138017, 'A permanent call permission already exists for this user');
    const { day, week } = this.requestLimits(u);
    if (day.length >= 1 || week.length >= 2) {
      throw new GraphError(400, 138009, 'Call permission request limit reached for this business and user', `${day.length} in 24 h, ${week.length} in 7 days`);
    }
    u.permissionRequests.push(this.clock());
    u.lastPermissionRequestId = messageId;
    for (const l of this.permissionListeners) l({ user: u, messageId, request: log });
    return response;
  }
}
