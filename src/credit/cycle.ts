/**
 * The credit's monthly cycle. It renews on a day of the month at 00:00 UTC,
 * or at the time of day of a given renewal (an ISO date-time), every month
 * from there; a day past the end of a short month means its last day.
 */

/** A day of the month (1–31), or the ISO date-time of one renewal. */
export type ResetDay = number | string;

export interface Cycle {
  /** Unix ms of the renewal that opened the cycle. */
  start: number;
  /** Unix ms of the next renewal. */
  end: number;
}

interface Anchor {
  day: number;
  /** Milliseconds into that UTC day. */
  timeOfDay: number;
}

export function cycleAt(reset: ResetDay, now: number): Cycle {
  const anchor = anchorOf(reset);
  const d = new Date(now);
  const year = d.getUTCFullYear();
  const month = d.getUTCMonth();
  const thisMonth = renewal(anchor, year, month);
  return now >= thisMonth
    ? { start: thisMonth, end: renewal(anchor, year, month + 1) }
    : { start: renewal(anchor, year, month - 1), end: thisMonth };
}

function anchorOf(reset: ResetDay): Anchor {
  if (typeof reset === 'number') return { day: reset, timeOfDay: 0 };
  const t = new Date(reset);
  const midnight = Date.UTC(t.getUTCFullYear(), t.getUTCMonth(), t.getUTCDate());
  return { day: t.getUTCDate(), timeOfDay: t.getTime() - midnight };
}

/** The renewal in `month` of `year` (Date.UTC carries a month of -1 or 12 into the next year). */
function renewal(a: Anchor, year: number, month: number): number {
  const lastDay = new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
  return Date.UTC(year, month, Math.min(a.day, lastDay)) + a.timeOfDay;
}
