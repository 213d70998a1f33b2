import { randomUUID } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';
import type { Logger } from '../../src/logger.js';
import { type Execa, subprocesses } from '../../src/subprocesses.js';
import { tailChars } from '../../src/text.js';
import { ClaudeProcess, type SpawnOptions } from './process.js';
import type { ProcessCap } from './process-cap.js';
import { initializeRequest } from './stdin.js';

/**
 * CLI processes started ahead of need (`modes.<id>.spares`), so that a new
 * conversation skips the CLI start-up: the next new conversation of the
 * active mode takes one, which then stays its warm process. Shared by every
 * Claude mode; only the active mode keeps spares (a switch closes the others).
 *
 * A spare starts only when no Claude turn is running and a slot of
 * `claude.maxProcesses` is free (it never closes anything to get one), one
 * at a time, under `nice` so that a turn starting meanwhile gets the CPU
 * first; it is the first process closed when a turn needs room.
 */

/** Niceness of a spare until a conversation takes it. */
const SPARE_NICE = 19;
/**
 * Spares that fail to start in a row before brainstem stops starting them (until the next switch,
 * or the active mode's brain is found ready again after a probe that said it was not).
 */
const MAX_START_FAILURES = 3;

/** Spares a Claude mode keeps when `modes.<id>.spares` is unset. */
export const DEFAULT_SPARES = 1;

export interface SpareSource {
  /** How many spares to keep while the mode is active (0 = none). */
  count: number;
  /** The spawn options a new conversation of the mode would use now. */
  spec(): Promise<SpawnOptions>;
  /** Reads a started spare until a turn takes it (guardIdle). */
  guard(proc: ClaudeProcess): void;
}

export interface Spare {
  proc: ClaudeProcess;
  /** Resolves once the CLI has started (answered `initialize`); false if it ended first. */
  started: Promise<boolean>;
}

interface Entry extends Spare {
  mode: string;
  /** What it was spawned with; a conversation that would spawn anything else cannot use it. */
  fingerprint: string;
  /**
   * Taken by a conversation or closed by brainstem (room for a turn, a switch…):
   * if its start then fails, that is no sign that spares cannot start.
   */
  released?: boolean;
}

export class Spares {
  private readonly sources = new Map<string, SpareSource>();
  /** Oldest first. */
  private readonly idle: Entry[] = [];
  /** The mode spares are kept for: the active one. */
  private mode?: string;
  private turns = 0;
  private starting = false;
  private failures = 0;
  /** Shutdown: nothing starts again. */
  private stopped = false;
  /**
   * Modes whose brain's readiness probe said ready last. Until the first probe has answered, none:
   * a spare started before it on a machine not logged in (a fresh install) cost a CLI start's
   * second of CPU and ~150 MB, only to be closed seconds later.
   */
  private readonly ready = new Set<string>();

  constructor(
    private readonly cap: ProcessCap,
    private readonly log: Logger,
  ) {
    cap.useReserve({ shed: (n) => this.shed(n), freed: () => this.refill() });
  }

  /** How many spares are alive and waiting. */
  get size(): number {
    return this.idle.length;
  }

  /** A Claude mode's brain offers its spares. */
  register(modeId: string, source: SpareSource): void {
    this.sources.set(modeId, source);
    this.refill();
  }

  /** The brain of `modeId` closes: its spares are killed, none started again; for shutdown. */
  async retire(modeId: string): Promise<void> {
    this.sources.delete(modeId);
    await this.discard((e) => e.mode === modeId, 'shutdown');
  }

  /** Keeps spares for `modeId` (the active mode) only: the others are closed. */
  serve(modeId: string): void {
    if (this.stopped) return;
    if (this.mode !== modeId) {
      this.mode = modeId;
      this.failures = 0;
      void this.discard((e) => e.mode !== modeId, 'mode switched');
    }
    this.refill();
  }

  /**
   * What the mode's readiness probe said last. Ready: spares start (none does before the first
   * probe has said so), and the active mode's count of failed starts begins again. Not ready: its
   * spares are closed and none starts until it is ready again.
   */
  brainReady(modeId: string, ready: boolean): void {
    if (ready) {
      if (!this.ready.has(modeId)) {
        this.ready.add(modeId);
        // The active mode's brain back in order may have been why its spares failed; another
        // mode's readiness says nothing of them, and a probe flapping there would have them retried
        // for ever.
        if (modeId === this.mode) this.failures = 0;
        this.refill();
      }
      return;
    }
    if (!this.ready.delete(modeId)) return;
    void this.discard((e) => e.mode === modeId, 'its brain is not ready');
  }

  /** Kills every spare and starts none again; for shutdown. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.mode = undefined;
    await this.discard(() => true, 'shutdown');
  }

  /**
   * A spare of `modeId` for a new conversation that would spawn `spec`, now its
   * own; undefined when there is none. A spare spawned with anything else (the
   * mode's settings, its MCP endpoint, its environment changed since) is closed.
   */
  take(modeId: string, spec: SpawnOptions): Spare | undefined {
    const want = fingerprint(spec);
    for (const entry of this.idle.filter((e) => e.mode === modeId)) {
      this.idle.splice(this.idle.indexOf(entry), 1);
      if (!entry.proc.alive) continue;
      if (entry.fingerprint !== want) {
        this.close(entry, 'settings changed');
        continue;
      }
      if (!restorePriority(entry.proc)) {
        this.log.info(
          { pid: entry.proc.pid },
          'spare Claude process keeps its low priority: raising it back needs CAP_SYS_NICE or a nice limit (ulimit -e)',
        );
      }
      this.log.info({ mode: modeId, pid: entry.proc.pid }, 'spare Claude process taken');
      entry.released = true;
      return entry;
    }
    return undefined;
  }

  /** A Claude turn starts; no spare starts until every running one has ended (call the result). */
  turnStarted(): () => void {
    this.turns++;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.turns--;
      this.refill();
    };
  }

  /** Closes up to `count` spares, oldest first, to make room for a turn; how many it closed. */
  private shed(count: number): number {
    const victims = this.idle.slice(0, count);
    for (const e of victims) {
      this.idle.splice(this.idle.indexOf(e), 1);
      this.close(e, 'room for a turn');
    }
    return victims.length;
  }

  private async discard(which: (e: Entry) => boolean, why: string): Promise<void> {
    const gone = this.idle.filter(which);
    for (const e of gone) {
      this.idle.splice(this.idle.indexOf(e), 1);
      this.close(e, why);
    }
    await Promise.all(gone.map((e) => e.proc.exit));
  }

  /** A spare holds no session: it is killed with its process group, nothing to save. */
  private close(e: Entry, why: string): void {
    this.log.info({ mode: e.mode, pid: e.proc.pid, why }, 'closing spare Claude process');
    e.released = true;
    e.proc.kill();
  }

  /** Starts the next spare the active mode lacks, if nothing else wants the CPU or the slot. */
  private refill(): void {
    const mode = this.mode;
    if (this.starting || this.turns > 0 || mode === undefined || !this.ready.has(mode)) return;
    const source = this.sources.get(mode);
    if (!source || this.failures >= MAX_START_FAILURES) return;
    if (this.idle.filter((e) => e.mode === mode).length >= source.count) return;
    if (this.cap.count >= this.cap.max) return;
    this.starting = true;
    void this.start(mode, source).finally(() => {
      this.starting = false;
      this.refill();
    });
  }

  private async start(mode: string, source: SpareSource): Promise<void> {
    let spec: SpawnOptions;
    let execa: Execa;
    try {
      spec = await source.spec();
      ({ execa } = await subprocesses());
    } catch (err) {
      this.failures++;
      this.log.warn({ err, mode }, 'spare Claude process could not be prepared');
      return;
    }
    // Things moved while the MCP config was written: refill() looks again.
    if (this.mode !== mode || this.sources.get(mode) !== source || this.turns > 0 || !this.ready.has(mode))
      return;
    if (this.cap.count >= this.cap.max) return;
    const begun = Date.now();
    const proc = new ClaudeProcess({ ...spec, nice: SPARE_NICE }, execa);
    this.cap.track(proc);
    const entry: Entry = {
      mode,
      fingerprint: fingerprint(spec),
      proc,
      started: handshake(proc, () => source.guard(proc)),
    };
    this.idle.push(entry);
    this.log.info({ mode, pid: proc.pid }, 'spare Claude process starting');
    void proc.exit.then((exit) => {
      const i = this.idle.indexOf(entry);
      if (i === -1) return; // taken, or closed from here
      this.idle.splice(i, 1);
      this.log.warn(
        {
          mode,
          pid: proc.pid,
          exitCode: exit.exitCode,
          signal: exit.signal,
          spawnFailure: exit.spawnFailure,
        },
        'spare Claude process exited before use',
      );
      this.refill();
    });
    if (await entry.started) {
      this.failures = 0;
      this.log.info({ mode, pid: proc.pid, ms: Date.now() - begun }, 'spare Claude process ready');
    } else if (!entry.released && ++this.failures >= MAX_START_FAILURES) {
      this.log.warn(
        { mode, failures: this.failures, stderr: tailChars(proc.stderr, 500) },
        'spare Claude processes keep failing to start; none is started again until the next mode switch, or until a readiness check finds its brain ready after one that did not',
      );
    }
  }
}

/**
 * Sends `initialize` and reads up to its answer, then hands the lines to `guard` until a
 * turn takes them: at once, before any turn can. False when the CLI ends first.
 */
async function handshake(proc: ClaudeProcess, guard: () => void): Promise<boolean> {
  const id = randomUUID();
  proc.send(initializeRequest(id));
  for (;;) {
    const line = await proc.nextLine();
    if (line === undefined) return false;
    if (answers(line, id)) {
      guard();
      return true;
    }
  }
}

function answers(line: string, requestId: string): boolean {
  try {
    const msg = JSON.parse(line) as { type?: unknown; response?: { request_id?: unknown } };
    return msg.type === 'control_response' && msg.response?.request_id === requestId;
  } catch {
    return false;
  }
}

function fingerprint(spec: SpawnOptions): string {
  const { bin, args, cwd, env, depth } = spec;
  return JSON.stringify({ bin, args, cwd, env: Object.entries(env).sort(), depth });
}

/**
 * Gives every thread of a taken spare brainstem's own priority back. Linux
 * lets an unprivileged process lower priority but not raise it past its
 * RLIMIT_NICE: without CAP_SYS_NICE (root) or such a limit (`ulimit -e 20`,
 * systemd's `LimitNICE=+0`) the process keeps its nice.
 */
function restorePriority(proc: ClaudeProcess): boolean {
  if (proc.pid === undefined) return false;
  try {
    const own = getPriority();
    for (const tid of readdirSync(`/proc/${proc.pid}/task`)) setPriority(Number(tid), own);
    return true;
  } catch {
    return false;
  }
}
