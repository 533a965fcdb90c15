import { describe, expect, it } from 'vitest';
import { parseDtmfInfo } from './dtmf-info.js';

describe('parseDtmfInfo', () => {
  it('reads application/dtmf-relay with its duration', () => {
    expect(parseDtmfInfo('application/dtmf-relay', 'Signal=5\r\nDuration=160\r\n')).toEqual({ digit: '5', durationMs: 160 });
    expect(parseDtmfInfo('Application/DTMF-Relay; charset=x', 'signal = #\nduration=250')).toEqual({ digit: '#', durationMs: 250 });
  });
  it('reads application/dtmf and the event numbers 10 and 11 for * and #', () => {
    expect(parseDtmfInfo('application/dtmf', '7')).toEqual({ digit: '7', durationMs: 100 });
    expect(parseDtmfInfo('application/dtmf', '10')?.digit).toBe('*');
    expect(parseDtmfInfo('application/dtmf-relay', 'Signal=11\r\nDuration=100')?.digit).toBe('#');
  });
  it('ignores other INFO bodies, hook flash and nonsense durations', () => {
    expect(parseDtmfInfo('application/media_control+xml', '<x/>')).toBeUndefined();
    expect(parseDtmfInfo('application/dtmf-relay', 'Signal=16\r\nDuration=100')).toBeUndefined();
    expect(parseDtmfInfo('application/dtmf-relay', 'Duration=100')).toBeUndefined();
    expect(parseDtmfInfo('application/dtmf-relay', 'Signal=x')).toBeUndefined();
    expect(parseDtmfInfo('application/dtmf-relay', 'Signal=3\r\nDuration=-5')).toEqual({ digit: '3', durationMs: 100 });
  });
});
