import { createRequire } from 'node:module';

/**
 * A package as werift's own code resolves it (its tweetnacl, its @fidm/x509): the copy werift calls, which the
 * gateway patches (native-x25519.ts, werift-dtls-keys.ts), whatever version the project itself may install.
 */
export function requireFromWerift(id: string): unknown {
  return createRequire(createRequire(import.meta.url).resolve('werift'))(id);
}
