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

/**
 * Wall-clock time in ms with the monotonic clock's sub-millisecond resolution, for RTCP's NTP times: an RTT is our
 * receive time minus our SR's time minus the peer's hold (DLSR, measured to 1/65536 s), and with Date.now()'s whole
 * milliseconds a sub-millisecond round trip comes out negative about half the time and is thrown away.
 */
export function preciseUnixMs(): number {
  return performance.timeOrigin + performance.now();
}

/**
 * Copies `length` elements without allocating: `dst.set(src.subarray(…))` makes a view object per call, and per
 * packet those views are a good share of what the young generation has to collect.
 */
export function copyInto<T extends Uint8Array | Int16Array>(dst: T, dstOffset: number, src: T, srcOffset: number, length: number): void {
  for (let i = 0; i < length; i++) dst[dstOffset + i] = src[srcOffset + i]!;
}
