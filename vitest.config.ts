import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // One temporary folder for the run (removed at its end), and dist/, which the process tests
    // start brainstem from, built once before any test file starts.
    globalSetup: ['test/helpers/suite-tmp.ts', 'test/helpers/suite-build.ts'],
    // In every worker: process.kill throws for a pid that is the test run itself (0, the worker's
    // own group, vitest's) rather than ending the whole run with no line saying why.
    setupFiles: ['test/helpers/kill-guard.ts'],
    // Real CLI runs take 1–6 s each on a loaded 2-core machine; tests assert behaviour, not speed.
    testTimeout: 90_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // A worker runs file after file without starting afresh: a fresh process per file (Node,
    // vitest, the packages its imports load) cost ~1 s of CPU each, on a suite that keeps both
    // cores busy. So a file puts back what it changes in the process (process.env, listeners on
    // process) in its afterAll.
    isolate: false,
    fileParallelism: true,
    // One more worker than the 2 cores CI has: much of a test's time is spent waiting (on a CLI's
    // answer, a fake's event, a poll), and with 2 workers the CPU stood ~30 % idle through a run;
    // 3 kept it busy and took the run from 541 s to 393 s on the same machine (vmstat 10).
    maxWorkers: 3,
  },
});
