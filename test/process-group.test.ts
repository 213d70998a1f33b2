import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, expect, it } from 'vitest';
import { runAlone } from './helpers/procs.js';

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
// Started detached, it leads its group: its own pid names the group it is in.
killGroup(process.pid, 'SIGTERM');
console.log('alive');
`,
  );
  expect(await runAlone(script)).toEqual({ code: 0, signal: null, out: 'alive\n' });
});

// A Claude CLI's Bash command runs in a session of its own, which the kill of the CLI's group at
// brainstem's exit did not reach: it ran on after brainstem was gone.
it('at exit, kills what a tracked group marked runs outside the group, as well as the group', async () => {
  const script = path.join(dir, 'exit-marked.ts');
  const module = pathToFileURL(path.resolve('src/process-group.ts')).href;
  writeFileSync(
    script,
    `import { spawn } from 'node:child_process';
import { MARK_VAR, trackGroup } from ${JSON.stringify(module)};
const mark = 'exit-test-' + process.pid;
const leader = spawn('sh', ['-c', "setsid sh -c 'echo $$; exec sleep 300' & wait"], {
  detached: true,
  stdio: ['ignore', 'pipe', 'ignore'],
  env: { ...process.env, [MARK_VAR]: mark },
});
trackGroup(leader.pid, mark);
leader.stdout.once('data', (d) => {
  console.log(String(d).trim());
  process.exit(0);
});
`,
  );
  const { code, out } = await runAlone(script);
  expect(code).toBe(0);
  const stray = Number(out.trim());
  expect(stray).toBeGreaterThan(1);
  try {
    // Gone, or a zombie waiting for its reaper: it runs nothing any more.
    await expect
      .poll(() => {
        try {
          return readFileSync(`/proc/${stray}/stat`, 'utf8').split(') ')[1]?.[0] ?? 'gone';
        } catch {
          return 'gone';
        }
      })
      .toMatch(/^(gone|Z|X)$/);
  } finally {
    try {
      process.kill(stray, 'SIGKILL');
    } catch {}
  }
});
