/**
 * The Opus encoder's expected-loss setting follows the loss the WhatsApp side reports in its RTCP receiver reports,
 * as libwebrtc's own Opus encoder does. libopus only spends bits and CPU on in-band FEC (LBRR) when that setting is
 * above 0: on a clean path FEC would cost about 30 % more encoder time for packets nobody needs, on a lossy one it
 * is what lets the user's decoder rebuild a lost frame.
 *
 * Before the first report the configured prior applies (FEC on), so the first seconds of a call on a bad network are
 * protected too. Reports are smoothed and quantised to a few levels with margins, so a single lost packet does not
 * toggle FEC on and off.
 */

/** Smoothing of the reported loss, per update (one a second): a time constant of about five seconds. */
const SMOOTHING = 0.2;

/**
 * libwebrtc's OptimizePacketLossRate (audio_encoder_opus.cc): the loss rounded down to 0, 1, 5, 10 or 20 %, with a
 * margin that makes the step up harder than staying.
 */
export function quantizeLossRate(rate: number, previous: number): number {
  const level = (at: number, margin: number): boolean => rate >= at + margin * (at - previous > 0 ? 1 : -1);
  if (level(0.2, 0.02)) return 0.2;
  if (level(0.1, 0.01)) return 0.1;
  if (level(0.05, 0.01)) return 0.05;
  if (rate >= 0.01) return 0.01;
  return 0;
}

export class OpusLossAdapter {
  private smoothed: number | null = null;
  private applied: number;

  /**
   * @param apply sets the encoder's expected loss in percent (called only on a change)
   * @param priorPercent the setting until the first receiver report
   */
  constructor(private readonly apply: (percent: number) => void, priorPercent: number) {
    this.applied = priorPercent / 100;
    apply(priorPercent);
  }

  /** The latest reported fraction lost (0–1), or undefined while no report has arrived. Call once a second. */
  update(fractionLost: number | undefined): void {
    if (fractionLost === undefined || !Number.isFinite(fractionLost)) return;
    const f = Math.max(0, Math.min(1, fractionLost));
    this.smoothed = this.smoothed === null ? f : this.smoothed + SMOOTHING * (f - this.smoothed);
    const next = quantizeLossRate(this.smoothed, this.applied);
    if (next === this.applied) return;
    this.applied = next;
    this.apply(Math.round(next * 100));
  }

  /** The expected loss the encoder runs with now, in percent. */
  get percent(): number {
    return Math.round(this.applied * 100);
  }
}
