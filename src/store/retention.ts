import type { Logger } from '../observability/logger.js';
import type { CallRecordStore } from './call-record.js';

export interface RetentionOptions {
  /** Records offered more than this many days ago are deleted; 0 keeps them forever. */
  days: number;
  /** How often the sweep runs, in ms. */
  intervalMs: number;
  logger: Logger;
  onDeleted?: (count: number) => void;
  now?: () => number;
}

/** Deletes old call records at start and then periodically; a failed sweep is logged and tried again next time. */
export class RetentionSweeper {
  private timer?: NodeJS.Timeout;
  private running?: Promise<number>;

  constructor(private readonly store: CallRecordStore, private readonly opts: RetentionOptions) {}

  start(): void {
    if (this.opts.days <= 0 || this.timer) return;
    void this.sweep();
    this.timer = setInterval(() => void this.sweep(), this.opts.intervalMs);
    this.timer.unref();
  }

  /** One sweep; concurrent calls share it. Resolves with the number of records deleted (0 on failure). */
  sweep(): Promise<number> {
    this.running ??= this.runOnce().finally(() => { this.running = undefined; });
    return this.running;
  }

  private async runOnce(): Promise<number> {
    if (this.opts.days <= 0 || !this.store.isOpen) return 0;
    const cutoff = new Date((this.opts.now?.() ?? Date.now()) - this.opts.days * 86_400_000).toISOString();
    try {
      const deleted = await this.store.deleteOfferedBefore(cutoff);
      if (deleted > 0) this.opts.logger.info({ deleted, cutoff, retentionDays: this.opts.days }, 'old call records deleted');
      this.opts.onDeleted?.(deleted);
      return deleted;
    } catch (err) {
      this.opts.logger.warn({ err: (err as Error).message }, 'call record retention sweep failed');
      return 0;
    }
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }
}
