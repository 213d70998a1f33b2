import { z } from 'zod';
import type { CreditConfig } from '../config.js';
import type { KvStore } from '../db/index.js';
import { formatUtc, type Lang } from '../i18n.js';
import type { UsageLedger } from '../usage.js';
import { type Cycle, cycleAt } from './cycle.js';
import type { CreditAmount, CreditSource } from './plan.js';

const DAY_MS = 86_400_000;
/** The pace is the average of the last 7 days… */
const PACE_WINDOW_MS = 7 * DAY_MS;
/**
 * …or of the ledger's history when shorter, but never of less than a day: a
 * first hour's turns are no daily pace (times 24 they would forecast a run-out
 * that uses up the cycle's one warning).
 */
const MIN_PACE_WINDOW_MS = DAY_MS;
const SPENT_KEY = 'credit_spent';
/** Claude said the credit is spent: when, and the reset it gave. */
const spentSchema = z.object({ at: z.number(), resetsAt: z.number().optional() });

/** What the meter shows: brainstem's own Claude turns, against the credit of this cycle. */
export interface CreditReading {
  now: number;
  cycle: Cycle;
  /** Undefined: no credit (`billedBy`, no plan in the credentials file, or `monthlyUsd: 0`). */
  credit?: CreditAmount;
  /** The variables that bill every Claude mode per token (an API key): the credit does not apply. */
  billedBy?: string;
  /** `claude.credit.monthlyUsd: 0`: no credit, on purpose; nothing to set, nothing to warn about. */
  off?: true;
  /** Spent this cycle by turns on the subscription. */
  spent: number;
  /** spent / credit (may pass 1), with a credit. */
  share?: number;
  /** What is left of the credit, never below 0. */
  left?: number;
  /** USD a day on the subscription, averaged over the last 7 days. */
  pacePerDay: number;
  /** When the credit runs out at that pace: `now` once spent; undefined with no credit or no spending. */
  runOutAt?: number;
  /** Claude said the credit is spent, this cycle (when, and the reset it gave). */
  spentReported?: { at: number; resetsAt?: number };
  /** The credit is gone: spent by the ledger's count, or by Claude's word. */
  exhausted: boolean;
  /**
   * Once exhausted, when Claude turns on the subscription should work again:
   * the reset Claude gave when it said so (its account's own date, which wins
   * over a `resetDay` that may be wrong), else the end of the cycle.
   */
  until?: number;
  /** Spent this cycle by turns billed to an API key: never from the credit. */
  apiSpent: number;
}

/**
 * The Agent SDK credit meter: what this cycle's subscription turns cost, what
 * is left, the 7-day pace and the date the credit runs out at that pace. Only
 * brainstem's own turns are counted: other uses of the same account (scripts,
 * CI) draw from the same credit unseen.
 */
export class CreditMeter {
  constructor(
    private readonly deps: {
      ledger: UsageLedger;
      source: CreditSource;
      config: Pick<CreditConfig, 'resetDay'>;
      kv: KvStore;
    },
  ) {}

  /**
   * The cycle at `now`: from one renewal `resetDay` gives to the next, but from the reset Claude gave
   * with a spent credit this cycle once that reset has passed. Claude's account renewed the credit
   * then (its date wins over a `resetDay` that may be wrong): the turns before it are no longer
   * drawn from it, and the meter, its notices and its switch start afresh there.
   */
  cycle(now = Date.now()): Cycle {
    const cycle = cycleAt(this.deps.config.resetDay, now);
    const reset = this.report(cycle)?.resetsAt;
    return reset !== undefined && reset > cycle.start && reset <= now && reset < cycle.end
      ? { ...cycle, start: reset }
      : cycle;
  }

  reading(now = Date.now()): CreditReading {
    const { ledger, source } = this.deps;
    const cycle = this.cycle(now);
    const credit = source.amount(now);
    const spent = ledger.spend('subscription', cycle.start, now + 1);
    const apiSpent = ledger.spend('api_key', cycle.start, now + 1);
    const first = ledger.firstTurn('subscription') ?? now;
    const since = Math.max(now - PACE_WINDOW_MS, first);
    const window = Math.max(now - since, MIN_PACE_WINDOW_MS);
    const pacePerDay = (ledger.spend('subscription', since, now + 1) / window) * DAY_MS;
    const reported = this.reportedSpent(cycle, now);
    if (!credit)
      return {
        now,
        cycle,
        spent,
        pacePerDay,
        exhausted: false,
        apiSpent,
        billedBy: source.billedBy,
        ...(source.off ? { off: true as const } : {}),
      };
    const left = Math.max(0, credit.usd - spent);
    const exhausted = reported !== undefined || left === 0;
    const runOutAt = exhausted ? now : pacePerDay > 0 ? now + (left / pacePerDay) * DAY_MS : undefined;
    return {
      now,
      cycle,
      credit,
      spent,
      share: spent / credit.usd,
      left: exhausted ? 0 : left,
      pacePerDay,
      runOutAt,
      spentReported: reported,
      exhausted,
      until: exhausted ? Math.min(reported?.resetsAt ?? cycle.end, cycle.end) : undefined,
      apiSpent,
    };
  }

  /**
   * When a credit spent at `since` is back: the end of that cycle by the config in force (a reset
   * day changed since moves it), or the earlier reset Claude gave when it said the credit is spent,
   * as `reading().until` says. Only a report of that cycle whose reset comes after `since` counts:
   * one from before is about an earlier switch.
   */
  renewalAfter(since: number): number {
    const cycle = this.cycle(since);
    const reset = this.report(cycle)?.resetsAt;
    return reset !== undefined && reset > since && reset < cycle.end ? reset : cycle.end;
  }

  /** Claude said the credit is spent: it counts as such until the reset it gave, or the cycle's end. */
  markSpent(at: number, resetsAt?: number): void {
    const spent: z.infer<typeof spentSchema> = { at, resetsAt };
    this.deps.kv.set(SPENT_KEY, JSON.stringify(spent));
  }

  private reportedSpent(cycle: Cycle, now: number): CreditReading['spentReported'] {
    const r = this.report(cycle);
    return r && (r.resetsAt === undefined || now < r.resetsAt) ? r : undefined;
  }

  /** What Claude last said of the credit, if it said it during `cycle`. */
  private report(cycle: Cycle): z.infer<typeof spentSchema> | undefined {
    const r = this.deps.kv.getJson(SPENT_KEY, spentSchema);
    return r && r.at >= cycle.start && r.at < cycle.end ? { at: r.at, resetsAt: r.resetsAt } : undefined;
  }
}

/** Dollars with cents, and a tenth of a cent below ten cents (test credits are a few cents). */
export const usd = (x: number): string => `$${x > 0 && x < 0.1 ? x.toFixed(3) : x.toFixed(2)}`;
/** Rounded down, but not below what the share is: 0.29 * 100 is 28.999999999999996 in floating point. */
export const percent = (share: number): string => `${Math.floor(share * 100 + 1e-9)} %`;
export const day = (ms: number): string => formatUtc(ms).slice(0, 10);

/**
 * The meter in one sentence, for the brain when the user asks about
 * consumption (English) and for the usage tool's text (the reader's language:
 * `report`, « rapport », run from a French chat).
 */
export function creditSentence(r: CreditReading, lang: Lang = 'en'): string {
  if (lang === 'fr') return creditSentenceFr(r);
  const api = r.apiSpent > 0 ? ` API-key turns cost ${usd(r.apiSpent)} this cycle, outside the credit.` : '';
  if (r.billedBy) {
    return `Claude's Agent SDK credit does not apply: every Claude mode is billed per token (${r.billedBy}).${api}`;
  }
  if (r.off) {
    return `There is no Agent SDK credit (claude.credit.monthlyUsd is 0): Claude turns on the subscription cost ${usd(r.spent)} since ${day(r.cycle.start)}.${api}`;
  }
  if (!r.credit) {
    return `No Agent SDK credit is known (claude.credit.monthlyUsd unset, and no plan in the credentials file): Claude turns on the subscription cost ${usd(r.spent)} since ${day(r.cycle.start)}.${api}`;
  }
  const plan = r.credit.plan ? ` (${r.credit.plan})` : '';
  const reset = `the reset on ${formatUtc(r.cycle.end)}`;
  const pace = `at the 7-day pace of ${usd(r.pacePerDay)}/day`;
  const forecast = r.exhausted
    ? `it is spent${r.spentReported ? ' (Claude said so)' : ''} until ${r.until !== undefined && r.until < r.cycle.end ? `${formatUtc(r.until)}, when Claude said it resets` : reset}`
    : r.runOutAt === undefined
      ? `nothing was spent in the last 7 days, so it lasts until ${reset}`
      : r.runOutAt < r.cycle.end
        ? `${pace} it runs out on ${day(r.runOutAt)}, before ${reset}`
        : `${pace} it lasts until ${reset}`;
  return `Claude's monthly Agent SDK credit${plan}: ${usd(r.spent)} of ${usd(r.credit.usd)} spent this cycle (${percent(r.share ?? 0)}), ${usd(r.left ?? 0)} left; ${forecast}.${api}`;
}

/** creditSentence in French: the same facts, for a reader in French. */
function creditSentenceFr(r: CreditReading): string {
  const api =
    r.apiSpent > 0 ? ` Les tours sur clé API ont coûté ${usd(r.apiSpent)} ce cycle, hors crédit.` : '';
  if (r.billedBy) {
    return `Le crédit Agent SDK de Claude ne s’applique pas : chaque mode Claude est facturé au token (${r.billedBy}).${api}`;
  }
  if (r.off) {
    return `Il n’y a pas de crédit Agent SDK (claude.credit.monthlyUsd vaut 0) : les tours Claude sur l’abonnement ont coûté ${usd(r.spent)} depuis le ${day(r.cycle.start)}.${api}`;
  }
  if (!r.credit) {
    return `Aucun crédit Agent SDK n’est connu (claude.credit.monthlyUsd absent, et pas d’abonnement dans le fichier d’identifiants) : les tours Claude sur l’abonnement ont coûté ${usd(r.spent)} depuis le ${day(r.cycle.start)}.${api}`;
  }
  const plan = r.credit.plan ? ` (${r.credit.plan})` : '';
  // "renouvellement" takes its article from what comes before it: jusqu’au, avant le.
  const reset = `renouvellement du ${formatUtc(r.cycle.end)}`;
  const pace = `au rythme des 7 derniers jours (${usd(r.pacePerDay)}/jour),`;
  const forecast = r.exhausted
    ? `il est épuisé${r.spentReported ? ' (Claude l’a dit)' : ''} jusqu’au ${r.until !== undefined && r.until < r.cycle.end ? `${formatUtc(r.until)}, quand Claude a dit qu’il se renouvelle` : reset}`
    : r.runOutAt === undefined
      ? `rien n’a été dépensé ces 7 derniers jours : il tient jusqu’au ${reset}`
      : r.runOutAt < r.cycle.end
        ? `${pace} il sera épuisé le ${day(r.runOutAt)}, avant le ${reset}`
        : `${pace} il tient jusqu’au ${reset}`;
  return `Crédit mensuel Agent SDK de Claude${plan} : ${usd(r.spent)} dépensés sur ${usd(r.credit.usd)} ce cycle (${percent(r.share ?? 0)}), il reste ${usd(r.left ?? 0)} ; ${forecast}.${api}`;
}
