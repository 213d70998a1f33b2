/**
 * The pace of the messages brainstem sends (the calls Telegram counts, see
 * bot.ts), within Telegram's limits: about 30 a second for the whole bot and,
 * per chat, about 20 a minute in a group, no more than one a second. Private
 * chats only get a light spacing: the stream senders pace their own edits.
 * A chat's calls go one at a time, in the order they came. A call is over
 * when its answer came: one that Telegram refused, then tried again (bot.ts),
 * keeps its chat's later calls behind it, so a long answer's parts never swap.
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
  /** The calls waiting, each with the number that says when it came. */
  queue: { seq: number; run: () => Promise<void> }[];
  running: boolean;
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
  /** When the throttler wakes to start the next call waiting on time (Infinity: none waits). */
  private wakeAt = Number.POSITIVE_INFINITY;

  constructor(private readonly clock: Clock = systemClock) {}

  /** Makes `call`, a message to `chatId`, once the bot's and the chat's budgets allow it. */
  schedule<T>(chatId: number | string, call: () => Promise<T>): Promise<T> {
    const queue = this.chat(chatId).queue;
    return new Promise<T>((resolve, reject) => {
      const run = () => attempt(call).then(resolve, reject);
      queue.push({ seq: this.seq++, run });
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
    chat.budget?.start();
    this.bot.start();
    void job.run().finally(() => {
      const end = this.clock.now();
      chat.running = false;
      chat.lastEnd = end;
      chat.budget?.end(end);
      this.bot.end(end);
      this.pump();
    });
  }
}

/**
 * `call()`, a call that throws before it returns a promise failing alone: thrown out of the
 * throttler, it would leave its chat busy (no later call of it ever goes) and a slot of the bot's taken.
 */
function attempt<T>(call: () => Promise<T>): Promise<T> {
  return new Promise<T>((settle) => settle(call()));
}
