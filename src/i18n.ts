import type { Html } from './html.js';
import type { Lang } from './intents.js';

export type { Lang };

/** Formats a duration for people: 850 ms, 3.2 s, 4 min 10 s, 2 h 05 min. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  const m = Math.round(s / 60);
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
}

const DAY_MS = 86_400_000;

/**
 * "3 d 4 h" ("3 j 4 h" in French) past a day, else formatDuration: an expiry or a renewal weeks
 * away (or an access token that aged for weeks) read as "866 h 12 min" otherwise.
 */
export function formatSpan(ms: number, lang: Lang): string {
  if (ms < DAY_MS) return formatDuration(Math.max(0, ms));
  const hours = Math.floor(ms / 3_600_000);
  return `${Math.floor(hours / 24)} ${t(lang, 'd', 'j')} ${hours % 24} h`;
}

export function formatUtc(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/**
 * A text worded in each language brainstem speaks, for one that is made far from its reader (a
 * brain's readiness): the detail in it (a path, a URL, an exit code) is in both.
 */
export interface Said {
  en: string;
  fr: string;
}

/** The same words in every language: a text from outside (a thrown error's message) that nobody can translate. */
export function untranslated(text: string): Said {
  return { en: text, fr: text };
}

/** The words of `said` for the reader's language. */
export function saidIn(said: Said, lang: Lang | undefined): string {
  return t(lang, said.en, said.fr);
}

/** Picks the text (or the HTML) for the language; French only when asked for. */
export function t(lang: Lang | undefined, en: string, fr: string): string;
export function t(lang: Lang | undefined, en: Html, fr: Html): Html;
export function t(lang: Lang | undefined, en: string | Html, fr: string | Html): string | Html {
  return lang === 'fr' ? fr : en;
}

/**
 * A label's colon: French typography puts a space before it (as before ; ? !). For the lines
 * whose label and value come from elsewhere; a text written out in both languages has its own.
 */
export function colon(lang: Lang | undefined): string {
  return t(lang, ':', ' :');
}

export function langOf(code: string | undefined): Lang {
  return code?.toLowerCase().startsWith('fr') ? 'fr' : 'en';
}

/** The kv key holding the language of the last allowed user who wrote to the bot. */
export const NOTICE_LANG_KEY = 'notice_lang';

/** Notices go to chats, not to one reader: they speak the language the owner last wrote in. */
export function noticeLang(kv: { get(key: string): string | undefined }): Lang {
  return kv.get(NOTICE_LANG_KEY) === 'fr' ? 'fr' : 'en';
}
