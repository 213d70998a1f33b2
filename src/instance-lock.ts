import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type Database from 'better-sqlite3';
import Sqlite, { nativeSqliteError } from './db/sqlite.js';
import { dataDirError, dataFileError } from './db/unusable.js';

export { NativeSqliteError } from './db/sqlite.js';
export { DataDirNotFolderError, DataDiskFullError, UnwritableDataError } from './db/unusable.js';

/** Another brainstem runs on this data dir: two would both poll the bot and split the state. */
export class InstanceLockedError extends Error {
  constructor(
    readonly dataDir: string,
    readonly holderPid: number | undefined,
  ) {
    super(
      `another brainstem (pid ${holderPid ?? 'unknown'}) already runs on the data dir ${dataDir}; stop it first, or give this one another BRAINSTEM_DATA_DIR`,
    );
    this.name = 'InstanceLockedError';
  }
}

export interface InstanceLock {
  release(): void;
}

/**
 * One brainstem per data dir, taken before anything else starts. The lock is
 * SQLite's write lock on `<dataDir>/instance.lock` (WAL mode), held by an open
 * transaction for the life of the process. The kernel drops it when the process
 * dies, however it dies, so there is no stale lock to reclaim and no recorded
 * pid to mistake for a live process after a reboot (the weak points of a pid
 * file). The holder's pid is committed in the same file, where WAL lets the
 * refused instance read it while the lock is held.
 */
export function lockDataDir(dataDir: string): InstanceLock {
  try {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw dataDirError(err, dataDir) ?? err;
  }
  // timeout 0: a held lock answers SQLITE_BUSY at once instead of after a wait.
  let db: Database.Database;
  const file = path.join(dataDir, 'instance.lock');
  try {
    // The start's first database: where a native module built for another Node fails to load.
    db = new Sqlite(file, { timeout: 0 });
  } catch (err) {
    throw nativeSqliteError(err) ?? dataFileError(err, file) ?? err;
  }
  try {
    db.pragma('journal_mode = WAL');
    db.exec('BEGIN IMMEDIATE');
    db.exec('CREATE TABLE IF NOT EXISTS holder (pid INTEGER NOT NULL, since INTEGER NOT NULL)');
    db.exec('DELETE FROM holder');
    db.prepare('INSERT INTO holder (pid, since) VALUES (?, ?)').run(process.pid, Date.now());
    db.exec('COMMIT');
    // Taken again and kept; whoever slipped in between holds it now, and this one is refused.
    db.exec('BEGIN IMMEDIATE');
  } catch (err) {
    const busy = (err as { code?: string }).code?.startsWith('SQLITE_BUSY');
    const holder = busy ? holderPid(db) : undefined;
    db.close();
    if (busy) throw new InstanceLockedError(dataDir, holder);
    // The start's first write to the data dir: where a read-only or full disk shows.
    throw dataFileError(err, file) ?? err;
  }
  return {
    release: () => {
      if (!db.open) return;
      db.exec('ROLLBACK');
      db.close();
    },
  };
}

function holderPid(db: Database.Database): number | undefined {
  try {
    if (db.inTransaction) db.exec('ROLLBACK');
    return db.prepare<[], { pid: number }>('SELECT pid FROM holder').get()?.pid;
  } catch {
    return undefined;
  }
}
