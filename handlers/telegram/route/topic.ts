import type { Context } from 'grammy';
import type { Message } from 'grammy/types';
import { langOf } from '../../../src/i18n.js';
import type { ChatOutput } from '../send/output.js';
import { linesOutput } from '../send/outside-topic.js';
import type { TurnKey } from '../turns.js';

/**
 * Forum topics: each topic of a forum group is a conversation of its own
 * (its brain session, its history, its queue of turns, its /new), and what
 * brainstem says about a message goes to the topic it came from.
 *
 * Only `is_topic_message` marks a topic: in a group without topics, a reply
 * also carries a `message_thread_id` (the thread of replies), which is not a
 * conversation. The General topic has no thread id and stays the chat's own.
 */
export function topicOf(
  message: Pick<Message, 'is_topic_message' | 'message_thread_id'> | undefined,
): number | undefined {
  return message?.is_topic_message ? message.message_thread_id : undefined;
}

/** The topic of the update's message, or of the message it edits, or of the message under a pressed button. */
export function topicOfCtx(ctx: Context): number | undefined {
  const under = ctx.callbackQuery?.message;
  return topicOf(
    ctx.message ?? ctx.editedMessage ?? (under && 'is_topic_message' in under ? under : undefined),
  );
}

/** The key of the queue the turns of a chat, or of one of its topics, wait in. */
export function topicTurnKey(chatId: number, topicId: number | undefined): TurnKey {
  return topicId === undefined ? chatId : `${chatId}:topic:${topicId}`;
}

/**
 * Output to the chat of the update, in the topic it came from, for what brainstem says there besides
 * an answer: in a topic closed or deleted since, to the group outside it, saying why in the language
 * of whoever sent the update (linesOutput).
 */
export function outputFor(ctx: Context): ChatOutput {
  return linesOutput(ctx.api, ctx.chat?.id ?? 0, topicOfCtx(ctx), langOf(ctx.from?.language_code));
}
