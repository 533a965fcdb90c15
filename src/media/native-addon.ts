/**
 * The media addon (native/, built by `npm ci` through scripts/build-native.mjs): batched non-blocking UDP I/O for
 * the media tick (tick-socket.ts), a microsecond timer for the media clock (precise-timer.ts), SRTP crypto on
 * OpenSSL (srtp-native.ts) and libopus's FEC decoder (opus-fec-native.ts). Everything that uses it has a pure-Node
 * fallback, so a machine without a compiler, or not Linux, runs the gateway unchanged. Each part declares the
 * functions it uses in its own module and loads them with loadMediaAddon<ThatPart>().
 */
import { createRequire } from 'node:module';

export interface MediaAddon {
  recv(fd: number, area: Uint8Array, slotSize: number, maxPackets: number, meta: Int32Array, ages: Float64Array): number;
  timestamps(fd: number): number;
  sendBatch(area: Uint8Array, slotSize: number, meta: Int32Array, count: number): number;
  /** A one-shot timerfd watched by the event loop; a negative errno when the kernel has none. */
  timerCreate(callback: () => void): NativeTimerHandle | number;
  timerArm(timer: NativeTimerHandle, delayMicros: number): number;
  timerDisarm(timer: NativeTimerHandle): number;
  timerClose(timer: NativeTimerHandle): number;
}

/** Opaque: the native timer's memory, owned by the addon. */
export type NativeTimerHandle = { readonly __nativeTimer: unique symbol };

let addon: MediaAddon | null | undefined;

export function loadMediaAddon<T = MediaAddon>(): T | null {
  if (addon !== undefined) return addon as T | null;
  addon = null;
  if (process.platform !== 'linux') return addon;
  const require = createRequire(import.meta.url);
  // src/media (tsx) or dist/src/media (built): build/ is at the package root.
  for (const path of ['../../build/Release/udp_batch.node', '../../../build/Release/udp_batch.node']) {
    try {
      addon = require(path) as MediaAddon;
      break;
    } catch {
      // try the next location
    }
  }
  return addon as T | null;
}
