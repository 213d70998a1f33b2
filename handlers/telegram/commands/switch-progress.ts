import { alreadyInMode } from '../../../src/chat/facts.js';
import type { Core } from '../../../src/core.js';
import { Html, html } from '../../../src/html.js';
import { formatDuration, type Lang, t } from '../../../src/i18n.js';
import type { Logger } from '../../../src/logger.js';
import { PROXY_TAG } from '../../../src/notices.js';
import {
  afterRestart,
  type Switcher,
  type SwitchOutcome,
  type SwitchStart,
  type SwitchTrigger,
} from '../../../src/switcher.js';
import { shorten } from '../../../src/text.js';
import { waitAtMost } from '../../../src/wait.js';
import { escapeHtml } from '../format/render.js';
import type { ChatOutput } from '../send/output.js';

function switchingText(target: string, lang: Lang): string {
  return t(
    lang,
    `${PROXY_TAG} Switching to <b>${escapeHtml(target)}</b>… (waiting until it answers)`,
    `${PROXY_TAG} Bascule vers <b>${escapeHtml(target)}</b>… (en attendant qu’il réponde)`,
  );
}

/** The short result shown in place of the progress line; the wake notice tells the rest. */
function outcomeText(o: SwitchOutcome, lang: Lang): Html {
  if (o.ok && o.alreadyActive) return Html.marked((m) => alreadyInMode(o.to, lang, m));
  if (o.ok && o.from === o.to) {
    // Its model had gone down; a resumed switch's time is only this process's, so none is shown.
    const took = o.trigger.source === 'resume' ? '' : formatDuration(o.ms);
    return t(
      lang,
      html`${PROXY_TAG} ✅ Mode <b>${o.to}</b> is ready: its model was started again${took && ` in ${took}`}.`,
      html`${PROXY_TAG} ✅ Mode <b>${o.to}</b> prêt : son modèle a été relancé${took && ` en ${took}`}.`,
    );
  }
  if (o.ok) {
    return t(
      lang,
      html`${PROXY_TAG} ✅ Mode <b>${o.to}</b> is ready (from ${o.from} in ${formatDuration(o.ms)}).`,
      html`${PROXY_TAG} ✅ Mode <b>${o.to}</b> prêt (depuis ${o.from} en ${formatDuration(o.ms)}).`,
    );
  }
  // The target may be whatever was typed: shown back short, so the reply always fits.
  const to = shorten(o.to, 80);
  const reason = shorten(o.reason, 1000);
  return t(
    lang,
    html`${PROXY_TAG} ❌ Switch to <b>${to}</b> failed: ${reason}. Still on <b>${o.from}</b>.`,
    html`${PROXY_TAG} ❌ Échec de la bascule vers <b>${to}</b> : ${reason}. Toujours en <b>${o.from}</b>.`,
  );
}

/**
 * In place of the progress line when brainstem stops before the switch ends:
 * the switch under way is finished at the next start, and those queued behind
 * it are made after it (Switcher.resumeCut); one the database could not keep is not.
 */
function restartingText(target: string, next: ReturnType<Switcher['resumable']>, lang: Lang): string {
  const to = escapeHtml(target);
  if (next === 'under way')
    return t(
      lang,
      `${PROXY_TAG} ⏳ brainstem is restarting in the middle of the switch to <b>${to}</b>. It finishes the switch once it is back, and says so.`,
      `${PROXY_TAG} ⏳ brainstem redémarre au milieu de la bascule vers <b>${to}</b>. Il la termine à son retour, et le dit.`,
    );
  if (next === 'queued')
    return t(
      lang,
      `${PROXY_TAG} ⏳ brainstem is restarting before the switch to <b>${to}</b> began. It makes the switch once it is back, and says so.`,
      `${PROXY_TAG} ⏳ brainstem redémarre avant le début de la bascule vers <b>${to}</b>. Il la fait à son retour, et le dit.`,
    );
  return t(
    lang,
    `${PROXY_TAG} ⏹ brainstem is restarting: the switch to <b>${to}</b> did not start. Send /mode ${to} again once it is back.`,
    `${PROXY_TAG} ⏹ brainstem redémarre : la bascule vers <b>${to}</b> n’a pas commencé. Renvoyez /mode ${to} à son retour.`,
  );
}

/**
 * The switches asked for from the chat, each keeping one message up to date:
 * the progress line at once (a new message, or the keyboard message given),
 * then the outcome. A switch can take minutes (a model load), so callers do
 * not wait for it; a restart in the middle turns the progress line into what
 * happens next instead of leaving "Switching to…" forever.
 */
export class SwitchProgress {
  private readonly closing = new AbortController();
  private readonly shown = new Set<Promise<void>>();
  /**
   * The keyboard messages a switch is shown in now (`chat:message`): the mode its buttons last
   * asked for (that switch's, or a later press's, switched to after it), and what a press of that
   * mode's button again is answered.
   */
  private readonly pressed = new Map<string, { last: string; again: string }>();

  constructor(
    private readonly core: Core,
    private readonly logger: Logger,
  ) {}

  /** Starts the switch and shows it; never rejects (a failure to show is logged). */
  run(out: ChatOutput, target: string, trigger: SwitchTrigger, lang: Lang, messageId?: number): void {
    const key = messageId === undefined ? undefined : `${out.chatId}:${messageId}`;
    if (key !== undefined) {
      const to = this.core.modes.find(target)?.id ?? target;
      const again = t(
        lang,
        `The switch to ${to} is under way: this message says how it ends.`,
        `La bascule vers ${to} est en cours : ce message dira comment elle se termine.`,
      );
      this.pressed.set(key, { last: to, again });
    }
    // Once the switch has its outcome, before the message shows it: a press the user makes on
    // the outcome is a new one, whenever Telegram's answer to the edit arrives.
    const over = () => {
      if (key !== undefined) this.pressed.delete(key);
    };
    const shown = this.show(out, target, trigger, lang, messageId, over).catch((err: unknown) =>
      this.logger.error({ err, source: trigger.source }, 'could not show a switch'),
    );
    this.shown.add(shown);
    void shown.finally(() => {
      this.shown.delete(shown);
      over();
    });
  }

  /**
   * A mode button of the keyboard message `messageId`, pressed: its switch starts, shown in that
   * message. Returns what the press's answer (the line Telegram shows over the chat) says.
   * Pressed again while the switch that message shows runs (a double tap, before the edit took
   * the buttons away): the mode last asked there is not switched to twice (the second would end
   * "already in mode", over the first one's outcome in that message), and another mode is switched
   * to after it, in a message of its own, as a /mode sent then would be: the last asked wins. A
   * mode that has left the config since the menu was sent is only said to be gone.
   */
  press(out: ChatOutput, target: string, trigger: SwitchTrigger, lang: Lang, messageId: number): string {
    const shown = this.pressed.get(`${out.chatId}:${messageId}`);
    const known = this.core.modes.find(target);
    const to = known?.id ?? target;
    const noMode = () => t(lang, `There is no mode ${to} any more.`, `Il n’y a plus de mode ${to}.`);
    if (shown === undefined) {
      // A menu sent before its mode left the config: the message says so and lists the modes there are.
      this.run(out, target, trigger, lang, messageId);
      return known ? `→ ${to}` : noMode();
    }
    // The message shows a switch under way: the press says the mode is gone and leaves that switch be.
    if (!known) return noMode();
    if (shown.last === to) {
      this.logger.info(
        { chatId: out.chatId, target },
        'mode button pressed again while its switch runs: ignored',
      );
      return shown.again;
    }
    this.run(out, target, trigger, lang);
    const queued = t(
      lang,
      `→ ${to}, once the switch to ${shown.last} is over`,
      `→ ${to}, une fois la bascule vers ${shown.last} finie`,
    );
    this.pressed.set(`${out.chatId}:${messageId}`, { last: to, again: queued });
    return queued;
  }

  /**
   * At start-up: the switch a restart cut ends (resumed, or not tried again),
   * and the chat that asked for it, told it would hear how it ends, is told
   * there, unless it is a notify chat, which gets the wake notice. Told as a
   * notice of its own, kept and retried as the notify chats' are: Telegram
   * failing then, or a stop before it is sent, does not lose it. Returns what
   * stops following.
   */
  followResumed(notifyChats: readonly number[]): () => void {
    const { switcher, notifier } = this.core;
    const follow = (o: SwitchOutcome) => {
      const chat = afterRestart(o.trigger) ? o.trigger.chat : undefined;
      if (!chat || notifyChats.includes(chat.id)) return;
      const kind = o.ok ? 'switch' : 'switch_failed';
      notifier.notify({ kind, text: outcomeText(o, o.trigger.lang ?? 'en'), chat });
    };
    switcher.on('switched', follow);
    return () => switcher.off('switched', follow);
  }

  /** Stops following the switches still running, their lines saying brainstem is restarting; resolves once said (at most `graceMs`). */
  async close(graceMs: number): Promise<void> {
    this.closing.abort();
    await waitAtMost(Promise.all(this.shown), graceMs);
  }

  private async show(
    out: ChatOutput,
    target: string,
    trigger: SwitchTrigger,
    lang: Lang,
    messageId: number | undefined,
    over: () => void,
  ): Promise<void> {
    const { switcher, modes } = this.core;
    const known = modes.find(target);
    // Queued behind a switch under way, even a switch to the mode active now waits for it (a model
    // load can take minutes): the asker is shown it at once, not once the other switch ends.
    const another = known !== undefined && (known.id !== switcher.active().id || switcher.isSwitching());
    const chat = { id: out.chatId, ...(out.topicId !== undefined ? { topicId: out.topicId } : {}) };
    const asked: SwitchTrigger = { ...trigger, chat };
    // The active mode has work to do only when its model went down: then the switcher says it starts.
    let onStarted = () => {};
    const working = new Promise<'working'>((resolve) => {
      onStarted = () => resolve('working');
    });
    const started = (s: SwitchStart) => {
      if (s.trigger === asked) onStarted();
    };
    switcher.on('started', started);
    // Taken off once the switch is shown: the stop's signal lives as long as the process.
    const { signal } = this.closing;
    let onClose = () => {};
    const closed = new Promise<undefined>((resolve) => {
      onClose = () => resolve(undefined);
      if (signal.aborted) onClose();
      signal.addEventListener('abort', onClose, { once: true });
    });
    try {
      // Queued before the progress shows: a message sent once the user sees it waits for the switch.
      const switching = switcher.switchTo(target, asked);
      let id = messageId;
      const showProgress = async (mode: string) => {
        const progress = switchingText(mode, lang);
        if (id === undefined) id = await out.sendHtml(progress);
        else await out.editHtml(id, progress);
      };
      if (another) await showProgress(known.id);
      else if (known && (await Promise.race([working, switching, closed])) === 'working')
        await showProgress(known.id);
      const outcome = await Promise.race([switching, closed]);
      over();
      const to = known?.id ?? target;
      // Left to the next start by the stop, it is said as when the stop comes first: not as a failure.
      const left = outcome === undefined || (!outcome.ok && outcome.leftToNextStart === true);
      const text = left
        ? restartingText(to, switcher.resumable(asked), lang)
        : outcomeText(outcome, lang).text;
      if (id === undefined || (await out.editHtml(id, text)) === 'gone') await out.sendHtml(text);
    } finally {
      switcher.off('started', started);
      signal.removeEventListener('abort', onClose);
    }
  }
}
