import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countedByTelegram, createBot } from '../handlers/telegram/bot.js';
import { type Clock, Throttler } from '../handlers/telegram/throttle.js';
import { type FakeTelegram, startFakeTelegram } from './fakes/telegram.js';

/**
 * The bot's outgoing pipeline (handlers/telegram/bot.ts) against the Bot API emulator:
 * the throttler (handlers/telegram/throttle.ts) holds the messages to a group to Telegram's
 * budget, and lets the calls Telegram does not count, "typing…" first, go straight out.
 */
const GROUP = -1001234567890;
let tg: FakeTelegram;
beforeAll(async () => {
  // The throttler waits out a 429 on the test's clock (TestClock), in no time here: the emulator's
  // flood control, on its own clock, would refuse the call made again.
  tg = await startFakeTelegram({ floodControl: false });
});
afterAll(async () => {
  await tg.close();
});

/**
 * The throttler's time, moved by the test, so that minutes pass without waiting them: it
 * moves when the throttler waits on it, to the end of its first wait, or by `pass` while
 * nothing waits.
 */
class TestClock implements Clock {
  private time = 0;
  private sleepers: { until: number; wake: () => void }[] = [];
  private slept = () => {};
  private nextSleep: (() => void)[] = [];

  now(): number {
    return this.time;
  }

  sleep(ms: number): Promise<void> {
    return new Promise((wake) => {
      this.sleepers.push({ until: this.time + ms, wake });
      this.slept();
      for (const told of this.nextSleep.splice(0)) told();
    });
  }

  /** Resolves at the throttler's next wait on the time (a new one, where waiting() takes any). */
  sleeping(): Promise<void> {
    return new Promise((resolve) => this.nextSleep.push(resolve));
  }

  /** Resolves once the throttler waits on the time. */
  waiting(): Promise<void> {
    return this.sleepers.length > 0 ? Promise.resolve() : new Promise((resolve) => (this.slept = resolve));
  }

  /** Moves the time to the end of the throttler's first wait, and ends the waits due by then. */
  wake(): void {
    this.time = Math.max(this.time, Math.min(...this.sleepers.map((s) => s.until)));
    const due = this.sleepers.filter((s) => s.until <= this.time);
    this.sleepers = this.sleepers.filter((s) => s.until > this.time);
    for (const s of due) s.wake();
  }

  async next(): Promise<void> {
    await this.waiting();
    this.wake();
  }

  pass(ms: number): void {
    this.time += ms;
  }

  /** Waits for `work`, moving the time each time the throttler waits on it; `onWait` runs before each move. */
  async until(work: Promise<unknown>, onWait: () => void = () => {}): Promise<void> {
    let done = false;
    const finished = work.then(() => {
      done = true;
    });
    while (!done) {
      await Promise.race([this.waiting(), finished]);
      onWait();
      if (!done) this.wake();
    }
  }
}

describe("the bot's API throttler", () => {
  it('counts messages sent, copied, forwarded and changed, not "typing…", deletions or lookups', () => {
    const counted = [
      'sendMessage',
      'sendPhoto',
      'sendMediaGroup',
      'editMessageText',
      'copyMessage',
      'forwardMessage',
      'stopPoll',
    ];
    expect(counted.filter((m) => !countedByTelegram(m))).toEqual([]);
    const free = [
      'sendChatAction',
      'deleteMessage',
      'getFile',
      'getChat',
      'answerCallbackQuery',
      'setMessageReaction',
    ];
    expect(free.filter(countedByTelegram)).toEqual([]);
  });

  it('sends "typing…" to a group at once, while the messages before it wait their turn', async () => {
    const clock = new TestClock();
    const bot = createBot(tg.token, tg.apiRoot, { clock });
    // Four messages at once: the throttler spaces them a second apart, the last three seconds after the first.
    const messages = [1, 2, 3, 4].map((i) => bot.api.sendMessage(GROUP, `m${i}`));
    await bot.api.sendChatAction(GROUP, 'typing');
    // Throttled like a message, "typing…" would have waited behind all four: it came before the second.
    expect(tg.callsOf('sendMessage', GROUP).length).toBeLessThanOrEqual(1);
    await clock.until(Promise.all(messages));
    expect(tg.botMessages(GROUP).map((m) => m.text)).toEqual(['m1', 'm2', 'm3', 'm4']);
  });

  it('keeps a group to 20 messages in any minute, where a budget refilled every minute let 39 through', async () => {
    const clock = new TestClock();
    const bot = createBot(tg.token, tg.apiRoot, { clock });
    const chat = GROUP - 1;
    /** When (the throttler's time) each message reached Telegram. */
    const reached: number[] = [];
    const note = () => {
      while (reached.length < tg.callsOf('sendMessage', chat).length) reached.push(clock.now());
    };
    await bot.api.sendMessage(chat, 'first');
    note();
    // 40 s later, 39 more: 19 fit the minute that began with the first, and a budget refilled
    // at 60 s would then let 20 more go by 79 s, 39 within 40 s.
    clock.pass(40_000);
    const rest = Promise.all(Array.from({ length: 39 }, (_, i) => bot.api.sendMessage(chat, `m${i}`)));
    // No call is in flight while the throttler waits (one at a time in a chat): a message noted
    // when it does reached Telegram at the time it then has.
    await clock.until(rest, note);
    const seconds = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
    // One a second; the 21st once the first is a minute old, the 22nd once the second is.
    expect(reached.map((ms) => ms / 1000)).toEqual([0, ...seconds(40, 58), 60, ...seconds(100, 118)]);
    const mostInAMinute = Math.max(
      ...reached.map((t) => reached.filter((u) => u >= t && u < t + 60_000).length),
    );
    expect(mostInAMinute).toBe(20);
  });

  it("keeps the bot to 30 messages a second across chats, and a private chat's a moment apart", async () => {
    const clock = new TestClock();
    const bot = createBot(tg.token, tg.apiRoot, { clock });
    const chats = Array.from({ length: 31 }, (_, i) => 7_000 + i);
    const first = chats.slice(0, 30).map((chat) => bot.api.sendMessage(chat, 'one'));
    const [last = 0, again = 0] = [chats[30], chats[0]];
    const waiting = [bot.api.sendMessage(last, 'one'), bot.api.sendMessage(again, 'two')];
    await Promise.all(first);
    // The 31st chat's message waits for the bot's second to end; the first chat's second message too.
    expect(tg.callsOf('sendMessage', last)).toHaveLength(0);
    expect(tg.callsOf('sendMessage', again)).toHaveLength(1);
    await clock.next();
    await Promise.all(waiting);
    expect(clock.now()).toBe(1_000);
    // Alone, a private chat's messages are 50 ms apart.
    clock.pass(1_000);
    const pair = [bot.api.sendMessage(again, 'three'), bot.api.sendMessage(again, 'four')];
    await pair[0];
    expect(tg.callsOf('sendMessage', again)).toHaveLength(3);
    await clock.next();
    await pair[1];
    expect(clock.now()).toBe(2_050);
  });

  it("keeps a chat's messages in their order when Telegram answers one 429: it is sent again after retry_after, in its place", async () => {
    const clock = new TestClock();
    const bot = createBot(tg.token, tg.apiRoot, { clock });
    const chat = GROUP - 2;
    // A long answer in three parts; Telegram refuses the first once, to be tried again in 5 s.
    tg.rateLimit('sendMessage', 1, 5);
    await clock.until(Promise.all(['part 1', 'part 2', 'part 3'].map((t) => bot.api.sendMessage(chat, t))));
    expect(tg.botMessages(chat).map((m) => m.text)).toEqual(['part 1', 'part 2', 'part 3']);
    expect(tg.callsOf('sendMessage', chat)[0]?.errorCode).toBe(429);
    // The first again at retry_after (longer than the group's second apart), the others a second apart.
    expect(clock.now()).toBe(7_000);
  });

  it('gives back its slot of the bot’s 30 while a message waits out a 429: 30 other chats’ messages go meanwhile', async () => {
    const clock = new TestClock();
    const bot = createBot(tg.token, tg.apiRoot, { clock });
    const limited = 7_300;
    tg.rateLimit('sendMessage', 1, 2);
    const waits = clock.sleeping();
    const refused = bot.api.sendMessage(limited, 'refused');
    // Refused, it waits out its retry_after on the throttler's clock, not sent again meanwhile.
    await Promise.race([waits, refused]);
    expect(tg.botMessages(limited)).toEqual([]);
    // Its second over (it reached Telegram, it counts), the bot's 30 are all free while it waits.
    clock.pass(1_000);
    const chats = Array.from({ length: 30 }, (_, i) => 7_400 + i);
    await Promise.all(chats.map((chat) => bot.api.sendMessage(chat, 'meanwhile')));
    expect(clock.now()).toBe(1_000);
    await clock.until(refused);
    expect(clock.now()).toBe(2_000);
    expect(tg.botMessages(limited).map((m) => m.text)).toEqual(['refused']);
  });

  it('holds every chat for a 429 to a second chat while a first waits out its own: Telegram holds the whole bot back', async () => {
    const clock = new TestClock();
    const throttler = new Throttler(clock);
    // Each call says when (the throttler's time) it was made, and is answered with the wait asked of it, once.
    const made: [string, number][] = [];
    const refusals = new Map([
      ['first', 30_000],
      ['second', 5_000],
    ]);
    const send = (chat: number, text: string) =>
      throttler.schedule(
        chat,
        async () => {
          made.push([text, clock.now()]);
          const wait = refusals.get(text);
          refusals.delete(text);
          return wait;
        },
        { retryAfter: (wait) => wait },
      );
    let waits = clock.sleeping();
    const first = send(7_500, 'first');
    await waits;
    waits = clock.sleeping();
    const second = send(7_501, 'second');
    await waits;
    // Another chat's message waits for the second one's retry_after too; the first waits on.
    const other = send(7_502, 'other');
    await clock.next();
    await Promise.all([second, other]);
    await clock.next();
    await first;
    expect(made).toEqual([
      ['first', 0],
      ['second', 0],
      ['second', 5_000],
      ['other', 5_000],
      ['first', 30_000],
    ]);
  });

  it('holds only the chat Telegram answered 429: its next message waits, the other chats go on', async () => {
    const clock = new TestClock();
    const bot = createBot(tg.token, tg.apiRoot, { clock });
    const [limited, other] = [GROUP - 3, GROUP - 4];
    tg.rateLimit('sendMessage', 1, 30);
    const giveUp = new AbortController();
    const signal = giveUp.signal as unknown as Parameters<typeof bot.api.sendMessage>[3];
    const refused = bot.api.sendMessage(limited, 'refused', {}, signal);
    await tg.waitFor(() => tg.callsOf('sendMessage', limited).length === 1);
    const next = bot.api.sendMessage(limited, 'next');
    // Another group goes on while the first waits out its 30 s: two messages, a second apart.
    await bot.api.sendMessage(other, 'meanwhile');
    const later = bot.api.sendMessage(other, 'a second later');
    await clock.next();
    await later;
    expect(tg.callsOf('sendMessage', limited)).toHaveLength(1);
    // Given up (its caller aborted it), the refused message frees its chat: the next goes a second later.
    giveUp.abort();
    await expect(refused).rejects.toThrow(/aborted/);
    await clock.next();
    await next;
    expect(tg.botMessages(limited).map((m) => m.text)).toEqual(['next']);
  });

  it('sends a message only once the "typing…" on its way reached Telegram: "typing…" never shows under it', async () => {
    // A clock that stands still: however long the other chat's message takes, the answer waits for "typing…".
    const bot = createBot(tg.token, tg.apiRoot, { clock: new TestClock() });
    const chat = 7_100;
    // "typing…" is slow on its way: the answer sent after it could reach Telegram first.
    const release = tg.holdNext('sendChatAction', chat);
    const typing = bot.api.sendChatAction(chat, 'typing');
    const answer = bot.api.sendMessage(chat, 'the answer');
    // A message to another chat, sent after the answer, got there: the answer had its chance to go.
    await bot.api.sendMessage(chat + 1, 'elsewhere');
    release();
    await Promise.all([typing, answer]);
    const arrived = tg.calls.filter((c) => Number(c.params.chat_id) === chat).map((c) => c.method);
    expect(arrived).toEqual(['sendChatAction', 'sendMessage']);
  });

  it('sends a message all the same once the "typing…" before it went 2 s unanswered: a stalled one does not hold the answer', async () => {
    const clock = new TestClock();
    const bot = createBot(tg.token, tg.apiRoot, { clock });
    const chat = 7_200;
    // "typing…" stalls on its way (a dead connection): grammY would give up on it after 500 s.
    const release = tg.holdNext('sendChatAction', chat);
    const typing = bot.api.sendChatAction(chat, 'typing');
    const answer = bot.api.sendMessage(chat, 'the answer');
    await clock.until(answer);
    expect(clock.now()).toBe(2_000);
    release();
    await typing;
    const arrived = tg.calls.filter((c) => Number(c.params.chat_id) === chat).map((c) => c.method);
    expect(arrived).toEqual(['sendMessage', 'sendChatAction']);
  });

  it('does not send a failed "typing…" again: sent late, it would show under the answer', async () => {
    const bot = createBot(tg.token, tg.apiRoot);
    tg.dropNext('sendChatAction', 1, GROUP);
    // Retried (3 s later for a cut connection), it could reach Telegram after the answer sent meanwhile.
    await expect(bot.api.sendChatAction(GROUP, 'typing')).rejects.toThrow();
    expect(tg.callsOf('sendChatAction', GROUP).at(-1)?.ok).toBe(false);
  });

  it("a call that throws before it returns a promise fails alone: the chat's next call still goes", async () => {
    const clock = new TestClock();
    const throttler = new Throttler(clock);
    const broken = throttler.schedule(GROUP, (): Promise<void> => {
      throw new Error('thrown at once');
    });
    await expect(broken).rejects.toThrow('thrown at once');
    const next = throttler.schedule(GROUP, async () => 'sent');
    // The group's second apart, then it goes: the failed call ended, it does not hold the chat.
    await clock.next();
    expect(await next).toBe('sent');
  });
});
