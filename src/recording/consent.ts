/**
 * The consent step before the call is bridged: the WhatsApp user hears the announcement instead of the agent; with
 * the explicit policy a DTMF digit (RFC 4733 from WhatsApp) must follow within the timeout. A digit pressed while
 * the announcement still plays counts (users who know the prompt need not wait).
 */
import type { PcmSource } from '../media/bridge.js';
import type { DtmfDigit } from '../media/rtp-packet.js';
import type { RecordingPolicy } from '../config/recording-schema.js';

/** Plays PCM once, then silence; `done` resolves when the last sample was read. */
export class OneShotPcm implements PcmSource {
  private pos = 0;
  readonly done: Promise<void>;
  private resolve!: () => void;

  constructor(private readonly pcm: Int16Array) {
    this.done = new Promise((r) => { this.resolve = r; });
    if (pcm.length === 0) this.resolve();
  }

  read(out: Int16Array): void {
    const n = Math.max(0, Math.min(out.length, this.pcm.length - this.pos));
    out.set(this.pcm.subarray(this.pos, this.pos + n));
    out.fill(0, n);
    this.pos += n;
    if (n > 0 && this.pos >= this.pcm.length) this.resolve();
  }
}

export interface ConsentIo {
  /** Replaces what the WhatsApp user hears (null = the agent again). */
  play(source: PcmSource | null): void;
  /** Subscribes to DTMF digits from the WhatsApp user; returns the unsubscribe. */
  onDigit(listener: (digit: DtmfDigit) => void): () => void;
  /** Marks for the live stream and logs. */
  mark?(name: string): void;
  /** Resolves when the call ends: the step gives up at once. */
  ended: Promise<unknown>;
  /** Timers (tests substitute). */
  setTimeout?: (fn: () => void, ms: number) => { unref?: () => void } | number | NodeJS.Timeout;
}

export type ConsentOutcome = 'not_required' | 'announced' | 'explicit_yes' | 'no_consent' | 'call_ended';

export async function runConsent(policy: Pick<RecordingPolicy, 'consent' | 'consentDigits' | 'consentTimeoutMs'>, announcement: Int16Array, io: ConsentIo): Promise<ConsentOutcome> {
  if (policy.consent === 'none') return 'not_required';
  let yes = false;
  let onYes: () => void = () => {};
  const yesPressed = new Promise<void>((r) => { onYes = r; });
  const unsubscribe = policy.consent === 'explicit'
    ? io.onDigit((d) => {
      if (!yes && policy.consentDigits.includes(d)) {
        yes = true;
        io.mark?.(`consent_digit_${d}`);
        onYes();
      }
    })
    : () => {};
  const source = new OneShotPcm(announcement);
  const ended = io.ended.then(() => 'ended' as const);
  io.mark?.('announcement_start');
  io.play(source);
  const timer = io.setTimeout ?? setTimeout;
  // Hold music set meanwhile replaces the announcement, which then never finishes playing: its length bounds the wait.
  const playedOrTimedOut = new Promise<'played'>((r) => {
    void source.done.then(() => r('played'));
    const t = timer(() => r('played'), announcement.length / 8 + 1000);
    if (typeof t === 'object' && t && 'unref' in t) t.unref?.();
  });
  try {
    const first = await Promise.race([playedOrTimedOut, yesPressed.then(() => 'yes' as const), ended]);
    if (first === 'ended') return 'call_ended';
    if (first === 'played') io.mark?.('announcement_end');
    if (policy.consent === 'announce') return 'announced';
    if (yes) return 'explicit_yes';
    const timedOut = new Promise<'timeout'>((r) => {
      const t = timer(() => r('timeout'), policy.consentTimeoutMs);
      if (typeof t === 'object' && t && 'unref' in t) t.unref?.();
    });
    const second = await Promise.race([yesPressed.then(() => 'yes' as const), timedOut, ended]);
    if (second === 'ended') return 'call_ended';
    return second === 'yes' ? 'explicit_yes' : 'no_consent';
  } finally {
    unsubscribe();
    io.play(null);
  }
}
