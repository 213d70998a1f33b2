import type { Worker } from 'node:worker_threads';
import { BrainstemError } from '../errors.js';

/**
 * Reads fetched HTML pages in a worker thread (src/tools/page-worker.ts), so that parsing a large
 * page and extracting its article, seconds of work, leave the event loop free for every other chat
 * and request. One worker, started on the first page (none costs memory before), kept for the
 * next, and unref'd: it never keeps the process alive. Pages are read one at a time, each within
 * its time limit; past it the worker is ended (the next page starts a new one) and the page's
 * whole text, which the worker sends before it parses, is the answer: that loses the choice of
 * the main part only, where an error would lose the page. A page whose text has not come by then
 * is a TOOL_TIMEOUT. A worker with nothing to read for IDLE_MS is ended too: its heap (some 28 MB
 * once the DOM and Readability have loaded) is not kept for a fetch that may never come.
 * A page whose call is cancelled (its `signal`) is let go at once, a TOOL_ABORTED: one still
 * waiting for its turn is skipped when its turn comes, one being read has its worker ended, so
 * the pages behind it do not wait out its reading.
 *
 *   const reader = new PageReader();
 *   const { title, text } = await reader.read(html, 20_000, url, signal);
 */
export class PageReader {
  private worker: Worker | undefined;
  /** Why the worker last ended, if it failed. */
  private failure: string | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private pending = 0;
  private idle: NodeJS.Timeout | undefined;

  constructor(
    private readonly idleMs = IDLE_MS,
    private readonly heapMb = HEAP_MB,
  ) {}

  read(
    html: string,
    limitMs: number,
    url: string,
    signal?: AbortSignal,
  ): Promise<{ title?: string; text: string }> {
    if (signal?.aborted) return Promise.reject(stopped(url));
    clearTimeout(this.idle);
    this.pending++;
    const job = this.queue.then(() => {
      if (signal?.aborted) throw stopped(url);
      return this.run(html, limitMs, url, signal);
    });
    this.queue = job
      .catch(() => undefined)
      .finally(() => {
        if (--this.pending === 0) this.endWhenIdle();
      });
    if (!signal) return job;
    // The caller hears of its cancel now, not when the page's turn comes.
    return new Promise((resolve, reject) => {
      const drop = () => reject(stopped(url));
      signal.addEventListener('abort', drop, { once: true });
      job.then(resolve, reject).finally(() => signal.removeEventListener('abort', drop));
    });
  }

  /** Whether a worker is up (started, not ended since). */
  get running(): boolean {
    return this.worker !== undefined;
  }

  private endWhenIdle(): void {
    const worker = this.worker;
    if (!worker) return;
    this.idle = setTimeout(() => this.stop(worker), this.idleMs);
    this.idle.unref();
  }

  private async run(
    html: string,
    limitMs: number,
    url: string,
    signal: AbortSignal | undefined,
  ): Promise<{ title?: string; text: string }> {
    const worker = await this.start();
    // Cancelled while the worker started: it has read nothing, so it stays for the next page.
    if (signal?.aborted) throw stopped(url);
    return new Promise((resolve, reject) => {
      let whole: string | undefined;
      const done = () => {
        clearTimeout(timer);
        worker.off('message', onMessage);
        worker.off('exit', onExit);
        signal?.removeEventListener('abort', onAbort);
      };
      const onMessage = (m: WorkerMessage) => {
        if (m.kind === 'text') {
          whole = m.text;
          return;
        }
        done();
        if (m.kind === 'done') resolve({ title: m.title, text: m.text });
        else reject(unreadable(url, m.message));
      };
      const onExit = () => {
        done();
        // Out of memory building the page (past heapMb): its whole text is still an answer.
        if (whole !== undefined) return resolve({ text: whole });
        reject(unreadable(url, `its reader stopped (${this.failure ?? 'no reason given'})`));
      };
      // The worker cannot be told to drop a page mid-way: it is ended, and the next page starts another.
      const onAbort = () => {
        done();
        this.stop(worker);
        reject(stopped(url));
      };
      // The limit counts from here, the worker's start included, so a page never waits longer.
      const timer = setTimeout(() => {
        done();
        this.stop(worker);
        if (whole !== undefined) return resolve({ text: whole });
        reject(
          new BrainstemError(
            'TOOL_TIMEOUT',
            `${url} was fetched but could not be read within ${limitMs / 1000} s.`,
            'url',
            `${url} a été récupérée mais n’a pu être lue en ${limitMs / 1000} s.`,
          ),
        );
      }, limitMs);
      worker.on('message', onMessage);
      worker.on('exit', onExit);
      signal?.addEventListener('abort', onAbort, { once: true });
      worker.postMessage(html);
    });
  }

  private async start(): Promise<Worker> {
    if (this.worker) return this.worker;
    // Imported here: node:worker_threads is loaded only once a page is read, not at start.
    const { Worker } = await import('node:worker_threads');
    this.failure = undefined;
    // Capped so that brainstem with a page in its worker stays under pm2's max_memory_restart
    // (300 MB): a page the element bound lets through (page-worker.ts) takes some 100 MB.
    const worker = new Worker(workerFile(), { resourceLimits: { maxOldGenerationSizeMb: this.heapMb } });
    worker.unref();
    // A failure inside the worker ends it: 'exit' follows, which the page being read hears.
    worker.on('error', (err) => {
      this.failure = err.message;
    });
    worker.on('exit', () => {
      if (this.worker === worker) this.worker = undefined;
    });
    this.worker = worker;
    return worker;
  }

  private stop(worker: Worker): void {
    if (this.worker === worker) this.worker = undefined;
    void worker.terminate();
  }
}

/** How long a worker with nothing to read is kept for the next page. */
const IDLE_MS = 60_000;
/** The worker's heap: past it the worker ends, and the page's whole text is the answer. */
const HEAP_MB = 200;

type WorkerMessage =
  | { kind: 'text'; text: string }
  | { kind: 'done'; title?: string; text: string }
  | { kind: 'error'; message: string };

/**
 * The worker's module: in the bundle, dist/src/tools/page-worker.js, an entry of its own
 * (scripts/build.ts), one directory up from the entry and from every chunk, where this file is
 * bundled. From the sources (tests, `tsx src/main.ts`), a shim beside this file that registers tsx's
 * loader, which a worker thread does not inherit, before it runs page-worker.ts.
 */
function workerFile(): URL {
  return import.meta.url.endsWith('.ts')
    ? new URL('./page-worker-tsx.mjs', import.meta.url)
    : new URL('../src/tools/page-worker.js', import.meta.url);
}

function unreadable(url: string, why: string): BrainstemError {
  return new BrainstemError(
    'TOOL_FAILED',
    `Could not read ${url}: ${why}`,
    'url',
    `Impossible de lire ${url} : ${why}`,
  );
}

/** A page whose call was cancelled (a /stop, a client gone, brainstem stopping) before it was read. */
function stopped(url: string): BrainstemError {
  return new BrainstemError(
    'TOOL_ABORTED',
    `${url} was fetched, but its reading was stopped: the call was cancelled, or brainstem is shutting down.`,
    undefined,
    `${url} a été récupérée, mais sa lecture a été arrêtée : l’appel a été annulé, ou brainstem s’arrête.`,
  );
}
