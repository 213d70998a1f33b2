/**
 * The pace of the messages brainstem sends (the calls Telegram counts, see
 * bot.ts), within Telegram's limits: about 30 a second for the whole bot and,
 * per chat, about 20 a minute in a group, no more than one a second. Private
 * chats only get a light spacing: the stream senders pace their own edits.
 * A chat's calls go one at a time, in the order they came. A call is over
 * when its answer came. One Telegram refused with a 429 is made again here
 * after its retry_after, first of its chat's calls, so a long answer's parts
 * never swap; meanwhile it gives back its slot of the bot's 30, and only its
 * chat waits, since Telegram's flood limits are mostly a chat's. A 429 to a
 * second chat while a first one waits out its own is Telegram holding the
 * whole bot back: every chat waits for that one's retry_after too.
 * A chat action ("typing…") is not paced, but a chat's next message waits for
 * its answer: sent side by side, the two could reach Telegram in either order,
 * and "typing…" arriving second shows under the answer. For ACTION_WAIT_MS at
 * most: one stalled on a dead connection would hold the answer until grammY
 * gives up on it (500 s), where arriving late it only shows for a few seconds.
 *
 * Telegram counts a group's 20 over any minute, so the budgets are sliding
 * windows: a call takes a slot when it starts and gives it back a window after
 * its answer came. The call reached Telegram before its answer, however long
 * the network took, so no minute on Telegram's side ever holds more than the
 * budget. A budget refilled every minute instead (@grammyjs/transformer-throttler's)
 * lets 20 messages go just before the refill and 20 just after: 40 within a
 * minute, which Telegram answers with 429s.
 */

/** Where the throttler reads the time and waits: the real clock, or a test's. */
export interface Clock {
  /** Milliseconds, never going back. */
  now(): number;
  sleep(ms: number): Promise<void>;
}

/** Monotonic: a wall clock set back would keep the slots taken. */
const systemClock: Clock = {
  now: () => performance.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

/** Telegram's limit for the whole bot. */
const BOT_BUDGET = { size: 30, ms: 1_000 };
/** Telegram's limit per group (a negative chat id, or a @username: a channel or a group). */
const GROUP_BUDGET = { size: 20, ms: 60_000 };
/** The least time from the end of a chat's call to the start of its next one. */
const GROUP_GAP_MS = 1_000;
const PRIVATE_GAP_MS = 50;
/** How long a chat's next message waits for the answer to a chat action: it normally comes within a second. */
const ACTION_WAIT_MS = 2_000;
/** How many 429s a call waits out before its refusal is its answer (as many as other failures are tried again, bot.ts). */
const MAX_WAITS = 6;

/** Why a call given up while it waited for its turn, or to be made again, failed. */
const ABORTED = 'Request aborted while waiting to be sent';

/** How long a call's answer asks to wait before it is made again (a 429's retry_after), in ms; undefined: it is the answer. */
export type RetryAfter<T> = (answer: T) => number | undefined;

interface Job {
  /** The number that says when it came. */
  seq: number;
  /** Makes the call; resolves to how long to wait before making it again, or undefined once it is settled. */
  run: () => Promise<number | undefined>;
}

/** At most `size` calls started in any `ms`, a call counting until `ms` after it ended. */
class Window {
  private running = 0;
  /** When the calls that ended within the last `ms` ended, oldest first. */
  private readonly ended: number[] = [];

  constructor(private readonly budget: { size: number; ms: number }) {}

  /** When a call may start: `now`, at once; Infinity, once a running call ends. */
  freeAt(now: number): number {
    this.forget(now);
    if (this.running + this.ended.length < this.budget.size) return now;
    const oldest = this.ended[0];
    return oldest === undefined ? Number.POSITIVE_INFINITY : oldest + this.budget.ms;
  }

  /** No slot taken: the window can be dropped. */
  empty(now: number): boolean {
    this.forget(now);
    return this.running === 0 && this.ended.length === 0;
  }

  private forget(now: number): void {
    while ((this.ended[0] ?? now) + this.budget.ms <= now) this.ended.shift();
  }

  start(): void {
    this.running++;
  }

  end(at: number): void {
    this.running--;
    this.ended.push(at);
  }
}

interface Chat {
  queue: Job[];
  running: boolean;
  /** The call waiting out a 429, first in the queue, and until when (-Infinity: none). */
  held: Job | undefined;
  heldUntil: number;
  /** Chat actions on their way: the chat's next call waits for their answers, until `actionsUntil`. */
  actions: number;
  actionsUntil: number;
  lastEnd: number;
  gapMs: number;
  /** A group's budget; none for a private chat. */
  budget: Window | undefined;
}

export class Throttler {
  private readonly bot = new Window(BOT_BUDGET);
  private readonly chats = new Map<string, Chat>();
  private seq = 0;
  /** Until when Telegram holds the whole bot back (see the top of this file). */
  private heldUntil = Number.NEGATIVE_INFINITY;
  /** When the throttler wakes to start the next call waiting on time (Infinity: none waits). */
  private wakeAt = Number.POSITIVE_INFINITY;

  constructor(private readonly clock: Clock = systemClock) {}

  /**
   * Makes `call`, a message to `chatId`, once the bot's and the chat's budgets allow it, and again
   * after the wait its answer asks for (`retryAfter`). Given up (`signal`) while it waits, it is not made.
   */
  schedule<T>(
    chatId: number | string,
    call: () => Promise<T>,
    opts: { retryAfter?: RetryAfter<T>; signal?: AbortSignal } = {},
  ): Promise<T> {
    const chat = this.chat(chatId);
    const { retryAfter, signal } = opts;
    return new Promise<T>((resolve, reject) => {
      let waits = 0;
      const done = () => signal?.removeEventListener('abort', giveUp);
      const job: Job = {
        seq: this.seq++,
        run: async () => {
          let answer: T;
          try {
            answer = await attempt(call);
          } catch (err) {
            done();
            reject(err);
            return undefined;
          }
          const wait = retryAfter?.(answer);
          if (wait !== undefined && signal?.aborted) {
            done();
            reject(new Error(ABORTED));
            return undefined;
          }
          if (wait === undefined || waits++ >= MAX_WAITS) {
            done();
            resolve(answer);
            return undefined;
          }
          return wait;
        },
      };
      // Not made, its place taken by the chat's next call (a running call ends by the signal itself).
      const giveUp = () => {
        const at = chat.queue.indexOf(job);
        if (at < 0) return;
        chat.queue.splice(at, 1);
        if (chat.held === job) {
          chat.held = undefined;
          chat.heldUntil = Number.NEGATIVE_INFINITY;
        }
        done();
        reject(new Error(ABORTED));
        this.pump();
      };
      signal?.addEventListener('abort', giveUp, { once: true });
      chat.queue.push(job);
      this.pump();
    });
  }

  /**
   * Makes `call`, a chat action to `chatId`, at once: Telegram does not count it, and it is worth
   * its moment only. The chat's next message waits for its answer.
   */
  action<T>(chatId: number | string, call: () => Promise<T>): Promise<T> {
    const chat = this.chat(chatId);
    chat.actions++;
    chat.actionsUntil = this.clock.now() + ACTION_WAIT_MS;
    return attempt(call).finally(() => {
      chat.actions--;
      this.pump();
    });
  }

  private chat(chatId: number | string): Chat {
    const key = String(chatId);
    let chat = this.chats.get(key);
    if (!chat) {
      const group = !(Number(chatId) > 0);
      chat = {
        queue: [],
        running: false,
        held: undefined,
        heldUntil: Number.NEGATIVE_INFINITY,
        actions: 0,
        actionsUntil: Number.NEGATIVE_INFINITY,
        lastEnd: Number.NEGATIVE_INFINITY,
        gapMs: group ? GROUP_GAP_MS : PRIVATE_GAP_MS,
        budget: group ? new Window(GROUP_BUDGET) : undefined,
      };
      this.chats.set(key, chat);
    }
    return chat;
  }

  /** Starts every call its budgets allow now, and sets the wake for the first one they hold. */
  private pump(): void {
    const now = this.clock.now();
    const waiting: Chat[] = [];
    for (const [key, chat] of this.chats) {
      if (chat.queue.length > 0) {
        if (!chat.running) waiting.push(chat);
      } else if (
        !chat.running &&
        chat.actions === 0 &&
        chat.lastEnd + chat.gapMs <= now &&
        (chat.budget?.empty(now) ?? true)
      ) {
        this.chats.delete(key);
      }
    }
    // The bot's free slots go to the calls that came first.
    waiting.sort((a, b) => (a.queue[0]?.seq ?? 0) - (b.queue[0]?.seq ?? 0));
    let next = Number.POSITIVE_INFINITY;
    for (const chat of waiting) {
      const typing = chat.actions > 0 ? chat.actionsUntil : now;
      const at = Math.max(
        chat.lastEnd + chat.gapMs,
        chat.heldUntil,
        this.heldUntil,
        typing,
        chat.budget?.freeAt(now) ?? now,
        this.bot.freeAt(now),
      );
      if (at <= now) this.start(chat);
      else next = Math.min(next, at);
    }
    if (next < this.wakeAt) {
      this.wakeAt = next;
      void this.clock.sleep(next - now).then(() => {
        if (this.wakeAt === next) this.wakeAt = Number.POSITIVE_INFINITY;
        this.pump();
      });
    }
  }

  private start(chat: Chat): void {
    const job = chat.queue.shift();
    if (!job) return;
    chat.running = true;
    if (chat.held === job) {
      chat.held = undefined;
      chat.heldUntil = Number.NEGATIVE_INFINITY;
    }
    chat.budget?.start();
    this.bot.start();
    void job.run().then((wait) => {
      const end = this.clock.now();
      chat.running = false;
      chat.lastEnd = end;
      // Refused, it reached Telegram all the same: it counts as sent, as any call that ended.
      chat.budget?.end(end);
      this.bot.end(end);
      if (wait !== undefined) this.hold(chat, job, end + wait);
      this.pump();
    });
  }

  /** `job`, refused, waits until `until` first in its chat's queue, its slots given back meanwhile. */
  private hold(chat: Chat, job: Job, until: number): void {
    const now = this.clock.now();
    const another = [...this.chats.values()].some((c) => c !== chat && c.heldUntil > now);
    if (another) this.heldUntil = Math.max(this.heldUntil, until);
    chat.queue.unshift(job);
    chat.held = job;
    chat.heldUntil = until;
  }
}

/**
 * `call()`, a call that throws before it returns a promise failing alone: thrown out of the
 * throttler, it would leave its chat busy (no later call of it ever goes) and a slot of the bot's taken.
 */
function attempt<T>(call: () => Promise<T>): Promise<T> {
  return new Promise<T>((settle) => settle(call()));
}
