/**
 * RFC 4733 DTMF interworking.
 *
 * Clock decision (whatsapp-calling.md §4.4): WhatsApp negotiates telephone-event/8000 but its DTMF packets
 * "share the audio stream's timestamp and sequence bases" and carry `duration` in 8 kHz units. So in the
 * Opus stream an event's RTP timestamp is the 48 kHz audio timestamp at the event start while the duration
 * field counts 8 kHz ticks (160 per 20 ms). On the SIP leg both are on the 8 kHz clock. Neither class here
 * owns a timestamp: the caller stamps packets with its own stream clock, so one implementation serves both.
 */
import { eventToDigit, readTelephoneEvent, writeTelephoneEvent, type DtmfDigit, type TelephoneEvent } from './rtp-packet.js';

export interface DtmfDigitEvent {
  digit: DtmfDigit;
  event: number;
  /** Tone duration from the last packet seen, in milliseconds. */
  durationMs: number;
  volume: number;
  /** RTP timestamp of the event (identifies it on the wire). */
  timestamp: number;
  /** True when no end packet arrived and the digit was closed by a timeout or by the next event. */
  endLost: boolean;
}

export interface DtmfReceiverOptions {
  /** Clock of the `duration` field: 8000 on both legs here. */
  durationClockRate?: number;
  /** An event with no end packet is closed after this long without packets. */
  endTimeoutMs?: number;
}

/**
 * Collapses a telephone-event packet stream (start, updates, triple end packets, retransmissions) into
 * exactly one digit per event. An event is identified by its RTP timestamp; the digit is reported on the
 * first end packet, so its duration is known.
 */
export class DtmfReceiver {
  private readonly rate: number;
  private readonly endTimeoutMs: number;
  private active = false;
  private curTs = 0;
  private curEvent = 0;
  private curVolume = 0;
  private curDuration = 0;
  private lastPacketMs = 0;
  private hasDone = false;
  private doneTs = 0;
  private readonly ev: TelephoneEvent = { event: 0, end: false, volume: 0, duration: 0 };
  /** Packets that were malformed or not a DTMF digit (events 16+ are other tones). */
  ignored = 0;

  constructor(private readonly onDigit: (d: DtmfDigitEvent) => void, opts: DtmfReceiverOptions = {}) {
    this.rate = opts.durationClockRate ?? 8000;
    this.endTimeoutMs = opts.endTimeoutMs ?? 600;
  }

  push(rtpTimestamp: number, payload: Uint8Array, offset: number, length: number, nowMs: number): void {
    if (!readTelephoneEvent(payload, offset, length, this.ev) || eventToDigit(this.ev.event) === null) {
      this.ignored++;
      return;
    }
    const ts = rtpTimestamp >>> 0;
    if (this.hasDone && ts === this.doneTs) return; // redundant end packet of a reported digit
    if (this.active && ts !== this.curTs) this.finish(true);
    if (!this.active) {
      this.active = true;
      this.curTs = ts;
      this.curEvent = this.ev.event;
      this.curDuration = 0;
    }
    this.curVolume = this.ev.volume;
    if (this.ev.duration > this.curDuration) this.curDuration = this.ev.duration;
    this.lastPacketMs = nowMs;
    if (this.ev.end) this.finish(false);
  }

  /** Closes an event whose end packets were all lost; call from a timer. */
  poll(nowMs: number): void {
    if (this.active && nowMs - this.lastPacketMs >= this.endTimeoutMs) this.finish(true);
  }

  private finish(endLost: boolean): void {
    this.active = false;
    this.hasDone = true;
    this.doneTs = this.curTs;
    this.onDigit({
      digit: eventToDigit(this.curEvent)!,
      event: this.curEvent,
      durationMs: Math.round((this.curDuration * 1000) / this.rate),
      volume: this.curVolume,
      timestamp: this.curTs,
      endLost,
    });
  }
}

export interface DtmfSenderOptions {
  durationClockRate?: number;
  /** Interval between packets of one event; the caller must call next() at this cadence. */
  packetMs?: number;
  volume?: number;
  endRepeats?: number;
}

export interface DtmfPacketInfo {
  /** First packet of an event: set the RTP marker bit and latch the event timestamp. */
  start: boolean;
  end: boolean;
  /** Last packet of the event (the last end repeat): audio may resume on the next tick. */
  last: boolean;
  event: number;
  duration: number;
}

interface QueuedDigit {
  event: number;
  durationMs: number;
}

/**
 * Produces the RFC 4733 packet sequence for queued digits, one packet per call to next():
 * a start packet (marker), an update every packetMs with growing duration, then the end packet three times.
 */
export class DtmfSender {
  private readonly rate: number;
  private readonly packetUnits: number;
  private readonly volume: number;
  private readonly endRepeats: number;
  private readonly queue: QueuedDigit[] = [];
  private cur: { event: number; total: number; sent: number; endsSent: number } | null = null;
  private readonly info: DtmfPacketInfo = { start: false, end: false, last: false, event: 0, duration: 0 };

  constructor(opts: DtmfSenderOptions = {}) {
    this.rate = opts.durationClockRate ?? 8000;
    const packetMs = opts.packetMs ?? 20;
    this.packetUnits = (this.rate * packetMs) / 1000;
    this.volume = opts.volume ?? 10;
    this.endRepeats = opts.endRepeats ?? 3;
  }

  /** Queues an event (0–15) for sending; the duration is clamped to [40 ms, 8 s] (the 16-bit field at 8 kHz). */
  enqueue(event: number, durationMs = 100): void {
    if (!Number.isInteger(event) || event < 0 || event > 15) throw new RangeError(`not a DTMF event: ${event}`);
    this.queue.push({ event, durationMs: Math.max(40, Math.min(8000, durationMs)) });
  }

  get busy(): boolean {
    return this.cur !== null || this.queue.length > 0;
  }

  /** Writes the next 4-byte payload into `out` at `offset`; returns null when there is nothing to send. */
  next(out: Uint8Array, offset = 0): DtmfPacketInfo | null {
    let start = false;
    if (!this.cur) {
      const q = this.queue.shift();
      if (!q) return null;
      const total = Math.min(0xffff, Math.round((q.durationMs * this.rate) / 1000));
      this.cur = { event: q.event, total, sent: 0, endsSent: 0 };
      start = true;
    }
    const c = this.cur;
    const info = this.info;
    info.start = start;
    info.event = c.event;
    const nextDuration = (c.sent + 1) * this.packetUnits;
    if (nextDuration < c.total) {
      c.sent++;
      info.end = false;
      info.last = false;
      info.duration = nextDuration;
    } else {
      c.endsSent++;
      info.end = true;
      info.duration = c.total;
      info.last = c.endsSent >= this.endRepeats;
      if (info.last) this.cur = null;
    }
    writeTelephoneEvent(out, { event: info.event, end: info.end, volume: this.volume, duration: info.duration }, offset);
    return info;
  }
}
