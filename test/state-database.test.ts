/** The state database as brainstem opens it: real SQLite files in a temporary data dir. */
import { mkdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { migrate, openDb } from '../src/db/index.js';
import { migrations } from '../src/db/migrations.js';
import Sqlite from '../src/db/sqlite.js';
import {
  DataDiskFullError,
  dataFileError,
  LockedAtStartError,
  UnusableDatabaseError,
} from '../src/db/unusable.js';

let dir: string | undefined;
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('a state database migrated by a newer brainstem', () => {
  it('is refused, naming both schema versions, and left as it was', async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'brainstem-db-'));
    const data = path.join(dir, 'data');
    mkdirSync(data);
    const file = path.join(data, 'brainstem.sqlite');
    const newest = Math.max(...migrations.map((m) => m.version));
    const newer = new Sqlite(file);
    migrate(newer);
    // A column this version does not know, as the next migration might add.
    newer.exec('ALTER TABLE notices ADD COLUMN next_version_field TEXT');
    newer.pragma(`user_version = ${newest + 1}`);
    newer.close();

    expect(() => openDb(data)).toThrow(UnusableDatabaseError);
    expect(() => openDb(data)).toThrow(
      `the state database ${file} cannot be used (a newer brainstem left it at schema version ${newest + 1}; this one knows up to ${newest}). Go back to the newer brainstem`,
    );
    const after = new Sqlite(file, { readonly: true });
    expect(after.pragma('user_version', { simple: true })).toBe(newest + 1);
    after.close();
  });
});

describe('a state database on a full disk', () => {
  it("is told as a full disk, naming the file, the space left and what to free, not as SQLite's bare words", async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'brainstem-db-'));
    const file = path.join(dir, 'brainstem.sqlite');
    const db = new Sqlite(file);
    db.exec('CREATE TABLE t (x TEXT)');
    // SQLite's own SQLITE_FULL, as a disk with no room left gives it.
    db.pragma(`max_page_count = ${db.pragma('page_count', { simple: true })}`);
    let refused: unknown;
    try {
      db.prepare('INSERT INTO t VALUES (?)').run('x'.repeat(100_000));
    } catch (err) {
      refused = err;
    }
    db.close();
    expect((refused as { code?: string }).code).toBe('SQLITE_FULL');
    const told = dataFileError(refused, file);
    expect(told).toBeInstanceOf(DataDiskFullError);
    expect(told?.message).toMatch(
      new RegExp(
        `^the disk that holds ${dir} is full \\(\\d+ KiB free\\): brainstem cannot write ${file} \\(database or disk is full\\)\\. Free space there`,
      ),
    );
  });
});

describe('an older state database another process holds at the first start after an upgrade', () => {
  it('is refused naming the file and how to find the holder, and migrated by the start after the lock goes', async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'brainstem-db-'));
    const data = path.join(dir, 'data');
    mkdirSync(data);
    const file = path.join(data, 'brainstem.sqlite');
    const old = new Sqlite(file);
    old.pragma('journal_mode = WAL');
    for (const m of migrations.filter((x) => x.version <= 5)) old.exec(m.sql);
    old.pragma('user_version = 5');
    // A sqlite3 shell left inside a transaction.
    old.exec('BEGIN IMMEDIATE');
    expect(() => openDb(data)).toThrow(LockedAtStartError);
    // SQLite's own words ("database is locked") named neither the file nor what holds it.
    expect(() => openDb(data)).toThrow(
      `the state database ${file} is locked by another process (database is locked), so this start cannot bring its schema up to date. Find the holder (\`fuser ${file}\``,
    );
    old.exec('ROLLBACK');
    old.close();
    const db = openDb(data);
    expect(db.pragma('user_version', { simple: true })).toBe(Math.max(...migrations.map((m) => m.version)));
    db.close();
  });
});
