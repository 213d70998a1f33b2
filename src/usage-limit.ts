import type { BrainError } from '../brains/types.js';
import type { ChatService } from './chat/service.js';
import type { Config, ModeConfig } from './config.js';
import type { KvStore } from './db/index.js';
import { html } from './html.js';
import { formatUtc, noticeLang, t } from './i18n.js';
import type { Logger } from './logger.js';
import type { ModeRegistry } from './modes.js';
import type { Notifier } from './notices.js';
import type { Switcher, SwitchOutcome } from './switcher.js';

export interface LimitState {
  mode: string;
  /** Unix ms; undefined when the brain did not say. */
  resetsAt?: number;
  hitAt: number;
}

interface FallbackState {
  from: string;
  to: string;
  resetsAt: number;
}

const LIMIT_KEY = 'usage_limit';
const FALLBACK_KEY = 'usage_limit_fallback';
/** When the reset time is unknown, try the subscription again after this long. */
const UNKNOWN_RESET_MS = 60 * 60_000;

/**
 * Watches brain failures for the Claude subscription's usage limit: one notice
 * per limit (with the reset time), the state for /usage and /status, and the
 * optional fallback to a local mode until the reset, undone only if the user
 * has not switched by hand in between. Survives restarts (kv store).
 */
export class UsageLimitWatcher {
  private timer: NodeJS.Timeout | undefined;

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
    deps.chat.on('brainError', ({ mode, error }) => this.onBrainError(mode, error));
    deps.switcher.on('switched', (o) => this.onSwitched(o));
    const pending = this.fallback();
    if (pending) this.schedule(pending);
  }

  /** The current limit, or undefined once its reset time has passed. */
  state(): LimitState | undefined {
    const raw = this.deps.kv.get(LIMIT_KEY);
    if (!raw) return undefined;
    const s = JSON.parse(raw) as LimitState;
    const until = s.resetsAt ?? s.hitAt + UNKNOWN_RESET_MS;
    return until > Date.now() ? s : undefined;
  }

  stop(): void {
    clearTimeout(this.timer);
  }

  private onBrainError(mode: ModeConfig, error: BrainError): void {
    if (error.kind !== 'usage_limit') return;
    const { kv, notifier, logger } = this.deps;
    const state: LimitState = { mode: mode.id, resetsAt: error.resetsAt, hitAt: Date.now() };
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
        html`Claude's subscription usage limit is reached (mode <b>${mode.id}</b>). ${when}`,
        html`Limite d’usage de l’abonnement Claude atteinte (mode <b>${mode.id}</b>). ${when}`,
      ),
      // One notice per limit window, however many turns hit it.
      dedupeKey: `usage_limit:${error.resetsAt ?? Math.floor(Date.now() / UNKNOWN_RESET_MS)}`,
    });
    logger.warn({ mode: mode.id, resetsAt: error.resetsAt }, 'Claude usage limit reached');
    void this.fallBack(mode, error.resetsAt ?? Date.now() + UNKNOWN_RESET_MS);
  }

  private async fallBack(mode: ModeConfig, resetsAt: number): Promise<void> {
    const { config, modes, switcher, kv } = this.deps;
    const target = config.usageLimit.fallbackMode ? modes.find(config.usageLimit.fallbackMode) : undefined;
    if (!target || switcher.active().id !== mode.id || this.fallback()) return;
    const o = await switcher.switchTo(target.id, {
      source: 'fallback',
      by: 'usage-limit',
      lang: noticeLang(this.deps.kv),
    });
    if (!o.ok || o.alreadyActive) return;
    const state: FallbackState = { from: mode.id, to: target.id, resetsAt };
    kv.set(FALLBACK_KEY, JSON.stringify(state));
    this.schedule(state);
  }

  /** A switch the user made by hand cancels the automatic switch back. */
  private onSwitched(o: SwitchOutcome): void {
    if (!o.ok || o.alreadyActive || o.trigger.source === 'fallback') return;
    if (this.fallback()) {
      this.deps.kv.set(FALLBACK_KEY, '');
      clearTimeout(this.timer);
      this.deps.logger.info({ to: o.to }, 'manual switch: no automatic switch back after the usage limit');
    }
  }

  private fallback(): FallbackState | undefined {
    const raw = this.deps.kv.get(FALLBACK_KEY);
    return raw ? (JSON.parse(raw) as FallbackState) : undefined;
  }

  private schedule(state: FallbackState): void {
    clearTimeout(this.timer);
    // setTimeout holds 32-bit delays only; a far reset is re-armed when it comes closer.
    const delay = Math.min(Math.max(0, state.resetsAt - Date.now()), 2 ** 31 - 1);
    this.timer = setTimeout(() => void this.switchBack(state), delay);
    this.timer.unref();
  }

  private async switchBack(state: FallbackState): Promise<void> {
    if (state.resetsAt > Date.now()) return this.schedule(state);
    const { switcher, kv, notifier, logger } = this.deps;
    kv.set(FALLBACK_KEY, '');
    if (switcher.active().id !== state.to) return;
    const lang = noticeLang(kv);
    // onlyFrom: a switch the user asks for meanwhile is queued first and wins.
    const o = await switcher.switchTo(state.from, {
      source: 'fallback',
      by: 'usage-limit',
      lang,
      onlyFrom: state.to,
    });
    if (o.ok) {
      notifier.notify({
        kind: 'usage_limit',
        text: t(
          lang,
          html`Claude's usage limit has reset: back to <b>${state.from}</b>.`,
          html`La limite d’usage Claude est réinitialisée : retour en mode <b>${state.from}</b>.`,
        ),
      });
    } else logger.warn({ reason: o.reason }, 'no switch back after the usage limit');
  }
}
