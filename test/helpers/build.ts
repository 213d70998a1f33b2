/**
 * The build (dist/) that the process tests start, as `npm start` and pm2 do: a node start of the
 * bundle takes about a second, one of the sources through tsx three to five.
 *
 * A test must never run a stale build, so `freshBuild()` runs `npm run build` unless dist/'s
 * build began after every file it was built from last changed: brainstem's files its source maps name
 * (the build keeps each input's name there), the build script and tsconfig.json, and the installed packages
 * (node_modules/.package-lock.json, which npm writes on each install: npm gives a package's files
 * their tarball's fixed date). A map naming a file that is gone (deleted, moved) means a rebuild,
 * which fails if something still imports it.
 *
 * A test run builds at most once, before any test file starts: vitest's globalSetup
 * (test/helpers/suite-build.ts) calls `freshBuild()` in vitest's own process, whose lock (below)
 * keeps any other build of this checkout out of dist/ until the run ends. The build empties dist/
 * first, and the bundle loads chunks lazily: a build under a running brainstem makes it crash
 * at its next lazy import.
 */
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type Database from 'better-sqlite3';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const DIST = path.join(ROOT, 'dist');
const MAIN = path.join(DIST, 'src', 'main.js');
/** Read by the build (esbuild reads tsconfig.json too), named in no map. */
const ALSO = ['scripts/build.ts', 'tsconfig.json', 'package.json', 'node_modules/.package-lock.json'];

/** The newest change among dist's inputs, or Infinity when one is missing (or dist has no map). */
function newestInput(): number {
  const inputs = new Set(ALSO.map((f) => path.join(ROOT, f)));
  let maps = 0;
  for (const file of readdirSync(DIST, { recursive: true, encoding: 'utf8' })) {
    if (!file.endsWith('.map')) continue;
    maps++;
    const map = path.join(DIST, file);
    const { sources } = JSON.parse(readFileSync(map, 'utf8')) as { sources: string[] };
    // The plugins' stand-ins (`node-fetch-url:url`) are scripts/build.ts's own text; a library's
    // files are dated by its install, and its maps name sources it does not ship.
    for (const s of sources) {
      if (!/^[\w-]+:/.test(s) && !s.includes('node_modules/')) inputs.add(path.resolve(path.dirname(map), s));
    }
  }
  if (maps === 0) return Number.POSITIVE_INFINITY;
  let newest = 0;
  for (const input of inputs) {
    try {
      newest = Math.max(newest, statSync(input).mtimeMs);
    } catch {
      return Number.POSITIVE_INFINITY;
    }
  }
  return newest;
}

function isFresh(): boolean {
  try {
    return dated() > newestInput();
  } catch {
    // No dist/.
    return false;
  }
}

/** dist/'s date: its main file's (0 when missing). */
function dated(): number {
  try {
    return statSync(MAIN).mtimeMs;
  } catch {
    return 0;
  }
}

/** Where test/helpers/suite-tmp.ts keeps the temporary folder it moved a test run's TMPDIR away from. */
export const OUTER_TMPDIR = 'BRAINSTEM_TEST_OUTER_TMPDIR';

/**
 * Who may write dist/ and who may run from it, across processes: SQLite's locks on a file of its own,
 * which the kernel drops when their holder dies, however it dies (no pid to take for a live process
 * once reused, no stale lock to take over). A process that starts brainstem from dist/ (a test run's
 * vitest process, a bench) holds a read lock for as long as it lives; a build takes the write lock
 * (BEGIN EXCLUSIVE), which SQLite grants only while no other connection holds any lock. The journal
 * is the rollback one: in WAL mode a reader would not hold a writer off. The file is never removed:
 * a process that opened it before would lock a file no other process sees.
 */
const LOCK = path.join(
  // The system's temporary folder, not a test run's own (test/helpers/suite-tmp.ts): the lock is shared
  // with benches and other runs, whenever this module is loaded.
  process.env[OUTER_TMPDIR] ?? tmpdir(),
  `brainstem-build-${Buffer.from(ROOT).toString('base64url')}.db`,
);

/**
 * Set by the process that holds dist/ for a test run (its value: this checkout) and inherited by the
 * workers it forks: their dist/ is held already, and they only check it.
 */
const HELD_BY_RUN = 'BRAINSTEM_TEST_DIST_HELD';

/** Taken at once or not at all (timeout 0): a busy wait would block the event loop, and give up after a set time. */
function tryLock(db: Database.Database, kind: 'read' | 'write'): boolean {
  try {
    db.exec(kind === 'write' ? 'BEGIN EXCLUSIVE' : 'BEGIN');
    // A deferred transaction takes its read lock at its first read, and keeps it until it ends.
    if (kind === 'read') db.prepare('SELECT count(*) FROM sqlite_master').get();
    return true;
  } catch (e) {
    if (db.inTransaction) db.exec('ROLLBACK');
    if ((e as { code?: string }).code?.startsWith('SQLITE_BUSY')) return false;
    throw e;
  }
}

/** The lock's connection, holding dist/ for this process; none until a check, or after `releaseBuild()`. */
let held: Promise<Database.Database> | undefined;
/** A run's worker checks dist/ once (and says if it runs a stale build). */
let checked = false;

/**
 * Resolves once dist/ is built from the files as they are now (building it if need be) and held
 * for this process: no other test run or bench of this checkout builds it until this process
 * ends (or calls `releaseBuild()`). Checked once per process; later calls take no time.
 *
 * In a test run's worker, dist/ was built and is held by vitest's process (test/helpers/suite-build.ts):
 * the worker checks it and never builds. A file changed since the run began leaves it stale:
 * the run goes on with the build it began with, with a warning, since a build now would empty
 * dist/ under the brainstem processes the other test files run from it (and wait for the run's
 * own lock forever); the next run tests the change.
 */
export async function freshBuild(): Promise<void> {
  if (process.env[HELD_BY_RUN] === ROOT) {
    if (checked) return;
    checked = true;
    if (!isFresh())
      console.warn(
        'dist/ is older than a file it is built from, changed since this test run began: the run goes on with the build it began with; run the tests again to test the change',
      );
    return;
  }
  held ??= hold().catch((e: unknown) => {
    held = undefined;
    throw e;
  });
  await held;
}

/**
 * vitest's process, before a run's test files start (test/helpers/suite-build.ts): dist/ fresh and
 * held for the run, which its workers, forked from here on, know.
 */
export async function holdForRun(): Promise<void> {
  delete process.env[HELD_BY_RUN];
  await releaseBuild();
  await freshBuild();
  process.env[HELD_BY_RUN] = ROOT;
}

/** Lets other test runs and benches of this checkout build dist/ again (a test run's end). */
export async function releaseBuild(): Promise<void> {
  const db = await held?.catch(() => undefined);
  held = undefined;
  if (db?.open) {
    db.exec('ROLLBACK');
    db.close();
  }
}

async function hold(): Promise<Database.Database> {
  // Loaded here: a run's workers, which only check, never load it for this.
  const { default: Sqlite } = await import('../../src/db/sqlite.js');
  const db = new Sqlite(LOCK, { timeout: 0 });
  let refused = 0;
  /** The date this process gave the build it made, if it made one. */
  let mine: number | undefined;
  try {
    for (;;) {
      // The read lock first: dist/ is checked while no build is under way (a build under way
      // has written some of dist/ and not the rest), and kept if it is fresh, or is the build
      // this process just made (a file saved during that build is built by the next process).
      if (tryLock(db, 'read')) {
        if (isFresh() || (mine !== undefined && dated() === mine)) return db;
        db.exec('ROLLBACK');
        if (tryLock(db, 'write')) {
          try {
            // Checked again: another process may have built it since.
            if (!isFresh()) mine = await build();
          } finally {
            db.exec('COMMIT');
          }
          continue;
        }
        // Refused ten times (a second or more): held not by a check of a few ms but by a run or bench.
        if (++refused === 10) {
          console.warn(
            `dist/ is out of date, and another test run or bench of ${ROOT} runs brainstem from it: building once that ends`,
          );
        }
      }
      // Another build takes seconds, another run minutes: tried again (no event crosses processes).
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (e) {
    db.close();
    throw e;
  }
}

/** Builds dist/, and resolves with the date it gives it. */
async function build(): Promise<number> {
  // A file saved during the build, after the build read it, is newer than the build's start
  // but older than its output: dist/ is dated from the start, so the next check builds again.
  // Taken from a file, as the inputs' dates are: the files' clock ticks coarser than Date.now().
  const started = `${LOCK}.started`;
  writeFileSync(started, '');
  const { atime, mtime } = statSync(started);
  rmSync(started);
  const lifeline = new URL('./build-lifeline.mjs', import.meta.url).href;
  await promisify(execFile)('npm', ['run', 'build'], {
    cwd: ROOT,
    env: { ...process.env, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import ${lifeline}` },
  });
  utimesSync(MAIN, atime, mtime);
  return dated();
}
