/**
 * SIP user agent on top of drachtio-srf: one connection to drachtio-server (the app connects to the
 * server's admin port with srf.connect), reconnecting with exponential backoff, outbound INVITEs
 * (createUAC) and inbound INVITE handling (createUAS) wrapped into typed SipDialog objects.
 *
 * Reconnection is ours, not drachtio-srf's: every attempt uses a fresh Srf instance with drachtio-srf's
 * own reconnect disabled (maxAttempts 1), so events of a dead connection can never be confused with
 * the current one. 'error' events from drachtio-srf are always handled (they never crash the process).
 */
import { EventEmitter } from 'node:events';
import Srf from 'drachtio-srf';
import type { Logger } from 'pino';
import { ALLOW, formatFromHeader, formatReasonHeader, parseReasonHeader, sanitizeExtraHeaders, sanitizeHeaderValue, type SipFromIdentity } from './headers.js';
import { answerEarlyUpdate, earlyContact } from './early-dialog.js';
import { requestInDialog } from './in-dialog-request.js';

// ---------------------------------------------------------------------------------------------------------------
// Errors

/** A call attempt that ended without a dialog: non-2xx final, cancel (487), timeout (408), not connected (503). */
export class SipCallFailure extends Error {
  override readonly name = 'SipCallFailure';
  constructor(
    readonly status: number,
    readonly reason: string,
    /** Reason header (RFC 3326) of the final response, when the far end sent one. */
    readonly reasonHeader?: string,
    /** A 3xx's Contact URIs, best first (RFC 3261 §8.1.3.4): where the far end says to try instead. */
    readonly redirectTo?: readonly string[],
  ) {
    super(`SIP call failed: ${status} ${reason}`);
  }
}

/** A 3xx's Contact URIs (sip: and sips: only), highest q first (a missing q counts as 1). */
function redirectTargets(res: Srf.SrfResponse): string[] {
  let contacts: Srf.NameAddr[];
  try {
    contacts = res.has('Contact') ? res.getParsedHeader('Contact') : [];
  } catch {
    return [];
  }
  const q = (c: Srf.NameAddr): number => Number(c.params.q ?? 1) || 0;
  return contacts.filter((c) => /^sips?:/i.test(c.uri)).sort((a, b) => q(b) - q(a)).map((c) => c.uri);
}

/** The INVITE was never sent: local policy refuses its target (target-policy.ts). Another target may be allowed. */
export class TargetNotAllowed extends SipCallFailure {
  constructor(reason: string) {
    super(403, `Target not allowed: ${reason}`);
  }
}

export function isSipCallFailure(err: unknown): err is SipCallFailure {
  return err instanceof SipCallFailure;
}

// ---------------------------------------------------------------------------------------------------------------
// Dialog

export interface SipDialogEnd {
  /** Who ended it: the far end's BYE, our bye(), or the drachtio connection going away (see SipAgent). */
  by: 'remote' | 'local';
  /** Reason text: the Reason header's text (or whole value) if present, else "normal release" / our reason. */
  reason: string;
  /** Raw Reason header of the far end's BYE, if any. */
  reasonHeader?: string;
  /**
   * The drachtio connection went away (by 'remote'): drachtio-server sends a dialog's requests only to the connection
   * that owns it, so neither the far end's BYE nor ours can pass any more; the call is over for us.
   */
  connectionLost?: true;
}

export interface SipInfoRequest {
  contentType: string;
  body: string;
  header(name: string): string | undefined;
}

/** An in-dialog REFER (RFC 3515) waiting for our answer: accept() sends 202, reject() a final failure. */
export interface SipReferRequest {
  /** Refer-To as received, still percent-encoded (name-addr or URI, may carry ?Replaces=...): see refer-to.ts. */
  referTo: string;
  /** The URI inside Refer-To, without its embedded headers (`?...`); nothing decoded. */
  referToUri: string;
  referredBy?: string;
  header(name: string): string | undefined;
  accept(): void;
  /** Final failure; `reason` replaces the standard reason phrase (e.g. "Malformed Replaces"). */
  reject(status: number, reason?: string): void;
}

export interface SipDialogEvents {
  /** The dialog ended (far end BYE, or our bye()). Emitted exactly once. */
  ended: [SipDialogEnd];
  /** In-dialog INFO (already answered 200). */
  info: [SipInfoRequest];
  /** A re-INVITE or UPDATE arrived with this new remote SDP (already answered by reinviteHandler or with the current local SDP). */
  reinvite: [string];
  /** A REFER arrived; without a listener it is refused 603 (we never follow a REFER nobody handles). */
  refer: [SipReferRequest];
}

/** A confirmed INVITE dialog (either direction). */
export class SipDialog extends EventEmitter<SipDialogEvents> {
  readonly callId: string;
  /** Resolves once when the dialog ends (never rejects). */
  readonly done: Promise<SipDialogEnd>;
  /**
   * Optional: answer re-INVITE and UPDATE offers (RFC 3311). Gets the new remote SDP, returns our answer SDP
   * (throw → 488, the session stays as it was). Without it an offer is answered with the current local SDP.
   */
  reinviteHandler?: (offer: string) => string | Promise<string>;
  /**
   * Optional: an offerless re-INVITE (RFC 3261 §14.2, a 3PCC or CUCM session refresh). offer() gives the SDP offer our
   * 200 OK carries; the far end's answer comes in its ACK, handed to applyAnswer ('' when the ACK has none). Without
   * it our current local SDP is offered again and the ACK's answer is not applied.
   */
  offerlessHandler?: { offer(): string; applyAnswer(answer: string): void };

  private endInfo: SipDialogEnd | undefined;
  /** The body of the first ACK in this dialog (undefined: none). */
  private readonly firstAck: Promise<string | undefined>;
  /** The far end's SDP as the session last agreed it (agree()). */
  private agreedRemote: string;
  private resolveDone!: (end: SipDialogEnd) => void;
  private byePromise: Promise<void> | undefined;

  constructor(
    private readonly dlg: Srf.Dialog,
    readonly direction: 'outbound' | 'inbound',
    private readonly log: Logger,
    private readonly byeTimeoutMs = 5000,
  ) {
    super();
    this.callId = dlg.sip.callId;
    this.done = new Promise<SipDialogEnd>((resolve) => {
      this.resolveDone = resolve;
    });
    dlg.on('destroy', (req: Srf.SrfRequest) => {
      const reasonHeader = req.get('Reason');
      const parsed = parseReasonHeader(reasonHeader);
      const end: SipDialogEnd = { by: 'remote', reason: parsed?.text ?? reasonHeader ?? 'normal release' };
      if (reasonHeader !== undefined) end.reasonHeader = reasonHeader;
      this.markEnded(end);
    });
    dlg.on('info', (req: Srf.SrfRequest, res: Srf.SrfResponse) => {
      res.send(200);
      const info: SipInfoRequest = {
        contentType: req.get('Content-Type') ?? '',
        body: req.body ?? '',
        header: (name) => req.get(name),
      };
      this.safeEmit('info', info);
    });
    dlg.on('refer', (req: Srf.SrfRequest, res: Srf.SrfResponse) => {
      const referTo = req.get('Refer-To') ?? '';
      if (this.listenerCount('refer') === 0 || referTo === '') {
        res.send(referTo === '' ? 400 : 603);
        return;
      }
      let answered = false;
      const send = (status: number, reason?: string): void => {
        if (answered) return;
        answered = true;
        try {
          if (reason) res.send(status, sanitizeHeaderValue(reason, 64));
          else res.send(status);
        } catch (err) {
          this.log.warn({ callId: this.callId, err: String(err) }, 'could not answer REFER');
        }
      };
      const uri = /<([^>]*)>/.exec(referTo)?.[1] ?? referTo.split(';')[0] ?? '';
      const refer: SipReferRequest = {
        referTo,
        referToUri: (uri.split('?')[0] ?? '').trim(),
        header: (name) => req.get(name),
        accept: () => send(202),
        reject: (status, reason) => send(status, reason),
      };
      const by = req.get('Referred-By');
      if (by !== undefined) refer.referredBy = by;
      this.safeEmit('refer', refer);
      // A listener that neither accepted nor refused synchronously must not leave the transaction hanging.
      setImmediate(() => send(500));
    });
    this.agreedRemote = dlg.remote.sdp;
    // The first ACK: for a delayed-offer INVITE it carries the far end's answer (ackAnswer), which the session agreed.
    let acked = false;
    this.firstAck = new Promise((resolve) => {
      dlg.on('ack', (req: Srf.SrfRequest) => {
        if (acked) return;
        acked = true;
        if (this.agreedRemote.trim() === '' && req.body) this.agree(req.body);
        resolve(req.body || undefined);
      });
    });
    dlg.on('modify', (req: Srf.SrfRequest, res: Srf.SrfResponse) => {
      const offer = req.body ?? '';
      this.dlg.remote.sdp = this.agreedRemote;
      if (offer.trim() === '') this.answerOfferless(res);
      else this.answerOffer('re-INVITE', offer, res);
    });
    // UPDATE (RFC 3311): with SDP it is an offer like a re-INVITE's; without, a session refresh (RFC 4028) answered 200.
    dlg.on('update', (req: Srf.SrfRequest, res: Srf.SrfResponse) => {
      const offer = req.body ?? '';
      if (offer.trim() === '') {
        res.send(200);
        return;
      }
      this.answerOffer('UPDATE', offer, res);
    });
  }

  /** The far end's SDP the session agreed on; drachtio-srf takes any re-INVITE's body as the remote SDP at once. */
  private agree(remoteSdp: string): void {
    this.dlg.remote.sdp = this.agreedRemote = remoteSdp;
  }

  /** 200 with our answer to the far end's offer (re-INVITE or UPDATE), or 488 when the handler cannot take it. */
  private answerOffer(method: 're-INVITE' | 'UPDATE', offer: string, res: Srf.SrfResponse): void {
    const reply = (sdp: string): void => {
      this.dlg.local.sdp = sdp;
      this.agree(offer);
      res.send(200, { body: sdp, headers: { 'Content-Type': 'application/sdp', Contact: this.dlg.local.contact } });
    };
    const handler = this.reinviteHandler;
    if (!handler) {
      reply(this.dlg.local.sdp);
    } else {
      Promise.resolve()
        .then(() => handler(offer))
        .then(reply, (err: unknown) => {
          this.log.warn({ callId: this.callId, err: String(err) }, `${method} refused (488)`);
          res.send(488);
        })
        .catch((err: unknown) => this.log.error({ callId: this.callId, err: String(err) }, `could not answer ${method}`));
    }
    this.safeEmit('reinvite', offer);
  }

  /**
   * An offerless re-INVITE: our 200 OK carries an offer and the ACK the answer. drachtio-srf hands the ACK of a 200 sent
   * with an ACK callback to that callback (its pendingAckOrPrack), not to the dialog's 'ack' event.
   */
  private answerOfferless(res: Srf.SrfResponse): void {
    const handler = this.offerlessHandler;
    let sdp: string;
    try {
      sdp = handler ? handler.offer() : this.dlg.local.sdp;
    } catch (err) {
      this.log.warn({ callId: this.callId, err: String(err) }, 'offerless re-INVITE refused (488): no offer to make');
      res.send(488);
      return;
    }
    this.dlg.local.sdp = sdp;
    res.send(200, { body: sdp, headers: { 'Content-Type': 'application/sdp', Contact: this.dlg.local.contact } }, undefined, (ack) => {
      const answer = ack.body ?? '';
      if (answer.trim() !== '') this.agree(answer);
      if (this.endInfo || !handler) return;
      try {
        handler.applyAnswer(answer);
      } catch (err) {
        this.log.error({ callId: this.callId, err: String(err) }, 'the answer in the ACK could not be applied');
      }
    });
  }

  /**
   * The SDP answer in the ACK to our 200 OK, for an INVITE that came without an offer (delayed offer, RFC 3261 §13.2.1:
   * our 200 carried the offer). Undefined when no ACK came within timeoutMs or it carried no SDP.
   */
  ackAnswer(timeoutMs = 5000): Promise<string | undefined> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<undefined>((resolve) => { timer = setTimeout(() => resolve(undefined), timeoutMs); });
    return Promise.race([this.firstAck, late, this.done.then(() => undefined)]).finally(() => clearTimeout(timer));
  }

  /** The far end's SDP (updated by re-INVITEs). */
  get remoteSdp(): string {
    return this.dlg.remote.sdp;
  }

  /** The far end's Contact URI: for a call we placed, the agent who answered. */
  get remoteUri(): string {
    return this.dlg.remote.uri;
  }

  /** Our SDP in this dialog. */
  get localSdp(): string {
    return this.dlg.local.sdp;
  }

  /** True until the dialog ended. */
  get active(): boolean {
    return this.endInfo === undefined;
  }

  /** How it ended, once it has. */
  get end(): SipDialogEnd | undefined {
    return this.endInfo;
  }

  /**
   * Send BYE (idempotent: later calls return the same promise; after a remote BYE it resolves at once).
   * Never rejects: a BYE that fails or is not answered within byeTimeoutMs is logged, the dialog is over anyway.
   */
  bye(opts: { reason?: string; reasonHeader?: string; headers?: Record<string, string> } = {}): Promise<void> {
    if (this.byePromise) return this.byePromise;
    if (this.endInfo) {
      this.byePromise = Promise.resolve();
      return this.byePromise;
    }
    const headers = sanitizeExtraHeaders(opts.headers);
    // Every BYE says why (RFC 3326): the caller's Reason, else normal clearing with our reason as its text.
    headers['Reason'] = opts.reasonHeader !== undefined ? sanitizeHeaderValue(opts.reasonHeader) : formatReasonHeader('Q.850', 16, opts.reason ?? 'normal clearing');
    this.markEnded({ by: 'local', reason: opts.reason ?? 'local hangup' });
    const sent = this.dlg.destroy({ headers }).then(
      () => undefined,
      (err: unknown) => {
        this.log.warn({ callId: this.callId, err: String(err) }, 'BYE failed (dialog considered ended)');
      },
    );
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        this.log.warn({ callId: this.callId }, `no answer to BYE within ${this.byeTimeoutMs} ms (dialog considered ended)`);
        resolve();
      }, this.byeTimeoutMs);
    });
    this.byePromise = Promise.race([sent, timeout]).finally(() => clearTimeout(timer));
    return this.byePromise;
  }

  /**
   * NOTIFY of REFER progress (RFC 3515 §2.4.5): a message/sipfrag status line; `final` ends the implicit
   * subscription. Resolves with the response status, or 0 when it could not be sent (never rejects).
   */
  async notifyRefer(status: number, reason: string, final: boolean): Promise<number> {
    if (this.endInfo) return 0;
    try {
      const res = await requestInDialog(this.dlg, {
        method: 'NOTIFY',
        headers: {
          Event: 'refer',
          'Subscription-State': final ? 'terminated;reason=noresource' : 'active;expires=60',
          'Content-Type': 'message/sipfrag;version=2.0',
        },
        body: `SIP/2.0 ${status} ${sanitizeHeaderValue(reason, 64)}\r\n`,
      });
      return res.status;
    } catch (err) {
      this.log.warn({ callId: this.callId, err: String(err) }, 'NOTIFY (refer) failed');
      return 0;
    }
  }

  /** Send an in-dialog INFO; resolves with the response status. */
  async sendInfo(contentType: string, body: string): Promise<number> {
    if (this.endInfo) throw new SipCallFailure(481, 'Call/Transaction Does Not Exist');
    const res = await requestInDialog(this.dlg, { method: 'INFO', headers: { 'Content-Type': sanitizeHeaderValue(contentType) }, body });
    return res.status;
  }

  /** @internal SipAgent: the drachtio connection that owns this dialog is gone. */
  connectionLost(): void {
    this.markEnded({ by: 'remote', reason: 'drachtio connection lost', connectionLost: true });
  }

  private markEnded(end: SipDialogEnd): void {
    if (this.endInfo) return;
    this.endInfo = end;
    this.resolveDone(end);
    this.safeEmit('ended', end);
  }

  private safeEmit<K extends keyof SipDialogEvents>(event: K, ...args: SipDialogEvents[K]): void {
    try {
      (this.emit as (e: K, ...a: SipDialogEvents[K]) => boolean)(event, ...args);
    } catch (err) {
      this.log.error({ callId: this.callId, err: String(err) }, `SipDialog '${String(event)}' listener threw`);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Inbound INVITE

export interface SipNameAddr {
  /** The URI inside <> (or the bare URI). */
  uri: string;
  user?: string;
  host?: string;
  port?: number;
  /** Display name, unquoted and unescaped. */
  displayName?: string;
  /** The header value as received. */
  raw: string;
}

function parseNameAddr(raw: string | undefined): SipNameAddr {
  const value = raw ?? '';
  const out: SipNameAddr = { uri: '', raw: value };
  const m = /^\s*(?:"((?:[^"\\]|\\.)*)"|([^<"]*?))\s*<([^>]*)>/.exec(value);
  if (m) {
    const name = m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : (m[2] ?? '').trim();
    if (name.length > 0) out.displayName = name;
    out.uri = (m[3] ?? '').trim();
  } else {
    out.uri = (value.split(';')[0] ?? '').trim();
  }
  const parsed = out.uri ? Srf.parseUri(out.uri) : undefined;
  if (parsed) {
    if (parsed.user) out.user = parsed.user;
    if (parsed.host) out.host = parsed.host;
    const port = Number(parsed.port);
    if (Number.isInteger(port) && port > 0) out.port = port;
  }
  return out;
}

export interface RejectOptions {
  /** Status text (default: the standard one). */
  reasonPhrase?: string;
  /** Reason header (RFC 3326): a raw value, or protocol/cause/text to format. */
  reasonHeader?: string | { protocol: 'SIP' | 'Q.850'; cause: number; text?: string };
  headers?: Record<string, string>;
}

const KNOWN_STATUS = new Set([
  300, 301, 302, 305, 380, 400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415, 416, 417, 420, 421, 422,
  423, 424, 428, 429, 430, 433, 436, 437, 438, 439, 470, 480, 481, 482, 483, 484, 485, 486, 487, 488, 489, 491, 493, 494, 500, 501,
  502, 503, 504, 505, 513, 580, 600, 603, 604, 606,
]);

/** An inbound INVITE waiting for our response. */
export class SipInboundInvite {
  readonly callId: string;
  readonly from: SipNameAddr;
  readonly to: SipNameAddr;
  readonly requestUri: string;
  /** Headers as received (names lower-case). */
  readonly headers: Readonly<Record<string, string>>;
  /** The SDP offer ('' for a delayed-offer INVITE). */
  readonly sdp: string;
  readonly source: { address: string; port: number; protocol: string };
  /**
   * Aborted when the caller CANCELs (drachtio answers the CANCEL and the INVITE with 487; reason SipCallFailure 487),
   * or when the drachtio connection is lost before we answered (reason SipCallFailure 503: nothing can be sent).
   */
  readonly signal: AbortSignal;

  private readonly abort = new AbortController();
  private finalSent = false;
  private answering = false;
  /** Headers of our 1xx: each creates the early dialog, so it carries our Contact (see earlyContact). */
  private readonly provisionalHeaders: Record<string, string>;

  constructor(
    private readonly srf: Srf,
    private readonly req: Srf.SrfRequest,
    private readonly res: Srf.SrfResponse,
    private readonly log: Logger,
    private readonly onDialog: (d: SipDialog) => void,
  ) {
    this.callId = req.get('Call-ID') ?? '';
    this.from = parseNameAddr(req.get('From'));
    this.to = parseNameAddr(req.get('To'));
    this.requestUri = req.uri;
    this.headers = { ...req.headers };
    this.sdp = req.body ?? '';
    this.source = { address: req.source_address, port: Number(req.source_port), protocol: req.protocol };
    this.signal = this.abort.signal;
    req.on('cancel', () => {
      this.log.info({ callId: this.callId }, 'inbound INVITE cancelled by caller');
      this.abort.abort(new SipCallFailure(487, 'Request Terminated'));
    });
    const contact = earlyContact(req);
    this.provisionalHeaders = contact ? { Allow: ALLOW, Contact: contact } : { Allow: ALLOW };
    // Whatever SDP we send goes in the 2xx: before it, no offer of ours is pending.
    req.on('update', (update, res) => answerEarlyUpdate(update, res, { callId: this.callId, log: this.log, offerPending: false, ...(contact ? { contact } : {}) }));
  }

  /** Case-insensitive header lookup. */
  header(name: string): string | undefined {
    return this.req.get(name);
  }

  /** @internal SipAgent: the drachtio connection this INVITE came on is gone; no response can be sent any more. */
  connectionLost(): void {
    if (this.responded) return;
    this.log.warn({ callId: this.callId }, 'inbound INVITE abandoned: drachtio connection lost');
    this.abort.abort(new SipCallFailure(503, 'drachtio connection lost'));
  }

  /** True once a final response was sent or the caller cancelled. */
  get responded(): boolean {
    return this.finalSent || this.signal.aborted || this.res.finalResponseSent;
  }

  get cancelled(): boolean {
    return this.signal.aborted;
  }

  /** 180 Ringing (no-op after a final response). */
  ringing(): void {
    if (this.responded || this.answering) return;
    this.res.send(180, { headers: this.provisionalHeaders });
  }

  /** 183 Session Progress with early-media SDP. */
  progress(sdp: string): void {
    if (this.responded || this.answering) return;
    this.res.send(183, { body: sdp, headers: { ...this.provisionalHeaders, 'Content-Type': 'application/sdp' } });
  }

  /** Final failure response (>= 300). Returns false when a final response was already sent. */
  reject(status: number, opts: RejectOptions = {}): boolean {
    if (!Number.isInteger(status) || status < 300 || status > 699) throw new RangeError(`reject status must be 300..699, got ${status}`);
    if (this.responded || this.answering) return false;
    this.finalSent = true;
    const headers = sanitizeExtraHeaders(opts.headers);
    if (typeof opts.reasonHeader === 'string') headers['Reason'] = sanitizeHeaderValue(opts.reasonHeader);
    else if (opts.reasonHeader) headers['Reason'] = formatReasonHeader(opts.reasonHeader.protocol, opts.reasonHeader.cause, opts.reasonHeader.text);
    let phrase = opts.reasonPhrase === undefined ? undefined : sanitizeHeaderValue(opts.reasonPhrase, 64);
    // drachtio-srf only knows registered status codes; send an unknown one as its class (x00) with the phrase.
    let code = status;
    if (!KNOWN_STATUS.has(code)) {
      code = status - (status % 100);
      phrase = phrase || `Status ${status}`;
    }
    try {
      if (phrase) this.res.send(code, phrase, { headers });
      else this.res.send(code, { headers });
    } catch (err) {
      this.log.error({ callId: this.callId, status, err: String(err) }, 'could not send final response');
    }
    return true;
  }

  /** 200 OK with our SDP → the confirmed dialog. Rejects with SipCallFailure 487 if the caller cancelled first. */
  async answer(opts: { sdp: string; headers?: Record<string, string> }): Promise<SipDialog> {
    if (this.signal.aborted) throw new SipCallFailure(487, 'Request Terminated');
    if (this.responded || this.answering) throw new SipCallFailure(500, 'INVITE already answered');
    this.answering = true;
    const headers = { ...sanitizeExtraHeaders(opts.headers), Allow: ALLOW, 'Content-Type': 'application/sdp' };
    try {
      const dlg = await this.srf.createUAS(this.req, this.res, { localSdp: opts.sdp, headers });
      this.finalSent = true;
      const dialog = new SipDialog(dlg, 'inbound', this.log);
      this.onDialog(dialog);
      return dialog;
    } catch (err) {
      this.finalSent = true;
      if (err instanceof Srf.SipError) throw new SipCallFailure(err.status, err.reason ?? 'failed');
      throw new SipCallFailure(500, err instanceof Error ? err.message : String(err));
    } finally {
      this.answering = false;
    }
  }
}

export type InviteHandler = (invite: SipInboundInvite) => void | Promise<void>;

// ---------------------------------------------------------------------------------------------------------------
// Agent

export interface SipAgentOptions {
  /** drachtio-server admin address, port and shared secret. */
  host: string;
  port: number;
  secret: string;
  logger: Logger;
  /** Reconnect backoff: first delay, cap, factor (default 500 ms, 30 s, 2). */
  backoff?: { initialMs?: number; maxMs?: number; factor?: number };
  /** Give up on one connection attempt after this long (default 5000 ms). */
  connectTimeoutMs?: number;
  /** Host part of our From URI (default "localhost": drachtio-server puts its own SIP address there). */
  fromHost?: string;
  /** Why an INVITE to this URI must not be sent (target-policy.ts), or null: read per INVITE, so a reload applies. */
  targetRefusal?: (uri: string) => string | null;
  /** The credentials to answer this target's 401/407 challenge with (digest.ts outboundCredentialsFor), if any. */
  outboundCredentials?: (uri: string) => { username: string; password: string } | undefined;
  /** Retry-After seconds on the automatic 503 while draining (default 30). */
  drainRetryAfterSeconds?: number;
  /**
   * After sending CANCEL (abort/timeout) once a provisional came, settle anyway if no final response within this
   * long (default 5000 ms). Without any provisional the call settles at once.
   */
  cancelGraceMs?: number;
}

export interface SipInviteOptions {
  /** Target SIP URI, e.g. sip:agent@127.0.0.1:5080. */
  uri: string;
  /** Calling identity (From user is E.164 like +16315553602). */
  from: SipFromIdentity;
  /** Extra headers (X-WA-Call-Id etc., e.g. waContextToSip().headers); names validated, values sanitised, undefined skipped. */
  headers?: Readonly<Record<string, string | undefined>>;
  /** Our SDP offer. */
  sdp: string;
  /** Aborting sends CANCEL (with abort(reason): a string reason is its RFC 3326 Reason); rejects with SipCallFailure 487. */
  signal?: AbortSignal;
  /** Called for every provisional response (100 excluded by drachtio; 180, 183...). */
  onProvisional?: (status: number, info: { reason: string; sdp?: string }) => void;
  /** No final response within this long → CANCEL, reject with SipCallFailure 408. */
  timeoutMs?: number;
  /** No provisional (18x) or final response within this long → give up at once, SipCallFailure 408 'No response'. */
  responseTimeoutMs?: number;
  /** Logger of the call this INVITE belongs to. */
  logger?: Logger;
}

export interface SipAgentEvents {
  connected: [{ hostport: string; serverVersion?: string }];
  disconnected: [{ reason: string }];
  /** A retry is scheduled. */
  reconnecting: [{ attempt: number; delayMs: number; reason: string }];
  /** A new dialog exists (inbound answered or outbound confirmed). */
  dialog: [SipDialog];
}

interface PendingInvite {
  fail(f: SipCallFailure): void;
}

export class SipAgent extends EventEmitter<SipAgentEvents> {
  /** When true, new inbound INVITEs are answered 503 automatically. */
  draining = false;

  private readonly log: Logger;
  private readonly initialDelay: number;
  private readonly maxDelay: number;
  private readonly factor: number;
  private srf: Srf | undefined;
  private isConnected = false;
  private started = false;
  private stopped = false;
  private attempt = 0;
  private nextDelay: number;
  private retryTimer: NodeJS.Timeout | undefined;
  private connectTimer: NodeJS.Timeout | undefined;
  private lastError: string | undefined;
  private inviteHandler: InviteHandler | undefined;
  private readonly pending = new Set<PendingInvite>();
  private readonly dialogs = new Set<SipDialog>();
  /** Inbound INVITEs not answered yet (kept until their final response, a dialog or the caller's CANCEL). */
  private readonly inboundPending = new Set<SipInboundInvite>();
  private hostport: string | undefined;

  constructor(private readonly opts: SipAgentOptions) {
    super();
    this.log = opts.logger.child({ component: 'sip-agent' });
    this.initialDelay = Math.max(1, opts.backoff?.initialMs ?? 500);
    this.maxDelay = Math.max(this.initialDelay, opts.backoff?.maxMs ?? 30_000);
    this.factor = Math.max(1, opts.backoff?.factor ?? 2);
    this.nextDelay = this.initialDelay;
  }

  /** True while authenticated to drachtio-server. */
  get connected(): boolean {
    return this.isConnected;
  }

  /** drachtio-server's SIP address(es) as it reported them (e.g. "udp/127.0.0.1:5060,tcp/..."). */
  get serverHostport(): string | undefined {
    return this.hostport;
  }

  /** Dialogs not yet ended. */
  get activeDialogs(): number {
    return this.dialogs.size;
  }

  /** Start connecting (and keep reconnecting until stop()). Idempotent. */
  start(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    this.connectAttempt();
  }

  /** Resolves when connected (at once if already), rejects after timeoutMs. */
  waitConnected(timeoutMs = 10_000): Promise<void> {
    if (this.isConnected) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.off('connected', ok);
        reject(new Error(`drachtio ${this.opts.host}:${this.opts.port} not connected after ${timeoutMs} ms (${this.lastError ?? 'no error'})`));
      }, timeoutMs);
      const ok = (): void => {
        clearTimeout(t);
        resolve();
      };
      this.once('connected', ok);
    });
  }

  /** Close the connection and stop reconnecting. Pending outbound INVITEs reject with 503. Dialogs are left alone. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearTimeout(this.connectTimer);
    const srf = this.srf;
    this.srf = undefined;
    const was = this.isConnected;
    this.isConnected = false;
    this.failPending(new SipCallFailure(503, 'SIP agent stopped'));
    if (srf) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 2000);
        srf.once('close', () => {
          clearTimeout(t);
          resolve();
        });
        if (!safeDisconnect(srf)) {
          clearTimeout(t);
          resolve();
        }
      });
    }
    if (was) {
      this.log.info('disconnected from drachtio-server (stopped)');
      this.safeEmit('disconnected', { reason: 'stopped' });
    }
  }

  /** Handle inbound INVITEs (replaces a previous handler). Without a handler INVITEs get 503. */
  onInvite(handler: InviteHandler): void {
    this.inviteHandler = handler;
  }

  /** Outbound INVITE. Resolves with the confirmed dialog; rejects with SipCallFailure. */
  invite(opts: SipInviteOptions): Promise<SipDialog> {
    const srf = this.srf;
    if (!this.isConnected || !srf) return Promise.reject(new SipCallFailure(503, 'drachtio-server not connected'));
    if (!/^sips?:/i.test(opts.uri) || !Srf.parseUri(opts.uri)?.host) return Promise.reject(new TypeError(`invalid SIP target URI: ${opts.uri}`));
    if (opts.signal?.aborted) return Promise.reject(new SipCallFailure(487, 'Request Terminated'));
    const refused = this.opts.targetRefusal?.(opts.uri);
    if (refused) {
      (opts.logger ?? this.log).warn({ target: opts.uri, reason: refused }, 'INVITE not sent: the target is not allowed');
      return Promise.reject(new TargetNotAllowed(refused));
    }
    let headers: Record<string, string>;
    try {
      headers = {
        ...sanitizeExtraHeaders(opts.headers),
        From: formatFromHeader(opts.from, this.opts.fromHost ?? 'localhost'),
        Allow: ALLOW,
        'Content-Type': 'application/sdp',
      };
    } catch (err) {
      return Promise.reject(err);
    }
    // The call's own logger, when given, puts the gateway call id on every line about this INVITE and its dialog.
    const log = (opts.logger ?? this.log).child({ target: opts.uri });
    const auth = this.opts.outboundCredentials?.(opts.uri);

    return new Promise<SipDialog>((resolve, reject) => {
      let req: Srf.SrfRequest | undefined;
      let settled = false;
      let cancelWith: SipCallFailure | undefined;
      let cancelSent = false;
      let gotProvisional = false;
      let graceTimer: NodeJS.Timeout | undefined;
      let timeoutTimer: NodeJS.Timeout | undefined;
      let responseTimer: NodeJS.Timeout | undefined;

      const cleanup = (): void => {
        settled = true;
        clearTimeout(graceTimer);
        clearTimeout(timeoutTimer);
        clearTimeout(responseTimer);
        opts.signal?.removeEventListener('abort', onAbort);
        this.pending.delete(entry);
      };
      const fail = (f: SipCallFailure): void => {
        if (settled) return;
        cleanup();
        reject(f);
      };
      const entry: PendingInvite = { fail };
      this.pending.add(entry);

      let cancelReason: string | undefined;
      const sendCancel = (): void => {
        if (cancelSent || !req) return;
        cancelSent = true;
        try {
          req.cancel(cancelReason ? { headers: { Reason: sanitizeHeaderValue(cancelReason) } } : {}, (err) => {
            if (err) log.warn({ err: String(err) }, 'CANCEL failed');
          });
        } catch (err) {
          log.warn({ err: String(err) }, 'CANCEL failed');
        }
      };
      /** `reason`: the CANCEL's RFC 3326 Reason, when we know why we give up. */
      const cancel = (why: SipCallFailure, reason?: string): void => {
        if (settled || cancelWith) return;
        cancelWith = why;
        cancelReason = reason;
        log.info({ status: why.status }, `cancelling INVITE (${why.reason})`);
        sendCancel();
        if (!gotProvisional) {
          // No provisional yet: the stack holds the CANCEL until one arrives (RFC 3261 §9.1), and there may never be
          // one. Settle now; a 200 that still arrives is answered with ACK + BYE (see below).
          fail(why);
          return;
        }
        graceTimer = setTimeout(() => fail(why), this.opts.cancelGraceMs ?? 5000);
      };
      // The caller may abort with the Reason to give (a string); Q.850 19 is "no answer from user (user alerted)".
      const onAbort = (): void => cancel(new SipCallFailure(487, 'Request Terminated'), typeof opts.signal?.reason === 'string' ? opts.signal.reason : undefined);
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      if (opts.timeoutMs !== undefined) {
        timeoutTimer = setTimeout(() => cancel(new SipCallFailure(408, 'Request Timeout'), formatReasonHeader('Q.850', 19, 'ring timeout')), opts.timeoutMs);
      }
      if (opts.responseTimeoutMs) {
        responseTimer = setTimeout(() => {
          if (!gotProvisional) cancel(new SipCallFailure(408, 'No response'));
        }, opts.responseTimeoutMs);
      }

      log.info('sending INVITE');
      srf
        .createUAC(
          opts.uri,
          { localSdp: opts.sdp, headers, ...(auth ? { auth } : {}) },
          {
            cbRequest: (err, sent) => {
              if (err || !sent) {
                log.warn({ err: String(err) }, 'drachtio refused to send INVITE');
                return;
              }
              req = sent;
              if (cancelWith) sendCancel();
              // drachtio-srf adds its own early-UPDATE listener right after this callback returns: ours replaces it.
              // Our offer went in this INVITE, and only the 2xx answers it (we offer no 100rel).
              const contact = sent.get('Contact');
              const early = { callId: sent.get('Call-ID') ?? '', log, offerPending: true, ...(contact ? { contact } : {}) };
              queueMicrotask(() => {
                sent.removeAllListeners('update');
                sent.on('update', (update, res) => answerEarlyUpdate(update, res, early));
              });
            },
            cbProvisional: (res) => {
              gotProvisional = true;
              if (settled) return;
              const info: { reason: string; sdp?: string } = { reason: res.reason };
              if (res.body) info.sdp = res.body;
              try {
                opts.onProvisional?.(res.status, info);
              } catch (err) {
                log.error({ err: String(err) }, 'onProvisional threw');
              }
            },
          },
        )
        .then(
          (dlg) => {
            const dialog = new SipDialog(dlg, 'outbound', opts.logger ?? this.log);
            if (settled || cancelWith) {
              // 200 OK crossed our CANCEL (or we gave up already): end the call we did not want.
              log.info('INVITE answered after cancel; sending BYE');
              void dialog.bye({ reason: 'cancelled' });
              fail(cancelWith ?? new SipCallFailure(487, 'Request Terminated'));
              return;
            }
            cleanup();
            this.track(dialog);
            log.info({ callId: dialog.callId }, 'INVITE answered');
            resolve(dialog);
          },
          (err: unknown) => {
            if (err instanceof Srf.SipError) {
              const reasonHeader = err.res?.get('Reason');
              // Once we cancelled, the INVITE ended because we did: its 487, a final answer that crossed our CANCEL, or
              // the 503 drachtio-server makes up when the CANCEL cannot reach a PBX that is gone (ICMP unreachable). The
              // last one read as the PBX refusing the call (record sip_503, endedBy sip) when our ring timeout ended it.
              if (cancelWith) {
                if (err.status !== 487) log.info({ status: err.status, cancelledFor: cancelWith.status }, `INVITE ended ${err.status} after our CANCEL`);
                fail(cancelWith);
                return;
              }
              log.info({ status: err.status }, `INVITE failed: ${err.status} ${err.reason ?? ''}`);
              const redirect = err.status >= 300 && err.status < 400 && err.res ? redirectTargets(err.res) : undefined;
              fail(new SipCallFailure(err.status, err.reason ?? 'failed', reasonHeader, redirect));
              return;
            }
            const message = err instanceof Error ? err.message : String(err);
            log.warn({ err: message }, 'INVITE failed');
            fail(new SipCallFailure(this.isConnected ? 500 : 503, message));
          },
        )
        .catch((err: unknown) => {
          log.error({ err: String(err) }, 'INVITE result handling failed');
          fail(new SipCallFailure(500, err instanceof Error ? err.message : String(err)));
        });
    });
  }

  // -------------------------------------------------------------------------------------------------------------

  /** Emit without letting a throwing listener escape into drachtio-srf's socket callbacks. */
  private safeEmit<K extends keyof SipAgentEvents>(event: K, ...args: SipAgentEvents[K]): void {
    try {
      (this.emit as (e: K, ...a: SipAgentEvents[K]) => boolean)(event, ...args);
    } catch (err) {
      this.log.error({ err: String(err) }, `SipAgent '${String(event)}' listener threw`);
    }
  }

  private track(dialog: SipDialog): void {
    this.dialogs.add(dialog);
    void dialog.done.then(() => this.dialogs.delete(dialog));
    this.safeEmit('dialog', dialog);
  }

  private failPending(f: SipCallFailure): void {
    for (const p of [...this.pending]) p.fail(f);
  }

  private connectAttempt(): void {
    if (this.stopped) return;
    this.attempt += 1;
    this.lastError = undefined;
    const srf = new Srf();
    this.srf = srf;
    const { host, port, secret } = this.opts;

    srf.on('error', (err: Error) => {
      // Socket errors (ECONNREFUSED, ECONNRESET...). 'close' follows; the retry is scheduled there.
      const code = (err as NodeJS.ErrnoException).code;
      if (srf === this.srf) this.lastError = code ?? err.message;
      this.log.debug({ err: err.message }, 'drachtio connection error');
    });
    srf.on('connect', (err: Error | null, hostport?: string, serverVersion?: string | null) => {
      if (srf !== this.srf || this.stopped) {
        safeDisconnect(srf);
        return;
      }
      clearTimeout(this.connectTimer);
      if (err) {
        this.log.error(`drachtio-server ${host}:${port} refused us: ${err.message} (check the shared secret)`);
        this.abandon(srf, 'authentication failed');
        return;
      }
      this.isConnected = true;
      this.hostport = hostport;
      this.attempt = 0;
      this.nextDelay = this.initialDelay;
      this.log.info({ hostport, serverVersion }, `connected to drachtio-server ${host}:${port}`);
      const info: { hostport: string; serverVersion?: string } = { hostport: hostport ?? '' };
      if (serverVersion) info.serverVersion = serverVersion;
      this.safeEmit('connected', info);
    });
    srf.on('close', () => {
      if (srf !== this.srf) return;
      this.connectionGone(this.lastError ?? 'connection closed');
    });
    srf.invite((req, res) => this.handleInvite(srf, req, res));

    this.connectTimer = setTimeout(() => {
      if (srf === this.srf && !this.isConnected) this.abandon(srf, `no connection within ${this.opts.connectTimeoutMs ?? 5000} ms`);
    }, this.opts.connectTimeoutMs ?? 5000);
    try {
      srf.connect({ host, port, secret, reconnect: { maxAttempts: 1 } });
    } catch (err) {
      this.abandon(srf, err instanceof Error ? err.message : String(err));
    }
  }

  /** Give up on this Srf (timeout, auth failure): it becomes stale and a retry is scheduled. */
  private abandon(srf: Srf, reason: string): void {
    if (srf !== this.srf) return;
    this.lastError = reason;
    this.connectionGone(reason);
    safeDisconnect(srf);
  }

  private connectionGone(reason: string): void {
    this.srf = undefined;
    clearTimeout(this.connectTimer);
    const was = this.isConnected;
    this.isConnected = false;
    if (was) {
      this.log.warn({ reason }, `lost connection to drachtio-server ${this.opts.host}:${this.opts.port}`);
      this.failPending(new SipCallFailure(503, 'drachtio connection lost'));
      for (const invite of [...this.inboundPending]) invite.connectionLost();
      this.inboundPending.clear();
      if (this.dialogs.size > 0) this.log.warn({ dialogs: this.dialogs.size }, 'SIP dialogs ended: their drachtio connection is gone');
      for (const dialog of [...this.dialogs]) dialog.connectionLost();
      this.safeEmit('disconnected', { reason });
    }
    if (this.stopped) return;
    const delay = this.nextDelay;
    this.nextDelay = Math.min(this.maxDelay, Math.round(delay * this.factor));
    this.log.warn(
      { attempt: this.attempt, delayMs: delay, reason },
      `drachtio-server ${this.opts.host}:${this.opts.port} not connected (${reason}); attempt ${this.attempt + 1} in ${delay} ms`,
    );
    this.safeEmit('reconnecting', { attempt: this.attempt + 1, delayMs: delay, reason });
    this.retryTimer = setTimeout(() => this.connectAttempt(), delay);
  }

  private handleInvite(srf: Srf, req: Srf.SrfRequest, res: Srf.SrfResponse): void {
    const handler = this.inviteHandler;
    if (this.draining || !handler || srf !== this.srf) {
      const why = this.draining ? 'draining' : 'no handler';
      this.log.info({ callId: req.get('Call-ID') }, `inbound INVITE refused 503 (${why})`);
      res.send(503, {
        headers: {
          'Retry-After': String(this.opts.drainRetryAfterSeconds ?? 30),
          Reason: formatReasonHeader('SIP', 503, why === 'draining' ? 'Service draining' : 'Service Unavailable'),
        },
      });
      return;
    }
    const invite = new SipInboundInvite(srf, req, res, this.log, (d) => this.track(d));
    this.inboundPending.add(invite);
    // Forgotten once it has its answer: drachtio-srf's response emits 'end' when a final response went out.
    res.once('end', () => this.inboundPending.delete(invite));
    invite.signal.addEventListener('abort', () => this.inboundPending.delete(invite), { once: true });
    this.log.info({ callId: invite.callId, from: invite.from.uri, to: invite.to.uri, source: invite.source.address }, 'inbound INVITE');
    const onError = (err: unknown): void => {
      this.log.error({ callId: invite.callId, err: String(err) }, 'INVITE handler failed');
      if (!invite.responded) invite.reject(500);
    };
    try {
      const r = handler(invite);
      if (r && typeof (r as Promise<void>).then === 'function') (r as Promise<void>).catch(onError);
    } catch (err) {
      onError(err);
    }
  }
}

/** srf.disconnect() without throwing (it throws when the socket never connected). True if a socket was closed. */
function safeDisconnect(srf: Srf): boolean {
  try {
    srf.disconnect();
    return true;
  } catch {
    return false;
  }
}
