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

/**
 * SDES SDP (whatsapp-calling.md §4.5) carries SRTP master keys in `a=crypto` lines: any `sdp` field is logged with
 * the key material replaced, so SDP stays loggable at debug level.
 */
export function maskSdpKeys(sdp: unknown): unknown {
  return typeof sdp === 'string' ? sdp.replace(/^(a=crypto:\S*\s+\S+\s+)\S+/gm, '$1[redacted]') : sdp;
}

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino({
    level, base: { svc: 'wa-sip-gateway' }, redact: { paths: REDACT, censor: '[redacted]' },
    serializers: { sdp: maskSdpKeys },
  }, destination);
}
