/**
 * The pace of everything brainstem streams into a chat (answer edits, Bot API
 * drafts, a tool's live progress): the one place that decides when a call
 * goes out. Telegram limits calls per chat, so a stream keeps only the latest
 * value, sends it when the pace allows, never has two calls in flight, and
 * drops intermediate values instead of queueing them (a 429's retry_after,
 * waited out by the auto-retry transformer, just means fewer calls). The
 * streams of one chat (its forum topics' answers and tool runs) share one
 * pace (ChatPace): the budget is the chat's, not each topic's.
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
 * throttler (throttle.ts) holds every message to that group once they are spent, for
 * up to a minute: the final text, an approval question, a /stop reply with
 * them. The streams into a group, all its topics together, keep to 15 paced
 * calls a minute, leaving them room.
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

/**
 * The streaming pace one chat's streams share: one paced call in flight in
 * the chat, and the next one at least a stream interval after the chat's last
 * one, whichever stream makes it. Streams with a value to show wait in line
 * and go in the order they came: with intervals of their own (an answer's
 * `editIntervalMs` below a tool run's 1 s), the quicker one would otherwise
 * always find the chat free first and the other never get a call. The
 * streams' final calls keep out of it (the group's budget keeps room for
 * them), so a final text never waits for another topic's stream.
 */
export class ChatPace {
  /** When the chat's last paced call that Telegram took ended (ms since epoch). */
  lastAt = Number.NEGATIVE_INFINITY;
  /** A stream's paced call to the chat is in flight (a 429 waited out holds it: the others wait too). */
  busy = false;
  /** The streams waiting to make a paced call, first come first: each is woken to check its turn. */
  private readonly line = new Set<() => void>();

  /** Puts a stream in line (where it already stands, if it does). */
  join(wake: () => void): void {
    this.line.add(wake);
  }

  /** Whether this stream is first in line. */
  isNext(wake: () => void): boolean {
    return this.line.values().next().value === wake;
  }

  /** Out of line (its call goes now, or it stopped): the next one is told if the chat is free. */
  leave(wake: () => void): void {
    const wasNext = this.isNext(wake);
    this.line.delete(wake);
    if (wasNext && !this.busy) this.line.values().next().value?.();
  }

  begin(): void {
    this.busy = true;
  }

  /** The call in flight ended; `sent`: Telegram took it (an unchanged value costs no call, a refused one ends its stream). */
  end(sent: boolean): void {
    this.busy = false;
    if (sent) this.lastAt = Date.now();
    this.line.values().next().value?.();
  }
}

/**
 * One ChatPace per chat the bot streams into, kept for the bot's life: a few
 * numbers per chat, and only allowed users' chats get answers.
 */
export class ChatPaces {
  private readonly byChat = new Map<number, ChatPace>();

  of(chatId: number): ChatPace {
    let pace = this.byChat.get(chatId);
    if (!pace) {
      pace = new ChatPace();
      this.byChat.set(chatId, pace);
    }
    return pace;
  }
}

export interface PacerOptions<T> {
  /** Minimum time from the end of one call to the start of the next (config.telegram.editIntervalMs). */
  intervalMs: number;
  /** Minimum time before a paced send (see paceFor); the final call keeps to `intervalMs`. Default: intervalMs. */
  streamIntervalMs?: number | undefined;
  /** The pace of the chat, shared with its other streams (ChatPaces.of). Default: this stream's own. */
  chat?: ChatPace | undefined;
  /** Shows a value in the chat. Must not throw: a failure is reported as `failed`. */
  send(value: T): Promise<SendOutcome>;
  /**
   * Re-sends the last value sent after this long without a newer one (a Bot
   * API draft fades about 30 s after its last update). Off when unset.
   */
  repeatAfterMs?: number;
}

/** Holds the latest value and sends it at the pace: one call in flight in the chat, at most one per interval. */
export class Pacer<T> {
  private readonly chat: ChatPace;
  private latest: { value: T } | undefined;
  private lastSent: { value: T } | undefined;
  private inflight: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private repeatTimer: NodeJS.Timeout | undefined;
  private lastCallAt = Number.NEGATIVE_INFINITY;
  private stopped = false;

  constructor(private readonly opts: PacerOptions<T>) {
    this.chat = opts.chat ?? new ChatPace();
  }

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
    this.chat.leave(this.wake);
  }

  /** Resolves when the pace allows the next call: the final text keeps to the pace too. */
  async turn(): Promise<void> {
    const wait = this.lastCallAt + this.opts.intervalMs - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  }

  private readonly wake = () => this.schedule();

  /** How long before the chat's pace allows this stream's next paced call. */
  private dueIn(): number {
    return this.chat.lastAt + (this.opts.streamIntervalMs ?? this.opts.intervalMs) - Date.now();
  }

  private schedule(): void {
    if (this.timer || this.inflight || this.stopped || !this.latest) return;
    this.chat.join(this.wake);
    // Woken when the call in flight ends, or when the stream ahead goes.
    if (this.chat.busy || !this.chat.isNext(this.wake)) return;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.sendIfDue();
      },
      Math.max(0, this.dueIn()),
    );
  }

  /** Sends the latest value if the chat's pace allows it now, else waits for it. */
  private sendIfDue(): void {
    if (this.stopped) return;
    this.chat.join(this.wake);
    // Another stream of the chat may have gone meanwhile: its call comes first, then the interval.
    if (this.chat.busy || !this.chat.isNext(this.wake) || this.dueIn() > 0) {
      this.schedule();
      return;
    }
    const next = this.latest;
    this.latest = undefined;
    if (!next) return;
    this.chat.begin();
    this.chat.leave(this.wake);
    this.run(next.value);
  }

  /** Sends `value`, the chat's pace already taken (begin). */
  private run(value: T): void {
    clearTimeout(this.repeatTimer);
    this.repeatTimer = undefined;
    this.inflight = this.sendSafely(value).then((outcome) => {
      this.inflight = undefined;
      // A refused call holds no other stream back (a refused draft's edits take over at once).
      this.chat.end(outcome === 'sent');
      if (outcome !== 'unchanged') this.lastCallAt = Date.now();
      if (outcome === 'failed') this.stopped = true;
      if (outcome === 'sent') this.lastSent = { value };
      if (this.stopped) return;
      if (this.latest) this.schedule();
      else this.repeatLater();
    });
  }

  /** A send that throws after all (its contract says it must not) ends its stream, not the chat's pace. */
  private sendSafely(value: T): Promise<SendOutcome> {
    try {
      return this.opts.send(value).catch((): SendOutcome => 'failed');
    } catch {
      return Promise.resolve('failed');
    }
  }

  private repeatLater(): void {
    const after = this.opts.repeatAfterMs;
    const last = this.lastSent;
    if (after === undefined || !last) return;
    this.repeatTimer = setTimeout(() => {
      this.repeatTimer = undefined;
      this.latest = last;
      this.sendIfDue();
    }, after);
  }
}
