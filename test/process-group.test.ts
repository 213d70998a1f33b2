import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, expect, it } from 'vitest';

const dir = mkdtempSync(path.join(tmpdir(), 'bst-process-group-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it('never signals the group of the process that calls it, whatever pid it is given', async () => {
  // In a process leading a group of its own: a kill of its own group ends it, not this test run.
  const script = path.join(dir, 'kill-zero.ts');
  const module = pathToFileURL(path.resolve('src/process-group.ts')).href;
  writeFileSync(
    script,
    `import { killGroup } from ${JSON.stringify(module)};
killGroup(0, 'SIGTERM');
killGroup(Number.NaN, 'SIGTERM');
console.log('alive');
`,
  );
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    detached: true,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const [code, signal] = await once(child, 'exit');
  expect({ code, signal, out }).toEqual({ code: 0, signal: null, out: 'alive\n' });
});
