import { type Stats, statfsSync, statSync } from 'node:fs';
import { userInfo } from 'node:os';
import path from 'node:path';

/**
 * The state database file exists but this brainstem cannot use it (not a
 * database, corrupt, or migrated by a newer brainstem). Restarting cannot fix
 * that, so brainstem exits with the code pm2 does not restart, naming the file
 * and what to do; the file is left as it is.
 */
export class UnusableDatabaseError extends Error {
  constructor(
    readonly file: string,
    reason: string,
    advice = 'Move it aside to start with a new one (modes, sessions, usage and queued updates start empty), or put back a backup.',
  ) {
    super(`the state database ${file} cannot be used (${reason}). ${advice}`);
    this.name = 'UnusableDatabaseError';
  }
}

/**
 * A file of the data dir (the state database, the instance lock) that SQLite cannot write: a
 * read-only mount, or files another user owns (a start with sudo once, a backup put back as root,
 * pm2 run as another user after an upgrade). Restarting cannot fix that: brainstem exits with the
 * code pm2 does not restart, naming the file and the user it runs as. SQLite's own message names
 * neither ("attempt to write a readonly database", "unable to open database file").
 */
export class UnwritableDataError extends Error {
  constructor(
    readonly file: string,
    reason: string,
  ) {
    super(
      `brainstem cannot write ${file} (${reason}). It runs as ${runsAs()}: give that user the data dir (\`sudo chown -R ${userName()} ${path.dirname(file)}\`), or, if its disk is mounted read-only, mount it read-write or set BRAINSTEM_DATA_DIR to a writable folder; then start brainstem again.`,
    );
    this.name = 'UnwritableDataError';
  }
}

/**
 * The data dir, or a folder above it, is a file (a typo in BRAINSTEM_DATA_DIR, a file left where the
 * folder should be). Node's own `EEXIST: file already exists, mkdir …` names neither the data dir nor
 * the setting, and restarting cannot fix it: brainstem exits with the code pm2 does not restart.
 */
export class DataDirNotFolderError extends Error {
  constructor(
    readonly dataDir: string,
    readonly file: string,
  ) {
    super(
      `the data dir ${dataDir} cannot be used: ${file} is a file, not a folder. Set BRAINSTEM_DATA_DIR (or dataDir in brainstem.json) to a folder, or move that file aside; then start brainstem again.`,
    );
    this.name = 'DataDirNotFolderError';
  }
}

/**
 * The typed error for creating the data dir failing because it, or a folder above it, is a file;
 * undefined for any other error.
 */
export function dataDirError(err: unknown, dataDir: string): DataDirNotFolderError | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  if (code !== 'EEXIST' && code !== 'ENOTDIR') return undefined;
  // The nearest part of the path that exists (a path under a file is ENOTDIR, not absent): the file in the way.
  for (let at = path.resolve(dataDir); ; at = path.dirname(at)) {
    const stat = statOrUndefined(at);
    if (stat) return stat.isDirectory() ? undefined : new DataDirNotFolderError(dataDir, at);
    if (path.dirname(at) === at) return undefined;
  }
}

function statOrUndefined(at: string): Stats | undefined {
  try {
    return statSync(at);
  } catch {
    return undefined;
  }
}

/**
 * The disk that holds the data dir is full: SQLite says "database or disk is full", or only
 * "disk I/O error" when its shared-memory file cannot grow. A restart once space is freed
 * works, so this one is left to pm2's restarts (exit code 1), with a message that says what to free.
 */
export class DataDiskFullError extends Error {
  constructor(
    readonly file: string,
    reason: string,
    free: number,
  ) {
    super(
      `the disk that holds ${path.dirname(file)} is full (${Math.floor(free / 1024)} KiB free): brainstem cannot write ${file} (${reason}). Free space there (old logs in brainstem's logs/ folder, \`pm2 flush\`, Claude's ~/.claude/projects); brainstem starts again by itself once it can write.`,
    );
    this.name = 'DataDiskFullError';
  }
}

/** Below this much free space, a write SQLite refuses is taken for a full disk. */
const NEARLY_FULL_BYTES = 1024 * 1024;

/**
 * The typed error for an SQLite error writing `file` that comes from where the file is (read-only,
 * another user's, a full disk), or undefined for any other error.
 */
export function dataFileError(
  err: unknown,
  file: string,
): UnwritableDataError | DataDiskFullError | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || !code.startsWith('SQLITE_')) return undefined;
  const reason = (err as Error).message;
  if (/^SQLITE_(READONLY|CANTOPEN|PERM|AUTH)/.test(code)) return new UnwritableDataError(file, reason);
  if (code === 'SQLITE_FULL' || code.startsWith('SQLITE_IOERR')) {
    const free = freeBytes(path.dirname(file));
    if (code === 'SQLITE_FULL' || (free !== undefined && free < NEARLY_FULL_BYTES))
      return new DataDiskFullError(file, reason, free ?? 0);
  }
  return undefined;
}

function freeBytes(dir: string): number | undefined {
  try {
    const s = statfsSync(dir);
    return s.bavail * s.bsize;
  } catch {
    return undefined;
  }
}

function userName(): string {
  try {
    return userInfo().username;
  } catch {
    return String(process.getuid?.() ?? 'this user');
  }
}

function runsAs(): string {
  const uid = process.getuid?.();
  return uid === undefined ? userName() : `${userName()} (uid ${uid})`;
}

/**
 * Another process holds the state database's write lock while this start has migrations to run
 * (the first start after an upgrade): a `sqlite3` shell left in a transaction, a backup copying
 * it. SQLite says only "database is locked". Once the lock goes a start works, so this one is left
 * to pm2's restarts (exit code 1), with where to look.
 */
export class LockedAtStartError extends Error {
  constructor(
    readonly file: string,
    reason: string,
  ) {
    super(
      `the state database ${file} is locked by another process (${reason}), so this start cannot bring its schema up to date. Find the holder (\`fuser ${file}\` or \`lsof ${file}\`) and end its transaction (COMMIT or ROLLBACK in a sqlite3 shell) or let the backup finish; brainstem starts again by itself once the lock is gone.`,
    );
    this.name = 'LockedAtStartError';
  }
}
