import type { Db } from '../../../src/db/index.js';
import type { KeptWrites } from '../../../src/db/kept-writes.js';

/** How many media messages' files are remembered: a replaced file is news minutes after it was sent, not weeks. */
const REMEMBERED_FILES = 1000;

/**
 * The file each recent media message holds (its file_unique_id), by chat and
 * message. Telegram lets a user replace the photo or file of a sent message,
 * and says so only as an edit, like a caption's: the file the message held
 * tells the two apart. In SQLite, so a restart keeps it; the newest
 * REMEMBERED_FILES are kept. A write under another process's lock waits in
 * memory (KeptWrites): the message is handled all the same.
 */
export class SentFiles {
  constructor(
    private readonly db: Db,
    private readonly kept: KeptWrites,
    private readonly limit = REMEMBERED_FILES,
  ) {}

  /** The file the message held when last seen; undefined when it is not remembered. */
  get(chatId: number, messageId: number): string | undefined {
    return this.db
      .prepare<[number, number], { file_unique_id: string }>(
        'SELECT file_unique_id FROM telegram_files WHERE chat_id = ? AND message_id = ?',
      )
      .get(chatId, messageId)?.file_unique_id;
  }

  /** Records the file the message now holds, as the newest. Never throws. */
  set(chatId: number, messageId: number, fileUniqueId: string): void {
    this.kept.run(`the file of message ${messageId} of chat ${chatId}`, () =>
      this.db.transaction(() => {
        // A new row (a new id) each time: the message is the newest again.
        this.db
          .prepare(
            'INSERT OR REPLACE INTO telegram_files (chat_id, message_id, file_unique_id) VALUES (?, ?, ?)',
          )
          .run(chatId, messageId, fileUniqueId);
        this.db
          .prepare(
            'DELETE FROM telegram_files WHERE id <= (SELECT id FROM telegram_files ORDER BY id DESC LIMIT 1 OFFSET ?)',
          )
          .run(this.limit);
      })(),
    );
  }
}
