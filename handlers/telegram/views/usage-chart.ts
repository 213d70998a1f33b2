import { InputFile } from 'grammy';
import type { CreditReading } from '../../../src/credit/meter.js';
import { formatUtc, type Lang, t } from '../../../src/i18n.js';
import { PROXY_TAG } from '../../../src/notices.js';
import type { UsageLedger } from '../../../src/usage.js';
import { renderCreditChart, renderUsageChart } from '../../../src/usage-chart.js';
import { formatTotals, parseSince } from '../../../src/usage-summary.js';
import { escapeHtml } from '../format/render.js';
import type { ChatOutput } from '../send/output.js';
import { creditStatusLine } from './credit.js';
import { futureText, quotedPeriod } from './usage.js';

/** The period of `/usage chart` when none is given. */
const DEFAULT_PERIOD = '30d';

/** `/usage chart [period]` → the period asked for ('' for the default); undefined when it is not a chart request. */
export function chartPeriodOf(arg: string | undefined): string | undefined {
  const m = /^\s*(?:chart|graph|graphique)\b\s*(.*)$/i.exec(arg ?? '');
  return m ? (m[1] ?? '').trim() : undefined;
}

/** `/usage chart credit` asks for the credit chart by name. */
const CREDIT_WORDS = new Set(['credit', 'crédit', 'credits', 'crédits']);

/**
 * /usage chart: with an Agent SDK credit, the cycle's cumulative spend
 * against the credit and the forecast (also `/usage chart credit`); otherwise,
 * or with a period (`/usage chart 7d`, `month`, a date…, like /usage), the PNG
 * of daily cost and tokens per mode. Sent as a photo with a one-line caption.
 */
export async function sendUsageChart(
  out: ChatOutput,
  ledger: UsageLedger,
  period: string,
  lang: Lang,
  now = Date.now(),
  credit?: CreditReading,
): Promise<void> {
  const creditAsked = CREDIT_WORDS.has(period.toLowerCase());
  if (creditAsked || (period === '' && credit?.credit)) {
    if (credit?.billedBy) {
      await out.sendHtml(
        t(
          lang,
          `${PROXY_TAG} The Agent SDK credit does not apply, so there is no credit chart: every Claude mode is billed per token (<code>${escapeHtml(credit.billedBy)}</code>). /usage chart 30d draws the daily costs.`,
          `${PROXY_TAG} Le crédit Agent SDK ne s’applique pas, donc pas de graphique du crédit : chaque mode Claude est facturé au token (<code>${escapeHtml(credit.billedBy)}</code>). /usage chart 30d trace les coûts par jour.`,
        ),
      );
      return;
    }
    if (credit?.off) {
      await out.sendHtml(
        t(
          lang,
          `${PROXY_TAG} There is no Agent SDK credit (<code>claude.credit.monthlyUsd</code> is 0), so there is no credit chart. /usage chart 30d draws the daily costs.`,
          `${PROXY_TAG} Il n’y a pas de crédit Agent SDK (<code>claude.credit.monthlyUsd</code> vaut 0), donc pas de graphique du crédit. /usage chart 30d trace les coûts par jour.`,
        ),
      );
      return;
    }
    if (!credit?.credit) {
      await out.sendHtml(
        t(
          lang,
          `${PROXY_TAG} No Agent SDK credit is known, so there is no credit chart: set <code>claude.credit.monthlyUsd</code>. /usage chart 30d draws the daily costs.`,
          `${PROXY_TAG} Aucun crédit Agent SDK connu, donc pas de graphique du crédit : réglez <code>claude.credit.monthlyUsd</code>. /usage chart 30d trace les coûts par jour.`,
        ),
      );
      return;
    }
    await out.typing('upload_photo').catch(() => undefined);
    const png = await renderCreditChart(ledger, credit, lang);
    await out.sendFile('photo', new InputFile(png, 'brainstem-credit.png'), {
      // Plain text, like the other caption: nothing Telegram could fail to parse.
      caption: `${PROXY_TAG} ${creditStatusLine(credit, lang).join('')}`,
    });
    return;
  }
  const label = period || DEFAULT_PERIOD;
  const shown = quotedPeriod(label);
  const since = parseSince(label, now);
  if (since !== undefined && since > now) {
    await out.sendHtml(futureText(escapeHtml(shown), since, lang));
    return;
  }
  if (since === undefined) {
    await out.sendHtml(
      t(
        lang,
        `${PROXY_TAG} I do not understand the period “${escapeHtml(shown)}”. Try /usage chart 7d, 30d, 2w, month, all or a date such as 2026-01-31.`,
        `${PROXY_TAG} Je ne comprends pas la période « ${escapeHtml(shown)} ». Essayez /usage chart 7j, 30j, 2sem, mois, tout ou une date comme 2026-01-31.`,
      ),
    );
    return;
  }
  // Rendering takes a moment (over a second the first time): show that a picture is coming.
  await out.typing('upload_photo').catch(() => undefined);
  const png = await renderUsageChart(ledger, since, now + 1, lang);
  const totals = ledger.totals(since, now + 1);
  // A plain caption: nothing to escape, nothing Telegram could fail to parse.
  const caption = t(
    lang,
    `${PROXY_TAG} Usage since ${formatUtc(since)} (${shown}): ${formatTotals(totals, lang)}`,
    `${PROXY_TAG} Consommation depuis ${formatUtc(since)} (${shown}) : ${formatTotals(totals, lang)}`,
  );
  await out.sendFile('photo', new InputFile(png, 'brainstem-usage.png'), { caption });
}
