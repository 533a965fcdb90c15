/** Shared media-plane types. The logger is the subset of pino the media code uses, so tests can pass a stub. */

export interface MediaLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export const silentLogger: MediaLogger = { debug() {}, info() {}, warn() {}, error() {} };

/** Monotonic milliseconds: media timeouts must not jump with the wall clock. */
export function monoNow(): number {
  return performance.now();
}
