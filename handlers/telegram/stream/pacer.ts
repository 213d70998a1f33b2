/**
 * The pace of everything brainstem streams into a chat (answer edits, Bot API
 * drafts, a tool's live progress): the one place that decides when a call
 * goes out. Telegram limits edits per chat, so a stream keeps only the latest
 * value, sends it when the pace allows, never has two calls in flight, and
 * drops intermediate values instead of queueing them (a 429's retry_after,
 * waited out by the auto-retry transformer, just means fewer calls).
 *
 * The senders say what a call does (edit, draft, send); the pacer says when.
 */

/**
 * What a send did: `sent` (Telegram was called; the pace counts from its end),
 * `unchanged` (nothing to show, no call, the pace untouched) or `failed`
 * (refused for good: no more paced sends; the sender's final text still tries).
 */
export type SendOutcome = 'sent' | 'unchanged' | 'failed';

/**
 * Telegram lets a bot send about 20 messages a minute to a group, and the API
 * throttler (bot.ts) holds every call to that group once they are spent, for
 * up to a minute: the final text, an approval question, a /stop reply with
 * them. A stream into a group keeps to 15 paced calls a minute, leaving them room.
 */
const GROUP_STREAM_INTERVAL_MS = 4_000;

/** The pace of a stream into `chatId`: slower in a group (a negative chat id), but for its final call. */
export function paceFor(
  chatId: number,
  intervalMs: number,
): { intervalMs: number; streamIntervalMs: number } {
  return {
    intervalMs,
    streamIntervalMs: chatId < 0 ? Math.max(intervalMs, GROUP_STREAM_INTERVAL_MS) : intervalMs,
  };
}

export interface PacerOptions<T> {
  /** Minimum time from the end of one call to the start of the next (config.telegram.editIntervalMs). */
  intervalMs: number;
  /** Minimum time before a paced send (see paceFor); the final call keeps to `intervalMs`. Default: intervalMs. */
  streamIntervalMs?: number | undefined;
  /** Shows a value in the chat. Must not throw: a failure is reported as `failed`. */
  send(value: T): Promise<SendOutcome>;
  /**
   * Re-sends the last value sent after this long without a newer one (a Bot
   * API draft fades about 30 s after its last update). Off when unset.
   */
  repeatAfterMs?: number;
}

/** Holds the latest value and sends it at the pace: one call in flight, at most one per interval. */
export class Pacer<T> {
  private latest: { value: T } | undefined;
  private lastSent: { value: T } | undefined;
  private inflight: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private repeatTimer: NodeJS.Timeout | undefined;
  private lastCallAt = Number.NEGATIVE_INFINITY;
  private stopped = false;

  constructor(private readonly opts: PacerOptions<T>) {}

  /** The newest value: sent as soon as the pace allows, replacing any value not sent yet. Never waits. */
  push(value: T): void {
    if (this.stopped) return;
    this.latest = { value };
    this.schedule();
  }

  /** Stops pacing (a value not sent yet is dropped) and resolves once the call in flight, if any, has ended. */
  async flush(): Promise<void> {
    this.cancel();
    await this.inflight;
  }

  /** Stops pacing at once: no further paced send; a call in flight runs to its end unwatched. */
  cancel(): void {
    this.stopped = true;
    this.latest = undefined;
    clearTimeout(this.timer);
    clearTimeout(this.repeatTimer);
    this.timer = undefined;
    this.repeatTimer = undefined;
  }

  /** Resolves when the pace allows the next call: the final text keeps to the pace too. */
  async turn(): Promise<void> {
    const wait = this.lastCallAt + this.opts.intervalMs - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  }

  private schedule(): void {
    if (this.timer || this.inflight || this.stopped) return;
    const wait = Math.max(
      0,
      this.lastCallAt + (this.opts.streamIntervalMs ?? this.opts.intervalMs) - Date.now(),
    );
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const next = this.latest;
      this.latest = undefined;
      if (next) this.run(next.value);
    }, wait);
  }

  private run(value: T): void {
    if (this.stopped) return;
    clearTimeout(this.repeatTimer);
    this.repeatTimer = undefined;
    this.inflight = this.opts.send(value).then((outcome) => {
      this.inflight = undefined;
      if (outcome !== 'unchanged') this.lastCallAt = Date.now();
      if (outcome === 'failed') this.stopped = true;
      if (outcome === 'sent') this.lastSent = { value };
      if (this.stopped) return;
      if (this.latest) this.schedule();
      else this.repeatLater();
    });
  }

  private repeatLater(): void {
    const after = this.opts.repeatAfterMs;
    const last = this.lastSent;
    if (after === undefined || !last) return;
    this.repeatTimer = setTimeout(() => this.run(last.value), after);
  }
}
