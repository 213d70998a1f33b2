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

/** How the keys brainstem makes begin (a Telegram chat, a conversation found by its history, a `user`, brain_chat's). */
const MADE_PREFIXES = ['telegram:', 'conv:', 'user:', 'tool:'];

/**
 * An OpenAI request's conversation as the client names it: its own key
 * (`x-session-key`, `x-openclaw-session-key`), else its `user`. Undefined
 * when it names none: what the conversation has said then decides
 * (src/conversations.ts, whose keys are `conv:<uuid>`). A key of its own that
 * begins like one brainstem makes (`telegram:42`) goes under `client:`, so it
 * never shares that conversation; any other is kept as given.
 */
export function openAiSessionKey(given: {
  header: string | undefined;
  user: string | null | undefined;
}): string | undefined {
  const header = given.header?.trim().slice(0, 200);
  if (header) return MADE_PREFIXES.some((p) => header.startsWith(p)) ? `client:${header}` : header;
  if (given.user?.trim()) return `user:${headChars(given.user.trim(), 200)}`;
  return undefined;
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
