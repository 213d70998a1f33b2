import type { Context, MiddlewareFn } from 'grammy';
import { TELEGRAM_SHARED_SENDERS } from '../../src/config.js';
import { langOf, t } from '../../src/i18n.js';
import type { Logger } from '../../src/logger.js';
import { PROXY_TAG } from '../../src/notices.js';
import { DIALOG_DATA } from './approvals/dialogs.js';
import { APPROVAL_DATA } from './approvals/view.js';
import { escapeHtml } from './format/render.js';
import { outputFor } from './route/topic.js';
import { answerPress } from './send/press.js';

/** A stranger who keeps writing gets one refusal per this period; every attempt is still logged. */
const REFUSAL_EVERY_MS = 10 * 60_000;

/** The buttons an approver answers: tool approvals and confirmations. */
const isAnswer = (ctx: Context) => {
  const data = ctx.callbackQuery?.data ?? '';
  return APPROVAL_DATA.test(data) || DIALOG_DATA.test(data);
};

/**
 * Only the allowed users reach anything past this point: no brain, no tool,
 * no command, whatever the update (a message, an edit of one, a button
 * press). An approver who is not one of them gets through only with a
 * press on an approval or confirmation button, which its own handler judges.
 * A stranger is told their user id once (so the owner can add it
 * if it is theirs), and every refused update is logged. A message sent on
 * behalf of a chat (an anonymous admin, a channel) has a sender Telegram
 * shares with everyone writing that way: it is never shown as theirs, and
 * they are asked to write as themselves. In a group the refusal answers only
 * a message that addresses the bot (a command, a mention, a reply to it):
 * with privacy mode off the bot sees every member's chatter, and telling each
 * of them the bot is private would fill the group with refusals.
 */
export function allowOnly(
  allowed: readonly number[],
  approvers: ReadonlySet<number>,
  logger: Logger,
): MiddlewareFn<Context> {
  const ids = new Set(allowed);
  const refusedAt = new Map<number, number>();
  return async (ctx, next) => {
    const from = ctx.from;
    if (!from) return;
    if (ids.has(from.id) || (approvers.has(from.id) && isAnswer(ctx))) return next();
    // An edit is judged as the message it edits: the same sender, refused the same way.
    const onBehalf = (ctx.message ?? ctx.editedMessage)?.sender_chat;
    logger.warn(
      {
        userId: from.id,
        username: from.username,
        chatId: ctx.chat?.id,
        senderChatId: onBehalf?.id,
        update: ctx.callbackQuery ? 'callback_query' : ctx.editedMessage ? 'edited_message' : 'message',
      },
      'refused a Telegram user who is not on the allow-list',
    );
    const lang = langOf(from.language_code);
    const text =
      onBehalf || TELEGRAM_SHARED_SENDERS.has(from.id)
        ? t(
            lang,
            `${PROXY_TAG} This bot is private, and this message does not say who you are: it was sent anonymously or as a channel. Write as yourself to get your Telegram user id for the owner.`,
            `${PROXY_TAG} Ce bot est privé, et ce message ne dit pas qui vous êtes : il a été envoyé anonymement ou au nom d’une chaîne. Écrivez en votre nom pour obtenir votre identifiant Telegram à donner au propriétaire.`,
          )
        : t(
            lang,
            `${PROXY_TAG} This bot is private. Your Telegram user id is ${from.id}: give it to the owner if you should have access.`,
            `${PROXY_TAG} Ce bot est privé. Votre identifiant Telegram est ${from.id} : donnez-le au propriétaire si vous devez y avoir accès.`,
          );
    if (ctx.callbackQuery) {
      await answerPress(ctx, logger, { text, show_alert: true });
      return;
    }
    if (ctx.chat?.type !== 'private' && !addressesBot(ctx)) return;
    // The shared sender stands for many people in many chats: its refusals are counted per chat it speaks for.
    const sender = onBehalf?.id ?? from.id;
    const last = refusedAt.get(sender);
    if (last !== undefined && Date.now() - last < REFUSAL_EVERY_MS) return;
    refusedAt.set(sender, Date.now());
    // In the forum topic written in, as every answer, not in the General topic.
    if (ctx.chat) await outputFor(ctx).sendHtml(escapeHtml(text));
  };
}

/** Whether a group message is meant for this bot: a command (ours or for every bot), a mention of it, a reply to it. */
function addressesBot(ctx: Context): boolean {
  const message = ctx.message ?? ctx.editedMessage;
  if (!message) return false;
  if (message.reply_to_message?.from?.id === ctx.me.id) return true;
  const text = message.text ?? message.caption ?? '';
  const entities = message.entities ?? message.caption_entities ?? [];
  const me = `@${ctx.me.username}`.toLowerCase();
  return entities.some((e) => {
    const said = text.slice(e.offset, e.offset + e.length).toLowerCase();
    if (e.type === 'mention') return said === me;
    if (e.type === 'text_mention') return e.user.id === ctx.me.id;
    if (e.type === 'bot_command') return e.offset === 0 && (!said.includes('@') || said.endsWith(me));
    return false;
  });
}
