import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';

/**
 * test/helpers/build.ts on a tree of its own, whose `npm run build` is a stand-in that writes
 * dist/ as esbuild does (every source read first, then the output written, with maps naming the
 * sources): the real build takes seconds, and the repository's files are never touched. Test runs
 * and benches are processes of their own (run.ts), as they are for real: the lock is the kernel's.
 */
const tree = mkdtempSync(path.join(tmpdir(), 'bst-build-helper-'));
const file = (f: string) => path.join(tree, f);

type Helper = typeof import('./helpers/build.js');
/** The helper as a process loads it: each key a module of its own, with its own hold on dist/. */
async function helper(key: string): Promise<Helper> {
  const url = pathToFileURL(file('test/helpers/build.ts'));
  url.search = `process=${key}`;
  return (await import(url.href)) as Helper;
}

const builds = () => readFileSync(file('builds.log'), 'utf8').trim().split('\n').length;
const built = () => readFileSync(file('dist/src/main.js'), 'utf8');
const save = (said: number) => writeFileSync(file('src/main.ts'), `export const said = ${said};`);

beforeAll(() => {
  for (const dir of ['test/helpers', 'src/db', 'scripts', 'node_modules'])
    mkdirSync(file(dir), { recursive: true });
  for (const f of ['test/helpers/build.ts', 'test/helpers/build-lifeline.mjs', 'src/db/sqlite.ts'])
    copyFileSync(path.resolve(f), file(f));
  symlinkSync(path.resolve('node_modules/better-sqlite3'), file('node_modules/better-sqlite3'));
  for (const f of ['tsconfig.json', 'scripts/build.ts', 'node_modules/.package-lock.json'])
    writeFileSync(file(f), '{}');
  writeFileSync(
    file('package.json'),
    JSON.stringify({ type: 'module', scripts: { build: 'node build.mjs' } }),
  );
  // With `edit` there, src/main.ts is saved again (an editor, a checkout) after the build read it
  // and before dist/ is written; with `hang`, the build says it is under way and waits for `hang` to go.
  writeFileSync(
    file('build.mjs'),
    `import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
const source = readFileSync('src/main.ts', 'utf8');
if (existsSync('edit')) {
  rmSync('edit');
  writeFileSync('src/main.ts', 'export const said = 2;');
  // The files' clock ticks coarsely: the output comes a tick later, as after a real build's second.
  const saved = statSync('src/main.ts').mtimeMs;
  do writeFileSync('tick', '');
  while (statSync('tick').mtimeMs <= saved);
}
if (existsSync('hang')) {
  writeFileSync('building', String(process.pid));
  while (existsSync('hang')) await new Promise((r) => setTimeout(r, 20));
}
rmSync('dist', { recursive: true, force: true });
mkdirSync('dist/src', { recursive: true });
writeFileSync('dist/src/main.js', source);
writeFileSync('dist/src/main.js.map', JSON.stringify({ sources: ['../../src/main.ts'] }));
appendFileSync('builds.log', 'built\\n');
`,
  );
  // A test run's vitest process (\`run\`) or a bench (\`bench\`): dist/ held until its stdin ends.
  writeFileSync(
    file('run.ts'),
    `import { freshBuild, holdForRun } from './test/helpers/build.ts';
await (process.argv[2] === 'run' ? holdForRun() : freshBuild());
console.log('held');
process.stdin.on('end', () => process.exit()).resume();
`,
  );
});

const started: ChildProcess[] = [];
afterEach(() => {
  for (const child of started.splice(0)) child.kill('SIGKILL');
  for (const f of ['hang', 'building', 'edit']) rmSync(file(f), { force: true });
});
afterAll(() => rmSync(tree, { recursive: true, force: true }));

interface Run {
  child: ChildProcess;
  /** Resolves once dist/ is fresh and held by the run; rejects if it ends first. */
  held: Promise<void>;
  /** Resolves at its first line on stderr (what it says while it waits). */
  said: Promise<string>;
  end(): Promise<void>;
}

/** A test run's or a bench's process of the tree. */
function startRun(kind: 'run' | 'bench'): Run {
  const child = spawn(process.execPath, ['--import', 'tsx', file('run.ts'), kind], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  started.push(child);
  const exited = once(child, 'exit');
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const held = new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on(
      'line',
      (l) => l === 'held' && resolve(),
    );
    void exited.then(([code]) =>
      reject(new Error(`the run ended (${code}) before it held dist/: ${stderr}`)),
    );
  });
  // Awaited by the tests that expect it; one killed on purpose never holds it.
  held.catch(() => {});
  const said = new Promise<string>((resolve) =>
    createInterface({ input: child.stderr as NodeJS.ReadableStream }).once('line', resolve),
  );
  return {
    child,
    held,
    said,
    end: async () => {
      child.stdin?.end();
      await exited;
    },
  };
}

/** Resolves once `f` exists in the tree (written by the stand-in build of another process). */
async function appears(f: string): Promise<void> {
  while (!existsSync(file(f))) await new Promise((r) => setTimeout(r, 20));
}

/** Resolves once process `pid` (not a child of this one) has ended. */
async function ends(pid: number): Promise<void> {
  for (;;) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

it('a source saved while the build runs, after the build read it, is built again at the next check', async () => {
  save(1);
  writeFileSync(file('edit'), '');
  const { freshBuild, releaseBuild } = await helper('first');
  await freshBuild();
  expect(built()).toBe('export const said = 1;');
  await releaseBuild();
  await freshBuild();
  expect(builds()).toBe(2);
  expect(built()).toBe('export const said = 2;');
  await releaseBuild();
  // Built from the files as they are now, it is not built again.
  await freshBuild();
  expect(builds()).toBe(2);
  await releaseBuild();
});

it("a run's worker runs the build its run began with, and never builds under the others", async () => {
  const run = await helper('run');
  const worker = await helper('worker');
  const inherited = process.env.BRAINSTEM_TEST_DIST_HELD;
  try {
    await run.holdForRun();
    const before = builds();
    save(3);
    await worker.freshBuild();
    expect(builds()).toBe(before);
    expect(built()).toBe('export const said = 2;');
  } finally {
    await run.releaseBuild();
    process.env.BRAINSTEM_TEST_DIST_HELD = inherited;
  }
});

it('a run that finds dist/ out of date builds it only once the runs and benches started from it have ended', async () => {
  save(4);
  const bench = startRun('bench');
  await bench.held;
  const first = startRun('run');
  await first.held;
  const before = builds();
  save(5);
  const next = startRun('run');
  expect(await Promise.race([next.said, next.held.then(() => 'built under them')])).toMatch(
    /dist\/ is out of date, and another test run or bench .* runs brainstem from it: building once that ends/,
  );
  await first.end();
  await bench.end();
  await next.held;
  expect(builds()).toBe(before + 1);
  expect(built()).toBe('export const said = 5;');
});

it('a run killed while it builds lets the next ones go at once, and of two waiting only one builds', async () => {
  save(6);
  writeFileSync(file('hang'), '');
  const killed = startRun('run');
  await appears('building');
  const waiting = [startRun('run'), startRun('bench')];
  killed.child.kill('SIGKILL');
  await once(killed.child, 'exit');
  // Its build ends with it: it would write dist/ under the next one's.
  await ends(Number(readFileSync(file('building'), 'utf8')));
  const before = builds();
  rmSync(file('hang'));
  await Promise.all(waiting.map((w) => w.held));
  expect(builds()).toBe(before + 1);
  expect(built()).toBe('export const said = 6;');
});

it('a process of the build run through tsx, as `npm run build` runs scripts/build.ts, ends on its own with the lifeline loaded', async () => {
  writeFileSync(file('late.ts'), `const said: string = 'done'; setTimeout(() => console.log(said), 300);`);
  const lifeline = pathToFileURL(file('test/helpers/build-lifeline.mjs')).href;
  const child = spawn(process.execPath, ['--import', 'tsx', file('late.ts')], {
    env: { ...process.env, NODE_OPTIONS: `--import ${lifeline}` },
    // stdin stays open, as the pipe from the process holding the build lock does.
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  started.push(child);
  let out = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const [code] = await once(child, 'exit');
  expect({ code, out: out.trim() }).toEqual({ code: 0, out: 'done' });
});
