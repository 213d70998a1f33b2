/**
 * The build (dist/) that the process tests start, as `npm start` and pm2 do: a node start of the
 * bundle takes about a second, one of the sources through tsx three to five.
 *
 * A test must never run a stale build, so `freshBuild()` runs `npm run build` unless dist/'s
 * build began after every file it was built from last changed: brainstem's files its source maps name
 * (the build keeps each input's name there), the build script and tsconfig.json, and the installed packages
 * (node_modules/.package-lock.json, which npm writes on each install: npm gives a package's files
 * their tarball's fixed date). A map naming a file that is gone (deleted, moved) means a rebuild,
 * which fails if something still imports it. The suite's workers build one at a time (the build
 * empties dist/ first), and a worker that waited for another's build finds it fresh.
 */
import { execFile } from 'node:child_process';
import { linkSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

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
    return statSync(MAIN).mtimeMs > newestInput();
  } catch {
    return false;
  }
}

/** One build at a time across the suite's processes: a lock file naming its holder. */
const LOCK = path.join(tmpdir(), `brainstem-build-${Buffer.from(ROOT).toString('base64url')}.lock`);

function tryLock(): boolean {
  // Written aside and linked in: the lock never exists without its holder's pid.
  const mine = `${LOCK}.${process.pid}`;
  writeFileSync(mine, String(process.pid));
  try {
    linkSync(mine, LOCK);
    return true;
  } catch {
    // Held; left by a process that died, it is taken over.
    let holder = 0;
    try {
      holder = Number(readFileSync(LOCK, 'utf8'));
    } catch {
      // Released meanwhile.
    }
    if (holder && isAlive(holder)) return false;
    rmSync(LOCK, { force: true });
    return tryLock();
  } finally {
    rmSync(mine, { force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

let checked: Promise<void> | undefined;

/**
 * Resolves once dist/ is built from the files as they are now (building it if need be); checked
 * once per process (a test file's worker, a bench), whose later starts take no time for it.
 */
export function freshBuild(): Promise<void> {
  checked ??= build().catch((e: unknown) => {
    checked = undefined;
    throw e;
  });
  return checked;
}

async function build(): Promise<void> {
  // Checked under the lock too: a build under way has written some of dist/ and not the rest.
  // Another worker's build takes seconds: its end is polled for (no event crosses processes).
  while (!tryLock()) await new Promise((r) => setTimeout(r, 200));
  try {
    if (!isFresh()) {
      // A file saved during the build, after the build read it, is newer than the build's start
      // but older than its output: dist/ is dated from the start, so the next check builds again.
      // Taken from a file, as the inputs' dates are: the files' clock ticks coarser than Date.now().
      const started = `${LOCK}.started`;
      writeFileSync(started, '');
      const { atime, mtime } = statSync(started);
      rmSync(started);
      await promisify(execFile)('npm', ['run', 'build'], { cwd: ROOT });
      utimesSync(MAIN, atime, mtime);
    }
  } finally {
    rmSync(LOCK, { force: true });
  }
}
