import { describe, expect, it } from 'vitest';
import type { PcmSource } from '../media/bridge.js';
import type { DtmfDigit } from '../media/rtp-packet.js';
import { OneShotPcm, runConsent } from './consent.js';

function io(ended = new Promise<never>(() => {})) {
  let source: PcmSource | null = null;
  const digit: { fn?: (d: DtmfDigit) => void } = {};
  const marks: string[] = [];
  return {
    marks, digit,
    get source() { return source; },
    /** Runs n 20 ms frames through whatever is being played. */
    pull(n: number): void { const out = new Int16Array(160); for (let i = 0; i < n; i++) source?.read(out); },
    io: { play: (s: PcmSource | null) => { source = s; }, onDigit: (fn: (d: DtmfDigit) => void) => { digit.fn = fn; return () => { digit.fn = undefined; }; }, mark: (m: string) => marks.push(m), ended },
  };
}
const tick = () => new Promise((r) => setTimeout(r, 0));

describe('consent step', () => {
  it('OneShotPcm plays once then silence, and says when it is done', async () => {
    const p = new OneShotPcm(Int16Array.from({ length: 200 }, () => 5));
    const out = new Int16Array(160);
    let done = false;
    void p.done.then(() => { done = true; });
    p.read(out);
    expect(out.every((v) => v === 5)).toBe(true);
    p.read(out);
    expect(out.slice(0, 40).every((v) => v === 5) && out.slice(40).every((v) => v === 0)).toBe(true);
    await tick();
    expect(done).toBe(true);
  });

  it('announce: plays the announcement, then hands the user back to the agent', async () => {
    const t = io();
    const result = runConsent({ consent: 'announce', consentDigits: '1', consentTimeoutMs: 1000 }, new Int16Array(800), t.io);
    expect(t.source).toBeInstanceOf(OneShotPcm);
    t.pull(5);
    expect(await result).toBe('announced');
    expect(t.source).toBeNull();
    expect(t.marks).toEqual(['announcement_start', 'announcement_end']);
  });

  it('explicit: a digit while the announcement plays is a yes at once', async () => {
    const t = io();
    const result = runConsent({ consent: 'explicit', consentDigits: '19', consentTimeoutMs: 5000 }, new Int16Array(8000), t.io);
    t.pull(3);
    t.digit.fn!('9');
    expect(await result).toBe('explicit_yes');
    expect(t.source).toBeNull();
    expect(t.digit.fn).toBeUndefined();
  });

  it('explicit: held while announcing (the announcement never finishes) still ends after its length', async () => {
    const t = io();
    const result = runConsent({ consent: 'explicit', consentDigits: '1', consentTimeoutMs: 1000 }, new Int16Array(800), t.io);
    // Nothing pulls the announcement (hold music replaced it); 100 ms + 1 s later it counts as played, then the wait.
    expect(await result).toBe('no_consent');
  });

  it('gives up when the call ends', async () => {
    let end!: () => void;
    const t = io(new Promise<never>((r) => { end = r as () => void; }));
    const result = runConsent({ consent: 'explicit', consentDigits: '1', consentTimeoutMs: 5000 }, new Int16Array(8000), t.io);
    end();
    expect(await result).toBe('call_ended');
  });

  it('none: nothing played', async () => {
    const t = io();
    expect(await runConsent({ consent: 'none', consentDigits: '1', consentTimeoutMs: 1000 }, new Int16Array(800), t.io)).toBe('not_required');
    expect(t.source).toBeNull();
  });
});
