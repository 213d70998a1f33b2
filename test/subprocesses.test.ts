import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, expect, it } from 'vitest';
import { runAlone } from './helpers/procs.js';

const dir = mkdtempSync(path.join(tmpdir(), 'bst-subprocesses-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * tsx, which runs the script, catches SIGTERM for itself: the script says it got one and exits. A
 * signal is read in the event loop's poll phase, which comes before setImmediate's: 'alive' comes
 * only once a signal sent meanwhile would have been handled.
 */
const SIGNALLED = `process.on('SIGTERM', () => {
  console.log('signalled');
  process.exit(3);
});
`;

/** `code` with SIGNALLED above it, run alone (runAlone). */
function runScript(name: string, code: string) {
  const script = path.join(dir, name);
  writeFileSync(script, SIGNALLED + code);
  return runAlone(script);
}

const moduleUrl = (file: string) => JSON.stringify(pathToFileURL(path.resolve(file)).href);

it('a swap command not found, its switch already stopped, signals nothing: the caller lives on', async () => {
  const result = await runScript(
    'swap-missing.mts',
    `import { swapLlamaModel } from ${moduleUrl('src/llama-swap.ts')};
const stopped = new AbortController();
stopped.abort();
const quiet = { info() {}, warn() {} };
const r = await swapLlamaModel({
  stop: [['brainstem-test-no-such-command']],
  start: [],
  probe: async () => ({ ok: true }),
  timeoutMs: 1000,
  intervalMs: 100,
  signal: stopped.signal,
  logger: quiet as never,
});
setImmediate(() => console.log(r.ok ? 'swapped' : 'alive'));
`,
  );
  expect(result).toEqual({ code: 0, signal: null, out: 'alive\n' });
});

it('execa from subprocesses(), cut before a program that cannot start fails, kills nothing', async () => {
  const result = await runScript(
    'execa-missing.mts',
    `import { subprocesses } from ${moduleUrl('src/subprocesses.ts')};
const { execa } = await subprocesses();
const cut = new AbortController();
const run = execa('brainstem-test-no-such-command', [], { cancelSignal: cut.signal, reject: false });
cut.abort();
const r = await run;
setImmediate(() => console.log(r.code === 'ENOENT' || r.isCanceled ? 'alive' : 'ran'));
`,
  );
  expect(result).toEqual({ code: 0, signal: null, out: 'alive\n' });
});
