import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Real CLI runs take 1–6 s each on a loaded 2-core machine; tests assert behaviour, not speed.
    testTimeout: 90_000,
    hookTimeout: 60_000,
    pool: 'forks',
    fileParallelism: true,
    // Three files at a time on two cores: most files spend much of their time waiting (on a CLI's
    // API round, a timer by design, a restart), and two workers left a quarter of the CPU idle.
    maxWorkers: 3,
  },
});
