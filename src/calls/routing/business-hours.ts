import { WEEKDAYS, type Schedule, type Weekday } from '../../config/routing-schema.js';

/** The wall-clock date, weekday and minute of the day of an instant in an IANA time zone. */
export interface LocalTime {
  date: string; // YYYY-MM-DD
  weekday: Weekday;
  minute: number; // 0..1439
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    // en-CA-style numeric parts with a 24 h clock; hourCycle h23 keeps midnight as 00, never 24.
    f = new Intl.DateTimeFormat('en-US', {
      timeZone, year: 'numeric', month: '2-digit', day: '2-digit', weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

export function localTime(at: Date, timeZone: string): LocalTime {
  const parts: Record<string, string> = {};
  for (const p of formatter(timeZone).formatToParts(at)) parts[p.type] = p.value;
  const weekday = (parts.weekday ?? '').slice(0, 3).toLowerCase() as Weekday;
  if (!WEEKDAYS.includes(weekday)) throw new Error(`unexpected weekday ${parts.weekday ?? ''} for ${timeZone}`);
  return {
    date: `${parts.year}-${parts.month}-${parts.day}`,
    weekday,
    minute: Number(parts.hour) * 60 + Number(parts.minute),
  };
}

function inRange(range: string, minute: number): boolean {
  const toMin = (hhmm: string): number => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));
  return minute >= toMin(range.slice(0, 5)) && minute < toMin(range.slice(6, 11));
}

/** Open at this instant: inside a weekly range of the local weekday, and not inside a holiday closure. */
export function isOpen(schedule: Schedule, at: Date): boolean {
  const t = localTime(at, schedule.timeZone);
  for (const h of schedule.holidays) {
    if (typeof h === 'string') {
      if (h === t.date) return false;
    } else if (h.date === t.date && inRange(h.closed, t.minute)) {
      return false;
    }
  }
  return schedule.weekly[t.weekday].some((r) => inRange(r, t.minute));
}
