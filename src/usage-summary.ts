import type { Lang } from './i18n.js';
import type { UsageLedger, UsageTotals } from './usage.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const WEEK = 7 * DAY;
/**
 * Units of a relative period, English and French (`7j`, `2sem`: a French reader types jours and
 * semaines). `m` is minutes, as in `docker logs --since 30m`: months are `month` (this one) or `30d`.
 */
const PERIOD_UNITS = new Map<string, number>([
  ['m', MINUTE],
  ['min', MINUTE],
  ['minutes', MINUTE],
  ['h', HOUR],
  ['hours', HOUR],
  ['heures', HOUR],
  ['d', DAY],
  ['days', DAY],
  ['j', DAY],
  ['jours', DAY],
  ['w', WEEK],
  ['weeks', WEEK],
  ['sem', WEEK],
  ['semaines', WEEK],
]);

/**
 * Parses `7d`, `24h`, `30d`, `2w` (and their French `7j`, `2sem`), `today`, `month`, an ISO date (with a time:
 * `2026-01-31 10:00`, read as UTC) or unix ms (or seconds, 10 digits) into a start time.
 */
export function parseSince(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined || value === '') return undefined;
  const v = value.trim().toLowerCase();
  const rel = /^(\d+)\s*([a-z]+)$/.exec(v);
  const unit = rel ? PERIOD_UNITS.get(rel[2] as string) : undefined;
  if (rel && unit) return shown(now - Number(rel[1]) * unit);
  if (v === 'today' || v === 'aujourdhui' || v === "aujourd'hui" || v === 'aujourd’hui')
    return startOfUtcDay(now);
  if (v === 'month' || v === 'mois') return startOfUtcMonth(now);
  if (v === 'all' || v === 'total' || v === 'tout') return 0;
  if (/^\d{10,}$/.test(v)) {
    // `date +%s` and most APIs give seconds: read as ms, 1796599029 was 21 January 1970, and the
    // period silently all time. Below 1e11 ms (1973) no ledger has a turn; as seconds that is up to 5138.
    const n = Number(v);
    return shown(n < 1e11 ? n * 1000 : n);
  }
  // Only what looks like a date: V8 reads a bare `1` as 2001-01-01.
  const date = /^(\d{4}-\d{2}(?:-\d{2})?)(?:[t ]([\d:.]+)([+-]\d{2}:?\d{2})?)?z?$/.exec(v);
  if (!date) return undefined;
  // UTC, as every time brainstem shows: a date with a time and no zone is otherwise read
  // in the server's time zone, and the answer would depend on where it runs.
  const day = date[1] ?? '';
  // V8 rolls a day the month lacks over (2026-02-30 is March 2nd): that is not the date asked for.
  // Checked on the day alone: 24:00, ISO's end of a day, is the next day's start, and is kept.
  const start = Date.parse(`${day}T00:00Z`);
  if (Number.isNaN(start) || new Date(start).toISOString().slice(0, day.length) !== day) return undefined;
  // A time may name its zone as an offset (Python's isoformat() writes `+00:00`).
  const d = Date.parse(`${day}T${date[2] ?? '00:00'}${date[3] ?? 'Z'}`);
  return Number.isNaN(d) ? undefined : shown(d);
}

/** A start time a date can show (`999999999d` ago is not one): else no period at all. */
function shown(ms: number): number | undefined {
  return Number.isFinite(ms) && Math.abs(ms) <= 8.64e15 ? Math.max(0, ms) : undefined;
}

export function startOfUtcDay(now: number): number {
  const d = new Date(now);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
}

export function startOfUtcMonth(now: number): number {
  const d = new Date(now);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
}

export function formatTokens(n: number): string {
  // 999 500 and up round to 1000k: said as millions.
  if (n >= 999_500) return `${(n / 1_000_000).toFixed(2)}M`;
  if (n >= 10_000) return `${Math.round(n / 1000)}k`;
  if (n >= 1000) return `${(n / 1000).toFixed(1)}k`;
  return String(n);
}

/**
 * A period's totals in one line, in the reader's language: English for the
 * brain (usageContext, the usage tool), the user's own in /usage.
 */
export function formatTotals(x: UsageTotals, lang: Lang = 'en'): string {
  const cost = `$${x.costUsd.toFixed(2)}`;
  if (lang === 'fr') {
    const tours = (n: number) => `${n} tour${n > 1 ? 's' : ''}`;
    const estimated = x.estimated > 0 ? ` (estimé pour ${tours(x.estimated)})` : '';
    const uncounted =
      x.uncounted > 0 ? ` (sans les ${tours(x.uncounted)} dont le serveur n’a pas compté les jetons)` : '';
    return `${cost}${estimated}, ${tours(x.turns)}, ${formatTokens(x.inputTokens)} en entrée / ${formatTokens(x.outputTokens)} en sortie${uncounted}, cache ${formatTokens(x.cacheReadTokens)} lu / ${formatTokens(x.cacheWriteTokens)} écrit`;
  }
  const turns = (n: number) => `${n} turn${n === 1 ? '' : 's'}`;
  const estimated = x.estimated > 0 ? ` (estimated for ${turns(x.estimated)})` : '';
  // Their 0 tokens are no count (TurnUsage.tokensUnknown): the figures say what they leave out.
  const uncounted =
    x.uncounted > 0 ? ` (not counting ${turns(x.uncounted)} whose server counted no tokens)` : '';
  return `${cost}${estimated}, ${turns(x.turns)}, ${formatTokens(x.inputTokens)} in / ${formatTokens(x.outputTokens)} out${uncounted}, cache ${formatTokens(x.cacheReadTokens)} read / ${formatTokens(x.cacheWriteTokens)} write`;
}

/**
 * A compact summary given to the brain when the user asks about consumption,
 * so it answers with real figures instead of guessing.
 */
export function usageContext(ledger: UsageLedger, now = Date.now(), credit?: string): string {
  const periods: [string, number][] = [
    ['today (UTC)', startOfUtcDay(now)],
    ['last 7 days', now - 7 * 86_400_000],
    ['this month', startOfUtcMonth(now)],
    ['all time', 0],
  ];
  const lines = periods.map(([label, since]) => `- ${label}: ${formatTotals(ledger.totals(since, now + 1))}`);
  const byMode = ledger.byMode(startOfUtcMonth(now), now + 1).map((m) => `- ${m.mode}: ${formatTotals(m)}`);
  return [
    'brainstem usage ledger (measured by the proxy; costs are what Claude Code reported, or estimated from the tokens of a turn whose process died before it said, local models cost 0):',
    ...lines,
    'This month by mode:',
    ...(byMode.length > 0 ? byMode : ['- (no turns yet)']),
    ...(credit ? [credit] : []),
  ].join('\n');
}

/** Modes a breakdown names: up to this many all of them; past it, one fewer and the rest summed. */
export const MODES_NAMED = 8;

/**
 * The modes /usage and the usage chart name, from a list ordered costliest first: all of them up to
 * MODES_NAMED, else the costliest MODES_NAMED - 1 and the others (never one "other mode" alone,
 * which could as well be named). Both faces cut at the same place, so their lines match.
 */
export function namedModes<T>(costliestFirst: T[]): { named: T[]; others: T[] } {
  const n = costliestFirst.length <= MODES_NAMED ? costliestFirst.length : MODES_NAMED - 1;
  return { named: costliestFirst.slice(0, n), others: costliestFirst.slice(n) };
}
