import type { ChatMessage } from '../../../brains/types.js';
import type { Db } from '../../../src/db/index.js';
import { DatabaseLockedError, isBusy, type KeptWrites } from '../../../src/db/kept-writes.js';

/** How many messages of a chat go back to the brain each turn (user and assistant together). */
export const HISTORY_LIMIT = 20;

/**
 * The short history of a chat on the direct route, in SQLite so a restart
 * keeps it: sent with every turn, it lets a Claude brain resume its session
 * (the core starts a fresh one when the history holds no assistant message)
 * and gives a local brain its context. An exchange is recorded as its answer
 * ends: under another process's lock it is kept until the lock is gone (see
 * KeptWrites), and the answer ends normally.
 */
export class ChatHistory {
  constructor(
    private readonly db: Db,
    private readonly kept: KeptWrites,
    private readonly limit = HISTORY_LIMIT,
  ) {}

  load(chatKey: string): ChatMessage[] {
    return this.db
      .prepare<[string, number], { role: 'user' | 'assistant'; content: string }>(
        'SELECT role, content FROM (SELECT id, role, content FROM telegram_history WHERE chat_key = ? ORDER BY id DESC LIMIT ?) ORDER BY id',
      )
      .all(chatKey, this.limit)
      .map((r) => ({ role: r.role, content: r.content }));
  }

  /** Records one exchange and forgets what falls out of the window. Never throws. */
  append(chatKey: string, user: string, assistant: string): void {
    this.kept.run(`the last exchange of ${chatKey}`, () => this.write(chatKey, user, assistant));
  }

  private write(chatKey: string, user: string, assistant: string): void {
    const now = Date.now();
    const insert = this.db.prepare(
      'INSERT INTO telegram_history (chat_key, role, content, ts) VALUES (?, ?, ?, ?)',
    );
    this.db.transaction(() => {
      insert.run(chatKey, 'user', user, now);
      insert.run(chatKey, 'assistant', assistant, now);
      this.db
        .prepare(
          `DELETE FROM telegram_history WHERE chat_key = ? AND id NOT IN
             (SELECT id FROM telegram_history WHERE chat_key = ? ORDER BY id DESC LIMIT ?)`,
        )
        .run(chatKey, chatKey, this.limit);
    })();
  }

  /** Gives the chat's history to another key (a group upgraded to a supergroup). Never throws. */
  move(from: string, to: string): void {
    this.kept.run(`the history of ${from}, moving to ${to}`, () =>
      this.db.prepare('UPDATE telegram_history SET chat_key = ? WHERE chat_key = ?').run(to, from),
    );
  }

  /**
   * Forgets the chat's history, after the exchanges kept behind a lock (one written later would
   * come back into the fresh history). Throws while another process holds the database.
   */
  clear(chatKey: string): number {
    this.kept.settle();
    try {
      return this.db.prepare('DELETE FROM telegram_history WHERE chat_key = ?').run(chatKey).changes;
    } catch (err) {
      // SQLite's own "database is locked" says neither whose lock nor what to do.
      if (isBusy(err)) throw new DatabaseLockedError();
      throw err;
    }
  }
}
