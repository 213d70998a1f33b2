import type { Bot } from 'grammy';
import { type Lang, langOf, t } from '../../../src/i18n.js';
import { detectIntent } from '../../../src/intents.js';
import { PROXY_TAG } from '../../../src/notices.js';
import { commandOf } from '../commands/handler.js';
import { commandNames } from '../commands/table.js';
import type { BotDeps } from '../deps.js';
import { submitTurn } from './messages.js';
import { outputFor } from './topic.js';

/**
 * Edited messages on the direct route (with the front on, an edit is
 * OpenClaw's). Someone who fixes "wht is 2+2" into "what is 2+3" means the new
 * text; they get an answer to it, never silence:
 *
 * - while the message's turn still waits in the chat's queue, the turn answers
 *   the text as it now reads (one answer, to what the user meant), and the
 *   chat is told the edit was taken;
 * - once its answer has begun (or ended), the edit is a new turn, queued as
 *   any message is: the brain is told it is an edit of a message sent earlier
 *   (when), and what that message holds when the caption of a file or photo
 *   was edited; the answer that was running goes on (it may have run tools:
 *   /stop stops it);
 * - an edit into one of brainstem's commands, a switch request or a shortcut
 *   word is not run (an edit must not re-run /upgrade or a deploy): the chat
 *   is told to send it again;
 * - an edit that leaves no text (a live location moving, a caption removed)
 *   asks nothing: no answer (a message still waiting goes without its caption).
 *
 * The allow-list (access.ts) stands before this as before every message.
 */

export function registerEdits(bot: Bot, deps: BotDeps): void {
  const own = commandNames(false, deps.tools !== undefined);
  const isMode = (name: string) => deps.core.modes.find(name) !== undefined;

  bot.on('edited_message', async (ctx) => {
    const edited = ctx.editedMessage;
    const text = edited.text ?? edited.caption;
    if (text === undefined || text.trim() === '') {
      // Nothing asked; a message still waiting is answered as it now reads (its caption removed), unsaid.
      deps.queued.replace(edited);
      return;
    }
    const lang = langOf(ctx.from?.language_code);
    const out = outputFor(ctx);
    const replyTo = { replyTo: edited.message_id };
    if (edited.text !== undefined) {
      // In a group, a command meant for another bot is not ours.
      const addressee = /^\/\w+@(\w+)/.exec(edited.text)?.[1];
      if (addressee && addressee.toLowerCase() !== ctx.me.username.toLowerCase()) return;
      const command = commandOf(edited.text);
      const intent = detectIntent(edited.text, isMode);
      if (
        (command !== undefined && own.has(command)) ||
        (intent !== undefined && intent.kind !== 'usage') ||
        (!edited.text.startsWith('/') && deps.tools?.resolveShortcut(edited.text) !== undefined)
      ) {
        await out.sendHtml(notRunText(lang), replyTo);
        return;
      }
    }
    if (deps.queued.replace(edited)) {
      await out.sendHtml(takenText(lang), replyTo);
      return;
    }
    submitTurn(deps, ctx, text, lang);
  });
}

const notRunText = (lang: Lang) =>
  t(
    lang,
    `${PROXY_TAG} ✏️ An edited message is not run as a command, a mode switch or a shortcut: send it again as a new message.`,
    `${PROXY_TAG} ✏️ Un message modifié n’est pas exécuté comme commande, changement de mode ou raccourci : renvoyez-le dans un nouveau message.`,
  );

/** Said when an edit is taken by the turn of its message, still waiting in the queue. */
export const takenText = (lang: Lang) =>
  t(
    lang,
    `${PROXY_TAG} ✏️ Edit taken: the queued message will be answered as it now reads.`,
    `${PROXY_TAG} ✏️ Modification prise en compte : le message en attente recevra une réponse telle qu’il est maintenant.`,
  );
