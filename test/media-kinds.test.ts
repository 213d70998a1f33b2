import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from './telegram-harness.js';

/**
 * Kinds of message brainstem does not take, on the direct route: each gets a
 * reply saying so (the Bot API emulator as Telegram), none reaches the brain.
 */

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

const reply = (chatId: number, pattern: RegExp) =>
  h.tg.waitFor(() => h.tg.botMessages(chatId).find((m) => pattern.test(m.text)), { timeoutMs: 8000 });

describe('a kind of message brainstem does not take', () => {
  it.each([
    [112, { story: { chat: { id: -1001, type: 'channel', title: 'News' }, id: 7 } }, 'Forwarded stories'],
    [113, { paid_media: { star_count: 5, paid_media: [{ type: 'preview' }] } }, 'Paid media'],
    [114, { game: { title: 'Chess', description: 'A game', photo: [] } }, 'Games'],
  ])('is answered, never met with silence (chat %i)', async (chatId, fields, name) => {
    h.tg.user(chatId).sends(fields);
    const told = await reply(chatId, /not supported/);
    expect(told.text).toBe(`⚙️ [proxy] ${name} are not supported: please send text, a photo or a document.`);
  });
});
