import { describe, expect, it } from 'vitest';
import { businessNumberBlocked } from './business-region.js';

describe('business number region (§3.4)', () => {
  const defaults = ['1', '20', '84', '234'];

  it("'1' blocks the USA and Canada only, not the other NANP countries", () => {
    expect(businessNumberBlocked('18095551234', defaults)).toBe(false); // Dominican Republic
    expect(businessNumberBlocked('+18765551234', defaults)).toBe(false); // Jamaica
    expect(businessNumberBlocked('12125551234', defaults)).toBe(true); // New York
    expect(businessNumberBlocked('14165551234', defaults)).toBe(true); // Toronto
    expect(businessNumberBlocked('18005551234', defaults)).toBe(true); // toll-free: country unknown, kept blocked
  });

  it('US territories count as the USA (conservative reading)', () => {
    expect(businessNumberBlocked('17875551234', defaults)).toBe(true); // Puerto Rico
    expect(businessNumberBlocked('16715551234', defaults)).toBe(true); // Guam
  });

  it('other entries are plain prefixes', () => {
    expect(businessNumberBlocked('201001234567', defaults)).toBe(true);
    expect(businessNumberBlocked('+2348012345678', defaults)).toBe(true);
    expect(businessNumberBlocked('84912345678', defaults)).toBe(true);
    expect(businessNumberBlocked('447700900555', defaults)).toBe(false);
    expect(businessNumberBlocked('18765551234', ['1876'])).toBe(true);
    expect(businessNumberBlocked('18095551234', ['1876'])).toBe(false);
  });

  it('a list without 1 lets US numbers through', () => {
    expect(businessNumberBlocked('12125551234', ['20', '84', '234'])).toBe(false);
    expect(businessNumberBlocked('12125551234', [])).toBe(false);
  });
});
