/**
 * Even-port allocator for SIP-side RTP (RTCP, when used, takes port+1, so only even ports are handed out).
 * Released ports go to the back of the queue: a port is reused as late as possible, so stray packets for a
 * finished call are less likely to land in a new one.
 */

export class PortPoolExhaustedError extends Error {
  constructor(readonly min: number, readonly max: number, readonly size: number) {
    super(`RTP port pool exhausted: all ${size} even ports in [${min}, ${max}] are in use`);
    this.name = 'PortPoolExhaustedError';
  }
}

export class PortPool {
  private readonly queue: number[] = [];
  private head = 0;
  private readonly inUse = new Set<number>();
  readonly size: number;

  constructor(readonly min: number, readonly max: number) {
    if (!Number.isInteger(min) || !Number.isInteger(max) || min < 1024 || max > 65535 || min > max) {
      throw new RangeError(`invalid RTP port range [${min}, ${max}]: expected integers with 1024 <= min <= max <= 65535`);
    }
    for (let p = min % 2 === 0 ? min : min + 1; p <= max; p += 2) this.queue.push(p);
    if (this.queue.length === 0) throw new RangeError(`RTP port range [${min}, ${max}] holds no even port`);
    this.size = this.queue.length;
  }

  get free(): number {
    return this.size - this.inUse.size;
  }

  get used(): number {
    return this.inUse.size;
  }

  acquire(): number {
    if (this.queue.length - this.head === 0) throw new PortPoolExhaustedError(this.min, this.max, this.size);
    const port = this.queue[this.head++]!;
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    this.inUse.add(port);
    return port;
  }

  /** Returns false (and changes nothing) for a port that is not currently handed out. */
  release(port: number): boolean {
    if (!this.inUse.delete(port)) return false;
    this.queue.push(port);
    return true;
  }

  isInUse(port: number): boolean {
    return this.inUse.has(port);
  }
}
