import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Brain, Readiness } from '../brains/types.js';
import { type Said, untranslated } from './i18n.js';
import type { Logger } from './logger.js';

export type ReadinessProbe = (signal: AbortSignal) => Promise<Readiness>;

export interface WaitOptions {
  /** Give up after this long, probes included. */
  timeoutMs: number;
  /** Pause between the end of one probe and the start of the next. */
  intervalMs: number;
  /**
   * Give up once every probe for this long has said `down`: when the wait
   * itself starts nothing, a server nobody is starting will not come, and the
   * person who asked should hear so in seconds, not after `timeoutMs`.
   */
  downGraceMs?: number;
  signal?: AbortSignal;
}

export type WaitResult = { ok: true; waitedMs: number } | { ok: false; reason: Said; waitedMs: number };

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
  let last: Said = { en: 'no probe finished', fr: 'aucune vérification n’a abouti' };
  /** When the probes began to say `down` without a break. */
  let downSince: number | undefined;

  while (!stop.aborted) {
    const result = await bounded(probe, stop);
    if (result?.ok) return { ok: true, waitedMs: waited() };
    // Missing program, not logged in: no amount of waiting fixes it.
    if (result?.final) return { ok: false, reason: result.reason, waitedMs: waited() };
    if (result) {
      last = result.reason;
      // Measured between probes that said `down` one after another: one answer alone never ends the wait.
      const since = downSince;
      downSince = result.down ? (since ?? Date.now()) : undefined;
      if (
        result.down &&
        since !== undefined &&
        opts.downGraceMs !== undefined &&
        Date.now() - since >= opts.downGraceMs
      ) {
        const s = (opts.downGraceMs / 1000).toFixed(1);
        return {
          ok: false,
          reason: {
            en: `nothing answered for ${s} s and nothing is starting it: ${last.en}`,
            fr: `rien n’a répondu pendant ${s} s et rien ne le démarre : ${last.fr}`,
          },
          waitedMs: waited(),
        };
      }
    }
    await sleep(opts.intervalMs, undefined, { signal: stop }).catch(() => undefined);
  }
  if (opts.signal?.aborted)
    return {
      ok: false,
      reason: { en: `cancelled while waiting (${last.en})`, fr: `annulé pendant l’attente (${last.fr})` },
      waitedMs: waited(),
    };
  const s = (opts.timeoutMs / 1000).toFixed(1);
  return {
    ok: false,
    reason: { en: `not ready after ${s} s: ${last.en}`, fr: `pas prêt après ${s} s : ${last.fr}` },
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
        reason: untranslated((err as Error).message || String(err)),
      })),
      abandoned,
    ]);
  } finally {
    stop.removeEventListener('abort', onStop);
    ctrl.abort();
  }
}

/** What a probe asked for once brainstem is stopping answers. */
const STOPPING: Readiness = {
  ok: false,
  reason: { en: 'brainstem is stopping', fr: 'brainstem s’arrête' },
};

/** What is known of a brain's readiness right now, without waiting for anything. */
export interface KnownReadiness {
  /** The last probe's answer; undefined until the first probe of the brain has finished. */
  result?: Readiness;
  /** When that probe finished. */
  at?: number;
  /** A probe is running now. */
  checking: boolean;
}

interface ProbeState {
  result?: Readiness;
  at?: number;
  running?: Promise<Readiness>;
  /** A probe queued to start once the running one ends, for callers that need a fresh answer. */
  next?: Promise<Readiness>;
}

export interface ReadinessBoardOptions {
  /** Time between two background rounds of probes. */
  refreshMs: number;
  /** Limit of one probe. */
  timeoutMs: number;
  logger: Logger;
}

/**
 * Every brain's last known readiness, refreshed in the background, so that
 * /health answers at once whatever runs. All probes of a brain go through
 * here (background rounds, /status, the brain monitor, switches), and a brain
 * is never probed twice at once: a caller joins the probe already running, or
 * queues behind it when it needs an answer measured after its call.
 * `changed` is emitted with a brain's first answer and each change.
 */
export class ReadinessBoard extends EventEmitter<{ changed: [modeId: string, result: Readiness] }> {
  private readonly states = new Map<string, ProbeState>();
  private timer: NodeJS.Timeout | undefined;
  /** Aborted by stop(): the probes running then are cut, and none starts after. */
  private readonly stopped = new AbortController();

  constructor(
    private readonly brains: ReadonlyMap<string, Brain>,
    private readonly opts: ReadinessBoardOptions,
  ) {
    super();
  }

  /** Probes every brain now, then every `refreshMs`. */
  start(): void {
    if (this.timer) return;
    this.refreshAll();
    this.timer = setInterval(() => this.refreshAll(), this.opts.refreshMs);
    // Background work: never the reason the process stays up.
    this.timer.unref();
  }

  /**
   * No more probes; the ones running now are cut (a `claude auth status` that hangs would hold the
   * stop for its 30 s, past pm2's kill_timeout), and this resolves once they have ended, so none
   * (their children) outlives a shutdown. A probe asked for after this answers at once, not ready.
   */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    this.stopped.abort();
    const running = [...this.states.values()].flatMap((s) => [s.running, s.next]);
    await Promise.all(running.map((p) => p?.catch(() => undefined)));
  }

  known(modeId: string): KnownReadiness {
    const s = this.states.get(modeId);
    return { result: s?.result, at: s?.at, checking: s?.running !== undefined };
  }

  /**
   * The last probe's answer when no probe is running, else that of the one running (joined): what
   * the brain last learnt of its server (Ollama or llama-server), without probing again for it.
   */
  latest(modeId: string): Promise<Readiness> {
    const known = this.known(modeId);
    return known.result && !known.checking ? Promise.resolve(known.result) : this.probe(modeId);
  }

  /**
   * The brain's readiness from a probe that is running or starts now; with
   * `fresh`, from a probe that starts after this call (after the running one
   * ends, if any), e.g. once a model was started.
   */
  probe(modeId: string, opts: { fresh?: boolean } = {}): Promise<Readiness> {
    if (this.stopped.signal.aborted) return Promise.resolve(STOPPING);
    const s = this.state(modeId);
    if (!s.running) return this.run(modeId, s);
    if (!opts.fresh) return s.running;
    s.next ??= s.running.then(() => {
      s.next = undefined;
      // Someone may have started one in between: it began after our call too.
      return s.running ?? this.run(modeId, s);
    });
    return s.next;
  }

  private refreshAll(): void {
    for (const id of this.brains.keys()) void this.probe(id);
  }

  private state(modeId: string): ProbeState {
    let s = this.states.get(modeId);
    if (!s) {
      s = {};
      this.states.set(modeId, s);
    }
    return s;
  }

  private run(modeId: string, s: ProbeState): Promise<Readiness> {
    const brain = this.brains.get(modeId);
    const probe: Promise<Readiness> = brain
      ? brain
          .ready(AbortSignal.any([AbortSignal.timeout(this.opts.timeoutMs), this.stopped.signal]))
          .catch((err: Error): Readiness => ({ ok: false, reason: untranslated(err.message || String(err)) }))
      : Promise.resolve({
          ok: false,
          reason: { en: `no brain for mode ${modeId}`, fr: `pas de cerveau pour le mode ${modeId}` },
        });
    const running = probe.then((result) => {
      // Cut by the stop, it says nothing of the brain: the last answer stands.
      if (!this.stopped.signal.aborted) this.record(modeId, s, result);
      s.running = undefined;
      return result;
    });
    s.running = running;
    return running;
  }

  /** Keeps the answer; logs the first one (the start-up announcement) and every change. */
  private record(modeId: string, s: ProbeState, result: Readiness): void {
    const before = s.result;
    s.result = result;
    s.at = Date.now();
    if (before && sameReadiness(before, result)) return;
    this.emit('changed', modeId, result);
    if (result.ok)
      this.opts.logger.info({ mode: modeId }, `brain ${modeId}: ready (${result.detail?.en ?? 'ok'})`);
    else this.opts.logger.warn({ mode: modeId }, `brain ${modeId}: not ready: ${result.reason.en}`);
  }
}

function sameReadiness(a: Readiness, b: Readiness): boolean {
  return a.ok === b.ok && (a.ok || b.ok || a.reason.en === b.reason.en);
}
