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
      `${l.ready ? '✅' : '💤'} ${modeId(l.mode.id, l.active, htmlMarkup)} ${escapeHtml(l.mode.description)}${l.ready ? '' : ` <i>(${escapeHtml(saidIn(l.detail, lang))})</i>`}`,
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
