import type { KvStore } from './db/index.js';
import { telegramSessionKey } from './session-keys.js';

/**
 * kv: the chat a Telegram supergroup was before its upgrade from a basic group (a new chat id), under
 * `telegram.formerChat.<supergroup>`. The Telegram face writes it (recordUpgrade) and follows the
 * group's conversation into the supergroup; what counts usage (/usage, the usage tool) reads it too,
 * so it is named here, in the core, once.
 */
const FORMER_PREFIX = 'telegram.formerChat.';
export const formerChatKey = (chatId: number) => `${FORMER_PREFIX}${chatId}`;

/**
 * The conversation key of each group upgraded to a supergroup, to the supergroup's: the usage
 * ledger keeps the key a turn had, and usage counts the group's turns as the supergroup's, the
 * one conversation it went on as. A basic group has no topics: only its chat's key.
 */
export function upgradedSessions(kv: Pick<KvStore, 'startingWith'>): Map<string, string> {
  const renamed = new Map<string, string>();
  for (const { key, value } of kv.startingWith(FORMER_PREFIX)) {
    const [from, to] = [Number(value), Number(key.slice(FORMER_PREFIX.length))];
    if (Number.isSafeInteger(from) && Number.isSafeInteger(to))
      renamed.set(telegramSessionKey(from), telegramSessionKey(to));
  }
  return renamed;
}
