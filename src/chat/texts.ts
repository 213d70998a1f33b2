import type { ModeConfig } from '../config.js';
import { colon, formatDuration, type Lang, saidIn, t } from '../i18n.js';
import { PROXY_TAG } from '../notices.js';
import type { SwitchOutcome } from '../switcher.js';
import {
  alreadyInMode,
  markdown,
  modeId,
  readyIcon,
  type StatusFacts,
  statusWord,
  uptimeLine,
} from './facts.js';

/**
 * What brainstem says about itself inside a conversation, whatever face
 * carries it (the OpenAI endpoint, Telegram's direct route, brain_chat):
 * Markdown, in English or French. The words that ask for these are
 * recognised by src/intents.ts; the words shared with Telegram's own texts
 * (handlers/telegram/views) come from facts.ts.
 */

/** `shortcutWords`: the words this conversation's words run a tool with (none where they go to the brain). */
export function helpText(lang: Lang, shortcutWords: readonly string[] = []): string {
  const words = shortcutWords.map((w) => `\`${w}\``).join(', ');
  return [
    t(lang, `${PROXY_TAG} brainstem answers these itself:`, `${PROXY_TAG} brainstem répond lui-même à :`),
    t(
      lang,
      '- `mode <name>` or "switch to <name>": change the brain',
      '- `mode <nom>` ou « passe en mode <nom> » : changer de cerveau',
    ),
    t(lang, '- `status`: active mode and readiness', '- `statut` : mode actif et disponibilité'),
    t(lang, '- `modes`: the list of modes', '- `modes` : la liste des modes'),
    t(lang, '- `help`: this text', '- `aide` : ce texte'),
    ...(words
      ? [
          t(
            lang,
            `- ${words}: shortcut words, each runs its tool without a brain (one that changes things asks you to send it again followed by \`yes\`)`,
            `- ${words} : mots raccourcis, chacun lance son outil sans cerveau (celui qui modifie quelque chose demande de le renvoyer suivi de \`oui\`)`,
          ),
        ]
      : []),
    t(lang, 'Anything else goes to the active brain.', 'Tout le reste va au cerveau actif.'),
  ].join('\n');
}

export function modesText(modes: readonly ModeConfig[], activeId: string, lang: Lang): string {
  const lines = modes.map(
    (m) =>
      `- ${modeId(m.id, m.id === activeId, markdown)} (${m.kind}) ${m.description}${m.aliases.length ? ` [${m.aliases.join(', ')}]` : ''}`,
  );
  return [t(lang, `${PROXY_TAG} Modes:`, `${PROXY_TAG} Modes :`), ...lines].join('\n');
}

export function statusText(facts: StatusFacts, lang: Lang): string {
  const body = facts.lines.map(
    (l) =>
      `- ${modeId(l.mode.id, l.active, markdown)}${colon(lang)} ${readyIcon(l.ready)} ${saidIn(l.detail, lang)}`,
  );
  return [`${PROXY_TAG} ${statusWord(lang)}`, ...body, uptimeLine(facts.uptimeMs, lang)].join('\n');
}

/** The answer to a switch asked for in words. */
export function switchReply(o: SwitchOutcome, lang: Lang): string {
  // Left to the next start by a stop, it did not fail: the reason says whether that start makes it.
  if (!o.ok && o.leftToNextStart)
    return t(
      lang,
      `${PROXY_TAG} ⏳ Switch to **${o.to}** not over: ${o.reason}. Still on **${o.from}** until then.`,
      `${PROXY_TAG} ⏳ Bascule vers **${o.to}** pas finie : ${o.reason}. Toujours en **${o.from}** d’ici là.`,
    );
  // As in Telegram: the reason alone (a command's output) says neither that the switch failed nor
  // which mode goes on answering.
  if (!o.ok)
    return t(
      lang,
      `${PROXY_TAG} ❌ Switch to **${o.to}** failed: ${o.reason}. Still on **${o.from}**.`,
      `${PROXY_TAG} ❌ Échec de la bascule vers **${o.to}** : ${o.reason}. Toujours en **${o.from}**.`,
    );
  if (o.alreadyActive) return alreadyInMode(o.to, lang, markdown);
  return t(
    lang,
    `${PROXY_TAG} Switched to **${o.to}** in ${formatDuration(o.ms)}; it is ready.`,
    `${PROXY_TAG} Mode **${o.to}** activé en ${formatDuration(o.ms)} ; il est prêt.`,
  );
}
