import type { WarmConfig } from '../../src/config.js';
import type { Logger } from '../../src/logger.js';
import type { ClaudeProcess } from './process.js';

/**
 * CLI processes kept alive between the turns of their conversation, so that a
 * follow-up skips the CLI start-up. Shared by every Claude mode (keys hold the
 * mode): at most `max` live at once, the least recently used idle one closed to
 * make room, and an idle one closed after `idleMs`. A process with a turn
 * running is "busy" and never closed from here; one that dies while idle is
 * simply dropped.
 */
export class WarmPool {
  /** Oldest first: a released process is re-inserted at the end. */
  private readonly idle = new Map<string, { proc: ClaudeProcess; timer: NodeJS.Timeout }>();
  private readonly busy = new Map<string, ClaudeProcess>();
  /** Busy keys whose process must not be kept when the turn ends (forgotten, closed meanwhile). */
  private readonly doomed = new Set<string>();
  /** Busy keys whose conversation goes on under another key (see move): their process is kept there. */
  private readonly movedTo = new Map<string, string>();
  /**
   * Idle processes closed from here (evicted, idle too long…) until they exit, by key. The CLI
   * writes a turn's answer to its session file some time after the turn's result, and at the
   * latest as it exits: a turn that resumed the session before then would not have it.
   */
  private readonly closing = new Map<string, Promise<unknown>>();

  constructor(
    private readonly o: Pick<WarmConfig, 'idleMs' | 'max'>,
    private readonly log: Logger,
  ) {}

  /** How many processes the pool holds, idle and busy. */
  get size(): number {
    return this.idle.size + this.busy.size;
  }

  /**
   * The idle process of `key`, now busy with a turn; a dead one is dropped. One withdrawn
   * between turns (guardIdle), or closed from here and not yet gone, is waited for: the turn
   * resumes its session in a new process once this one has written it and exited.
   */
  async take(key: string): Promise<ClaudeProcess | undefined> {
    const entry = this.idle.get(key);
    if (!entry) {
      // Closed a moment ago (evicted for another conversation): resumed once it has written the session.
      await this.closing.get(key);
      return undefined;
    }
    this.idle.delete(key);
    clearTimeout(entry.timer);
    if (!entry.proc.alive) {
      await entry.proc.exit;
      return undefined;
    }
    this.busy.set(key, entry.proc);
    return entry.proc;
  }

  /**
   * Registers a new process that serves a turn of `key`, closing least recently
   * used idle ones to make room. False when a turn of `key` already holds one:
   * the new process then serves this turn only.
   */
  claim(key: string, proc: ClaudeProcess): boolean {
    if (this.busy.has(key)) return false;
    void this.dropIdle(key, 'replaced');
    this.makeRoom(1);
    this.busy.set(key, proc);
    void proc.exit.then(() => {
      // Looked up by process: a moved conversation keeps it under its new key.
      const idleKey = [...this.idle].find(([, e]) => e.proc === proc)?.[0];
      const entry = idleKey === undefined ? undefined : this.idle.get(idleKey);
      if (idleKey === undefined || !entry) return;
      clearTimeout(entry.timer);
      this.idle.delete(idleKey);
      this.log.info(
        { key: printable(key), pid: proc.pid },
        // Its guard closed it (guardIdle), and said why at warn.
        proc.isWithdrawn
          ? 'warm Claude process closed after a turn nobody asked for'
          : 'warm Claude process exited by itself',
      );
    });
    return true;
  }

  /** The turn of `key` is over. Returns whether the pool keeps the process; if not, the caller closes it. */
  release(key: string, proc: ClaudeProcess, keep: boolean): boolean {
    if (this.busy.get(key) !== proc) return false;
    this.busy.delete(key);
    const to = this.movedTo.get(key);
    this.movedTo.delete(key);
    if (this.doomed.delete(key) || !keep || !proc.alive) return false;
    // Its conversation moved while the turn ran: kept for it, unless it already has a process of its own.
    if (to !== undefined && (this.idle.has(to) || this.busy.has(to))) return false;
    this.keepIdle(to ?? key, proc);
    this.makeRoom(0);
    return true;
  }

  private keepIdle(key: string, proc: ClaudeProcess): void {
    const timer = setTimeout(() => this.dropIdle(key, 'idle'), this.o.idleMs);
    timer.unref();
    this.idle.set(key, { proc, timer });
  }

  /**
   * The conversation of `from` goes on as `to` (a Telegram group upgraded to a supergroup, its
   * session moved with it): its process serves `to` from now on, idle now, busy once its turn
   * ends. Left under `from`, the next turn of `to` resumed the same session in a second process
   * while the first still held it, without the answer that one writes to the session as it exits,
   * and both wrote it. A process `to` already has stays, and `from`'s is closed.
   */
  move(from: string, to: string): void {
    if (from === to) return;
    const closing = this.closing.get(from);
    if (closing && !this.closing.has(to)) this.closing.set(to, closing);
    if (this.busy.has(from)) this.movedTo.set(from, to);
    const entry = this.idle.get(from);
    if (!entry) return;
    if (this.idle.has(to) || this.busy.has(to)) {
      void this.dropIdle(from, 'replaced');
      return;
    }
    this.idle.delete(from);
    clearTimeout(entry.timer);
    this.keepIdle(to, entry.proc);
    this.log.info(
      { from: printable(from), to: printable(to), pid: entry.proc.pid },
      'warm Claude process moved',
    );
  }

  /** Closes the process of `key` now if idle, or when its running turn ends. */
  drop(key: string): Promise<void> {
    if (this.busy.has(key)) this.doomed.add(key);
    return this.dropIdle(key, 'forgotten');
  }

  /** Closes every process whose key starts with `prefix` (idle now, busy when their turn ends). */
  async closeAll(prefix: string): Promise<void> {
    for (const key of this.busy.keys()) if (key.startsWith(prefix)) this.doomed.add(key);
    const keys = [...this.idle.keys()].filter((k) => k.startsWith(prefix));
    await Promise.all(keys.map((k) => this.dropIdle(k, 'shutdown')));
  }

  /** Closes up to `count` idle processes, least recently used first (room for a turn elsewhere). */
  evict(count: number): void {
    for (const key of [...this.idle.keys()].slice(0, count)) void this.dropIdle(key, 'evicted');
  }

  private makeRoom(extra: number): void {
    for (const key of this.idle.keys()) {
      if (this.size + extra <= this.o.max) return;
      void this.dropIdle(key, 'evicted');
    }
  }

  private async dropIdle(key: string, why: string): Promise<void> {
    const entry = this.idle.get(key);
    if (!entry) return;
    this.idle.delete(key);
    clearTimeout(entry.timer);
    this.log.info({ key: printable(key), pid: entry.proc.pid, why }, 'closing warm Claude process');
    const exit = entry.proc.close();
    this.closing.set(key, exit);
    await exit;
    if (this.closing.get(key) === exit) this.closing.delete(key);
  }
}

/** Keys join mode and conversation with a NUL; logs show a slash. */
function printable(key: string): string {
  return key.replace('\u0000', '/');
}
