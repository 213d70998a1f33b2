import { setTimeout as sleep } from 'node:timers/promises';
import type { Readiness } from '../brains/types.js';

export type ReadinessProbe = (signal: AbortSignal) => Promise<Readiness>;

export interface WaitOptions {
  /** Give up after this long, probes included. */
  timeoutMs: number;
  /** Pause between the end of one probe and the start of the next. */
  intervalMs: number;
  signal?: AbortSignal;
}

export type WaitResult = { ok: true; waitedMs: number } | { ok: false; reason: string; waitedMs: number };

/**
 * Polls a real readiness probe until it says ok, the time is up, `signal`
 * aborts, or it says waiting will not help (`final`). The first probe runs at
 * once. A probe is aborted when the overall time runs out, and one that ignores
 * its signal is abandoned then, so a hung probe cannot stretch the wait.
 */
export async function waitUntilReady(probe: ReadinessProbe, opts: WaitOptions): Promise<WaitResult> {
  const started = Date.now();
  const waited = () => Date.now() - started;
  const deadline = AbortSignal.timeout(opts.timeoutMs);
  const stop = opts.signal ? AbortSignal.any([opts.signal, deadline]) : deadline;
  let last = 'no probe finished';

  while (!stop.aborted) {
    const result = await bounded(probe, stop);
    if (result?.ok) return { ok: true, waitedMs: waited() };
    if (result?.final) return { ok: false, reason: result.reason, waitedMs: waited() };
    if (result) last = result.reason;
    await sleep(opts.intervalMs, undefined, { signal: stop }).catch(() => undefined);
  }
  if (opts.signal?.aborted)
    return { ok: false, reason: `cancelled while waiting (${last})`, waitedMs: waited() };
  return {
    ok: false,
    reason: `not ready after ${(opts.timeoutMs / 1000).toFixed(1)} s: ${last}`,
    waitedMs: waited(),
  };
}

/** The probe's answer, or undefined when `stop` aborted first; a throwing probe counts as not ready. */
async function bounded(probe: ReadinessProbe, stop: AbortSignal): Promise<Readiness | undefined> {
  if (stop.aborted) return undefined;
  const ctrl = new AbortController();
  let onStop = () => {};
  const abandoned = new Promise<undefined>((resolve) => {
    onStop = () => {
      ctrl.abort(stop.reason);
      resolve(undefined);
    };
  });
  stop.addEventListener('abort', onStop, { once: true });
  try {
    return await Promise.race([
      probe(ctrl.signal).catch((err: unknown) => ({
        ok: false as const,
        reason: (err as Error).message || String(err),
      })),
      abandoned,
    ]);
  } finally {
    stop.removeEventListener('abort', onStop);
    ctrl.abort();
  }
}
