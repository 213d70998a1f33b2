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
  /** A group upgraded to a supergroup, by its new key: the old key, whose turns may still run (see follow). */
  private readonly upgradedFrom = new Map<string, string>();
  /** The other way, for the bot's life: what the group's turns put in the chat after the upgrade is in the supergroup. */
  private readonly upgradedTo = new Map<string, string>();
  /** By a group's key: the supergroup's turns waiting in its queue for its turns to end (see submit). */
  private readonly draining = new Map<string, number>();

  /**
   * Whether a turn of the chat runs or waits. A supergroup's includes the turns of the group it was,
   * which its own wait for (see follow): /new there says it waits for the answer under way.
   */
  busy(chatId: TurnKey): boolean {
    const key = String(chatId);
    return this.lock.busy(key) || this.earlier(key) !== undefined;
  }

  /**
   * Turns holding or waiting for the chat, the running one included; for a supergroup, the group's
   * it was too (each of the supergroup's own turns waiting there counted once): /stop there says
   * how many follow the one it stopped.
   */
  depth(chatId: TurnKey): number {
    const key = String(chatId);
    const from = this.earlier(key);
    const own = this.lock.depth.get(key) ?? 0;
    if (from === undefined) return own;
    return own + (this.lock.depth.get(from) ?? 0) - (this.draining.get(from) ?? 0);
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
    const before = this.earlier(key);
    const waits = this.lock.busy(key) || before !== undefined;
    // Taken now, synchronously, so turns keep the order their messages came in.
    const ticket = this.lock.acquire(key);
    // Behind the turns the group had queued before it became this supergroup, once (the next turns are behind this one).
    const drained = before === undefined ? undefined : this.lock.acquire(before);
    if (before !== undefined) this.draining.set(before, (this.draining.get(before) ?? 0) + 1);
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
      if (drained) {
        (await drained)();
        const left = (this.draining.get(before as string) ?? 1) - 1;
        if (left > 0) this.draining.set(before as string, left);
        else this.draining.delete(before as string);
      }
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

  /**
   * The group `from` became the supergroup `to` (a new chat id) while its turns may still run: the
   * supergroup's turns wait for them. Its conversation (history, Claude session, warm process) follows
   * it (route/direct.ts follow), and a turn beside the group's last one would start it afresh, or
   * resume its session in a second process, without that answer. /stop there stops them too.
   */
  follow(from: TurnKey, to: TurnKey): void {
    this.upgradedTo.set(String(from), String(to));
    if (this.lock.busy(String(from))) this.upgradedFrom.set(String(to), String(from));
  }

  /** The group key whose turns are still running or queued, for a supergroup's key (see follow). */
  private earlier(key: string): string | undefined {
    const from = this.upgradedFrom.get(key);
    if (from === undefined || this.lock.busy(from)) return from;
    this.upgradedFrom.delete(key);
    return undefined;
  }

  /** Notes the newest message a turn of the chat put in it (undefined: none). */
  shown(chatId: TurnKey, messageId: number | undefined): void {
    if (messageId === undefined) return;
    // A group's turn that ended after the upgrade sent its messages to the supergroup (bot.ts
    // followUpgrades): the supergroup's next answer, queued behind it, must not show above them.
    const to = this.upgradedTo.get(String(chatId));
    for (const key of to === undefined ? [String(chatId)] : [String(chatId), to])
      this.newest.set(key, Math.max(this.newest.get(key) ?? messageId, messageId));
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
    const from = this.earlier(String(chatId));
    // Before the supergroup's own turn begins, the one running is the group's it waits for.
    const controller =
      this.running.get(String(chatId)) ?? (from === undefined ? undefined : this.running.get(from));
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
