import { InlineKeyboard } from 'grammy';
import { z } from 'zod';
import { modeId } from '../../../src/chat/facts.js';
import type { StatusLine } from '../../../src/chat/status-lines.js';
import { type Lang, saidIn, t } from '../../../src/i18n.js';
import { PROXY_TAG } from '../../../src/notices.js';
import { escapeHtml, htmlMarkup } from '../format/render.js';
import { OWN_DATA_PREFIX, ownData } from './callback-data.js';

/** Callback data of a mode button: `bs:mode:<id>`. Anything else pressed is ignored. */
export const modeCallbackSchema = z
  .string()
  .regex(ownData('mode:[a-z0-9_-]{1,40}$'))
  .transform((data) => data.slice(`${OWN_DATA_PREFIX}mode:`.length));

/** The /mode message: every mode with its readiness, the active one marked, one button per mode. */
export function modeMenu(
  lines: StatusLine[],
  lang: Lang,
  /** Whether a switch to the mode loads its model (src/modes.ts loadsOnSwitch). */
  loads: (mode: StatusLine['mode']) => boolean,
): { html: string; keyboard: InlineKeyboard } {
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
      `${l.ready ? '✅' : '💤'} ${modeId(l.mode.id, l.active, htmlMarkup)} ${escapeHtml(l.mode.description)}${l.ready ? '' : ` <i>(${escapeHtml(saidIn(l.detail, lang))})</i>`}`,
  );
  return {
    html: [
      t(lang, `${PROXY_TAG} <b>Modes</b>: pick one`, `${PROXY_TAG} <b>Modes</b> : choisissez`),
      ...body,
      ...sleepLegend(lines, lang, loads),
    ].join('\n'),
    keyboard,
  };
}

/**
 * What 💤 means and what switching to such a mode does, true of each: a switch loads the model only
 * of a llama mode whose start commands brainstem runs (the active one too: it starts it again); any
 * other (a Claude mode, a server someone else starts) it waits for, and fails saying why when it
 * does not come. No 💤 shown, no legend.
 */
function sleepLegend(
  lines: StatusLine[],
  lang: Lang,
  loads: (mode: StatusLine['mode']) => boolean,
): string[] {
  const asleep = lines.filter((l) => !l.ready);
  if (asleep.length === 0) return [];
  const names = (ls: StatusLine[]) => ls.map((l) => escapeHtml(l.mode.id)).join(', ');
  const loaded = asleep.filter((l) => loads(l.mode));
  // The active one is switched to only when its model is to be loaded again: otherwise "already in".
  const waited = asleep.filter((l) => !loads(l.mode) && !l.active);
  const said = [t(lang, '💤 = not ready now.', '💤 = pas prêt.')];
  if (loaded.length > 0) {
    said.push(
      t(
        lang,
        `Switching to ${names(loaded)} loads its model.`,
        `Choisir ${names(loaded)} charge son modèle.`,
      ),
    );
  }
  if (waited.length > 0) {
    said.push(
      t(
        lang,
        `Switching to ${names(waited)} waits for it to be ready, or says why it is not.`,
        `Choisir ${names(waited)} attend qu’il soit prêt, ou dit pourquoi il ne l’est pas.`,
      ),
    );
  }
  return [`<i>${said.join(' ')}</i>`];
}
