import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from './telegram-harness.js';

/**
 * Button presses whose answer Telegram refuses or holds back, through the Bot API emulator: a
 * press answered late (it waited while brainstem restarted, or behind a 429) is "too old" for
 * Telegram, and what the press did must stand without the chat being told it failed.
 */
let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h.close();
});

const TOO_OLD = {
  code: 400,
  description: 'Bad Request: query is too old and response timeout expired or query ID is invalid',
};

describe('a button press Telegram answers too late', { timeout: 60_000 }, () => {
  it('a mode press does its work, and the chat is not told /mode failed', async () => {
    const u = h.tg.user(112);
    u.says('/mode');
    const menu = await h.tg.waitFor(() => h.tg.botMessages(112).find((m) => /Modes/.test(m.text)), {
      timeoutMs: 20_000,
    });
    h.tg.failNext('answerCallbackQuery', 1, TOO_OLD);
    const logged = h.logs.length;
    u.presses(menu.messageId, 'bs:mode:local');
    await h.tg.waitFor(() => /Already in mode local/.test(menu.text), { timeoutMs: 20_000 });
    // The chat's presses are handled one after the other: once the next one is answered, the first is over.
    const next = u.presses(menu.messageId, 'bs:mode:local');
    await h.tg.waitFor(() => h.tg.callbackAnswers.find((a) => a.callbackQueryId === next), {
      timeoutMs: 20_000,
    });
    expect(h.tg.botMessages(112).map((m) => m.text)).toEqual([menu.text]);
    expect(
      h.logs.slice(logged).filter((l) => /refused the answer to a button press/.test(String(l.msg))),
    ).toHaveLength(1);
    expect(h.logs.slice(logged).filter((l) => (l.level as number) >= 50)).toEqual([]);
  });

  it('a press no handler takes: refused too, it is logged as such, not as a failed update', async () => {
    const u = h.tg.user(113);
    u.says('/mode');
    const menu = await h.tg.waitFor(() => h.tg.botMessages(113).find((m) => /Modes/.test(m.text)), {
      timeoutMs: 20_000,
    });
    h.tg.failNext('answerCallbackQuery', 1, TOO_OLD);
    const logged = h.logs.length;
    u.presses(menu.messageId, 'an old button');
    await h.tg.waitFor(
      () => h.logs.slice(logged).find((l) => /refused the answer to a button press/.test(String(l.msg))),
      { timeoutMs: 20_000 },
    );
    expect(h.logs.slice(logged).filter((l) => (l.level as number) >= 50)).toEqual([]);
  });
});

describe('a button press Telegram answers with a 429', { timeout: 60_000 }, () => {
  it('longer than the press lives: given up, and the chat’s next press is answered at once, not after it', async () => {
    const u = h.tg.user(114);
    u.says('/mode');
    const menu = await h.tg.waitFor(() => h.tg.botMessages(114).find((m) => /Modes/.test(m.text)), {
      timeoutMs: 20_000,
    });
    // Ten minutes: a press is too old for Telegram after about 15 s, so waiting it out answers nothing.
    h.tg.rateLimit('answerCallbackQuery', 1, 600);
    const logged = h.logs.length;
    u.presses(menu.messageId, 'bs:mode:local');
    await h.tg.waitFor(() => /Already in mode local/.test(menu.text), { timeoutMs: 20_000 });
    const next = u.presses(menu.messageId, 'bs:mode:local');
    await h.tg.waitFor(() => h.tg.callbackAnswers.find((a) => a.callbackQueryId === next), {
      timeoutMs: 20_000,
    });
    expect(h.tg.callsOf('answerCallbackQuery').filter((c) => c.errorCode === 429)).toHaveLength(1);
    expect(
      h.logs.slice(logged).filter((l) => /refused the answer to a button press/.test(String(l.msg))),
    ).toHaveLength(1);
  });
});
