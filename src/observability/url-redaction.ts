/**
 * URLs as log and error lines may show them: tokens and passwords hide in a URL's user info, query and fragment
 * (a database URL's password, a streaming endpoint's access token).
 */

const URL_LIKE = /^([a-z][a-z0-9+.-]*):\/\//i;

/** Whether a string looks like an absolute URL (scheme://…). */
export const looksLikeUrl = (text: string): boolean => URL_LIKE.test(text);

/** scheme://host of a URL, '…' marking that something (user info, path, query) was left out; never a password. */
export function redactUrl(text: string): string {
  try {
    const u = new URL(text);
    if (u.host) {
      const bare = `${u.protocol}//${u.host}`;
      return text === bare || text === `${bare}/` ? text : `${bare}…`;
    }
  } catch {
    // Not parseable: the scheme alone.
  }
  const scheme = URL_LIKE.exec(text)?.[1];
  return scheme ? `${scheme}://…` : '(not shown: may hold a secret)';
}

/** The URL without user info, query or fragment (scheme, host and path, '…' marking the cut); unchanged without them. */
export function urlForLog(text: string): string {
  try {
    const u = new URL(text);
    return u.username || u.password || u.search || u.hash ? `${u.protocol}//${u.host}${u.pathname}…` : text;
  } catch {
    return /^[^/]*\/\/[^/]*@/.test(text) ? redactUrl(text) : text;
  }
}
