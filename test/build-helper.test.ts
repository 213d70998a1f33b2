import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, expect, it } from 'vitest';

/**
 * test/helpers/build.ts on a tree of its own, whose `npm run build` is a stand-in that writes
 * dist/ as esbuild does (every source read first, then the output written, with maps naming the
 * sources): the real build takes seconds, and the repository's files are never touched.
 */
const tree = mkdtempSync(path.join(tmpdir(), 'bst-build-helper-'));

afterAll(() => rmSync(tree, { recursive: true, force: true }));

let workers = 0;
/** One worker's check: freshBuild() of a module of its own (each test file's worker checks once). */
async function freshBuild(): Promise<void> {
  const helper = pathToFileURL(path.join(tree, 'test', 'helpers', 'build.ts'));
  helper.search = `worker=${workers++}`;
  const { freshBuild } = (await import(helper.href)) as typeof import('./helpers/build.js');
  await freshBuild();
}

const builds = () => readFileSync(path.join(tree, 'builds.log'), 'utf8').trim().split('\n').length;

it('a source saved while the build runs, after the build read it, is built again at the next check', async () => {
  mkdirSync(path.join(tree, 'test', 'helpers'), { recursive: true });
  mkdirSync(path.join(tree, 'src'));
  mkdirSync(path.join(tree, 'scripts'));
  mkdirSync(path.join(tree, 'node_modules'));
  copyFileSync(path.resolve('test/helpers/build.ts'), path.join(tree, 'test', 'helpers', 'build.ts'));
  for (const f of ['tsconfig.json', 'scripts/build.ts', 'node_modules/.package-lock.json'])
    writeFileSync(path.join(tree, f), '{}');
  writeFileSync(path.join(tree, 'src', 'main.ts'), 'export const said = 1;');
  // The first build: src/main.ts is read, then saved again (an editor, a checkout) before dist/ is written.
  writeFileSync(
    path.join(tree, 'build.mjs'),
    `import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
const source = readFileSync('src/main.ts', 'utf8');
if (!existsSync('builds.log')) {
  writeFileSync('src/main.ts', 'export const said = 2;');
  // The files' clock ticks coarsely: the output comes a tick later, as after a real build's second.
  const saved = statSync('src/main.ts').mtimeMs;
  do writeFileSync('tick', '');
  while (statSync('tick').mtimeMs <= saved);
}
rmSync('dist', { recursive: true, force: true });
mkdirSync('dist/src', { recursive: true });
writeFileSync('dist/src/main.js', source);
writeFileSync('dist/src/main.js.map', JSON.stringify({ sources: ['../../src/main.ts'] }));
appendFileSync('builds.log', 'built\\n');
`,
  );
  writeFileSync(path.join(tree, 'package.json'), JSON.stringify({ scripts: { build: 'node build.mjs' } }));

  await freshBuild();
  expect(readFileSync(path.join(tree, 'dist', 'src', 'main.js'), 'utf8')).toBe('export const said = 1;');
  await freshBuild();
  expect(builds()).toBe(2);
  expect(readFileSync(path.join(tree, 'dist', 'src', 'main.js'), 'utf8')).toBe('export const said = 2;');
  // Built from the files as they are now, it is not built again.
  await freshBuild();
  expect(builds()).toBe(2);
});
