/**
 * Typed calling events parsed out of Meta's webhook envelopes (whatsapp-calling.md §1). Parsing is defensive: samples
 * in Meta's own docs omit fields, vary letter case and carry legacy shapes, so every field is checked, not trusted.
 */

interface Base {
  phoneNumberId: string;
  displayNumber: string;
  /** Unix seconds. */
  timestamp: number;
}

export interface ConnectEvent extends Base {
  kind: 'connect';
  callId: string;
  direction: 'USER_INITIATED' | 'BUSINESS_INITIATED';
  from: string;
  to: string;
  sdpType: 'offer' | 'answer';
  sdp: string;
  profileName?: string;
  userWaId?: string;
  ctaPayload?: string;
  deeplinkPayload?: string;
  bizOpaque?: string;
  /** Set by the webhook receiver: a user-initiated connect delivered after Meta's ring window (§3.2), only recorded. */
  pastRingWindow?: true;
}

export interface TerminateEvent extends Base {
  kind: 'terminate';
  callId: string;
  direction?: string;
  status: 'COMPLETED' | 'FAILED' | string;
  startTime?: number;
  endTime?: number;
  duration?: number;
  bizOpaque?: string;
  errorCodes: number[];
}

export interface StatusEvent extends Base {
  kind: 'status';
  callId: string;
  status: 'RINGING' | 'ACCEPTED' | 'REJECTED';
  recipientId?: string;
  bizOpaque?: string;
}

export interface PermissionReplyEvent extends Base {
  kind: 'permission_reply';
  /** The reply message's wamid (`messages[].id`). */
  messageId?: string;
  userWaId: string;
  response: 'accept' | 'reject';
  isPermanent: boolean;
  expiresAt?: number;
  source?: string;
  contextId?: string;
}

export type CallingEvent = ConnectEvent | TerminateEvent | StatusEvent | PermissionReplyEvent;

export class MalformedWebhookError extends Error {
  override name = 'MalformedWebhookError';
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const num = (v: unknown): number | undefined => {
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
  return Number.isFinite(n) ? n : undefined;
};
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

export interface ParseResult {
  events: CallingEvent[];
  /** Items understood as not ours to handle (other fields, ordinary messages). */
  ignored: number;
  /**
   * Value-level errors[] of changes on field `calls` that carry no call or status to attach them to: Meta's error
   * webhooks, e.g. 131044 (no valid payment method) on user-initiated calls (§1.5, §2.8).
   */
  errors: WebhookErrorItem[];
  /**
   * Changes that carry calls, statuses or messages but cannot be acted on: without `metadata.phone_number_id` no Graph
   * request can name the business number (§1.1, §2), so their items are left out of `events` entirely.
   */
  malformed: MalformedChange[];
  /** Meta telling the business about its number (fields account_update, account_settings_update; §1.7). */
  notices: AccountNotice[];
}

/**
 * An `account_update` (quality violations, calling restrictions) or `account_settings_update` (calling settings
 * changed at Meta, e.g. calling disabled or the SRTP key exchange switched) change. Nothing for a call flow to do, but
 * the operator must hear of it: restrictions stop calls, and a key-exchange switch makes our offers fail.
 */
export interface AccountNotice {
  field: 'account_update' | 'account_settings_update';
  /** ACCOUNT_VIOLATION, ACCOUNT_RESTRICTION, phone_number_settings, ... as Meta sends it. */
  kind: string;
  /** The violation or restriction type, or the calling settings that came (status, srtp_key_exchange_protocol, sip.status). */
  details: Record<string, string>;
}

export interface MalformedChange {
  field: string;
  /**
   * no_phone_number_id: the change names no business number. unusable_call: a calls[] item without id or event, an
   * unknown event, a business-initiated connect without SDP. unusable_status: no id, or not RINGING / ACCEPTED /
   * REJECTED. unusable_permission_reply: a call_permission_reply without sender or response.
   */
  reason: 'no_phone_number_id' | 'unusable_call' | 'unusable_status' | 'unusable_permission_reply';
  /** How many calls / statuses / messages the change held. */
  items: number;
  /** Their wacids (or message senders), for the log line. */
  ids: string[];
}

export interface WebhookErrorItem {
  phoneNumberId: string;
  code?: number;
  message?: string;
  details?: string;
}

/** Parses a verified webhook body. Throws MalformedWebhookError when it is not a WhatsApp Business envelope at all. */
export function parseWebhook(body: unknown): ParseResult {
  if (!isObj(body) || body.object !== 'whatsapp_business_account' || !Array.isArray(body.entry)) {
    throw new MalformedWebhookError('not a whatsapp_business_account envelope with an entry array');
  }
  const events: CallingEvent[] = [];
  const errors: WebhookErrorItem[] = [];
  const malformed: MalformedChange[] = [];
  const notices: AccountNotice[] = [];
  let ignored = 0;
  /** One entry per change and reason, however many of its items were unusable. */
  const unusable = (field: string, reason: MalformedChange['reason'], item: unknown): void => {
    let m = malformed.find((x) => x.field === field && x.reason === reason);
    if (!m) malformed.push(m = { field, reason, items: 0, ids: [] });
    m.items++;
    const id = isObj(item) ? str(item.id) ?? str(item.from) : undefined;
    if (id !== undefined && m.ids.length < 10) m.ids.push(id);
  };
  for (const entry of body.entry) {
    for (const change of arr(isObj(entry) ? entry.changes : undefined)) {
      if (!isObj(change) || !isObj(change.value)) { ignored++; continue; }
      const value = change.value;
      const meta = isObj(value.metadata) ? value.metadata : {};
      const phoneNumberId = str(meta.phone_number_id) ?? '';
      const displayNumber = str(meta.display_phone_number) ?? '';
      const base = { phoneNumberId, displayNumber };
      if (!phoneNumberId && (change.field === 'calls' || change.field === 'messages')) {
        const items = change.field === 'calls' ? [...arr(value.calls), ...arr(value.statuses)] : arr(value.messages);
        if (items.length > 0) {
          const ids = items.map((i) => (isObj(i) ? str(i.id) ?? str(i.from) : undefined)).filter((id): id is string => id !== undefined);
          malformed.push({ field: change.field, reason: 'no_phone_number_id', items: items.length, ids });
          continue;
        }
      }
      if (change.field === 'calls') {
        const contacts = arr(value.contacts).filter(isObj);
        const errorCodes = arr(value.errors).filter(isObj).map((e) => num(e.code)).filter((c): c is number => c !== undefined);
        if (arr(value.calls).length === 0 && arr(value.statuses).length === 0) {
          for (const e of arr(value.errors).filter(isObj)) {
            errors.push({ phoneNumberId, code: num(e.code), message: str(e.message) ?? str(e.title), details: isObj(e.error_data) ? str(e.error_data.details) : undefined });
          }
        }
        for (const call of arr(value.calls)) {
          const ev = isObj(call) ? parseCall(call, base, contacts, errorCodes) : undefined;
          if (ev) events.push(ev); else unusable(change.field, 'unusable_call', call);
        }
        for (const st of arr(value.statuses)) {
          const ev = isObj(st) ? parseStatus(st, base) : undefined;
          if (ev) events.push(ev);
          else if (isObj(st) && st.type !== undefined && String(st.type).toLowerCase() !== 'call') ignored++; // a message's status
          else unusable(change.field, 'unusable_status', st);
        }
      } else if (change.field === 'messages') {
        for (const msg of arr(value.messages)) {
          const ev = isObj(msg) ? parsePermissionReply(msg, base) : undefined;
          if (ev) events.push(ev);
          else if (isPermissionReply(msg)) unusable(change.field, 'unusable_permission_reply', msg);
          else ignored++; // an ordinary message: not this gateway's to handle
        }
      } else if (change.field === 'account_update' || change.field === 'account_settings_update') {
        notices.push(parseNotice(change.field, value));
      } else {
        ignored++;
      }
    }
  }
  return { events, ignored, errors, malformed, notices };
}

/** The shapes are only partly documented (§1.7): the known keys are read wherever they sit, the rest is left. */
function parseNotice(field: AccountNotice['field'], value: Obj): AccountNotice {
  const details: Record<string, string> = {};
  const put = (key: string, v: unknown): void => {
    const s = str(v) ?? (typeof v === 'number' ? String(v) : undefined);
    if (s !== undefined) details[key] = s;
  };
  if (field === 'account_update') {
    const violation = isObj(value.violation_info) ? value.violation_info : value;
    const restriction = isObj(value.restriction_info) ? value.restriction_info : value;
    put('violationType', violation.violation_type);
    put('restrictionType', restriction.restriction_type);
    put('expiration', restriction.expiration);
    return { field, kind: str(value.event) ?? 'unknown', details };
  }
  const settings = isObj(value.phone_number_settings) ? value.phone_number_settings : {};
  const calling = isObj(settings.calling) ? settings.calling : {};
  put('phoneNumberId', settings.phone_number_id ?? (isObj(value.metadata) ? value.metadata.phone_number_id : undefined));
  put('status', calling.status);
  put('srtpKeyExchangeProtocol', calling.srtp_key_exchange_protocol);
  put('sipStatus', isObj(calling.sip) ? calling.sip.status : undefined);
  put('callIconVisibility', calling.call_icon_visibility);
  return { field, kind: str(value.type) ?? 'unknown', details };
}

function parseCall(call: Obj, base: Omit<Base, 'timestamp'>, contacts: Obj[], errorCodes: number[]): CallingEvent | undefined {
  const callId = str(call.id);
  const event = str(call.event)?.toLowerCase();
  const timestamp = num(call.timestamp) ?? Math.floor(Date.now() / 1000);
  if (!callId || !event) return undefined;
  const bizOpaque = str(call.biz_opaque_callback_data);
  if (event === 'connect') {
    const session = isObj(call.session) ? call.session : undefined;
    const legacy = isObj(call.connection) && isObj(call.connection.webrtc) ? call.connection.webrtc : undefined;
    const sdp = str(session?.sdp) ?? str(legacy?.sdp);
    const declared = str(session?.sdp_type)?.toLowerCase();
    const dirRaw = str(call.direction)?.toUpperCase();
    // Meta's step-by-step sample omits direction: an offer can only come from a user-initiated call.
    const direction = dirRaw === 'BUSINESS_INITIATED' || (!dirRaw && declared === 'answer') ? 'BUSINESS_INITIATED' : 'USER_INITIATED';
    const sdpType = declared === 'answer' || declared === 'offer' ? declared : direction === 'USER_INITIATED' ? 'offer' : 'answer';
    // A user's call without an offer is still ringing their phone: it goes on with an empty SDP, which the flow
    // refuses as unanswerable (Graph reject, record). A business-initiated one without an answer carries nothing.
    if (!sdp && direction !== 'USER_INITIATED') return undefined;
    const from = str(call.from) ?? '';
    const to = str(call.to) ?? '';
    const userWaId = direction === 'USER_INITIATED' ? from : to;
    const contact = contacts.find((c) => c.wa_id === userWaId) ?? contacts[0];
    const profile = contact && isObj(contact.profile) ? contact.profile : undefined;
    return {
      kind: 'connect', ...base, timestamp, callId, direction, from, to, sdpType, sdp: sdp ?? '',
      // `from` may be "" (number not shareable, §1.2): then the contact's wa_id, else the business-scoped user id.
      profileName: str(profile?.name),
      userWaId: userWaId || str(contact?.wa_id) || str(direction === 'USER_INITIATED' ? call.from_user_id : call.to_user_id) || str(contact?.user_id),
      ctaPayload: str(call.cta_payload), deeplinkPayload: str(call.deeplink_payload), bizOpaque,
    };
  }
  if (event === 'terminate') {
    return {
      kind: 'terminate', ...base, timestamp, callId, direction: str(call.direction),
      status: (str(call.status) ?? '').toUpperCase(), startTime: num(call.start_time), endTime: num(call.end_time),
      duration: num(call.duration), bizOpaque, errorCodes,
    };
  }
  return undefined;
}

function parseStatus(st: Obj, base: Omit<Base, 'timestamp'>): StatusEvent | undefined {
  const callId = str(st.id);
  const status = str(st.status)?.toUpperCase();
  if (!callId || (st.type !== undefined && String(st.type).toLowerCase() !== 'call')) return undefined;
  if (status !== 'RINGING' && status !== 'ACCEPTED' && status !== 'REJECTED') return undefined;
  return {
    kind: 'status', ...base, timestamp: num(st.timestamp) ?? Math.floor(Date.now() / 1000), callId, status,
    recipientId: str(st.recipient_id), bizOpaque: str(st.biz_opaque_callback_data),
  };
}

function isPermissionReply(msg: unknown): msg is Obj & { interactive: Obj & { call_permission_reply: Obj } } {
  return isObj(msg) && isObj(msg.interactive) && msg.interactive.type === 'call_permission_reply' && isObj(msg.interactive.call_permission_reply);
}

function parsePermissionReply(msg: Obj, base: Omit<Base, 'timestamp'>): PermissionReplyEvent | undefined {
  if (!isPermissionReply(msg)) return undefined;
  const reply = msg.interactive.call_permission_reply;
  const response = str(reply.response);
  const userWaId = str(msg.from);
  if (!userWaId || (response !== 'accept' && response !== 'reject')) return undefined;
  return {
    kind: 'permission_reply', ...base, timestamp: num(msg.timestamp) ?? Math.floor(Date.now() / 1000), messageId: str(msg.id), userWaId, response,
    isPermanent: reply.is_permanent === true, expiresAt: num(reply.expiration_timestamp), source: str(reply.response_source),
    contextId: isObj(msg.context) ? str(msg.context.id) : undefined,
  };
}

/** The deduplication key of §6.1: one per (wacid, event or status). */
export function dedupeKey(ev: CallingEvent): string {
  switch (ev.kind) {
    case 'connect': return `${ev.callId}:connect`;
    case 'terminate': return `${ev.callId}:terminate`;
    case 'status': return `${ev.callId}:status:${ev.status}`;
    // The wamid with the business number: one user may answer two business numbers within the same second.
    case 'permission_reply': return ev.messageId !== undefined
      ? `${ev.phoneNumberId}:perm:${ev.messageId}`
      : `${ev.phoneNumberId}:${ev.userWaId}:perm:${ev.timestamp}:${ev.response}`;
  }
}
