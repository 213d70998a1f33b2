import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countedByTelegram, createBot } from '../handlers/telegram/bot.js';
import { type FakeTelegram, startFakeTelegram } from './fakes/telegram.js';

/**
 * The bot's outgoing pipeline (handlers/telegram/bot.ts) against the Bot API emulator:
 * the throttler holds the messages to a group to Telegram's budget, and lets the calls
 * Telegram does not count, "typing…" first, go straight out.
 */
const GROUP = -1001234567890;
let tg: FakeTelegram;
beforeAll(async () => {
  tg = await startFakeTelegram();
});
afterAll(async () => {
  await tg.close();
});

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
    const bot = createBot(tg.token, tg.apiRoot);
    // Four messages at once: the throttler spaces them a second apart, the last three seconds after the first.
    const messages = [1, 2, 3, 4].map((i) => bot.api.sendMessage(GROUP, `m${i}`));
    await bot.api.sendChatAction(GROUP, 'typing');
    // Throttled like a message, "typing…" would have waited behind all four.
    expect(tg.callsOf('sendMessage', GROUP).length).toBeLessThan(4);
    await Promise.all(messages);
    expect(tg.botMessages(GROUP).map((m) => m.text)).toEqual(['m1', 'm2', 'm3', 'm4']);
  });
});
