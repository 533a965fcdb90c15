import { describe, expect, it } from 'vitest';
import { PortPool, PortPoolExhaustedError } from './port-pool.js';

describe('PortPool', () => {
  it('hands out each even port once, then throws a clear error', () => {
    const pool = new PortPool(40001, 40010); // even ports 40002..40010
    expect(pool.size).toBe(5);
    const got = new Set<number>();
    for (let i = 0; i < 5; i++) {
      const p = pool.acquire();
      expect(p % 2).toBe(0);
      expect(p).toBeGreaterThanOrEqual(40001);
      expect(p).toBeLessThanOrEqual(40010);
      got.add(p);
    }
    expect(got.size).toBe(5);
    expect(pool.free).toBe(0);
    expect(() => pool.acquire()).toThrow(PortPoolExhaustedError);
    expect(() => pool.acquire()).toThrow(/exhausted: all 5 even ports in \[40001, 40010\]/);
  });

  it('reuses a released port only after the others and ignores double release', () => {
    const pool = new PortPool(50000, 50004);
    const a = pool.acquire();
    const b = pool.acquire();
    expect(pool.release(a)).toBe(true);
    expect(pool.release(a)).toBe(false);
    expect(pool.release(12345)).toBe(false);
    expect(pool.free).toBe(2);
    const c = pool.acquire();
    expect(c).not.toBe(a);
    expect(c).not.toBe(b);
    expect(pool.acquire()).toBe(a);
    expect(pool.free).toBe(0);
  });

  it('rejects ranges without even ports or out of bounds', () => {
    expect(() => new PortPool(40001, 40001)).toThrow(/no even port/);
    expect(() => new PortPool(10, 20)).toThrow(/invalid RTP port range/);
    expect(() => new PortPool(40010, 40000)).toThrow(/invalid/);
  });
});
