import type { BotCommand } from 'grammy/types';
import { colon, type Lang, t } from '../../../src/i18n.js';
import { PROXY_TAG } from '../../../src/notices.js';
import { OPENCLAW_ALIAS_PREFIX as OC } from '../../telegram-front/commands-merge.js';
import type { BotDeps } from '../deps.js';
import { escapeHtml } from '../format/render.js';

/**
 * /help (and /start, and "help" in words): where messages go, the command
 * menu as the table gives it for this set-up (commands/table.ts), the
 * shortcut words. HTML.
 */
export function helpHtml(deps: BotDeps, lang: Lang, menu: readonly BotCommand[]): string {
  const front = deps.front !== undefined;
  const active = escapeHtml(deps.core.switcher.active().id);
  const route = front
    ? t(
        lang,
        `Your messages go to OpenClaw (now on <b>${active}</b>); these commands are brainstem's, OpenClaw's own of the same name are /${OC}&lt;name&gt;.`,
        `Vos messages vont à OpenClaw (en ce moment sur <b>${active}</b>) ; ces commandes sont celles de brainstem, celles d’OpenClaw du même nom sont /${OC}&lt;nom&gt;.`,
      )
    : t(
        lang,
        `Your messages go to the active brain (now <b>${active}</b>).`,
        `Vos messages vont au cerveau actif (en ce moment <b>${active}</b>).`,
      );
  return [
    `${PROXY_TAG} <b>brainstem</b>. ${route}`,
    ...menu.map((c) => `/${c.command}${colon(lang)} ${escapeHtml(c.description)}`),
    ...shortcutLine(deps, lang),
    front
      ? t(lang, 'You can also say “switch to local”.', 'Vous pouvez aussi dire « passe en mode local ».')
      : t(
          lang,
          `You can also say “switch to local”. Photos and documents are passed to the brain; ${voiceLine(deps, lang)}.`,
          `Vous pouvez aussi dire « passe en mode local ». Photos et documents sont transmis au cerveau ; ${voiceLine(deps, lang)}.`,
        ),
  ].join('\n');
}

/** What becomes of a voice message: transcribed when speech to text is set up (route/voice.ts), else one reply says how. */
function voiceLine(deps: BotDeps, lang: Lang): string {
  return deps.transcriber
    ? t(
        lang,
        'voice messages are transcribed, and the transcript goes to the brain',
        'les messages vocaux sont transcrits, et la transcription va au cerveau',
      )
    : t(
        lang,
        'voice messages need speech to text, not set up here (<code>transcription</code> in brainstem.json)',
        'les messages vocaux demandent une transcription, non configurée ici (<code>transcription</code> dans brainstem.json)',
      );
}

/**
 * The shortcut words, when the tools run: they are answered without a brain. Those that ask first
 * carry the 🔒 the line speaks of, as /run marks them (runListHtml): one this configuration refuses
 * (a make target not allowed) asks nothing, it says what to configure.
 */
function shortcutLine(deps: BotDeps, lang: Lang): string[] {
  const tools = deps.tools;
  const words = tools?.shortcuts.list().map((s) => {
    const resolved = tools.resolveShortcut(s.word);
    return resolved?.mutating && !resolved.refusal ? `${s.word} 🔒` : s.word;
  });
  if (!words?.length) return [];
  return [
    t(
      lang,
      `Shortcut words run their tool without a brain (🔒 ones ask first): ${escapeHtml(words.join(', '))} (/run lists them).`,
      `Les mots raccourcis lancent leur outil sans passer par un cerveau (ceux marqués 🔒 demandent d’abord) : ${escapeHtml(words.join(', '))} (/run les liste).`,
    ),
  ];
}
