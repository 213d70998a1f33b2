import { setImmediate } from 'node:timers/promises';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { idleMemoryPart } from '../src/idle-memory.js';
import type { Part } from '../src/part.js';
import { type LogRecord, recordingLogger } from './helpers/logs.js';

const MB = 1024 * 1024;
const released = (logs: LogRecord[]) => logs.filter((l) => l.msg === 'idle: heap released');
const heapTotal = () => process.memoryUsage().heapTotal;

/**
 * A burst of work as the event loop sees it: at least `ms` of allocation in
 * slices of a few milliseconds with the loop turning in between (as requests
 * come), until `keepMb` of objects are alive (however slow a busy machine
 * makes the allocation), which stay so until `drop` is called.
 */
async function burst(ms: number, keepMb: number) {
  let kept: unknown[] = [];
  const keep = keepMb * 10_000;
  const end = performance.now() + ms;
  while (performance.now() < end || kept.length < keep) {
    const slice = performance.now() + 5;
    while (performance.now() < slice) {
      // ~100 bytes an object: keepMb of them stay reachable, the rest is garbage.
      const o = { a: Math.random(), b: `x${Math.random()}`, c: [1, 2, 3] };
      if (kept.length < keep) kept.push(o);
    }
    await setImmediate();
  }
  return {
    drop: () => {
      kept = [];
    },
  };
}

describe('idle memory', () => {
  let part: Part | undefined;
  afterEach(async () => {
    await part?.stop?.();
  });

  it('gives the heap a burst grew back once the loop is idle, not while it works, and again after the next burst only', async () => {
    const { logger, logs } = recordingLogger();
    part = idleMemoryPart(logger, { windowMs: 100, growthMb: 8 });
    part.start?.();
    // The first idle window releases what came before (in the service: the start).
    await vi.waitFor(() => expect(released(logs)).toHaveLength(1), { timeout: 10_000 });

    // Busy for ten windows: no release in any of them.
    const before = heapTotal();
    const work = await burst(1_000, 60);
    expect(released(logs)).toHaveLength(1);
    const grown = heapTotal();
    expect(grown - before).toBeGreaterThan(40 * MB);
    work.drop();

    // Idle, and resident memory grew: one release, which gives back at least half of what the
    // burst grew (on Node 20 once its sweeper has freed the pages, a moment after the collection:
    // waited for, not assumed). Measured against the heap before the burst, not against its
    // peak: on a busy machine the worker's own heap is larger, and half the peak may be below it.
    await vi.waitFor(() => expect(released(logs)).toHaveLength(2), { timeout: 10_000 });
    await vi.waitFor(() => expect(heapTotal() - before).toBeLessThan((grown - before) / 2), {
      timeout: 10_000,
    });

    // The next release needs the next burst.
    (await burst(300, 20)).drop();
    await vi.waitFor(() => expect(released(logs)).toHaveLength(3), { timeout: 10_000 });
  });
});
