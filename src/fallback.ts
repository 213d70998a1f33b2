import { z } from 'zod';
import type { KvStore } from './db/index.js';
import type { Html } from './html.js';
import { type Lang, noticeLang } from './i18n.js';
import type { Logger } from './logger.js';
import type { NoticeKind, Notifier } from './notices.js';
import type { Switcher, SwitchOutcome } from './switcher.js';

const fallbackStateSchema = z.object({
  from: z.string(),
  to: z.string(),
  /** Unix ms of the switch away. */
  since: z.number(),
  resetsAt: z.number(),
});
export type FallbackState = z.infer<typeof fallbackStateSchema>;

/** How soon a step of the switch back the database refused is tried again. */
const RETRY_MS = 1000;

export interface FallbackOptions {
  /** The kv key that keeps the engaged fallback across restarts. */
  key: string;
  /** Who switches, for the log and the switch trigger (e.g. "usage-limit", "credit"). */
  by: string;
  switcher: Switcher;
  kv: KvStore;
  notifier: Notifier;
  logger: Logger;
  /** The kind of the notice once the mode is back. */
  kind: NoticeKind;
  /** The notice once the mode is back. */
  backText(lang: Lang, state: FallbackState): Html;
}

/**
 * An automatic switch to a fallback mode until a reset time, then back,
 * unless the user switched by hand in between (that cancels the way back).
 * Kept in the kv store, so a restart re-arms the switch back.
 */
export class ConditionalFallback {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /**
   * The switch away under way or next in line (none was under way when it was asked), until its
   * outcome: one queued behind another switch (the owner's) does not happen once that one changed the mode.
   */
  private engaging: { from: string; to: string } | undefined;

  constructor(private readonly o: FallbackOptions) {
    o.switcher.on('switched', (outcome) => this.onSwitched(outcome));
    const pending = this.state();
    if (pending) this.schedule(pending);
  }

  /** The fallback in force, if any. */
  state(): FallbackState | undefined {
    return this.o.kv.getJson(this.o.key, fallbackStateSchema);
  }

  /**
   * Switches from `from` to `to` until `resetsAt`, if `from` is still the
   * active mode and no fallback of this kind is in force. True once switched.
   */
  async engage(from: string, to: string, resetsAt: number): Promise<boolean> {
    const { switcher, kv } = this.o;
    if (switcher.active().id !== from || this.state()) return false;
    const engaging = switcher.isSwitching() ? undefined : { from, to };
    if (engaging) this.engaging = engaging;
    try {
      const o = await switcher.switchTo(to, {
        source: 'fallback',
        by: this.o.by,
        lang: noticeLang(kv),
        onlyFrom: from,
      });
      if (!o.ok || o.alreadyActive) return false;
      const state: FallbackState = { from, to, since: Date.now(), resetsAt };
      kv.set(this.o.key, JSON.stringify(state));
      this.schedule(state);
      return true;
    } finally {
      if (engaging && this.engaging === engaging) this.engaging = undefined;
    }
  }

  /**
   * The mode this fallback hands `from` over to: its switch away is under way or next in line, or
   * done and in force. Undefined otherwise, whatever other switch (the owner's) may be under way.
   */
  takingOver(from: string): string | undefined {
    if (this.engaging?.from === from) return this.engaging.to;
    const state = this.state();
    return state?.from === from && this.o.switcher.active().id === state.to ? state.to : undefined;
  }

  /** Moves the way back of the fallback in force to another time (the reset moved). */
  reschedule(resetsAt: number): void {
    const state = this.state();
    if (!state || state.resetsAt === resetsAt) return;
    const moved = { ...state, resetsAt };
    this.o.kv.set(this.o.key, JSON.stringify(moved));
    this.schedule(moved);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /** A switch the user made by hand cancels the automatic switch back. */
  private onSwitched(o: SwitchOutcome): void {
    if (!o.ok || o.alreadyActive || o.trigger.source === 'fallback' || !this.state()) return;
    clearTimeout(this.timer);
    this.o.logger.info({ to: o.to, by: this.o.by }, 'manual switch: no automatic switch back');
    try {
      this.o.kv.set(this.o.key, '');
    } catch (err) {
      // Another process holds the database: the way back is cancelled for this run all the same, and
      // the state left behind is cleared at the next start, which finds the mode no longer the fallback's.
      this.o.logger.warn({ err, by: this.o.by }, 'could not record that the switch back is cancelled');
    }
  }

  private schedule(state: FallbackState): void {
    clearTimeout(this.timer);
    // setTimeout holds 32-bit delays only; a far reset is re-armed when it comes closer.
    const delay = Math.min(Math.max(0, state.resetsAt - Date.now()), 2 ** 31 - 1);
    this.timer = setTimeout(() => void this.switchBack(state), delay);
    this.timer.unref();
  }

  /** Run from a timer: never rejects, since a rejection there would bring brainstem down. */
  private async switchBack(state: FallbackState): Promise<void> {
    if (state.resetsAt > Date.now()) return this.schedule(state);
    const { switcher, kv, notifier, logger } = this.o;
    try {
      if (switcher.active().id === state.to) {
        const lang = noticeLang(kv);
        // Kept until the switch back ends: a restart that cuts it leaves the state for the next start,
        // which switches back then (the switcher leaves a fallback's cut switch to its watcher).
        // onlyFrom: a switch the user asks for meanwhile is queued first and wins.
        const o = await switcher.switchTo(state.from, {
          source: 'fallback',
          by: this.o.by,
          lang,
          onlyFrom: state.to,
        });
        if (o.ok) notifier.notify({ kind: this.o.kind, text: this.o.backText(lang, state) });
        else logger.warn({ reason: o.reason, by: this.o.by }, 'no automatic switch back');
      }
    } catch (err) {
      logger.warn({ err, by: this.o.by }, 'the switch back broke off');
    }
    this.clear(state);
  }

  /**
   * Forgets the way back once it is taken or moot. What the database refuses (another process held
   * its lock past busy_timeout) is tried again shortly, the clearing alone: the switch is not redone.
   */
  private clear(state: FallbackState): void {
    if (this.stopped) return;
    try {
      if (this.state()?.since === state.since) this.o.kv.set(this.o.key, '');
    } catch (err) {
      this.o.logger.warn({ err, by: this.o.by }, 'could not forget the switch back: trying again shortly');
      this.timer = setTimeout(() => this.clear(state), RETRY_MS);
      this.timer.unref();
    }
  }
}
