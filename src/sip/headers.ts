/**
 * WhatsApp call context carried to the SIP side as X-WA-* headers plus a From display name.
 *
 * Every value that reaches a SIP header comes from outside (WhatsApp profile names, CTA and deeplink
 * payloads chosen by whoever built the link), so everything is sanitised here: no CR/LF/NUL or other
 * control characters (header injection), bounded length, quoted-string escaping for display names.
 */

export const WA_HEADERS = {
  callId: 'X-WA-Call-Id',
  phoneNumberId: 'X-WA-Phone-Number-Id',
  userName: 'X-WA-User-Name',
  ctaPayload: 'X-WA-CTA-Payload',
  deeplinkPayload: 'X-WA-Deeplink-Payload',
  user: 'X-WA-User',
} as const;

export type WaHeaderName = (typeof WA_HEADERS)[keyof typeof WA_HEADERS];

export interface WaCallContext {
  /** WhatsApp call id (wacid.…). */
  callId: string;
  /** Business phone number id the call came in on. */
  phoneNumberId: string;
  /** Caller's wa_id (digits). */
  waId: string;
  /** Caller's profile name, if WhatsApp gave one. */
  userName?: string;
  /** Payload of a call-to-action button that started the call. */
  ctaPayload?: string;
  /** Payload of a deeplink that started the call. */
  deeplinkPayload?: string;
}

export interface SipFromIdentity {
  /** SIP user part, normally E.164 with the leading "+", e.g. +16315553602. */
  user: string;
  /** Display name (unescaped; formatFromHeader escapes it). */
  displayName?: string;
}

export interface WaSipContext {
  /** X-WA-* headers (only those with a value). */
  headers: Partial<Record<WaHeaderName, string>>;
  /** From identity (E.164 of the WhatsApp user, display name = profile name). */
  from: SipFromIdentity;
}

/** Maximum lengths (in characters) of sanitised values. */
export const HEADER_VALUE_MAX = 256;
export const PAYLOAD_VALUE_MAX = 512;
export const DISPLAY_NAME_MAX = 64;

// C0 controls (includes CR, LF, NUL, TAB), DEL, C1 controls, and Unicode line/paragraph separators.
// eslint-disable-next-line no-control-regex
const CONTROL_RE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g;

/** Truncate to at most `max` code points without splitting a surrogate pair. */
function truncate(value: string, max: number): string {
  const cps = Array.from(value);
  return cps.length <= max ? value : cps.slice(0, max).join('');
}

/**
 * Make an arbitrary string safe as a SIP header value: control characters (CR, LF, NUL, TAB, …)
 * become single spaces, runs of whitespace collapse, the result is trimmed and truncated.
 * Lone UTF-16 surrogates are dropped (they cannot be encoded as UTF-8).
 */
export function sanitizeHeaderValue(value: string, max: number = HEADER_VALUE_MAX): string {
  const s = String(value)
    .replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '')
    .replace(CONTROL_RE, ' ')
    .replace(/ {2,}/g, ' ')
    .trim();
  return truncate(s, max).trim();
}

/**
 * Sanitise a display name and escape it for use inside a SIP quoted-string (RFC 3261 §25.1):
 * backslash and double quote are backslash-escaped. Returns the inner text (without the quotes).
 */
export function escapeDisplayName(name: string, max: number = DISPLAY_NAME_MAX): string {
  const clean = sanitizeHeaderValue(name, max);
  return clean.replace(/[\\"]/g, (c) => `\\${c}`);
}

const SIP_USER_RE = /^\+?[0-9A-Za-z._\-*#]{1,64}$/;
const HEADER_NAME_RE = /^[A-Za-z0-9!%*+\-.^_`|~]{1,64}$/;
const HOST_RE = /^[A-Za-z0-9.\-]{1,253}$|^\[[0-9A-Fa-f:.]+\]$/;

export class SipHeaderError extends Error {
  override readonly name = 'SipHeaderError';
}

/** Validate a SIP user part (E.164 like +16315553602, or a plain token). Throws SipHeaderError. */
export function assertSipUser(user: string): string {
  if (typeof user !== 'string' || !SIP_USER_RE.test(user)) {
    throw new SipHeaderError(`invalid SIP user part: ${JSON.stringify(String(user).slice(0, 80))}`);
  }
  return user;
}

/** Validate a header name (RFC 3261 token). Throws SipHeaderError. */
export function assertHeaderName(name: string): string {
  if (typeof name !== 'string' || !HEADER_NAME_RE.test(name)) {
    throw new SipHeaderError(`invalid SIP header name: ${JSON.stringify(String(name).slice(0, 80))}`);
  }
  return name;
}

/** Header names the SIP stack owns; callers must not set them through `headers`. */
const RESERVED_HEADERS = new Set(['via', 'call-id', 'cseq', 'content-length', 'max-forwards', 'route', 'record-route', 'to', 'from', 'contact']);

/**
 * Validate names and sanitise values of caller-supplied extra headers. Throws SipHeaderError on a bad
 * name or on a reserved header (From/To/Call-ID/…); values are cleaned with sanitizeHeaderValue.
 * Empty and undefined values are dropped.
 */
export function sanitizeExtraHeaders(
  headers: Readonly<Record<string, string | undefined>> | undefined,
  max: number = PAYLOAD_VALUE_MAX,
): Record<string, string> {
  const out: Record<string, string> = {};
  if (!headers) return out;
  for (const [name, value] of Object.entries(headers)) {
    assertHeaderName(name);
    if (value === undefined) continue;
    if (RESERVED_HEADERS.has(name.toLowerCase())) throw new SipHeaderError(`header ${name} is set by the SIP stack`);
    const v = sanitizeHeaderValue(value, max);
    if (v.length > 0) out[name] = v;
  }
  return out;
}

/**
 * From header value: `"Display" <sip:user@host>` (or `<sip:user@host>` without a name). The default host
 * "localhost" is replaced by drachtio-server with its own SIP address.
 */
export function formatFromHeader(from: SipFromIdentity, host = 'localhost'): string {
  assertSipUser(from.user);
  if (!HOST_RE.test(host)) throw new SipHeaderError(`invalid SIP host: ${JSON.stringify(host.slice(0, 80))}`);
  const uri = `<sip:${from.user}@${host}>`;
  const name = from.displayName === undefined ? '' : escapeDisplayName(from.displayName);
  return name.length > 0 ? `"${name}" ${uri}` : uri;
}

/** wa_id → E.164 ("16315553602" → "+16315553602"). Throws SipHeaderError when it is not digits. */
export function waIdToE164(waId: string): string {
  const digits = String(waId).trim().replace(/^\+/, '');
  if (!/^[0-9]{6,15}$/.test(digits)) throw new SipHeaderError(`invalid wa_id: ${JSON.stringify(String(waId).slice(0, 40))}`);
  return `+${digits}`;
}

/** RFC 3323's user part for a caller who cannot be named. */
export const ANONYMOUS_USER = 'anonymous';

/**
 * The From user part for a WhatsApp user: E.164 for a phone-number wa_id; Meta may also send `from: ""` (number not
 * shareable) or a business-scoped id such as "LB.946…" (whatsapp-calling.md §1.2), which is kept when it is a
 * valid SIP user token and otherwise becomes "anonymous". Never throws: the call must still ring the agent.
 */
export function callerUser(waId: string): string {
  try {
    return waIdToE164(waId);
  } catch {
    const id = sanitizeHeaderValue(String(waId ?? ''), 64);
    return SIP_USER_RE.test(id) && !id.startsWith('+') ? id : ANONYMOUS_USER;
  }
}

/**
 * Turn a WhatsApp call context into the X-WA-* headers and the From identity for the SIP INVITE.
 * Values are sanitised; optional fields that are absent or empty after sanitising are omitted. Never throws on the
 * caller id (see callerUser).
 */
export function waContextToSip(ctx: WaCallContext): WaSipContext {
  const headers: Partial<Record<WaHeaderName, string>> = {};
  const put = (name: WaHeaderName, value: string | undefined, max: number): void => {
    if (value === undefined || value === null) return;
    const v = sanitizeHeaderValue(value, max);
    if (v.length > 0) headers[name] = v;
  };
  const user = callerUser(ctx.waId);
  put(WA_HEADERS.callId, ctx.callId, HEADER_VALUE_MAX);
  put(WA_HEADERS.phoneNumberId, ctx.phoneNumberId, HEADER_VALUE_MAX);
  if (user !== ANONYMOUS_USER) put(WA_HEADERS.user, user.replace(/^\+/, ''), 64);
  put(WA_HEADERS.userName, ctx.userName, DISPLAY_NAME_MAX);
  put(WA_HEADERS.ctaPayload, ctx.ctaPayload, PAYLOAD_VALUE_MAX);
  put(WA_HEADERS.deeplinkPayload, ctx.deeplinkPayload, PAYLOAD_VALUE_MAX);
  const from: SipFromIdentity = { user };
  const display = ctx.userName === undefined ? '' : sanitizeHeaderValue(ctx.userName, DISPLAY_NAME_MAX);
  if (display.length > 0) from.displayName = display;
  return { headers, from };
}

/** RFC 3326 Reason header value, e.g. `SIP;cause=486;text="Busy Here"` or `Q.850;cause=16;text="Normal call clearing"`. */
export function formatReasonHeader(protocol: 'SIP' | 'Q.850', cause: number, text?: string): string {
  if (!Number.isInteger(cause) || cause < 0 || cause > 999) throw new SipHeaderError(`invalid Reason cause ${cause}`);
  const t = text === undefined ? '' : escapeDisplayName(text, 128);
  return t.length > 0 ? `${protocol};cause=${cause};text="${t}"` : `${protocol};cause=${cause}`;
}

/** Parse a Reason header value into its parts (best effort; undefined when unparseable). */
export function parseReasonHeader(value: string | undefined): { protocol: string; cause?: number; text?: string } | undefined {
  if (!value) return undefined;
  const m = /^\s*([A-Za-z0-9.\-]+)\s*(.*)$/.exec(value);
  if (!m) return undefined;
  const out: { protocol: string; cause?: number; text?: string } = { protocol: m[1] ?? '' };
  const params = m[2] ?? '';
  const cause = /;\s*cause\s*=\s*(\d+)/i.exec(params);
  if (cause) out.cause = Number(cause[1]);
  const text = /;\s*text\s*=\s*"((?:[^"\\]|\\.)*)"/i.exec(params);
  if (text) out.text = (text[1] ?? '').replace(/\\(.)/g, '$1');
  return out;
}

/** The host of a sip:/sips: URI, lower-case (an IPv6 reference keeps its brackets); undefined when there is none. */
export function uriHost(uri: string): string | undefined {
  return /^sips?:(?:[^@]*@)?(\[[^\]]+\]|[^;:?>]+)/i.exec(uri)?.[1]?.toLowerCase();
}

/**
 * Allow (RFC 3261 §20.5) on our INVITE, 1xx and 2xx: the methods our dialogs answer. A PBX sends an UPDATE, before the
 * answer too, only to a peer that lists it (RFC 3311 §5.1). Not NOTIFY, PRACK or MESSAGE: we subscribe to nothing,
 * send no reliable 1xx and take no messages (drachtio-srf would just answer them 200).
 */
export const ALLOW = 'INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, REFER';
