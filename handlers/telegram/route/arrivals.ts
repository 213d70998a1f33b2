import type { Context, MiddlewareFn } from 'grammy';
import type { Message } from 'grammy/types';
import { langOf } from '../../../src/i18n.js';
import type { TurnsUnderWay } from './cut-turns.js';
import { topicOfCtx } from './topic.js';

/**
 * What a message holds that brainstem answers (its text or caption, a photo, a file, a recording).
 * Not a sticker, a location and the like, whose "not supported" reply is no answer to lose, nor a
 * live location's edits, which come every few seconds and ask nothing.
 */
function asksSomething(message: Message): boolean {
  return Boolean(
    message.text ??
      message.caption ??
      message.photo ??
      message.document ??
      message.voice ??
      message.audio ??
      message.video_note,
  );
}

/**
 * Installed first, before the chat lanes: records each message (or edit) of an allowed user as under
 * way the moment the runner hands it over, which is also when the runner fetches on and so confirms
 * it at Telegram (see TurnsUnderWay.arriving). Synchronous up to the record: the runner's next fetch
 * comes after it.
 */
export function recordArrivals(
  underWay: TurnsUnderWay,
  allowedUsers: readonly number[],
): MiddlewareFn<Context> {
  const allowed = new Set(allowedUsers);
  return (ctx, next) => {
    const message = ctx.message ?? ctx.editedMessage;
    const chatId = ctx.chat?.id;
    const userId = ctx.from?.id;
    if (
      !message ||
      chatId === undefined ||
      userId === undefined ||
      !allowed.has(userId) ||
      !asksSomething(message)
    )
      return next();
    return underWay.arriving(
      {
        chatId,
        topicId: topicOfCtx(ctx),
        kind: 'answer',
        lang: langOf(ctx.from?.language_code),
        said: message.text ?? message.caption ?? '',
      },
      next,
    );
  };
}
