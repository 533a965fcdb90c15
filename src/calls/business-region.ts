/**
 * Where business-initiated calling (and the permission features) is unavailable: whatsapp-calling.md §3.4 says
 * "everywhere except business numbers from the USA, Canada, Egypt, Vietnam and Nigeria", and the business number's
 * country is what counts. `businessCalls.blockedCountryCodes` lists country calling codes; each entry is a plain
 * prefix of the E.164 digits, except '1': that code is the whole North American Numbering Plan, shared by the USA,
 * Canada and 18 Caribbean and Atlantic countries and territories that Meta does not exclude, so it is narrowed by
 * area code.
 */

/**
 * NANP area codes (digits 2-4 after the '1') of countries other than the USA and Canada. Everything else under +1 is
 * treated as the USA or Canada, including codes not listed here (unassigned, non-geographic and toll-free such as
 * 800/888, whose country cannot be told from the number).
 *
 * UNSURE: US territories (Puerto Rico 787/939, US Virgin Islands 340, Guam 671, Northern Mariana Islands 670,
 * American Samoa 684) are deliberately NOT listed: §3.4 does not say whether Meta counts them as the USA. Treating them
 * as the USA (blocked) is the conservative reading; a Graph 138013 would tell otherwise.
 */
const NANP_OUTSIDE_US_CA: ReadonlySet<string> = new Set([
  '242', // Bahamas
  '246', // Barbados
  '264', // Anguilla
  '268', // Antigua and Barbuda
  '284', // British Virgin Islands
  '345', // Cayman Islands
  '441', // Bermuda
  '473', // Grenada
  '649', // Turks and Caicos Islands
  '658', '876', // Jamaica
  '664', // Montserrat
  '721', // Sint Maarten
  '758', // Saint Lucia
  '767', // Dominica
  '784', // Saint Vincent and the Grenadines
  '809', '829', '849', // Dominican Republic
  '868', // Trinidad and Tobago
  '869', // Saint Kitts and Nevis
]);

/** True when the '1' entry covers this number: NANP, and its area code is not one of a non-US/Canada country. */
function nanpUsOrCanada(digits: string): boolean {
  return digits.startsWith('1') && !NANP_OUTSIDE_US_CA.has(digits.slice(1, 4));
}

/**
 * Whether a business number (E.164 digits, a leading '+' tolerated) may not place business-initiated calls or send
 * call permission requests, given `blockedCountryCodes`. Longer entries such as '1876' stay plain prefixes, so a
 * single NANP country can still be blocked on its own.
 */
export function businessNumberBlocked(displayNumber: string, blocked: readonly string[]): boolean {
  const digits = displayNumber.replace(/^\+/, '');
  return blocked.some((code) => (code === '1' ? nanpUsOrCanada(digits) : digits.startsWith(code)));
}

/** The refusal for a blocked business number, as the call paths give it (SIP 403 / HTTP 403, cause country_blocked). */
export const COUNTRY_BLOCKED_REFUSAL = {
  status: 403,
  text: 'Business-initiated calling not available in this country',
  cause: 'country_blocked',
} as const;
