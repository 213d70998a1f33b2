import type { BrainError } from '../../brains/types.js';
import type { ChatService } from '../chat/service.js';
import type { Config, ModeConfig } from '../config.js';
import type { KvStore } from '../db/index.js';
import { ConditionalFallback, type FallbackState } from '../fallback.js';
import { type Html, html } from '../html.js';
import { formatUtc, type Lang, noticeLang, t } from '../i18n.js';
import type { Logger } from '../logger.js';
import type { ModeRegistry } from '../modes.js';
import type { Notifier } from '../notices.js';
import type { Switcher } from '../switcher.js';
import { billingOf } from './billing.js';
import { type CreditMeter, type CreditReading, day, percent, usd } from './meter.js';

const DAY_MS = 86_400_000;

/**
 * Follows the credit after every turn: one notice per configured share of the
 * credit and per cycle (50, 80, 95, 100 % by default), one when the forecast
 * first says it runs out days before the reset, and with
 * `usageLimit.fallbackMode` the switch to that mode at `switchAtPercent` or
 * once spent (each once a cycle), back at the renewal unless the user switched
 * by hand. Notices are deduplicated in SQLite and the switch back is kept in
 * the kv store, so a restart neither repeats nor loses them.
 */
export class CreditWatcher {
  private readonly fallback: ConditionalFallback;

  constructor(
    private readonly deps: {
      config: Config;
      kv: KvStore;
      modes: ModeRegistry;
      switcher: Switcher;
      notifier: Notifier;
      chat: ChatService;
      meter: CreditMeter;
      logger: Logger;
    },
  ) {
    this.fallback = new ConditionalFallback({
      key: 'credit_fallback',
      by: 'credit',
      kind: 'credit',
      switcher: deps.switcher,
      kv: deps.kv,
      notifier: deps.notifier,
      logger: deps.logger,
      backText: (lang, state) => this.backText(lang, state),
    });
    // A reset day changed while brainstem was down moves the way back (to now, if that renewal has passed).
    this.followRenewal();
    deps.chat.on('turn', () => void this.check());
    deps.chat.on('brainError', ({ mode, error }) => this.onBrainError(mode, error));
  }

  stop(): void {
    this.fallback.stop();
  }

  /** Sends the notices that are due and switches if the credit says so. */
  async check(now = Date.now()): Promise<void> {
    try {
      const r = this.deps.meter.reading(now);
      if (!r.credit) return;
      this.backIfNoLongerDue(r);
      const switching = this.switchDue(r);
      this.notifyShare(r, switching);
      this.notifyForecast(r);
      if (switching) await this.switchAway(r, switching.target, switching.trigger);
    } catch (err) {
      this.deps.logger.error({ err }, 'credit check failed');
    }
  }

  private onBrainError(mode: ModeConfig, error: BrainError): void {
    if (error.kind !== 'usage_limit' || error.limit !== 'credit') return;
    this.deps.logger.warn(
      { mode: mode.id, resetsAt: error.resetsAt },
      'Claude says the Agent SDK credit is spent',
    );
    this.deps.meter.markSpent(Date.now(), error.resetsAt);
    // A fallback already engaged (at switchAtPercent, for the cycle's end) comes back at Claude's reset
    // when Claude gives an earlier one, e.g. answering a turn that named a Claude mode meanwhile.
    this.followRenewal();
    void this.check();
  }

  /**
   * Moves the way back of an engaged fallback to the first renewal after its switch, by the config in
   * force and Claude's own reset when it gave an earlier one: the cycle's end would keep the fallback
   * mode for weeks while /usage says Claude is back.
   */
  private followRenewal(): void {
    const engaged = this.fallback.state();
    if (engaged) this.fallback.reschedule(this.deps.meter.renewalAfter(engaged.since));
  }

  /**
   * Brings an engaged fallback back now when the credit no longer calls for it in the cycle of its
   * switch: within a cycle the share only grows, so this is a credit that grew (Pro to Max in the
   * credentials file, a higher `monthlyUsd`). Waiting for the renewal would keep the owner who just
   * upgraded off Claude for weeks while /usage says most of the credit is left.
   */
  private backIfNoLongerDue(r: CreditReading): void {
    const engaged = this.fallback.state();
    if (!engaged || r.exhausted || (r.share ?? 0) * 100 >= this.deps.config.claude.credit.switchAtPercent)
      return;
    if (engaged.since < r.cycle.start || engaged.resetsAt <= r.now) return; // the renewal's way back
    this.deps.logger.info(
      { credit: r.credit?.usd, share: r.share, to: engaged.from },
      'credit: the credit grew, back from the fallback mode',
    );
    this.fallback.reschedule(Date.now());
  }

  /** The notice once back from the fallback: the credit renewed, or grew within the cycle. */
  private backText(lang: Lang, state: FallbackState): Html {
    const r = this.deps.meter.reading();
    if (r.credit && !r.exhausted && r.cycle.start <= state.since) {
      const plan = r.credit.plan ? ` (${r.credit.plan})` : '';
      return t(
        lang,
        html`💳 Claude's Agent SDK credit is now ${usd(r.credit.usd)}${plan}, ${usd(r.left ?? 0)} left: back to <b>${state.from}</b>.`,
        html`💳 Le crédit Agent SDK de Claude est maintenant de ${usd(r.credit.usd)}${plan}, il reste ${usd(r.left ?? 0)} : retour en mode <b>${state.from}</b>.`,
      );
    }
    return t(
      lang,
      html`💳 Claude's Agent SDK credit has renewed: back to <b>${state.from}</b>.`,
      html`💳 Le crédit Agent SDK de Claude est renouvelé : retour en mode <b>${state.from}</b>.`,
    );
  }

  /** The switch this reading calls for, if any: each trigger once a cycle, from a subscription mode only. */
  private switchDue(r: CreditReading): { target: ModeConfig; trigger: string } | undefined {
    const { config, modes, switcher, kv } = this.deps;
    const target = config.usageLimit.fallbackMode ? modes.find(config.usageLimit.fallbackMode) : undefined;
    const active = switcher.active();
    if (!target || target.id === active.id || billingOf(active, config.claude.env) !== 'subscription') return;
    const trigger = r.exhausted
      ? 'spent'
      : (r.share ?? 0) * 100 >= config.claude.credit.switchAtPercent
        ? 'share'
        : undefined;
    if (!trigger || kv.get(switchKey(r, trigger)) || kv.get(legacyKey('credit_switch', r, trigger))) return;
    return { target, trigger };
  }

  /** Once switched, the trigger is spent for the cycle: a user who goes back is not switched again by it. */
  private async switchAway(r: CreditReading, target: ModeConfig, trigger: string): Promise<void> {
    const from = this.deps.switcher.active().id;
    this.deps.logger.info(
      { from, to: target.id, share: r.share, trigger },
      'credit: switching to the fallback mode',
    );
    if (await this.fallback.engage(from, target.id, r.until ?? r.cycle.end))
      this.deps.kv.set(switchKey(r, trigger), String(r.now));
  }

  private notifyShare(r: CreditReading, switching: { target: ModeConfig } | undefined): void {
    const steps = this.deps.config.claude.credit.notifyAtPercent;
    // Only the highest share passed is told: a turn that jumps from 40 to 85 % sends 80, not 50 then 80.
    const step = r.exhausted
      ? steps.includes(100)
        ? 100
        : undefined
      : [...steps]
          .sort((a, b) => a - b)
          .filter((p) => p < 100 && (r.share ?? 0) * 100 >= p)
          .at(-1);
    if (step === undefined) return;
    const lang = noticeLang(this.deps.kv);
    const away = switching
      ? html` ${t(
          lang,
          html`Switching to <b>${switching.target.id}</b> until the renewal; /mode ${this.deps.switcher.active().id} goes back to Claude knowingly.`,
          html`Bascule vers <b>${switching.target.id}</b> jusqu’au renouvellement ; /mode ${this.deps.switcher.active().id} revient à Claude en connaissance de cause.`,
        )}`
      : html``;
    // Claude's word is told even after brainstem's count said the credit is spent: it says when Claude
    // resets it, which the count's notice, going by resetDay, could not.
    const suffix = `${step}${r.spentReported ? ':claude' : ''}`;
    const dedupeKey = `${cycleKey('credit', r)}:${suffix}`;
    const { notifier } = this.deps;
    if (notifier.wasSent(dedupeKey) || notifier.wasSent(legacyKey('credit', r, suffix))) return;
    this.deps.notifier.notify({
      kind: 'credit',
      dedupeKey,
      text: html`${r.exhausted ? spentText(r, lang) : shareText(r, step, lang)}${away}`,
    });
    this.deps.logger.info({ step, spent: r.spent, credit: r.credit?.usd }, 'credit notice');
  }

  private notifyForecast(r: CreditReading): void {
    const days = this.deps.config.claude.credit.runOutWarnDays;
    if (r.exhausted || r.runOutAt === undefined || r.runOutAt >= r.cycle.end - days * DAY_MS) return;
    if (this.deps.notifier.wasSent(legacyKey('credit', r, 'forecast'))) return;
    const lang = noticeLang(this.deps.kv);
    const early = Math.floor((r.cycle.end - r.runOutAt) / DAY_MS);
    this.deps.notifier.notify({
      kind: 'credit',
      dedupeKey: `${cycleKey('credit', r)}:forecast`,
      text: t(
        lang,
        html`📉 At the 7-day pace (${usd(r.pacePerDay)}/day), Claude's Agent SDK credit runs out on ${day(r.runOutAt)}, ${early} days before its renewal on ${formatUtc(r.cycle.end)}. ${usd(r.left ?? 0)} left of ${usd(r.credit?.usd ?? 0)}.`,
        html`📉 Au rythme des 7 derniers jours (${usd(r.pacePerDay)}/jour), le crédit Agent SDK de Claude sera épuisé le ${day(r.runOutAt)}, ${early} jours avant son renouvellement le ${formatUtc(r.cycle.end)}. Il reste ${usd(r.left ?? 0)} sur ${usd(r.credit?.usd ?? 0)}.`,
      ),
    });
  }
}

/**
 * What a notice or a switch is deduplicated on: the cycle, and the credit in force. A plan that
 * changes mid-cycle (Pro to Max in the credentials file, or a new `monthlyUsd`) is a new envelope:
 * its shares, forecast and switch come once more, where keys on the cycle alone would keep the 95 %
 * warning and the switch the smaller credit already used up silent until the renewal.
 */
const cycleKey = (prefix: string, r: CreditReading) => `${prefix}:${r.cycle.start}:${r.credit?.usd ?? 0}usd`;
const switchKey = (r: CreditReading, trigger: string) => `${cycleKey('credit_switch', r)}:${trigger}`;
/**
 * The key of a notice or switch stored before keys named the credit (the cycle alone): taken as
 * for the credit in force, so the cycle under way when brainstem is updated repeats none of them.
 */
const legacyKey = (prefix: string, r: CreditReading, suffix: string) =>
  `${prefix}:${r.cycle.start}:${suffix}`;

function shareText(r: CreditReading, step: number, lang: Lang): Html {
  const forecast =
    r.runOutAt === undefined
      ? html``
      : r.runOutAt < r.cycle.end
        ? t(
            lang,
            html` At the 7-day pace (${usd(r.pacePerDay)}/day) it runs out on ${day(r.runOutAt)}, before the renewal on ${formatUtc(r.cycle.end)}.`,
            html` Au rythme des 7 derniers jours (${usd(r.pacePerDay)}/jour), il sera épuisé le ${day(r.runOutAt)}, avant le renouvellement le ${formatUtc(r.cycle.end)}.`,
          )
        : t(
            lang,
            html` At the 7-day pace (${usd(r.pacePerDay)}/day) it lasts until the renewal on ${formatUtc(r.cycle.end)}.`,
            html` Au rythme des 7 derniers jours (${usd(r.pacePerDay)}/jour), il tient jusqu’au renouvellement le ${formatUtc(r.cycle.end)}.`,
          );
  return t(
    lang,
    html`💳 Claude's Agent SDK credit: ${step} % spent (${usd(r.spent)} of ${usd(r.credit?.usd ?? 0)}, ${percent(r.share ?? 0)}), ${usd(r.left ?? 0)} left.${forecast}`,
    html`💳 Crédit Agent SDK de Claude : ${step} % dépensés (${usd(r.spent)} sur ${usd(r.credit?.usd ?? 0)}, ${percent(r.share ?? 0)}), il reste ${usd(r.left ?? 0)}.${forecast}`,
  );
}

function spentText(r: CreditReading, lang: Lang): Html {
  // Claude's own reset, when it gave one before the cycle's end: its account knows the date best.
  const early = r.until !== undefined && r.until < r.cycle.end;
  const renewal = early
    ? t(
        lang,
        `${formatUtc(r.until ?? 0)} (Claude's reset)`,
        `${formatUtc(r.until ?? 0)} (la remise à zéro de Claude)`,
      )
    : formatUtc(r.cycle.end);
  return r.spentReported
    ? t(
        lang,
        html`⛔ Claude says its Agent SDK credit is spent (brainstem counted ${usd(r.spent)} of ${usd(r.credit?.usd ?? 0)}: other uses of the account draw from it too). Claude turns stop until the renewal on ${renewal}, unless the account allows usage credits.`,
        html`⛔ Claude indique que son crédit Agent SDK est épuisé (brainstem a compté ${usd(r.spent)} sur ${usd(r.credit?.usd ?? 0)} : les autres usages du compte y puisent aussi). Les tours Claude s’arrêtent jusqu’au renouvellement le ${renewal}, sauf si le compte autorise les crédits d’usage.`,
      )
    : t(
        lang,
        html`⛔ Claude's Agent SDK credit is spent (${usd(r.spent)} of ${usd(r.credit?.usd ?? 0)}). Claude turns stop until the renewal on ${renewal}, unless the account allows usage credits.`,
        html`⛔ Le crédit Agent SDK de Claude est épuisé (${usd(r.spent)} sur ${usd(r.credit?.usd ?? 0)}). Les tours Claude s’arrêtent jusqu’au renouvellement le ${renewal}, sauf si le compte autorise les crédits d’usage.`,
      );
}
