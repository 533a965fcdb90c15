/**
 * Remembers keys for a while so that a webhook delivered twice is handled once. Bounded: the oldest keys go first,
 * so a flood of distinct ids cannot grow memory without limit.
 */
export class RecentKeys {
  private readonly seen = new Map<string, number>();

  constructor(private readonly ttlMs: number, private readonly maxKeys = 100_000) {}

  /** True the first time a key is seen within the TTL. */
  firstSighting(key: string, now = Date.now()): boolean {
    const at = this.seen.get(key);
    if (at !== undefined && now - at < this.ttlMs) return false;
    this.seen.delete(key);
    this.seen.set(key, now);
    if (this.seen.size > this.maxKeys) {
      const oldest = this.seen.keys().next().value;
      if (oldest !== undefined) this.seen.delete(oldest);
    }
    return true;
  }

  has(key: string, now = Date.now()): boolean {
    const at = this.seen.get(key);
    return at !== undefined && now - at < this.ttlMs;
  }
}
