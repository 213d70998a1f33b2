import { formatDuration, formatUtc, type Lang, t } from '../../../src/i18n.js';
import { type LimitState, metBy } from '../../../src/usage-limit.js';
import { escapeHtml } from '../format/render.js';

/**
 * The lines /status and /usage show while Claude's subscription limit is
 * reached: since when, when it resets (UTC, and how long until then), and
 * whether brainstem falls back to another mode meanwhile. None otherwise.
 */
export function limitLines(
  state: LimitState | undefined,
  fallbackMode: string | undefined,
  lang: Lang,
  now = Date.now(),
): string[] {
  if (!state) return [];
  // A limit the claude_code tool met names the tool: its made-up mode is no mode of the owner's.
  const by = metBy(lang, state.mode, state.tool).text;
  const reset =
    state.resetsAt === undefined
      ? t(lang, 'Claude did not say when it resets', 'Claude n’a pas dit quand elle se réinitialise')
      : t(
          lang,
          `it resets at ${formatUtc(state.resetsAt)} (in ${formatDuration(Math.max(0, state.resetsAt - now))})`,
          `réinitialisation à ${formatUtc(state.resetsAt)} (dans ${formatDuration(Math.max(0, state.resetsAt - now))})`,
        );
  const fallback = fallbackMode
    ? t(
        lang,
        `Automatic fallback: on, to <b>${escapeHtml(fallbackMode)}</b> until the reset.`,
        `Repli automatique : activé, vers <b>${escapeHtml(fallbackMode)}</b> jusqu’à la réinitialisation.`,
      )
    : t(
        lang,
        'Automatic fallback: off (set usageLimit.fallbackMode to use a local mode meanwhile).',
        'Repli automatique : désactivé (usageLimit.fallbackMode pour passer en mode local en attendant).',
      );
  return [
    t(
      lang,
      `⛔ Claude's usage limit is reached (${by}, since ${formatUtc(state.hitAt)}); ${reset}.`,
      `⛔ Limite d’usage Claude atteinte (${by}, depuis ${formatUtc(state.hitAt)}) ; ${reset}.`,
    ),
    fallback,
  ];
}
