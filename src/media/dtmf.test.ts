import { describe, expect, it } from 'vitest';
import { DtmfReceiver, DtmfSender, type DtmfDigitEvent } from './dtmf.js';
import { readTelephoneEvent, writeTelephoneEvent, type TelephoneEvent } from './rtp-packet.js';

function te(event: number, end: boolean, duration: number): Uint8Array {
  const b = new Uint8Array(4);
  writeTelephoneEvent(b, { event, end, volume: 10, duration });
  return b;
}

describe('DtmfSender', () => {
  it('emits start, 20 ms updates and three end packets with 8 kHz durations', () => {
    const s = new DtmfSender();
    s.enqueue(5, 100);
    const buf = new Uint8Array(4);
    const ev: TelephoneEvent = { event: 0, end: false, volume: 0, duration: 0 };
    const seen: Array<[boolean, boolean, boolean, number]> = [];
    for (let info = s.next(buf); info; info = s.next(buf)) {
      readTelephoneEvent(buf, 0, 4, ev);
      expect(ev.event).toBe(5);
      expect(ev.duration).toBe(info.duration);
      seen.push([info.start, info.end, info.last, ev.duration]);
    }
    expect(seen).toEqual([
      [true, false, false, 160], [false, false, false, 320], [false, false, false, 480], [false, false, false, 640],
      [false, true, false, 800], [false, true, false, 800], [false, true, true, 800],
    ]);
    expect(s.busy).toBe(false);
  });

  it('sends queued digits one after another and rejects non-DTMF events', () => {
    const s = new DtmfSender();
    s.enqueue(1, 40);
    s.enqueue(2, 40);
    const buf = new Uint8Array(4);
    const starts: number[] = [];
    for (let info = s.next(buf); info; info = s.next(buf)) if (info.start) starts.push(info.event);
    expect(starts).toEqual([1, 2]);
    expect(() => s.enqueue(16)).toThrow(/not a DTMF event/);
  });
});

describe('DtmfReceiver', () => {
  it('turns a sender sequence with retransmissions into exactly one digit', () => {
    const got: DtmfDigitEvent[] = [];
    const r = new DtmfReceiver((d) => got.push(d));
    const s = new DtmfSender();
    s.enqueue(11, 120);
    const buf = new Uint8Array(4);
    let t = 0;
    for (let info = s.next(buf); info; info = s.next(buf)) {
      r.push(48000, buf, 0, 4, t);
      r.push(48000, buf, 0, 4, t); // duplicated by the network
      t += 20;
    }
    expect(got).toHaveLength(1);
    expect(got[0]).toMatchObject({ digit: '#', durationMs: 120, timestamp: 48000, endLost: false });
  });

  it('reports a digit whose end packets were lost, by timeout or by the next event', () => {
    const got: DtmfDigitEvent[] = [];
    const r = new DtmfReceiver((d) => got.push(d), { endTimeoutMs: 500 });
    r.push(1000, te(1, false, 160), 0, 4, 0);
    r.push(1000, te(1, false, 320), 0, 4, 20);
    r.poll(100);
    expect(got).toHaveLength(0);
    r.poll(520);
    expect(got).toMatchObject([{ digit: '1', durationMs: 40, endLost: true }]);
    r.push(9000, te(2, false, 160), 0, 4, 1000);
    r.push(17000, te(3, true, 800), 0, 4, 1400); // only the end of the next digit made it
    expect(got.map((d) => d.digit)).toEqual(['1', '2', '3']);
    expect(got[2]).toMatchObject({ durationMs: 100, endLost: false });
  });

  it('ignores late end repeats of a finished event and malformed payloads', () => {
    const got: DtmfDigitEvent[] = [];
    const r = new DtmfReceiver((d) => got.push(d));
    r.push(5, te(9, true, 800), 0, 4, 0);
    r.push(5, te(9, true, 800), 0, 4, 20);
    r.push(5, new Uint8Array(2), 0, 2, 40);
    r.push(6, te(20, false, 160), 0, 4, 60); // event 20 is not a DTMF digit
    expect(got).toHaveLength(1);
    expect(r.ignored).toBe(2);
  });
});
