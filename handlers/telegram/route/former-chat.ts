import type { KvStore } from '../../../src/db/index.js';
import type { KeptWrites } from '../../../src/db/kept-writes.js';
import { formerChatKey } from '../../../src/former-chats.js';

/**
 * The chat whose folders `chatId`'s conversation uses: its own, or, for a basic group upgraded to
 * a supergroup (a new chat id), the group's it was (the first of a chain of upgrades). Its Claude
 * session goes on under the new id and was told the group's outbox folder and the paths of the
 * files sent there: under the new id's own folders, what it wrote after the upgrade was never
 * sent, and the files sent in the group were no longer the user's to read unasked.
 */
export function formerChat(kv: Pick<KvStore, 'get'>, chatId: number): number {
  const kept = Number(kv.get(formerChatKey(chatId)));
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
    if (core.kv.get(formerChatKey(to)) === undefined)
      core.kv.set(formerChatKey(to), String(formerChat(core.kv, from)));
  });
}
