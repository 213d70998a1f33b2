import { performance } from 'node:perf_hooks';
import v8 from 'node:v8';
import vm from 'node:vm';
import type { Logger } from './logger.js';
import type { Part } from './part.js';
import { endStartTiering } from './start-tiering.js';

/**
 * Gives the memory a burst of work left behind back to the system once
 * brainstem is idle again.
 *
 * V8 keeps the heap it grew to for a burst (the start, a chat, an image, an
 * MCP handshake) with its freed pages pooled for reuse. Its own memory reducer
 * would shrink it, but only once it measures a low allocation rate, and it
 * takes that measure at garbage collections, which an idle process no longer
 * has: in brainstem it never fires (`--trace-memory-reducer` says "high
 * alloc" every 8 s for minutes of idleness), and the resident memory a few
 * hundred chats leave stays so for good.
 *
 * So every `windowMs` this looks at the last window: when the event loop was
 * idle in it (below `IDLE_UTILIZATION`) and resident memory has grown by
 * `growthMb` since the last release, it runs a full collection that shrinks
 * the heap and frees the pool (75–90 ms of the main thread on Node 24 for
 * brainstem's heap, seen in the debug line below). Idle, nothing grows and nothing runs; the growth a
 * release could not give back (malloc's, the node binary's pages) becomes the
 * new mark, so it is not chased again.
 */
export interface IdleMemoryOptions {
  /** How long the event loop must have been idle; also how often it is looked at. */
  windowMs?: number;
  /** Growth of resident memory since the last release that calls for another. */
  growthMb?: number;
}

/** Event loop utilization of an idle brainstem: its timers and long polls use some 0.3 %. */
const IDLE_UTILIZATION = 0.02;
const MB = 1024 * 1024;

type Release = () => void;

export function idleMemoryPart(logger: Logger, opts: IdleMemoryOptions = {}): Part {
  const { windowMs = 5_000, growthMb = 4 } = opts;
  let timer: NodeJS.Timeout | undefined;
  return {
    start() {
      const release = memoryReducingGc();
      if (!release) {
        logger.warn('idle memory release off: this Node gives no gc function with --expose-gc');
        return;
      }
      // The lowest resident memory since the last release (memory freed after it, by Node 20's
      // sweeper or the kernel, counts); none before the first, so the first idle window after
      // the start (the first burst) releases what the start left.
      let mark: number | undefined;
      let window = performance.eventLoopUtilization();
      timer = setInterval(() => {
        const busy = performance.eventLoopUtilization(window).utilization;
        const rss = process.memoryUsage.rss();
        window = performance.eventLoopUtilization();
        if (mark !== undefined) mark = Math.min(mark, rss);
        if (busy >= IDLE_UTILIZATION) return;
        endStartTiering();
        if (mark !== undefined && rss - mark < growthMb * MB) return;
        const started = performance.now();
        release();
        mark = process.memoryUsage.rss();
        // The window starts after the release: its own time does not count as work.
        window = performance.eventLoopUtilization();
        logger.debug(
          {
            rssBeforeMb: round(rss / MB),
            rssAfterMb: round(mark / MB),
            ms: round(performance.now() - started),
          },
          'idle: heap released',
        );
      }, windowMs);
      // Releasing memory never keeps the process alive.
      timer.unref();
    },
    async stop() {
      clearInterval(timer);
    },
  };
}

/**
 * A full collection that shrinks the heap, from the `gc` function that
 * `--expose-gc` puts in a context's globals. The flag is set only while one
 * throwaway context is made (about 150 kB), so `gc` never appears in
 * brainstem's own globals or in another context (the DOM library's), and
 * `npm start` keeps its flags. Two calls, because the two V8s differ: Node
 * 20's shrinks the heap after a plain one (its sweeper frees the pages a
 * moment later) and does nothing with an options object; Node 24's keeps its
 * pages after a plain one and shrinks at once after the "last resort" one.
 */
function memoryReducingGc(): Release | undefined {
  let gc = (globalThis as { gc?: GcFunction }).gc;
  if (!gc) {
    v8.setFlagsFromString('--expose-gc');
    try {
      gc = vm.runInNewContext('typeof gc === "function" ? gc : undefined') as GcFunction | undefined;
    } finally {
      v8.setFlagsFromString('--no-expose-gc');
    }
  }
  const run = gc;
  if (!run) return undefined;
  return () => {
    run();
    run({ type: 'major', execution: 'sync', flavor: 'last-resort' });
  };
}

type GcFunction = (opts?: { type: 'major'; execution: 'sync'; flavor: 'last-resort' }) => void;

const round = (n: number) => Math.round(n * 10) / 10;
