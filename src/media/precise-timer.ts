/**
 * A one-shot timer for the media clock. setTimeout counts whole milliseconds and libuv wakes on millisecond
 * boundaries, so a tick due at t runs at t + 1…2 ms, and every packet of that tick leaves that much later and less
 * evenly spaced. The addon's timerfd (native/media_timer.c) wakes the loop within microseconds of the deadline.
 * Without the addon it is setTimeout, as before.
 */
import { loadMediaAddon, type MediaAddon, type NativeTimerHandle } from './native-addon.js';

export interface OneShotTimer {
  /** 'timerfd' when the kernel wakes the loop at the deadline, 'setTimeout' for the millisecond fallback. */
  readonly kind: 'timerfd' | 'setTimeout';
  /** Runs the callback once, delayMs (fractions count) from now; replaces an expiry still pending. */
  arm(delayMs: number): void;
  disarm(): void;
  /** Frees the timer; it cannot be armed again. */
  close(): void;
}

class NativeTimer implements OneShotTimer {
  readonly kind = 'timerfd';
  constructor(
    private readonly lib: MediaAddon,
    private readonly handle: NativeTimerHandle,
  ) {}

  arm(delayMs: number): void {
    this.lib.timerArm(this.handle, Math.ceil(Math.max(0, delayMs) * 1000));
  }

  disarm(): void {
    this.lib.timerDisarm(this.handle);
  }

  close(): void {
    this.lib.timerClose(this.handle);
  }
}

class TimeoutTimer implements OneShotTimer {
  readonly kind = 'setTimeout';
  private timer: NodeJS.Timeout | null = null;
  constructor(private readonly fn: () => void) {}

  arm(delayMs: number): void {
    this.disarm();
    this.timer = setTimeout(() => {
      this.timer = null;
      this.fn();
    }, Math.max(0, delayMs));
  }

  disarm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  close(): void {
    this.disarm();
  }
}

/** The precise timer when the addon and the kernel give one (and `precise` is not false), else setTimeout. */
export function createOneShotTimer(fn: () => void, precise = true): OneShotTimer {
  const lib = precise ? loadMediaAddon() : null;
  const handle = lib?.timerCreate(fn);
  return lib && handle !== undefined && typeof handle !== 'number' ? new NativeTimer(lib, handle) : new TimeoutTimer(fn);
}

let available: boolean | undefined;

/** Whether the media clock can wake at microsecond precision here (found once; /v1/status asks on every request). */
export function preciseTimerAvailable(): boolean {
  if (available === undefined) {
    const t = createOneShotTimer(() => undefined);
    t.close();
    available = t.kind === 'timerfd';
  }
  return available;
}
