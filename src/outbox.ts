import { createHash, createHmac, randomBytes } from 'node:crypto';
import { chmodSync, constants, existsSync, type ReadStream, readFileSync, writeFileSync } from 'node:fs';
import { chmod, lstat, mkdir, open, readdir, realpath, rename, rm, rmdir } from 'node:fs/promises';
import path from 'node:path';

/**
 * A conversation's outbox: a folder a brain writes files into for the user
 * (a Claude mode is told so in its session's first prompt), which the face sends after
 * the answer and then empties. One folder per conversation under
 * `<dataDir>/outbox/`; only regular files directly in it are sent, never what
 * a symlink points at, never anything outside it.
 *
 * Every Claude process gets the whole `<dataDir>/outbox/` (`--add-dir`: a spare
 * starts before it knows its conversation), where reading runs unasked (Read,
 * `ls`): a conversation must not find another's folder there. The root is not
 * listable (0300: brainstem's user creates and enters folders in it, never
 * lists it), and a folder's name holds an HMAC of its key under a secret kept
 * in the data dir (which no brain reads, own-files.ts): known to brainstem
 * alone, not computed from the key as a plain hash would be.
 */

/** The secret of the folder names, which brains never read (own-files.ts). */
export const OUTBOX_KEY_FILE = 'outbox-key';
/** Write and enter, never list: as root (which ignores the bits) only the HMAC names remain. */
const ROOT_MODE = 0o300;

const keys = new Map<string, Buffer>();

/** Generated once into the data dir (0600, as on every start), so names stay across restarts. */
function outboxKey(dataDir: string): Buffer {
  const known = keys.get(dataDir);
  if (known) return known;
  const file = path.join(dataDir, OUTBOX_KEY_FILE);
  let key = existsSync(file) ? Buffer.from(readFileSync(file, 'utf8').trim(), 'hex') : Buffer.alloc(0);
  if (key.length >= 32) chmodSync(file, 0o600);
  else {
    key = randomBytes(32);
    writeFileSync(file, `${key.toString('hex')}\n`, { mode: 0o600 });
  }
  keys.set(dataDir, key);
  return key;
}

/** The folder holding every conversation's outbox. */
export function outboxRoot(dataDir: string): string {
  return path.join(dataDir, 'outbox');
}

/** The folder of the conversation `sessionKey`: a readable name plus an HMAC nobody else can compute, so two keys never share one. */
export function outboxDir(dataDir: string, sessionKey: string): string {
  const hash = createHmac('sha256', outboxKey(dataDir)).update(sessionKey).digest('hex').slice(0, 32);
  return path.join(outboxRoot(dataDir), `${readable(sessionKey)}-${hash}`);
}

const readable = (sessionKey: string) => sessionKey.replace(/[^A-Za-z0-9_-]+/g, '_').slice(0, 60);

/** Creates the root, or takes away its read bit when an earlier brainstem left it listable. */
export async function prepareOutboxRoot(root: string): Promise<void> {
  await mkdir(root, { recursive: true, mode: ROOT_MODE });
  await chmod(root, ROOT_MODE);
}

/** Once no brain runs: listable again, so that removing or copying the data dir (`rm -r`, a backup) works. */
export async function closeOutboxRoot(root: string): Promise<void> {
  await chmod(root, 0o700).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
}

/**
 * Creates the folder (private to brainstem's user) before a turn that may
 * write into it; whatever stands in its place (a symlink to elsewhere) is
 * removed first, so the brain is never pointed outside.
 */
export async function prepareOutbox(dir: string): Promise<void> {
  await prepareOutboxRoot(path.dirname(dir));
  const st = await lstat(dir).catch(() => undefined);
  if (st && !st.isDirectory()) await rm(dir, { force: true });
  await mkdir(dir, { recursive: true, mode: 0o700 });
}

/** Before it, the old names were still in use; after it, a brain may have written there. */
const STARTED_AT = Date.now();

/**
 * The folder a brainstem from before the HMAC names left (a plain sha256 of
 * the key), so the files it still holds are sent as any leftover is: it takes
 * the conversation's name whenever that folder is not there (its emptied
 * folder is removed after each turn, removeEmptyOutbox). Only when nothing was
 * added to it since the names were first keyed (the secret's file was
 * written), nor since this brainstem started: the old name can be computed,
 * and another conversation's brain may have written there since, to reach
 * this chat; a restart, which moves the start, must not make that look old.
 */
export async function adoptOldOutbox(dataDir: string, sessionKey: string): Promise<void> {
  const hash = createHash('sha256').update(sessionKey).digest('hex').slice(0, 8);
  const old = path.join(outboxRoot(dataDir), `${readable(sessionKey)}-${hash}`);
  const st = await lstat(old).catch(() => undefined);
  if (!st?.isDirectory() || st.mtimeMs >= STARTED_AT) return;
  const dir = outboxDir(dataDir, sessionKey);
  // Written once, by the first brainstem with keyed names (outboxDir made sure of it just now).
  const keyed = await lstat(path.join(dataDir, OUTBOX_KEY_FILE));
  if (st.mtimeMs >= keyed.mtimeMs) return;
  if (!(await lstat(dir).catch(() => undefined))) await rename(old, dir);
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

/**
 * Removes the emptied outbox once its turn is over: one folder per chat and forum topic ever
 * answered would otherwise stay for good (prepareOutbox makes it again before the next turn).
 * rmdir removes only an empty folder: a file written since stays, for the next answer.
 */
export async function removeEmptyOutbox(dir: string): Promise<void> {
  await rmdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT' && err.code !== 'ENOTEMPTY' && err.code !== 'EEXIST') throw err;
  });
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
