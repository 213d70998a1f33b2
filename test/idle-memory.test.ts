import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

describe('idle memory', () => {
  it('gives the heap a burst grew back once the loop is idle, not while it works, and again after the next burst only', async () => {
    // In a process of its own: test/helpers/idle-memory-run.ts says why.
    const { stdout } = await promisify(execFile)(process.execPath, [
      '--import',
      'tsx',
      path.resolve('test/helpers/idle-memory-run.ts'),
    ]);
    const seen = JSON.parse(stdout) as Record<string, unknown>;
    expect(seen).toEqual({
      afterStart: 1,
      duringBurst: 1,
      burstGrewHeapMb: expect.any(Number),
      afterIdle: 2,
      gaveBackHalf: true,
      beforeNextBurst: 2,
      afterNextBurst: 3,
    });
    expect(seen.burstGrewHeapMb).toBeGreaterThan(40);
  });
});
