/**
 * SDES SDP carries SRTP master keys in `a=crypto` lines (whatsapp-calling.md §4.5), secret for as long as the call
 * lasts, and SDP reaches logs (debug) and error messages. One rule for both, kept free of imports so the logger can
 * use it too.
 */

/** Base64 long enough to be key material (the shortest usable key ‖ salt is 28 bytes, 40 characters). */
const KEY_LIKE = /[A-Za-z0-9+/]{16,}={0,2}/g;

/**
 * `text` (a whole SDP or one line) with the key material of every `a=crypto` line replaced by `[redacted]`: what
 * follows `inline:`, and any key-like base64 elsewhere on the line, since a malformed line (the one an error message
 * quotes) may carry its key where a well-formed one would not. Tag, suite, lifetime and MKI stay readable.
 */
export function redactSdesKeys(text: string): string {
  if (!text.includes('a=crypto:')) return text;
  return text.replace(/^a=crypto:.*$/gm, (line) =>
    line.replace(/inline:[^\s|;]*/g, 'inline:[redacted]').replace(KEY_LIKE, '[redacted]'));
}
