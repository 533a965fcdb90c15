import type { NumberRule } from '../config/pbx-trunk-schema.js';
import { sourceAllowed } from './source-allow-list.js';

/**
 * Which business number places a PBX-originated call (issue 5: "per trunk, prefix or header"). Evaluated in this
 * order, the first that applies wins:
 *   1. the X-WA-Phone-Number-Id header of the INVITE (it must name a configured number, and when rules tie this trunk
 *      (its source or digest username) to numbers, one of their tenant: a tenant's PBX never places calls from, and
 *      bills, another tenant's number);
 *   2. businessCalls.numberRules, in list order: a rule applies when all its conditions hold (source address/CIDR,
 *      digest username, calling-party prefix, dialled prefix);
 *   3. businessCalls.defaultPhoneNumberId;
 *   4. the only configured number, when there is exactly one.
 */

export interface NumberChoiceInput {
  /** X-WA-Phone-Number-Id, if any. */
  header?: string;
  /** Source address of the INVITE. */
  source: string;
  /** The digest username the INVITE authenticated as, if it did. */
  username?: string;
  /** User part of the From URI (the calling party). */
  callingUser: string;
  /** User part of the Request-URI (the dialled number). */
  dialedUser: string;
}

export type NumberChoice =
  | { phoneNumberId: string; via: 'header' | 'rule' | 'default' | 'only'; rule?: number; dialedUser: string }
  | { error: string; reason: 'unknown_number' | 'no_business_number' | 'number_not_allowed' };

/** The user part of a sip:/sips: URI, percent-decoded ('' when there is none). */
export function uriUser(uri: string): string {
  const m = /^\s*<?sips?:([^@;?>]+)@/i.exec(uri);
  if (!m) return '';
  try {
    return decodeURIComponent(m[1]!);
  } catch {
    return '';
  }
}

/** Digits of a telephone-number user part: '+' and visual separators dropped. */
const digitsOf = (user: string): string => user.replace(/[\s().-]/g, '').replace(/^\+/, '');

function prefixMatches(user: string, prefix: string): boolean {
  const digits = digitsOf(user);
  return /^\d+$/.test(digits) && digits.startsWith(prefix.replace(/^\+/, ''));
}

/** The rule's conditions on who sends the INVITE (source, digest username) hold: it names this trunk. */
function trunkMatches(rule: NumberRule, input: NumberChoiceInput): boolean {
  if (rule.source !== undefined && !sourceAllowed(input.source, [rule.source])) return false;
  return rule.username === undefined || rule.username === input.username;
}

function ruleMatches(rule: NumberRule, input: NumberChoiceInput): boolean {
  if (!trunkMatches(rule, input)) return false;
  if (rule.callingPrefix !== undefined && !prefixMatches(input.callingUser, rule.callingPrefix)) return false;
  if (rule.dialedPrefix !== undefined && !prefixMatches(input.dialedUser, rule.dialedPrefix)) return false;
  return true;
}

export function chooseBusinessNumber(
  input: NumberChoiceInput,
  cfg: { numberRules: readonly NumberRule[]; defaultPhoneNumberId: string },
  configured: readonly { phoneNumberId: string; tenant?: string }[],
): NumberChoice {
  const known = (id: string): boolean => configured.some((n) => n.phoneNumberId === id);
  const tenantOf = (id: string): string | undefined => configured.find((n) => n.phoneNumberId === id)?.tenant;
  const requested = input.header?.trim();
  if (requested) {
    if (!known(requested)) return { error: 'X-WA-Phone-Number-Id names a number not configured here', reason: 'unknown_number' };
    // Rules that only say "this trunk" (no source or username) bind nobody; trunk-bound rules bind to their tenants.
    const bound = cfg.numberRules.filter((r) => (r.source !== undefined || r.username !== undefined) && trunkMatches(r, input));
    if (bound.length > 0 && !bound.some((r) => tenantOf(r.phoneNumberId) === tenantOf(requested))) {
      return { error: 'X-WA-Phone-Number-Id names a number of another tenant than this trunk\'s', reason: 'number_not_allowed' };
    }
    return { phoneNumberId: requested, via: 'header', dialedUser: input.dialedUser };
  }
  for (const [i, rule] of cfg.numberRules.entries()) {
    if (!ruleMatches(rule, input)) continue;
    if (!known(rule.phoneNumberId)) return { error: `businessCalls.numberRules[${i}] names a number not configured here`, reason: 'unknown_number' };
    const dialedUser = rule.stripDialedPrefix && rule.dialedPrefix !== undefined
      ? digitsOf(input.dialedUser).slice(rule.dialedPrefix.replace(/^\+/, '').length)
      : input.dialedUser;
    return { phoneNumberId: rule.phoneNumberId, via: 'rule', rule: i, dialedUser };
  }
  if (cfg.defaultPhoneNumberId) {
    return known(cfg.defaultPhoneNumberId)
      ? { phoneNumberId: cfg.defaultPhoneNumberId, via: 'default', dialedUser: input.dialedUser }
      : { error: 'businessCalls.defaultPhoneNumberId names a number not configured here', reason: 'no_business_number' };
  }
  if (configured.length === 1) return { phoneNumberId: configured[0]!.phoneNumberId, via: 'only', dialedUser: input.dialedUser };
  return { error: 'No business number configured for SIP-originated calls', reason: 'no_business_number' };
}
