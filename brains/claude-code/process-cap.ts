import type { ClaudeProcess } from './process.js';

/** Processes kept in reserve (spares): the first closed when room is needed, refilled when room opens. */
export interface Reserve {
  /** Closes up to `count` of them; returns how many it closed. */
  shed(count: number): number;
  /** A counted process has exited: room may have opened. */
  freed(): void;
}

/**
 * A place for one more process, held from the moment ProcessCap.room grants
 * it: called once, with what starts the process, it counts that process
 * instead, and gives the place up if starting it throws.
 */
export type Slot = (spawn: () => ClaudeProcess) => ClaudeProcess;

/**
 * Bounds the `claude` processes alive at once, every Claude mode and the
 * claude_code tool together (`claude.maxProcesses`): brains calling brains, or
 * many conversations at once, cannot pile up CLI processes without end.
 *
 * A turn that finds no room is refused rather than queued: a nested turn
 * (brain_chat from a Claude turn) waiting for a slot its own parent holds would
 * never get one, and a queued chat turn would hang with no word to the user.
 */
export class ProcessCap {
  private readonly live = new Set<ClaudeProcess>();
  /** Places granted by room() whose process is not started yet. */
  private reserved = 0;
  /** room() calls waiting for leaving processes to exit, each counting on one place. */
  private waiting = 0;
  private reserve?: Reserve;

  constructor(readonly max: number) {}

  /** Processes alive, and places held for processes about to start: a spare never takes one of those. */
  get count(): number {
    return this.live.size + this.reserved;
  }

  /** The spares: closed before anything else to make room. */
  useReserve(reserve: Reserve): void {
    this.reserve = reserve;
  }

  /** Counts `proc` until it exits. */
  track(proc: ClaudeProcess): void {
    this.live.add(proc);
    void proc.exit.then(() => {
      this.live.delete(proc);
      this.reserve?.freed();
    });
  }

  /**
   * A place for one more process, or undefined when there is none. When full,
   * and the processes already on their way out are too few, spares are closed
   * first, then `evict` is asked to close as many idle ones as still needed
   * (warm processes kept for a follow-up); then everything leaving is waited
   * for: each ends within its grace time.
   * The place is held as it is granted: turns that waited for the same process
   * to end would otherwise each find its room, and all start.
   */
  async room(evict: (count: number) => void): Promise<Slot | undefined> {
    if (this.count >= this.max) {
      // A process already leaving frees its place anyway, unless a turn waiting before this one
      // counts on it: closing others in its stead would end a warm conversation (or a spare) for
      // nothing.
      const leaving = [...this.live].filter((p) => !p.alive).length;
      const needed = this.count - Math.max(0, leaving - this.waiting) - this.max + 1;
      const left = needed > 0 ? needed - (this.reserve?.shed(needed) ?? 0) : 0;
      if (left > 0) evict(left);
      this.waiting++;
      try {
        await Promise.all([...this.live].filter((p) => !p.alive).map((p) => p.exit));
      } finally {
        this.waiting--;
      }
      if (this.count >= this.max) return undefined;
    }
    this.reserved++;
    return (spawn) => {
      try {
        const proc = spawn();
        this.track(proc);
        return proc;
      } finally {
        this.reserved--;
      }
    };
  }
}
