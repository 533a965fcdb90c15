import { describe, expect, it } from 'vitest';
import { bdecode, bencode } from './bencode.js';

describe('bencode', () => {
  it('encodes with sorted keys and round-trips nested values', () => {
    const v = { sdp: 'v=0\r\n', command: 'offer', flags: ['trust-address', 'ICE=force'], n: -3 };
    const enc = bencode(v);
    expect(enc.toString()).toBe('d7:command5:offer5:flagsl13:trust-address9:ICE=forcee1:ni-3e3:sdp5:v=0\r\ne');
    expect(bdecode(enc)).toEqual(v);
  });
  it('counts string length in bytes, not characters', () => {
    expect(bencode('é').toString()).toBe('2:é');
    expect(bdecode(bencode({ x: 'é' }))).toEqual({ x: 'é' });
  });
  it('rejects malformed input', () => {
    expect(() => bdecode(Buffer.from('5:abc'))).toThrow(SyntaxError);
    expect(() => bdecode(Buffer.from('i1ei2e'))).toThrow(/trailing/);
    expect(() => bdecode(Buffer.from('x'))).toThrow(SyntaxError);
  });
});
