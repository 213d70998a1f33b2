import { type CreditReading, day, percent, usd } from '../../../src/credit/meter.js';
import { formatSpan, formatUtc, type Lang, t } from '../../../src/i18n.js';
import { escapeHtml } from '../format/render.js';

/**
 * How far ahead a run-out date past the renewal is still named. A credit set far above what is
 * spent (`monthlyUsd: 1000000000` as "no limit, but count") ran out, at the pace, past the last
 * date JavaScript can write: formatting it threw "Invalid time value", and /usage failed.
 */
const FORECAST_HORIZON_MS = 365 * 86_400_000;

/**
 * The credit block of /usage: spent this cycle and its share, what is left,
 * the 7-day pace, the date it runs out at that pace and the renewal; the
 * API-key spend apart. HTML, every value escaped or ours.
 */
export function creditLines(r: CreditReading, lang: Lang): string[] {
  const renewal = t(
    lang,
    `Renewal: ${formatUtc(r.cycle.end)} (in ${formatSpan(r.cycle.end - r.now, lang)})`,
    `Renouvellement : ${formatUtc(r.cycle.end)} (dans ${formatSpan(r.cycle.end - r.now, lang)})`,
  );
  const api =
    r.apiSpent > 0
      ? [
          t(
            lang,
            `API-key turns this cycle: ${usd(r.apiSpent)} (billed to the key, not the credit)`,
            `Tours sur clé API ce cycle : ${usd(r.apiSpent)} (facturés à la clé, hors crédit)`,
          ),
        ]
      : [];
  if (r.billedBy) {
    if (r.apiSpent === 0) return [];
    return [
      t(
        lang,
        `💳 The Agent SDK credit does not apply: every Claude mode is billed per token (<code>${escapeHtml(r.billedBy)}</code>).`,
        `💳 Le crédit Agent SDK ne s’applique pas : chaque mode Claude est facturé au token (<code>${escapeHtml(r.billedBy)}</code>).`,
      ),
      ...api,
      '',
    ];
  }
  // monthlyUsd 0: no credit, on purpose; the costs are in the rest of /usage.
  if (r.off) return [];
  if (!r.credit) {
    if (r.spent === 0 && r.apiSpent === 0) return [];
    return [
      t(
        lang,
        `💳 No Agent SDK credit known (set <code>claude.credit.monthlyUsd</code>, or log in with a plan). Claude turns on the subscription this cycle: ${usd(r.spent)}.`,
        `💳 Aucun crédit Agent SDK connu (réglez <code>claude.credit.monthlyUsd</code>, ou connectez-vous avec un abonnement). Tours Claude sur l’abonnement ce cycle : ${usd(r.spent)}.`,
      ),
      ...api,
      '',
    ];
  }
  const source = r.credit.plan
    ? escapeHtml(r.credit.plan)
    : t(lang, 'claude.credit.monthlyUsd', 'claude.credit.monthlyUsd');
  const head = t(
    lang,
    `💳 <b>Agent SDK credit</b>: ${usd(r.credit.usd)} a month (${source})`,
    `💳 <b>Crédit Agent SDK</b> : ${usd(r.credit.usd)} par mois (${source})`,
  );
  const spent = t(
    lang,
    `Spent this cycle: ${usd(r.spent)} (${percent(r.share ?? 0)}) · left: ${usd(r.left ?? 0)}`,
    `Dépensé ce cycle : ${usd(r.spent)} (${percent(r.share ?? 0)}) · reste : ${usd(r.left ?? 0)}`,
  );
  const forecast = r.exhausted
    ? r.spentReported
      ? t(
          lang,
          `⛔ Spent: Claude said so at ${formatUtc(r.spentReported.at)}${earlyReset(r, lang)}`,
          `⛔ Épuisé : Claude l’a signalé à ${formatUtc(r.spentReported.at)}${earlyReset(r, lang)}`,
        )
      : t(lang, '⛔ Spent', '⛔ Épuisé')
    : r.runOutAt === undefined
      ? t(
          lang,
          'Pace (7 days): nothing spent, it lasts until the renewal',
          'Rythme (7 jours) : rien de dépensé, il tient jusqu’au renouvellement',
        )
      : r.runOutAt < r.cycle.end
        ? t(
            lang,
            `Pace (7 days): ${usd(r.pacePerDay)}/day → runs out on ${day(r.runOutAt)}, ${formatSpan(r.cycle.end - r.runOutAt, lang)} before the renewal`,
            `Rythme (7 jours) : ${usd(r.pacePerDay)}/jour → épuisé le ${day(r.runOutAt)}, ${formatSpan(r.cycle.end - r.runOutAt, lang)} avant le renouvellement`,
          )
        : r.runOutAt - r.now > FORECAST_HORIZON_MS
          ? t(
              lang,
              `Pace (7 days): ${usd(r.pacePerDay)}/day → lasts until the renewal`,
              `Rythme (7 jours) : ${usd(r.pacePerDay)}/jour → tient jusqu’au renouvellement`,
            )
          : t(
              lang,
              `Pace (7 days): ${usd(r.pacePerDay)}/day → lasts until the renewal (would run out on ${day(r.runOutAt)})`,
              `Rythme (7 jours) : ${usd(r.pacePerDay)}/jour → tient jusqu’au renouvellement (épuisé le ${day(r.runOutAt)} à ce rythme)`,
            );
  return [head, spent, forecast, renewal, ...api, ''];
}

/**
 * When Claude said the credit resets before the cycle's end (its account's own
 * date, which the meter and the notices go by): when Claude turns work again.
 */
function earlyReset(r: CreditReading, lang: Lang): string {
  if (r.until === undefined || r.until >= r.cycle.end) return '';
  return t(
    lang,
    `; it resets at ${formatUtc(r.until)} (in ${formatSpan(r.until - r.now, lang)}), Claude said`,
    `; remise à zéro le ${formatUtc(r.until)} (dans ${formatSpan(r.until - r.now, lang)}), selon Claude`,
  );
}

/** The credit in one line for /status. */
export function creditStatusLine(r: CreditReading, lang: Lang): string[] {
  if (!r.credit) return [];
  const state = r.exhausted
    ? t(lang, '⛔ spent', '⛔ épuisé') + earlyReset(r, lang)
    : t(
        lang,
        `${usd(r.spent)} of ${usd(r.credit.usd)} (${percent(r.share ?? 0)}), ${usd(r.left ?? 0)} left`,
        `${usd(r.spent)} sur ${usd(r.credit.usd)} (${percent(r.share ?? 0)}), reste ${usd(r.left ?? 0)}`,
      );
  const runOut =
    !r.exhausted && r.runOutAt !== undefined && r.runOutAt < r.cycle.end
      ? t(lang, `, runs out ${day(r.runOutAt)}`, `, épuisé le ${day(r.runOutAt)}`)
      : '';
  return [
    t(
      lang,
      `💳 Agent SDK credit: ${state}${runOut}; renews ${formatUtc(r.cycle.end)}`,
      `💳 Crédit Agent SDK : ${state}${runOut} ; renouvelé le ${formatUtc(r.cycle.end)}`,
    ),
  ];
}
