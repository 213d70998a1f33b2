import { z } from 'zod';
import type { BrainError } from '../brains/types.js';
import { credentialSource } from './auth-notice.js';
import type { ChatService } from './chat/service.js';
import type { Config, ModeConfig } from './config.js';
import type { KvStore } from './db/index.js';
import { ConditionalFallback } from './fallback.js';
import { type Html, html } from './html.js';
import { formatUtc, type Lang, noticeLang, t } from './i18n.js';
import type { Logger } from './logger.js';
import type { ModeRegistry } from './modes.js';
import type { Notifier } from './notices.js';
import type { Switcher } from './switcher.js';

const limitStateSchema = z.object({
  mode: z.string(),
  /** The tool whose one-shot task met the limit (claude_code): `mode` is then its made-up one. */
  tool: z.string().optional(),
  /** Unix ms; undefined when the brain did not say. */
  resetsAt: z.number().optional(),
  hitAt: z.number(),
});
export type LimitState = z.infer<typeof limitStateSchema>;

const LIMIT_KEY = 'usage_limit';
/** When the reset time is unknown, try the subscription again after this long. */
const UNKNOWN_RESET_MS = 60 * 60_000;

/**
 * Watches brain failures for the Claude subscription's usage limit: one notice
 * per limit (with the reset time), the state for /usage and /status, and the
 * optional fallback to a local mode until the reset, undone only if the user
 * has not switched by hand in between. Survives restarts (kv store).
 */
export class UsageLimitWatcher {
  private readonly fallback: ConditionalFallback;

  constructor(
    private readonly deps: {
      config: Config;
      kv: KvStore;
      modes: ModeRegistry;
      switcher: Switcher;
      notifier: Notifier;
      chat: ChatService;
      logger: Logger;
    },
  ) {
    deps.chat.on('brainError', ({ mode, error, tool }) => this.onBrainError(mode, error, tool));
    this.fallback = new ConditionalFallback({
      key: 'usage_limit_fallback',
      by: 'usage-limit',
      kind: 'usage_limit',
      switcher: deps.switcher,
      kv: deps.kv,
      notifier: deps.notifier,
      logger: deps.logger,
      backText: (lang, state) =>
        t(
          lang,
          html`Claude's usage limit has reset: back to <b>${state.from}</b>.`,
          html`La limite d’usage Claude est réinitialisée : retour en mode <b>${state.from}</b>.`,
        ),
    });
  }

  /** The current limit, or undefined once its reset time has passed. */
  state(): LimitState | undefined {
    const s = this.deps.kv.getJson(LIMIT_KEY, limitStateSchema);
    if (!s) return undefined;
    const until = s.resetsAt ?? s.hitAt + UNKNOWN_RESET_MS;
    return until > Date.now() ? s : undefined;
  }

  stop(): void {
    this.fallback.stop();
  }

  /**
   * The mode that answers in place of `mode` until the subscription's limit `error` reports resets:
   * the fallback's, when this limit's fallback switch is the one under way or next (asked when no
   * other switch was), or is done. Told of the error first (onBrainError), the watcher knows by then.
   */
  fallbackFor(mode: ModeConfig, error: BrainError): ModeConfig | undefined {
    if (error.kind !== 'usage_limit' || error.limit !== undefined) return undefined;
    const to = this.fallback.takingOver(mode.id);
    return to === undefined ? undefined : this.deps.modes.find(to);
  }

  private onBrainError(mode: ModeConfig, error: BrainError, tool?: string): void {
    // The credit and the budgets are limits of their own (see src/credit).
    if (error.kind !== 'usage_limit' || error.limit !== undefined) return;
    const { kv, notifier, logger, config, modes, switcher } = this.deps;
    const state: LimitState = { mode: mode.id, tool, resetsAt: error.resetsAt, hitAt: Date.now() };
    kv.set(LIMIT_KEY, JSON.stringify(state));
    const lang = noticeLang(this.deps.kv);
    const when = error.resetsAt
      ? t(
          lang,
          html`It resets at ${formatUtc(error.resetsAt)}.`,
          html`Réinitialisation à ${formatUtc(error.resetsAt)}.`,
        )
      : t(
          lang,
          html`Claude did not say when it resets.`,
          html`Claude n’a pas dit quand elle se réinitialise.`,
        );
    notifier.notify({
      kind: 'usage_limit',
      text: t(
        lang,
        html`Claude's subscription usage limit is reached (${metBy(lang, mode.id, tool)}). ${when}`,
        html`Limite d’usage de l’abonnement Claude atteinte (${metBy(lang, mode.id, tool)}). ${when}`,
      ),
      // One notice per limit window, however many turns hit it.
      dedupeKey: `usage_limit:${error.resetsAt ?? Math.floor(Date.now() / UNKNOWN_RESET_MS)}`,
    });
    logger.warn({ mode: mode.id, tool, resetsAt: error.resetsAt }, 'Claude usage limit reached');
    const target = config.usageLimit.fallbackMode ? modes.find(config.usageLimit.fallbackMode) : undefined;
    // The limit is the subscription's, not the mode's: the active mode falls back when it runs on the
    // same credentials as the turn refused (itself, or the claude_code tool's task, or another Claude
    // mode asked by name), since its next turn would be refused too. One on other credentials (a mode's
    // own API key or login) or a local mode stays.
    const active = switcher.active();
    if (target && sameCredentials(active, mode, config.claude.env))
      void this.fallback.engage(active.id, target.id, error.resetsAt ?? Date.now() + UNKNOWN_RESET_MS);
  }
}

/** What met the limit, as a notice names it: the mode, or the tool whose one-shot task it was. */
export function metBy(lang: Lang, mode: string, tool?: string): Html {
  return tool
    ? t(lang, html`the <b>${tool}</b> tool`, html`l’outil <b>${tool}</b>`)
    : t(lang, html`mode <b>${mode}</b>`, html`mode <b>${mode}</b>`);
}

/** Whether two modes' CLIs sign in with the same credentials, so share one subscription and its limit. */
function sameCredentials(a: ModeConfig, b: ModeConfig, claudeEnv: Record<string, string>): boolean {
  if (a.kind !== 'claude' || b.kind !== 'claude') return false;
  return credentialSource(a, claudeEnv).id === credentialSource(b, claudeEnv).id;
}
