import type { BrainError } from '../../brains/types.js';
import type { ModeConfig } from '../config.js';
import { formatDuration, type Lang, t } from '../i18n.js';
import { PROXY_TAG } from '../notices.js';
import type { UsageLedger } from '../usage.js';
import { startOfUtcDay } from '../usage-summary.js';
import { usd } from './meter.js';

const DAY_MS = 86_400_000;

/** Whether a turn may run, and the cap it runs under. */
export type Admission =
  | {
      ok: true;
      /** The most the turn may spend (the CLI's `--max-budget-usd`); absent = no cap. */
      maxBudgetUsd?: number;
      /** The budget that sets the cap: the per-turn one, or what is left of the day's. */
      cap?: 'turn_budget' | 'day_budget';
      /** Gives back what the turn held of the day's budget; call once its spend is in the ledger. */
      release?: () => void;
    }
  | { ok: false; error: BrainError };

/**
 * A mode's budgets (`modes.<id>.budget`): a cap per turn and a cap per UTC
 * day, both in USD. A turn starts only while the day has budget left, and runs
 * under whichever cap is smaller; a turn refused or stopped says which budget
 * and when it resets. Turns running at once share what is left of the day:
 * each holds its cap until its spend is recorded, so together they start no
 * call past the day's budget. The CLI checks a cap after each API call, so
 * the call that crosses it is paid in full: that one call can pass the budget.
 */
export class Budgets {
  /** Per mode, the caps of its turns running now (their spend is not in the ledger yet). */
  private readonly held = new Map<string, number>();

  constructor(private readonly ledger: UsageLedger) {}

  admit(mode: ModeConfig, lang: Lang, now = Date.now()): Admission {
    const budget = mode.budget;
    if (!budget) return { ok: true };
    let dayLeft = Number.POSITIVE_INFINITY;
    if (budget.dayUsd !== undefined) {
      const today = this.ledger.modeSpend(mode.id, startOfUtcDay(now), now + 1);
      const held = this.held.get(mode.id) ?? 0;
      dayLeft = budget.dayUsd - today - held;
      if (dayLeft <= 0 && held > 0 && budget.dayUsd - today > 0) {
        return {
          ok: false,
          error: {
            kind: 'usage_limit',
            limit: 'day_budget',
            message: t(
              lang,
              `${PROXY_TAG} What is left of mode ${mode.id}'s daily budget (${usd(budget.dayUsd - today)} of ${usd(budget.dayUsd)}) is held by the answers running now, so this message was not sent to Claude. Send it again once they have ended.`,
              `${PROXY_TAG} Ce qui reste du budget du jour du mode ${mode.id} (${usd(budget.dayUsd - today)} sur ${usd(budget.dayUsd)}) est réservé aux réponses en cours : ce message n’a pas été envoyé à Claude. Renvoyez-le quand elles seront finies.`,
            ),
          },
        };
      }
      if (dayLeft <= 0) {
        return {
          ok: false,
          error: {
            kind: 'usage_limit',
            limit: 'day_budget',
            resetsAt: startOfUtcDay(now) + DAY_MS,
            message: t(
              lang,
              `${PROXY_TAG} Mode ${mode.id} has spent its daily budget (${usd(budget.dayUsd)}; ${usd(today)} today), so this message was not sent to Claude. The budget resets at 00:00 UTC, in ${formatDuration(startOfUtcDay(now) + DAY_MS - now)}; /mode switches to another mode meanwhile (or raise modes.${mode.id}.budget.dayUsd).`,
              `${PROXY_TAG} Le mode ${mode.id} a dépensé son budget du jour (${usd(budget.dayUsd)} ; ${usd(today)} aujourd’hui) : ce message n’a pas été envoyé à Claude. Le budget se renouvelle à 00:00 UTC, dans ${formatDuration(startOfUtcDay(now) + DAY_MS - now)} ; /mode passe à un autre mode d’ici là (ou augmentez modes.${mode.id}.budget.dayUsd).`,
            ),
          },
        };
      }
    }
    const turn = budget.turnUsd ?? Number.POSITIVE_INFINITY;
    if (turn === Number.POSITIVE_INFINITY && dayLeft === Number.POSITIVE_INFINITY) return { ok: true };
    const admitted =
      turn <= dayLeft
        ? { cap: 'turn_budget' as const, max: turn }
        : { cap: 'day_budget' as const, max: dayLeft };
    if (budget.dayUsd === undefined) return { ok: true, maxBudgetUsd: admitted.max, cap: admitted.cap };
    this.held.set(mode.id, (this.held.get(mode.id) ?? 0) + admitted.max);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      const left = (this.held.get(mode.id) ?? 0) - admitted.max;
      if (left > 1e-9) this.held.set(mode.id, left);
      else this.held.delete(mode.id);
    };
    return { ok: true, maxBudgetUsd: admitted.max, cap: admitted.cap, release };
  }

  /** The brain stopped a turn at its cap: which budget it was, and when it resets. */
  stopped(
    mode: ModeConfig,
    admission: Admission,
    error: BrainError,
    lang: Lang,
    now = Date.now(),
  ): BrainError {
    if (!admission.ok || error.kind !== 'usage_limit' || error.limit !== 'turn_budget') return error;
    if (admission.cap === 'day_budget') {
      const resetsAt = startOfUtcDay(now) + DAY_MS;
      return {
        ...error,
        limit: 'day_budget',
        resetsAt,
        message: t(
          lang,
          `${PROXY_TAG} This answer was stopped: mode ${mode.id} reached its daily budget (${usd(mode.budget?.dayUsd ?? 0)}). The budget resets at 00:00 UTC, in ${formatDuration(resetsAt - now)}; /mode switches to another mode meanwhile (or raise modes.${mode.id}.budget.dayUsd).`,
          `${PROXY_TAG} Réponse arrêtée : le mode ${mode.id} a atteint son budget du jour (${usd(mode.budget?.dayUsd ?? 0)}). Le budget se renouvelle à 00:00 UTC, dans ${formatDuration(resetsAt - now)} ; /mode passe à un autre mode d’ici là (ou augmentez modes.${mode.id}.budget.dayUsd).`,
        ),
      };
    }
    return {
      ...error,
      message: t(
        lang,
        `${PROXY_TAG} This answer was stopped: it reached the per-turn budget of mode ${mode.id} (${usd(admission.maxBudgetUsd ?? 0)}). The budget is per message, so your next message starts afresh; split the task, or raise modes.${mode.id}.budget.turnUsd.`,
        `${PROXY_TAG} Réponse arrêtée : elle a atteint le budget par tour du mode ${mode.id} (${usd(admission.maxBudgetUsd ?? 0)}). Ce budget vaut pour chaque message : le suivant repart de zéro ; découpez la tâche, ou augmentez modes.${mode.id}.budget.turnUsd.`,
      ),
    };
  }
}
