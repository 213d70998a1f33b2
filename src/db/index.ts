import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type Database from 'better-sqlite3';
import type { z } from 'zod';
import type { Logger } from '../logger.js';
import { migrations } from './migrations.js';
import Sqlite from './sqlite.js';
import { DataDiskFullError, dataFileError, LockedAtStartError, UnusableDatabaseError } from './unusable.js';

export type Db = Database.Database;

/**
 * How long a write that must land now (a mode switch, clearing a history,
 * OpenClaw's calls that write) waits for another process's write lock before
 * it is refused (SQLITE_BUSY). SQLite waits inside the synchronous call, so the
 * whole process (every chat, the HTTP face, the front) stands still meanwhile:
 * long enough for another process's short write, not for a `sqlite3` shell left
 * in a transaction. The writes that can wait never wait here (withoutWaiting):
 * the background writes wait in memory (KeptWrites), the front's intake holds
 * its batch.
 */
export const BUSY_TIMEOUT_MS = 250;

/** Opens (creating if needed) the state database in WAL mode and brings its schema up to date. */
export function openDb(dataDir: string): Db {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const file = path.join(dataDir, 'brainstem.sqlite');
  const db = new Sqlite(file);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    // The TEMP tables (usage waiting behind another process's lock) live in memory, not in a file of their own.
    db.pragma('temp_store = MEMORY');
    migrate(db);
  } catch (err) {
    db.close();
    // SQLite opens any file lazily: its first read says whether the file is a database at all.
    const code = (err as { code?: string }).code;
    if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT')
      throw new UnusableDatabaseError(file, (err as Error).message);
    // A migration that waited BUSY_TIMEOUT_MS for another process's write lock.
    if (code?.startsWith('SQLITE_BUSY')) throw new LockedAtStartError(file, (err as Error).message);
    // A migration's or the first pragma's write on a read-only, another user's or a full disk.
    throw dataFileError(err, file) ?? err;
  }
  return db;
}

/**
 * Closes the state database at the stop, its WAL copied into the database file first (what a
 * backup of the stopped data dir copies is then one file). That copy writes to the disk and can
 * fail (a full disk, an I/O error): what it would have copied stays in the WAL, which SQLite
 * reads back at the next open, so nothing is lost. The stop goes on, saying so, rather than
 * failing with the database and the instance lock left open and exit code 1.
 */
export function closeDb(db: Db, logger: Logger): void {
  try {
    db.pragma('wal_checkpoint(TRUNCATE)');
  } catch (err) {
    const file = db.name;
    const full =
      dataFileError(err, file) instanceof DataDiskFullError
        ? `; the disk that holds ${path.dirname(file)} is full: free space there`
        : '';
    logger.warn(
      { code: (err as { code?: unknown }).code },
      `the last writes stay in ${file}-wal: copying them into ${file} at the stop failed (${(err as Error).message})${full}. The next start reads them back: nothing is lost`,
    );
  } finally {
    db.close();
  }
}

/** The schema version this brainstem writes: the last migration's. */
const NEWEST_VERSION = Math.max(...migrations.map((m) => m.version));

export function migrate(db: Db): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  // A newer brainstem's schema means what this one's code cannot know (a column it does not
  // write, a table it does not read): running on it would misread or lose state.
  if (current > NEWEST_VERSION) {
    throw new UnusableDatabaseError(
      db.name,
      `a newer brainstem left it at schema version ${current}; this one knows up to ${NEWEST_VERSION}`,
      'Go back to the newer brainstem (check out its commit, then npm ci and npm run build), or put back a backup made by this version.',
    );
  }
  for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
    if (m.version <= current) continue;
    db.transaction(() => {
      if (m.needed?.(db) ?? true) db.exec(m.sql);
      db.pragma(`user_version = ${m.version}`);
    })();
  }
}

/** A tiny key/value table for single values such as the active mode. */
export class KvStore {
  private readonly getStmt;
  private readonly setStmt;
  private readonly deleteStmt;
  private readonly prefixStmt;
  constructor(private readonly db: Db) {
    this.deleteStmt = db.prepare('DELETE FROM kv WHERE key = ?');
    this.prefixStmt = db.prepare<[{ prefix: string }], { key: string; value: string }>(
      'SELECT key, value FROM kv WHERE substr(key, 1, length(@prefix)) = @prefix',
    );
    this.getStmt = db.prepare<[string], { value: string }>('SELECT value FROM kv WHERE key = ?');
    this.setStmt = db.prepare(
      'INSERT INTO kv (key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at',
    );
  }
  get(key: string): string | undefined {
    return this.getStmt.get(key)?.value;
  }
  set(key: string, value: string): void {
    this.setStmt.run(key, value, Date.now());
  }
  /**
   * As set(), synced to the disk before it returns: the database runs with synchronous=NORMAL, where
   * a power loss may undo the last commits (in order). For a value a file synced to the disk is
   * written after (the active mode, before the switch-ends file says its switch ended): otherwise
   * the file could outlive it. One fsync of the WAL, which takes the commits before with it.
   */
  setDurably(key: string, value: string): void {
    this.db.pragma('synchronous = FULL');
    try {
      this.set(key, value);
    } finally {
      this.db.pragma('synchronous = NORMAL');
    }
  }
  delete(key: string): void {
    this.deleteStmt.run(key);
  }
  /** Every key that begins with `prefix`, with its value. */
  startingWith(prefix: string): { key: string; value: string }[] {
    return this.prefixStmt.all({ prefix });
  }
  /**
   * The JSON value under `key` if it has the shape of `schema`; undefined when
   * absent, cleared ('') or not that shape (a hand edit, an older build's).
   */
  getJson<T>(key: string, schema: z.ZodType<T>): T | undefined {
    const raw = this.get(key);
    if (!raw) return undefined;
    try {
      const parsed = schema.safeParse(JSON.parse(raw));
      return parsed.success ? parsed.data : undefined;
    } catch {
      return undefined;
    }
  }
}
