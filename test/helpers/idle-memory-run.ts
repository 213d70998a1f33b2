/**
 * The scenario of test/idle-memory.test.ts, run as a process of its own: the event loop's idleness
 * and the resident memory the part watches must be this scenario's alone, not those of a test
 * worker that ran other files before it (their leftover timers, the heap they grew). Prints one
 * JSON line: what was seen at each step.
 */
import { setImmediate, setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { idleMemoryPart } from '../../src/idle-memory.js';

const MB = 1024 * 1024;
const heapTotal = () => process.memoryUsage().heapTotal;

let count = 0;
const waiting = new Map<number, () => void>();
const logger = pino(
  { level: 'debug' },
  {
    write: (chunk: string) => {
      for (const line of chunk.split('\n')) {
        if (!line || (JSON.parse(line) as { msg?: string }).msg !== 'idle: heap released') continue;
        count++;
        waiting.get(count)?.();
      }
    },
  },
);

/** The number of releases once the `n`th has come, or a minute has passed. */
async function releases(n: number): Promise<number> {
  if (count >= n) return count;
  // The part's own timer keeps no process alive: this one does, until the release comes.
  const cap = new AbortController();
  await Promise.race([
    new Promise<void>((r) => waiting.set(n, r)),
    sleep(60_000, undefined, { signal: cap.signal }).catch(() => undefined),
  ]);
  cap.abort();
  return count;
}

/**
 * A burst of work as the event loop sees it: at least `ms` of allocation in slices of a few
 * milliseconds with the loop turning in between (as requests come), until `keepMb` of objects are
 * alive (however slow a busy machine makes the allocation), which stay so until `drop` is called.
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

const part = idleMemoryPart(logger, { windowMs: 100, growthMb: 8 });
part.start?.();
const seen: Record<string, unknown> = {};
// The first idle window releases what came before (in the service: the start).
seen.afterStart = await releases(1);

// Busy for ten windows: no release in any of them.
const before = heapTotal();
const work = await burst(1_000, 60);
seen.duringBurst = count;
const grown = heapTotal();
seen.burstGrewHeapMb = Math.round((grown - before) / MB);
work.drop();

// Idle, and resident memory grew: one release, which gives back at least half of what the burst
// grew (on Node 20 once its sweeper has freed the pages, a moment after the collection: waited
// for, not assumed).
seen.afterIdle = await releases(2);
const deadline = performance.now() + 30_000;
while (heapTotal() - before >= (grown - before) / 2 && performance.now() < deadline) await sleep(100);
seen.gaveBackHalf = heapTotal() - before < (grown - before) / 2;

// The next release needs the next burst.
seen.beforeNextBurst = count;
(await burst(300, 20)).drop();
seen.afterNextBurst = await releases(3);

await part.stop?.();
console.log(JSON.stringify(seen));
