/**
 * Refer-To (RFC 3515 §2.1) split into the URI to INVITE and the headers embedded in it (RFC 3261 §19.1.5:
 * `sip:agent2@pbx?Replaces=abc%40pbx%3Bto-tag%3D1%3Bfrom-tag%3D2&Require=replaces`). Embedded header names and
 * values are percent-decoded exactly once here, so `%253B` stays the literal text `%3B` and nobody downstream
 * decodes again. Pure functions, no SIP stack.
 */

export interface EmbeddedHeader {
  /** Decoded header name as written (case kept). */
  name: string;
  /** Decoded header value. */
  value: string;
}

export type ReferToParse =
  | { ok: true; /** The Refer-To URI without its `?headers` part (URI parameters kept). */ uri: string; headers: EmbeddedHeader[] }
  | { ok: false; reason: string };

/** Percent-decoding of one URI component; undefined when an escape is malformed (`%G1`, `%E2%82`). */
function decodeOnce(s: string): string | undefined {
  try {
    return decodeURIComponent(s);
  } catch {
    return undefined;
  }
}

/**
 * Parses a Refer-To header value: name-addr (`"Bob" <sip:...?...>;param`) or addr-spec (`sip:...;param`). In the
 * addr-spec form `;` starts header parameters (RFC 3261 §20), so the URI ends there; embedded headers need the
 * angle brackets. Header values are taken up to the next `&` (a literal `;`, `=` or `@` in them is tolerated: some
 * UAs do not escape Replaces), then decoded once.
 */
export function parseReferTo(referTo: string): ReferToParse {
  const raw = referTo.trim();
  const bracketed = /<([^>]*)>/.exec(raw);
  const full = (bracketed ? bracketed[1] : raw.split(';')[0])?.trim() ?? '';
  const q = full.indexOf('?');
  const uri = (q < 0 ? full : full.slice(0, q)).trim();
  const headers: EmbeddedHeader[] = [];
  if (q >= 0) {
    for (const part of full.slice(q + 1).split('&')) {
      if (part === '') continue;
      const eq = part.indexOf('=');
      const name = decodeOnce(eq < 0 ? part : part.slice(0, eq));
      const value = eq < 0 ? '' : decodeOnce(part.slice(eq + 1));
      if (name === undefined || value === undefined) return { ok: false, reason: `bad percent-encoding in Refer-To header ${JSON.stringify(part.slice(0, 80))}` };
      if (!/^[A-Za-z0-9!%*+\-.^_`|~]{1,64}$/.test(name)) return { ok: false, reason: `bad header name in Refer-To: ${JSON.stringify(name.slice(0, 80))}` };
      // eslint-disable-next-line no-control-regex
      if (/[\u0000-\u001f\u007f]/.test(value)) return { ok: false, reason: `control characters in Refer-To header ${name}` };
      headers.push({ name, value: value.trim() });
    }
  }
  return { ok: true, uri, headers };
}

export interface ReplacesValue {
  callId: string;
  toTag: string;
  fromTag: string;
  earlyOnly: boolean;
}

const TOKEN = /^[A-Za-z0-9\-.!%*_+`'~]+$/;
// RFC 3261 callid = word ["@" word]; word also allows ( ) < > : \ " / [ ] ? { }
const WORD = /^[A-Za-z0-9\-.!%*_+`'~()<>:\\"/[\]?{}]+$/;

/**
 * RFC 3891 §6.1: `Replaces: callid;to-tag=x;from-tag=y[;early-only][;generic-param]`, exactly one to-tag and one
 * from-tag. Returns the parts, or a reason it is malformed.
 */
export function parseReplaces(value: string): { ok: true; value: ReplacesValue } | { ok: false; reason: string } {
  const [callIdRaw, ...params] = value.split(';');
  const callId = (callIdRaw ?? '').trim();
  const words = callId.split('@');
  if (callId === '' || words.length > 2 || !words.every((w) => w !== '' && WORD.test(w))) {
    return { ok: false, reason: `Replaces has no valid Call-ID: ${JSON.stringify(callId.slice(0, 80))}` };
  }
  const tags: Record<'to-tag' | 'from-tag', string[]> = { 'to-tag': [], 'from-tag': [] };
  let earlyOnly = false;
  for (const p of params) {
    const eq = p.indexOf('=');
    const name = (eq < 0 ? p : p.slice(0, eq)).trim().toLowerCase();
    const v = eq < 0 ? undefined : p.slice(eq + 1).trim();
    if (!TOKEN.test(name)) return { ok: false, reason: `Replaces has a malformed parameter ${JSON.stringify(p.slice(0, 40))}` };
    if (name === 'to-tag' || name === 'from-tag') {
      if (v === undefined || !TOKEN.test(v)) return { ok: false, reason: `Replaces ${name} is not a token` };
      tags[name].push(v);
    } else if (name === 'early-only') {
      earlyOnly = true;
    }
  }
  if (tags['to-tag'].length !== 1 || tags['from-tag'].length !== 1) {
    return { ok: false, reason: 'Replaces needs exactly one to-tag and one from-tag' };
  }
  return { ok: true, value: { callId, toTag: tags['to-tag'][0]!, fromTag: tags['from-tag'][0]!, earlyOnly } };
}
