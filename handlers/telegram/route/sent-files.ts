import type { Db } from '../../../src/db/index.js';
import type { KeptWrites } from '../../../src/db/kept-writes.js';

/** How many media messages' files are remembered: a replaced file is news minutes after it was sent, not weeks. */
const REMEMBERED_FILES = 1000;

/** The kinds of file a user can swap for one another in a sent message (Telegram's "replace"). */
export const FILE_KINDS = ['photo', 'document', 'video', 'animation', 'audio'] as const;
export type FileKind = (typeof FILE_KINDS)[number];

/** The file a media message holds: its file_unique_id, and its kind (undefined: remembered before kinds were). */
export interface SentFile {
  id: string;
  kind: FileKind | undefined;
}

/**
 * The file each recent media message holds (its file_unique_id and kind), by
 * chat and message. Telegram lets a user replace the photo or file of a sent
 * message, and says so only as an edit, like a caption's: the file the message
 * held tells the two apart, and its kind what was replaced. In SQLite, so a
 * restart keeps it; the newest REMEMBERED_FILES are kept. A write under another
 * process's lock waits in memory (KeptWrites): the message is handled all the same.
 */
export class SentFiles {
  constructor(
    private readonly db: Db,
    private readonly kept: KeptWrites,
    private readonly limit = REMEMBERED_FILES,
  ) {}

  /** The file the message held when last seen; undefined when it is not remembered. */
  get(chatId: number, messageId: number): SentFile | undefined {
    const row = this.db
      .prepare<[number, number], { file_unique_id: string; kind: string | null }>(
        'SELECT file_unique_id, kind FROM telegram_files WHERE chat_id = ? AND message_id = ?',
      )
      .get(chatId, messageId);
    if (!row) return undefined;
    const kind = FILE_KINDS.find((k) => k === row.kind);
    return { id: row.file_unique_id, kind };
  }

  /** Records the file the message now holds, as the newest. Never throws. */
  set(chatId: number, messageId: number, file: { id: string; kind: FileKind }): void {
    this.kept.run(`the file of message ${messageId} of chat ${chatId}`, () =>
      this.db.transaction(() => {
        // A new row (a new id) each time: the message is the newest again.
        this.db
          .prepare(
            'INSERT OR REPLACE INTO telegram_files (chat_id, message_id, file_unique_id, kind) VALUES (?, ?, ?, ?)',
          )
          .run(chatId, messageId, file.id, file.kind);
        this.db
          .prepare(
            'DELETE FROM telegram_files WHERE id <= (SELECT id FROM telegram_files ORDER BY id DESC LIMIT 1 OFFSET ?)',
          )
          .run(this.limit);
      })(),
    );
  }
}
