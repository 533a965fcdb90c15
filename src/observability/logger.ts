import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger } from 'pino';

/**
 * Paths a secret or personal payload could travel under. Redacted as a second line of defence: the code never passes
 * a secret to the logger, but a request or config object logged whole would.
 */
const REDACT = [
  'authorization', 'headers.authorization', '*.authorization', 'token', '*.token', 'appSecret', '*.appSecret',
  'secret', '*.secret', 'verifyToken', '*.verifyToken', 'graphToken', '*.graphToken', 'password', '*.password',
];

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino({ level, base: { svc: 'wa-sip-gateway' }, redact: { paths: REDACT, censor: '[redacted]' } }, destination);
}
