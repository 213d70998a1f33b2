import type { ClaudeProcess } from './process.js';

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

  constructor(readonly max: number) {}

  get count(): number {
    return this.live.size;
  }

  /** Counts `proc` until it exits. */
  track(proc: ClaudeProcess): void {
    this.live.add(proc);
    void proc.exit.then(() => this.live.delete(proc));
  }

  /**
   * Whether one more process may start. When full, `evict` is asked to close
   * that many idle ones (warm processes kept for a follow-up), and processes
   * already on their way out are waited for: they end within their grace time.
   */
  async room(evict: (count: number) => void): Promise<boolean> {
    if (this.live.size < this.max) return true;
    evict(this.live.size - this.max + 1);
    await Promise.all([...this.live].filter((p) => !p.alive).map((p) => p.exit));
    return this.live.size < this.max;
  }
}
