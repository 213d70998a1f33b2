import type { Dirent } from 'node:fs';
import { lstat, readdir, realpath, unlink } from 'node:fs/promises';
import path from 'node:path';
import { SENT_FILES_KEEP_DAYS } from '../../src/keep-days.js';

/**
 * Claude Code 2.1.332 (2.1.197 does not) keeps a copy of every image a turn is
 * sent, at `<tmp>/claude-<uid>/<cwd slug>/<session>/images/<n>.<ext>`, and
 * removes it only in its own retention sweep, which reads `cleanupPeriodDays`
 * from the user's settings: with `--setting-sources project` (args.ts) the CLI
 * skips that sweep, so a chat that receives photos for months would fill /tmp
 * (often RAM). brainstem removes those copies after SENT_FILES_KEEP_DAYS, as it
 * does its uploads.
 *
 * Only in the folder of the cwd brainstem runs the CLI in, and only what the
 * CLI names an image copy (`<digits>.<ext>` in a session's `images/`), a
 * regular file of this user's: the session folders' other contents (the
 * output of the CLI's tasks) and its sockets belong to CLI processes that may
 * be running. No symlink is followed, and the folder must be this user's and
 * writable by no one else, so nothing outside it can be reached.
 */

/** The CLI's session folders are named by the session's UUID. */
const SESSION = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** How the CLI names its image copies (and no other file there). */
const COPY = /^\d+\.[a-z]+$/;
/** A longer slug gets a hash of the CLI's own appended; brainstem does not guess it. */
const SLUG_MAX = 200;

/**
 * Removes the CLI's copies of images older than SENT_FILES_KEEP_DAYS for the
 * sessions of `cwd`; `env` is the CLI's environment (its temp dir is
 * CLAUDE_CODE_TMPDIR, else the system's). Returns how many went.
 */
export async function sweepImageCopies(
  cwd: string,
  env: Record<string, string | undefined>,
  now = Date.now(),
): Promise<number> {
  const uid = process.getuid?.();
  if (uid === undefined) return 0;
  const oldest = now - SENT_FILES_KEEP_DAYS * 24 * 60 * 60 * 1000;
  const tmp = env.CLAUDE_CODE_TMPDIR || env.TMPDIR || env.TMP || env.TEMP || '/tmp';
  // The CLI resolves both: its temp dir, and its cwd (the process's, which the system resolves).
  const [realTmp, realCwd] = await Promise.all([realpath(tmp), realpath(cwd)]).catch(() => []);
  if (!realTmp || !realCwd) return 0;
  const slug = realCwd.replace(/[^a-zA-Z0-9]/g, '-');
  if (slug.length > SLUG_MAX) return 0;
  const own = path.join(realTmp, `claude-${uid}`);
  const info = await lstat(own).catch(() => undefined);
  if (!info?.isDirectory() || info.uid !== uid || (info.mode & 0o022) !== 0) return 0;
  const root = path.join(own, slug);
  let removed = 0;
  for (const session of await entries(root)) {
    if (!session.isDirectory() || !SESSION.test(session.name)) continue;
    const images = path.join(root, session.name, 'images');
    for (const copy of await entries(images)) {
      if (!copy.isFile() || !COPY.test(copy.name)) continue;
      const file = path.join(images, copy.name);
      const stat = await lstat(file).catch(() => undefined);
      if (!stat?.isFile() || stat.uid !== uid || stat.mtimeMs >= oldest) continue;
      if (
        await unlink(file).then(
          () => true,
          () => false,
        )
      )
        removed++;
    }
  }
  return removed;
}

/** A real directory's entries (a symlink's none), as dirents: a symlink among them is never taken for what it points at. */
async function entries(dir: string): Promise<Dirent[]> {
  const info = await lstat(dir).catch(() => undefined);
  if (!info?.isDirectory()) return [];
  return readdir(dir, { withFileTypes: true }).catch(() => []);
}
