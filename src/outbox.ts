import { createHash } from 'node:crypto';
import { constants, type ReadStream } from 'node:fs';
import { lstat, mkdir, open, readdir, realpath, rm } from 'node:fs/promises';
import path from 'node:path';

/**
 * A conversation's outbox: a folder a brain writes files into for the user
 * (a Claude mode is told so in its session's first prompt), which the face sends after
 * the answer and then empties. One folder per conversation under
 * `<dataDir>/outbox/`; only regular files directly in it are sent, never what
 * a symlink points at, never anything outside it.
 */

/** The folder holding every conversation's outbox. */
export function outboxRoot(dataDir: string): string {
  return path.join(dataDir, 'outbox');
}

/** The folder of the conversation `sessionKey`: a readable name plus a hash, so two keys never share one. */
export function outboxDir(dataDir: string, sessionKey: string): string {
  const readable = sessionKey.replace(/[^A-Za-z0-9_-]+/g, '_').slice(0, 60);
  const hash = createHash('sha256').update(sessionKey).digest('hex').slice(0, 8);
  return path.join(outboxRoot(dataDir), `${readable}-${hash}`);
}

/**
 * Creates the folder (private to brainstem's user) before a turn that may
 * write into it; whatever stands in its place (a symlink to elsewhere) is
 * removed first, so the brain is never pointed outside.
 */
export async function prepareOutbox(dir: string): Promise<void> {
  const st = await lstat(dir).catch(() => undefined);
  if (st && !st.isDirectory()) await rm(dir, { force: true });
  await mkdir(dir, { recursive: true, mode: 0o700 });
}

export interface OutboxFile {
  name: string;
  size: number;
  /** Opens the file for reading, refusing a symlink or anything but a regular file; each call opens it anew. */
  open(): Promise<ReadStream>;
  /** Removes it once it is sent: a crash before the outbox is emptied must not send it a second time. */
  remove(): Promise<void>;
}

/** What else is in the outbox, never sent (and removed with the rest): named to the user. */
export interface OutboxSkipped {
  name: string;
  kind: 'folder' | 'link' | 'other';
}

/**
 * The regular files directly in the outbox, oldest first, and what else is
 * there (a folder, a symlink), which is not sent. The folder itself must
 * resolve to where it should be (inside `<dataDir>/outbox`): a brain that
 * replaced it with a symlink gets nothing sent.
 */
export async function listOutbox(
  dataDir: string,
  dir: string,
): Promise<{ files: OutboxFile[]; skipped: OutboxSkipped[] }> {
  const root = await realpath(path.join(dataDir, 'outbox')).catch(() => undefined);
  const real = await realpath(dir).catch(() => undefined);
  if (!root || !real || real !== path.join(root, path.basename(dir))) return { files: [], skipped: [] };
  const files: (OutboxFile & { mtime: number })[] = [];
  const skipped: OutboxSkipped[] = [];
  for (const name of await readdir(real)) {
    const full = path.join(real, name);
    const st = await lstat(full).catch(() => undefined);
    if (!st) continue;
    if (!st.isFile()) {
      skipped.push({ name, kind: st.isDirectory() ? 'folder' : st.isSymbolicLink() ? 'link' : 'other' });
      continue;
    }
    files.push({
      name,
      size: st.size,
      mtime: st.mtimeMs,
      open: () => openRegular(full),
      remove: () => rm(full, { force: true }),
    });
  }
  return {
    files: files.sort((a, b) => a.mtime - b.mtime || a.name.localeCompare(b.name)),
    skipped: skipped.sort((a, b) => a.name.localeCompare(b.name)),
  };
}

/**
 * Empties the outbox (a symlink in it is removed, never followed). An outbox
 * that is itself a symlink is removed, not what it points at: that may be
 * anything.
 */
export async function clearOutbox(dir: string): Promise<void> {
  const st = await lstat(dir).catch(() => undefined);
  if (!st) return;
  if (!st.isDirectory()) {
    await rm(dir, { force: true });
    return;
  }
  const names = await readdir(dir).catch(() => [] as string[]);
  await Promise.all(names.map((name) => rm(path.join(dir, name), { recursive: true, force: true })));
}

/** O_NOFOLLOW, then fstat on the open file: a file swapped for a symlink after listing is refused. */
async function openRegular(file: string): Promise<ReadStream> {
  const handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    if (!(await handle.stat()).isFile()) throw new Error(`${path.basename(file)} is not a regular file`);
  } catch (err) {
    await handle.close();
    throw err;
  }
  return handle.createReadStream();
}
