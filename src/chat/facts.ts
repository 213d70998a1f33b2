import type { ModeConfig } from '../config.js';
import { formatDuration, type Lang, t } from '../i18n.js';
import { PROXY_TAG } from '../notices.js';
import type { StatusLine } from './status-lines.js';

/**
 * What brainstem's answers about itself are made of, whichever face words
 * them: the chat's `status` (src/chat/texts.ts), Telegram's /status. One
 * source, so the faces cannot disagree on the uptime or the readiness, nor
 * word them differently (the words below).
 */
export interface StatusFacts {
  active: ModeConfig;
  switching: boolean;
  /** Every mode's readiness, probed now (bounded) or reused from a recent probe. */
  lines: StatusLine[];
  uptimeMs: number;
  version: string;
}

/**
 * How a face marks up what brainstem says about itself: the chat's texts are
 * Markdown (src/chat/texts.ts), Telegram's HTML (handlers/telegram/views).
 * The words below are written once and take the face's markup, so the two
 * faces word a fact the same way.
 */
export interface Markup {
  /** Emphasis (the active mode), around text already made safe. */
  strong(text: string): string;
  /** Text from config or a probe, made safe for the face. */
  plain(text: string): string;
}

/** The chat's markup: Markdown. */
export const markdown: Markup = { strong: (s) => `**${s}**`, plain: (s) => s };

/** A mode's id, the active one emphasised and pointed at. */
export function modeId(id: string, active: boolean, m: Markup): string {
  return active ? `${m.strong(m.plain(id))} ←` : m.plain(id);
}

/** Whether a mode answers now, as a status line shows it. */
export const readyIcon = (ready: boolean): string => (ready ? '✅' : '❌');

/** The status answer's title word. */
export const statusWord = (lang: Lang): string => t(lang, 'Status', 'Statut');

/** How long brainstem has been running. */
export function uptimeLine(uptimeMs: number, lang: Lang): string {
  const uptime = formatDuration(uptimeMs);
  return t(lang, `Uptime: ${uptime}`, `En marche depuis : ${uptime}`);
}

/** A switch to the mode already active. */
export function alreadyInMode(id: string, lang: Lang, m: Markup): string {
  return t(
    lang,
    `${PROXY_TAG} Already in mode ${m.strong(m.plain(id))}.`,
    `${PROXY_TAG} Déjà en mode ${m.strong(m.plain(id))}.`,
  );
}
