import { randomUUID } from 'node:crypto';
import { headChars } from './text.js';

/**
 * How each face names a conversation, in one place: the key is what the
 * turn lock, the brain sessions, the chat history and the usage ledger share,
 * so two faces must never make the same key for different conversations.
 */

/**
 * A Telegram chat's conversation (the direct route's history, its brain
 * sessions, /new): each topic of a forum group is one of its own.
 */
export function telegramSessionKey(chatId: number, topicId?: number): string {
  return topicId === undefined ? `telegram:${chatId}` : `telegram:${chatId}:topic:${topicId}`;
}

/** How the keys brainstem makes begin (a Telegram chat, a conversation found by its history, one of a `user`'s, brain_chat's). */
const MADE_PREFIXES = ['telegram:', 'conv:', 'user:', 'tool:'];

/**
 * An OpenAI request's conversation as the client names it: its own key
 * (`x-session-key`, `x-openclaw-session-key`). Undefined when it names none:
 * what the conversation has said then decides (src/conversations.ts). A key
 * of its own that begins like one brainstem makes (`telegram:42`) goes under
 * `client:`, so it never shares that conversation; any other is kept as given.
 */
export function openAiSessionKey(header: string | undefined): string | undefined {
  const key = header?.trim().slice(0, 200);
  if (!key) return undefined;
  return MADE_PREFIXES.some((p) => key.startsWith(p)) ? `client:${key}` : key;
}

/**
 * The end user an OpenAI request names in `user`, or undefined. OpenAI
 * defines it as who is asking, not which of their chats: it scopes the
 * conversations found by their history (two users with the same history never
 * share one) and names them in the usage ledger (`user:<user>:<uuid>`), but
 * never makes one user's chats a single conversation.
 */
export function openAiUser(user: string | null | undefined): string | undefined {
  return user?.trim() ? headChars(user.trim(), 200) : undefined;
}

/**
 * A brain_chat conversation (a brain or a script asking a brain): under
 * `tool:`, a new one when none is given. A key given that is not a tool's
 * (`telegram:42`) is put there too, so a brain never joins a person's
 * conversation, its history or what was allowed in it.
 */
export function toolSessionKey(given: string | undefined): string {
  if (given === undefined) return `tool:${randomUUID()}`;
  return given.startsWith('tool:') ? given : `tool:${given}`;
}
