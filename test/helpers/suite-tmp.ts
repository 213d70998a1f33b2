import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { OUTER_TMPDIR } from './build.js';

/**
 * vitest's globalSetup: one temporary folder for the whole run, removed when it ends. The test
 * files, the brainstem processes and Claude CLIs they start all make their folders through
 * `os.tmpdir()` (TMPDIR), and a file that fails or is cut leaves its own behind; under one run
 * folder none of them outlives the run. Set here, in vitest's own process before any worker is
 * forked, so every worker and child inherits it.
 */
export default function setup(): () => void {
  const outer = process.env.TMPDIR;
  const run = mkdtempSync(path.join(tmpdir(), 'bst-run-'));
  // The build lock (test/helpers/build.ts) stays in the system's folder, shared with benches.
  process.env[OUTER_TMPDIR] = tmpdir();
  process.env.TMPDIR = run;
  return () => {
    delete process.env[OUTER_TMPDIR];
    if (outer === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = outer;
    rmSync(run, { recursive: true, force: true, maxRetries: 3 });
  };
}
