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

/**
 * An OpenAI request's conversation as the client names it: its own key
 * (`x-session-key`, `x-openclaw-session-key`), else its `user`. Undefined
 * when it names none: what the conversation has said then decides
 * (src/conversations.ts, whose keys are `conv:<uuid>`).
 */
export function openAiSessionKey(given: {
  header: string | undefined;
  user: string | null | undefined;
}): string | undefined {
  if (given.header?.trim()) return given.header.trim().slice(0, 200);
  if (given.user?.trim()) return `user:${given.user.trim().slice(0, 200)}`;
  return undefined;
}
