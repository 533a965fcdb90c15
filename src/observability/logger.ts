import { pino, type Logger, type DestinationStream } from 'pino';
import { redactSdesKeys } from '../media/sdes-redact.js';

export type { Logger } from 'pino';

/**
 * Paths a secret or personal payload could travel under. Redacted as a second line of defence: the code never passes
 * a secret to the logger, but a request or config object logged whole would.
 */
const REDACT = [
  'authorization', 'headers.authorization', '*.authorization', 'token', '*.token', 'appSecret', '*.appSecret',
  'secret', '*.secret', 'verifyToken', '*.verifyToken', 'graphToken', '*.graphToken', 'password', '*.password',
];

/**
 * SDES SDP (whatsapp-calling.md §4.5) carries SRTP master keys in `a=crypto` lines: SDP fields are logged with the key
 * material replaced, so SDP stays loggable at debug level. `offer` / `answer` hold SDP where both sides are logged.
 */
export function maskSdpKeys(sdp: unknown): unknown {
  return typeof sdp === 'string' ? redactSdesKeys(sdp) : sdp;
}

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino({
    level, base: { svc: 'wa-sip-gateway' }, redact: { paths: REDACT, censor: '[redacted]' },
    serializers: { sdp: maskSdpKeys, offer: maskSdpKeys, answer: maskSdpKeys },
  }, destination);
}
