import { KeyedLock } from '../../src/keyed-lock.js';
import { waitAtMost } from '../../src/wait.js';

/** Why a turn's signal was aborted, so the answer can say it. */
export type StopReason = 'user' | 'shutdown';

export class TurnStopped extends Error {
  constructor(readonly reason: StopReason) {
    super(reason === 'user' ? 'stopped by the user' : 'brainstem is shutting down');
    this.name = 'TurnStopped';
  }
}

export function stopReasonOf(signal: AbortSignal): StopReason | undefined {
  if (!signal.aborted) return undefined;
  return signal.reason instanceof TurnStopped ? signal.reason.reason : 'user';
}

/** Whose turns queue together: a chat id, or a chat and one of its forum topics (see topicTurnKey). */
export type TurnKey = number | string;

/**
 * The chat's turns, one at a time and in arrival order, run outside grammY's
 * middleware so the bot keeps answering the chat (above all /stop) while a
 * turn runs. Each turn gets its own abort signal.
 */
export class ChatTurns {
  private readonly lock = new KeyedLock();
  private readonly running = new Map<string, AbortController>();
  private readonly all = new Map<AbortController, Promise<void>>();
  /** The newest message each chat's turns put in it: a few numbers per chat, kept for the bot's life. */
  private readonly newest = new Map<string, number>();
  /** A /stop that found nothing running, by its update id: see stopsAhead. */
  private readonly idleStops = new Map<string, number>();

  busy(chatId: TurnKey): boolean {
    return this.lock.busy(String(chatId));
  }

  /** Turns holding or waiting for the chat, the running one included. */
  depth(chatId: TurnKey): number {
    return this.lock.depth.get(String(chatId)) ?? 0;
  }

  /**
   * Queues `job` behind the chat's earlier turns and returns at once. When it
   * has to wait, `onQueued` runs first (to tell the user); what it returns is
   * handed to the job (the id of the "queued" message, which the answer reuses).
   */
  submit<Q>(
    chatId: TurnKey,
    job: (signal: AbortSignal, queued: Q | undefined) => Promise<void>,
    onQueued?: () => Promise<Q | undefined>,
    onError?: (err: unknown) => void,
  ): void {
    const key = String(chatId);
    const waits = this.lock.busy(key);
    // Taken now, synchronously, so turns keep the order their messages came in.
    const ticket = this.lock.acquire(key);
    const controller = new AbortController();
    const task = (async () => {
      const queued =
        waits && onQueued
          ? await onQueued().catch((err: unknown) => {
              onError?.(err);
              return undefined;
            })
          : undefined;
      const release = await ticket;
      this.running.set(key, controller);
      try {
        await job(controller.signal, queued);
      } catch (err) {
        onError?.(err);
      } finally {
        if (this.running.get(key) === controller) this.running.delete(key);
        release();
      }
    })();
    this.all.set(controller, task);
    void task.finally(() => this.all.delete(controller));
  }

  /** Notes the newest message a turn of the chat put in it (undefined: none). */
  shown(chatId: TurnKey, messageId: number | undefined): void {
    const key = String(chatId);
    if (messageId !== undefined) this.newest.set(key, Math.max(this.newest.get(key) ?? messageId, messageId));
  }

  /**
   * Whether `messageId` (a turn's "queued" notice) came before a message the chat's earlier turns
   * put in it: an answer there would show above the answers it follows. Telegram's ids grow within a chat.
   */
  isAboveShown(chatId: TurnKey, messageId: number): boolean {
    return messageId < (this.newest.get(String(chatId)) ?? Number.NEGATIVE_INFINITY);
  }

  /**
   * Aborts the chat's running turn; the turns waiting behind it then run. `updateId`: the /stop's
   * own, for a message that came before it and whose turn is not submitted yet (see stopsAhead).
   */
  stop(chatId: TurnKey, updateId?: number): boolean {
    const controller = this.running.get(String(chatId));
    if (!controller || controller.signal.aborted) {
      if (updateId !== undefined && !this.busy(chatId)) this.idleStops.set(String(chatId), updateId);
      return false;
    }
    controller.abort(new TurnStopped('user'));
    return true;
  }

  /**
   * Whether the turn of update `updateId`, about to be submitted, was stopped before it began: /stop
   * is handled apart from messages so it is answered at once, and a message sent right before it (the
   * two fetched together, after a restart say) can reach its turn after it. Taken in order, that
   * message's turn was the one running, and stopped. Asked once per turn: any turn ends the /stop's hold.
   */
  stopsAhead(chatId: TurnKey, updateId: number): boolean {
    const key = String(chatId);
    const stopAt = this.idleStops.get(key);
    this.idleStops.delete(key);
    return stopAt !== undefined && updateId < stopAt && !this.busy(chatId);
  }

  /** Aborts every turn, running or waiting, and waits (bounded) for them to say so in their chats. */
  async close(graceMs: number): Promise<void> {
    for (const controller of this.all.keys()) controller.abort(new TurnStopped('shutdown'));
    await waitAtMost(Promise.allSettled([...this.all.values()]), graceMs);
  }
}
