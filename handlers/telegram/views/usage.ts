import { colon, formatUtc, type Lang, t } from '../../../src/i18n.js';
import { PROXY_TAG } from '../../../src/notices.js';
import { shorten } from '../../../src/text.js';
import type { UsageLedger, UsageTotals } from '../../../src/usage.js';
import {
  formatTotals,
  namedModes,
  parseSince,
  startOfUtcDay,
  startOfUtcMonth,
} from '../../../src/usage-summary.js';
import { escapeHtml } from '../format/render.js';

/** Top sessions shown in /usage. */
const TOP_SESSIONS = 5;
/**
 * /usage is one message (4096 characters, or Telegram refuses it and /usage fails): namedModes
 * names the costliest modes and the others are summed on one line, and a session key (an OpenAI
 * client's `user` or own key runs to 200 characters) is cut. A line is at most ~160 characters (a
 * 40-character mode id, the totals): 8 mode lines and 5 sessions leave room for the periods and
 * the credit and limit lines.
 */
const SESSION_KEY_CHARS = 60;
/** The most of a period the answer quotes back ("0007d" with any number of zeros is one): what was typed may fill a whole message. */
const PERIOD_CHARS = 60;

/** A period as an answer quotes it back, not escaped. */
export const quotedPeriod = (period: string): string => shorten(period, PERIOD_CHARS);

/** A period understood, but that starts later than now: nothing can have been used in it yet. `shown`: escaped. */
export const futureText = (shown: string, since: number, lang: Lang): string =>
  t(
    lang,
    `${PROXY_TAG} The period “${shown}” starts in the future (${formatUtc(since)}): nothing has been used in it yet.`,
    `${PROXY_TAG} La période « ${shown} » commence dans le futur (${formatUtc(since)}) : rien n’y a encore été consommé.`,
  );

const line = (label: string, x: UsageTotals, lang: Lang) =>
  `${label}${colon(lang)} ${escapeHtml(formatTotals(x, lang))}${x.errors > 0 ? ` (${x.errors} ✗)` : ''}`;

/**
 * /usage: today, the last 7 days, this month and all time, then this month by
 * mode and its top sessions. `/usage 30d` (or 24h, 2w, today, month, all, a
 * date, a UTC date and time) gives one period with its own breakdown. `lead`: lines shown under
 * the title (Claude's usage limit when reached, the Agent SDK credit). `countedAs`: the sessions
 * renamed since (a group upgraded to a supergroup), each to its present key. HTML, every value escaped.
 */
export function usageView(
  ledger: UsageLedger,
  arg: string | undefined,
  lang: Lang,
  now = Date.now(),
  lead: string[] = [],
  countedAs: ReadonlyMap<string, string> = new Map(),
): string {
  const period = arg?.trim();
  if (period) {
    const shown = escapeHtml(quotedPeriod(period));
    const since = parseSince(period, now);
    if (since !== undefined && since > now) return futureText(shown, since, lang);
    if (since === undefined) {
      return t(
        lang,
        `${PROXY_TAG} I do not understand the period “${shown}”. Try /usage 24h, 7d, 30d, 2w, today, month, all or a date such as 2026-01-31 or 2026-01-31 10:00 (UTC).`,
        `${PROXY_TAG} Je ne comprends pas la période « ${shown} ». Essayez /usage 24h, 7j, 30j, 2sem, aujourdhui, mois, tout ou une date comme 2026-01-31 ou 2026-01-31 10:00 (UTC).`,
      );
    }
    const until = now + 1;
    return [
      t(
        lang,
        `${PROXY_TAG} <b>Usage since ${formatUtc(since)}</b> (${shown})`,
        `${PROXY_TAG} <b>Consommation depuis ${formatUtc(since)}</b> (${shown})`,
      ),
      ...lead,
      line(t(lang, 'Total', 'Total'), ledger.totals(since, until), lang),
      ...breakdown(ledger, since, until, lang, countedAs),
    ].join('\n');
  }
  const periods: [string, number][] = [
    [t(lang, 'Today (UTC)', 'Aujourd’hui (UTC)'), startOfUtcDay(now)],
    [t(lang, 'Last 7 days', '7 derniers jours'), now - 7 * 86_400_000],
    [t(lang, 'This month', 'Ce mois-ci'), startOfUtcMonth(now)],
    [t(lang, 'All time', 'Depuis le début'), 0],
  ];
  return [
    t(lang, `${PROXY_TAG} <b>Usage</b>`, `${PROXY_TAG} <b>Consommation</b>`),
    ...lead,
    ...periods.map(([label, since]) => line(label, ledger.totals(since, now + 1), lang)),
    ...breakdown(
      ledger,
      startOfUtcMonth(now),
      now + 1,
      lang,
      countedAs,
      t(lang, ' (this month)', ' (ce mois-ci)'),
    ),
    t(
      lang,
      '<i>Other periods: /usage 30d, /usage 24h…</i>',
      '<i>Autres périodes : /usage 30d, /usage 24h…</i>',
    ),
  ].join('\n');
}

function breakdown(
  ledger: UsageLedger,
  since: number,
  until: number,
  lang: Lang,
  countedAs: ReadonlyMap<string, string>,
  suffix = '',
): string[] {
  const byMode = ledger.byMode(since, until);
  if (byMode.length === 0)
    return [t(lang, '<i>No turns in this period.</i>', '<i>Aucun tour sur cette période.</i>')];
  const bySession = ledger.topSessions(since, until, TOP_SESSIONS, countedAs);
  const modes = namedModes(byMode);
  return [
    '',
    `<b>${t(lang, 'By mode', 'Par mode')}${suffix}</b>`,
    ...modes.named.map((m) => line(`• ${escapeHtml(m.mode)}`, m, lang)),
    ...othersLine(modes.others, lang),
    '',
    `<b>${t(lang, 'Top sessions', 'Sessions principales')}${suffix}</b>`,
    ...bySession.map((s) =>
      line(
        `• <code>${escapeHtml(shorten(s.sessionKey, SESSION_KEY_CHARS))}</code> (${escapeHtml(s.mode)})`,
        s,
        lang,
      ),
    ),
  ];
}

/** The modes namedModes does not name as one line of their summed totals, so the modes still add up to the total. */
function othersLine(rest: UsageTotals[], lang: Lang): string[] {
  if (rest.length === 0) return [];
  const sum = (k: keyof UsageTotals) => rest.reduce((n, m) => n + m[k], 0);
  const totals: UsageTotals = {
    turns: sum('turns'),
    errors: sum('errors'),
    costUsd: sum('costUsd'),
    inputTokens: sum('inputTokens'),
    outputTokens: sum('outputTokens'),
    cacheReadTokens: sum('cacheReadTokens'),
    cacheWriteTokens: sum('cacheWriteTokens'),
    durationMs: sum('durationMs'),
    estimated: sum('estimated'),
    uncounted: sum('uncounted'),
  };
  // Never one: namedModes names a mode it could sum alone.
  const n = rest.length;
  return [line(t(lang, `• ${n} other modes`, `• ${n} autres modes`), totals, lang)];
}
