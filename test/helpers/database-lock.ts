/**
 * Another process holding the state database (a `sqlite3` shell inside a transaction, a
 * backup), for the tests of what brainstem does meanwhile. The hooks it registers release,
 * after each test, every lock still held, and fail the test if an error went unhandled
 * meanwhile: in brainstem, either would bring the process down (Node's default).
 *
 *   const locks = databaseLocks(() => path.join(h.service.core.config.dataDir, 'brainstem.sqlite'));
 *   const lock = locks.hold();   // a second connection after BEGIN IMMEDIATE
 *   locks.release(lock);
 */
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, expect } from 'vitest';

export interface DatabaseLocks {
  hold(): Database.Database;
  release(lock: Database.Database): void;
  releaseAll(): void;
}

export function databaseLocks(file: () => string): DatabaseLocks {
  let held: Database.Database[] = [];
  const crashes: unknown[] = [];
  const onCrash = (err: unknown) => crashes.push(err);
  const release = (lock: Database.Database) => {
    held = held.filter((l) => l !== lock);
    if (!lock.open) return;
    lock.exec('ROLLBACK');
    lock.close();
  };
  const releaseAll = () => {
    for (const l of [...held]) release(l);
  };
  beforeAll(() => {
    process.on('unhandledRejection', onCrash);
    process.on('uncaughtException', onCrash);
  });
  afterEach(() => {
    releaseAll();
    expect(crashes).toEqual([]);
  });
  afterAll(() => {
    process.off('unhandledRejection', onCrash);
    process.off('uncaughtException', onCrash);
  });
  return {
    hold() {
      const other = new Database(file(), { timeout: 0 });
      other.exec('BEGIN IMMEDIATE');
      held.push(other);
      return other;
    },
    release,
    releaseAll,
  };
}
