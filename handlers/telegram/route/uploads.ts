import { readdir, rm, rmdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { SENT_FILES_KEEP_DAYS } from '../../../src/keep-days.js';

/** Where the documents a chat's users sent are saved (see saveTelegramFile). */
export function uploadsDir(dataDir: string, chatId?: number): string {
  const root = path.join(dataDir, 'uploads');
  return chatId === undefined ? root : path.join(root, String(chatId));
}

/** A chat's folder under uploads/ is named by its id (negative for groups); any other is the owner's. */
const CHAT_FOLDER = /^-?\d+$/;

/**
 * Removes the uploads older than SENT_FILES_KEEP_DAYS, in every chat's folder,
 * and the chat folders left empty (a chat that sends nothing more leaves no
 * trace). Run when brainstem starts and whenever a document arrives, so the
 * folder stays bounded by what came in the last days. Returns how many files went.
 *
 * A folder is removed only empty (rmdir refuses any other), but an upload of
 * that chat may have just made it and be downloading into it: saveTelegramFile
 * makes it again when it is gone by the time the file is opened.
 */
export async function sweepUploads(dataDir: string, now = Date.now()): Promise<number> {
  const oldest = now - SENT_FILES_KEEP_DAYS * 24 * 60 * 60 * 1000;
  const root = uploadsDir(dataDir);
  let removed = 0;
  for (const chat of await readdir(root, { withFileTypes: true }).catch(() => [])) {
    if (!chat.isDirectory()) continue;
    const dir = path.join(root, chat.name);
    for (const name of await readdir(dir).catch(() => [])) {
      const file = path.join(dir, name);
      const info = await stat(file).catch(() => undefined);
      if (info?.isFile() && info.mtimeMs < oldest) {
        await rm(file, { force: true });
        removed++;
      }
    }
    // Not empty (ENOTEMPTY), or already gone: kept, or nothing to do.
    if (CHAT_FOLDER.test(chat.name)) await rmdir(dir).catch(() => undefined);
  }
  return removed;
}
