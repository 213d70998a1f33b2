import { InlineKeyboard } from 'grammy';
import { z } from 'zod';
import { alreadyInMode, modeId } from '../../../src/chat/facts.js';
import type { StatusLine } from '../../../src/chat/status-lines.js';
import type { Core } from '../../../src/core.js';
import { formatDuration, type Lang, t } from '../../../src/i18n.js';
import { PROXY_TAG } from '../../../src/notices.js';
import type { SwitchOutcome, SwitchTrigger } from '../../../src/switcher.js';
import { shorten } from '../../../src/text.js';
import { escapeHtml, htmlMarkup } from '../format/render.js';
import type { ChatOutput } from '../send/output.js';
import { OWN_DATA_PREFIX, ownData } from './callback-data.js';

/** Callback data of a mode button: `bs:mode:<id>`. Anything else pressed is ignored. */
export const modeCallbackSchema = z
  .string()
  .regex(ownData('mode:[a-z0-9_-]{1,40}$'))
  .transform((data) => data.slice(`${OWN_DATA_PREFIX}mode:`.length));

/** The /mode message: every mode with its readiness, the active one marked, one button per mode. */
export function modeMenu(lines: StatusLine[], lang: Lang): { html: string; keyboard: InlineKeyboard } {
  const keyboard = new InlineKeyboard();
  for (const l of lines) {
    keyboard
      .text(
        `${l.active ? '▶ ' : ''}${l.mode.id} ${l.ready ? '✅' : '💤'}`,
        `${OWN_DATA_PREFIX}mode:${l.mode.id}`,
      )
      .row();
  }
  const body = lines.map(
    (l) =>
      `${l.ready ? '✅' : '💤'} ${modeId(l.mode.id, l.active, htmlMarkup)} ${escapeHtml(l.mode.description)}${l.ready ? '' : ` <i>(${escapeHtml(l.detail)})</i>`}`,
  );
  return {
    html: [
      t(lang, `${PROXY_TAG} <b>Modes</b>: pick one`, `${PROXY_TAG} <b>Modes</b> : choisissez`),
      ...body,
      t(
        lang,
        '<i>💤 = not ready now; switching to it loads it.</i>',
        '<i>💤 = pas prêt ; le choisir le charge.</i>',
      ),
    ].join('\n'),
    keyboard,
  };
}

export function switchingText(target: string, lang: Lang): string {
  return t(
    lang,
    `${PROXY_TAG} Switching to <b>${escapeHtml(target)}</b>… (waiting until it answers)`,
    `${PROXY_TAG} Bascule vers <b>${escapeHtml(target)}</b>… (en attendant qu’il réponde)`,
  );
}

/** The short result shown in place of the progress line; the wake notice tells the rest. */
export function outcomeText(o: SwitchOutcome, lang: Lang): string {
  if (o.ok && o.alreadyActive) return alreadyInMode(o.to, lang, htmlMarkup);
  if (o.ok) {
    return t(
      lang,
      `${PROXY_TAG} ✅ Mode <b>${escapeHtml(o.to)}</b> is ready (from ${escapeHtml(o.from)} in ${formatDuration(o.ms)}).`,
      `${PROXY_TAG} ✅ Mode <b>${escapeHtml(o.to)}</b> prêt (depuis ${escapeHtml(o.from)} en ${formatDuration(o.ms)}).`,
    );
  }
  // The target may be whatever was typed: shown back short, so the reply always fits.
  const to = escapeHtml(shorten(o.to, 80));
  const reason = escapeHtml(shorten(o.reason, 1000));
  return t(
    lang,
    `${PROXY_TAG} ❌ Switch to <b>${to}</b> failed: ${reason}. Still on <b>${escapeHtml(o.from)}</b>.`,
    `${PROXY_TAG} ❌ Échec de la bascule vers <b>${to}</b> : ${reason}. Toujours en <b>${escapeHtml(o.from)}</b>.`,
  );
}

/**
 * Runs a switch and keeps one message up to date: the progress line at once
 * (a new message, or the keyboard message given), then the outcome. Switching
 * can take minutes (a model load): callers do not wait for it.
 */
export async function switchWithProgress(
  core: Core,
  out: ChatOutput,
  target: string,
  trigger: SwitchTrigger,
  lang: Lang,
  messageId?: number,
): Promise<SwitchOutcome> {
  const known = core.modes.find(target);
  const showProgress = known !== undefined && known.id !== core.switcher.active().id;
  // Queued before the progress shows: a message sent once the user sees it waits for the switch.
  const switching = core.switcher.switchTo(target, trigger);
  let id = messageId;
  if (showProgress) {
    const progress = switchingText(known.id, lang);
    if (id === undefined) id = await out.sendHtml(progress);
    else await out.editHtml(id, progress);
  }
  const outcome = await switching;
  const text = outcomeText(outcome, lang);
  if (id === undefined || (await out.editHtml(id, text)) === 'gone') await out.sendHtml(text);
  return outcome;
}
