import { BrainstemError, retryAfter } from '../errors.js';
import { KeyedLock } from '../keyed-lock.js';
import type { Logger } from '../logger.js';
import { PROXY_TAG } from '../notices.js';
import { waitAtMost } from '../wait.js';

/**
 * From the end of a stop's grace period to a restarted brainstem answering: the rest of the stop
 * (the brains closed, at most 2 s for the last HTTP answers), pm2 starting it again, its start.
 * A request refused or cut by a stop is told to wait that long (Retry-After): the openai SDKs
 * otherwise retry it after 0.5 s and 1 s, into a port nobody listens on yet, and give up.
 */
export const RESTART_MS = 5_000;

/** Why a turn was cut: brainstem is stopping (pm2 restart, upgrade). */
export class ShutdownError extends Error {
  /** The grace period is over when a turn is cut: only the restart is left to wait for. */
  readonly retryAfterMs = RESTART_MS;
  constructor() {
    // The wait said is the one Retry-After gives (a client reading the text is told the same).
    super(
      `${PROXY_TAG} brainstem is restarting, so this answer was cut short. Send your message again in about ${Math.round(RESTART_MS / 1000)} seconds.`,
    );
    this.name = 'ShutdownError';
  }
}

/** A turn holding its conversation: its signal is aborted by its caller or by the shutdown. */
export interface HeldTurn {
  signal: AbortSignal;
  /** Lets the conversation's next turn run. */
  leave(): void;
}

/**
 * The turns of every conversation: one at a time per conversation (a brain
 * session cannot take two turns at once; the next one waits), and at shutdown
 * the drain that lets running turns end, then cuts them short.
 */
export class Turns {
  private readonly lock = new KeyedLock();
  /** Turns running now, so a shutdown can wait for them and then cut them short. */
  private readonly running = new Set<AbortController>();
  private readonly emptied = new Set<() => void>();
  private closing = false;
  /** When the drain's grace period ends (epoch ms), once it began. */
  private graceEnds?: number;

  /** Shutting down: no new turn may start. */
  get closed(): boolean {
    return this.closing;
  }

  /** Whether a conversation has a turn running or waiting. */
  busy(key: string): boolean {
    return this.lock.busy(key);
  }

  /**
   * Waits for the conversation's previous turn to leave, then holds the conversation. Throws
   * SHUTTING_DOWN when a shutdown began meanwhile: the drain waits only for the turns running when
   * it began, so one let in after them would start a brain as brainstem closes under it.
   */
  async enter(key: string, signal: AbortSignal): Promise<HeldTurn> {
    const release = await this.lock.acquire(key);
    if (this.closing) {
      release();
      throw this.refusal(0);
    }
    const turn = new AbortController();
    const onAbort = () => turn.abort(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    this.running.add(turn);
    return {
      signal: turn.signal,
      leave: () => {
        signal.removeEventListener('abort', onAbort);
        this.running.delete(turn);
        release();
        if (this.running.size === 0) for (const resolve of this.emptied) resolve();
      },
    };
  }

  /**
   * Shutdown: refuse new turns, give running ones `graceMs` to finish, then cut
   * them short (each face tells its user). Resolves when none is left.
   */
  async drain(graceMs: number, logger: Logger): Promise<void> {
    this.closing = true;
    this.graceEnds = Date.now() + graceMs;
    if (await waitAtMost(this.allEnded(), graceMs)) return;
    logger.warn({ turns: this.running.size }, 'grace period over: stopping the running turns');
    for (const turn of this.running) turn.abort(new ShutdownError());
    await this.allEnded();
  }

  /**
   * SHUTTING_DOWN for a request a stop refuses, with the wait for the restarted brainstem: the rest
   * of the grace period (`graceMs` when the drain has not begun: the stop takes its other parts
   * down first), then RESTART_MS.
   */
  refusal(graceMs: number): BrainstemError {
    const graceLeft = this.graceEnds === undefined ? graceMs : Math.max(0, this.graceEnds - Date.now());
    return retryAfter(new BrainstemError('SHUTTING_DOWN'), graceLeft + RESTART_MS);
  }

  private allEnded(): Promise<void> {
    if (this.running.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.emptied.delete(done);
        resolve();
      };
      this.emptied.add(done);
    });
  }
}
