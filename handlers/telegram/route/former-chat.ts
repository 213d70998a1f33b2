import type { KvStore } from '../../../src/db/index.js';
import type { KeptWrites } from '../../../src/db/kept-writes.js';
import { telegramSessionKey } from '../../../src/session-keys.js';

/** kv: the chat a supergroup was before its upgrade (see recordUpgrade). */
const FORMER_PREFIX = 'telegram.formerChat.';
const formerKey = (chatId: number) => `${FORMER_PREFIX}${chatId}`;

/**
 * The chat whose folders `chatId`'s conversation uses: its own, or, for a basic group upgraded to
 * a supergroup (a new chat id), the group's it was (the first of a chain of upgrades). Its Claude
 * session goes on under the new id and was told the group's outbox folder and the paths of the
 * files sent there: under the new id's own folders, what it wrote after the upgrade was never
 * sent, and the files sent in the group were no longer the user's to read unasked.
 */
export function formerChat(kv: Pick<KvStore, 'get'>, chatId: number): number {
  const kept = Number(kv.get(formerKey(chatId)));
  return Number.isSafeInteger(kept) && kept !== 0 ? kept : chatId;
}

/**
 * Records that the group `from` became the supergroup `to`, also for after a restart.
 * Told twice by Telegram: the second finds it done.
 * Never throws: the write is kept while another process holds the database.
 */
export function recordUpgrade(
  core: { kv: Pick<KvStore, 'get' | 'set'>; kept: Pick<KeptWrites, 'run'> },
  from: number,
  to: number,
): void {
  core.kept.run(`chat ${to} was chat ${from}`, () => {
    if (core.kv.get(formerKey(to)) === undefined)
      core.kv.set(formerKey(to), String(formerChat(core.kv, from)));
  });
}

/**
 * The conversation key of each group upgraded to a supergroup, to the supergroup's: the usage
 * ledger keeps the key a turn had, and /usage counts the group's turns as the supergroup's, the
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
