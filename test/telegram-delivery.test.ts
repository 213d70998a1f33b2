import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness, turnsDone } from './telegram-harness.js';

/**
 * "The final text always arrives", against the Bot API emulator: a streamed
 * answer (edited in place) meets a 5xx, a cut connection, its message deleted
 * by the user, an edit Telegram refuses; and when Telegram refuses the answer
 * for good, the user is told so instead of waiting for nothing.
 */
let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h.close();
});

/** A promise the test opens by hand, to hold the fake llama-server's stream mid-way. */
function gate() {
  let open!: () => void;
  const promise = new Promise<void>((r) => {
    open = r;
  });
  return { promise, open };
}

const visible = (chatId: number) => h.tg.botMessages(chatId).map((m) => m.text);
const arrives = (chatId: number, text: string) =>
  h.tg.waitFor(() => h.tg.botMessages(chatId).find((m) => m.text === text), { timeoutMs: 60_000 });
const failedCalls = (method: string, chatId: number) => h.tg.callsOf(method, chatId).filter((c) => !c.ok);

// grammY's auto-retry waits 3 s before trying a 5xx or a network failure again.
describe('the final text arrives', { timeout: 90_000 }, () => {
  it('after a 5xx from Telegram, retried', async () => {
    h.tg.failNext('sendMessage', 1, { code: 502, description: 'Bad Gateway' }, 112);
    h.llama.reply({ chunks: ['Through ', 'a 502.'] });
    h.tg.user(112).says('five hundred');
    await arrives(112, 'Through a 502.');
    expect(visible(112)).toEqual(['Through a 502.']);
    expect(failedCalls('sendMessage', 112).map((c) => c.errorCode)).toEqual([502]);
  });

  it('after a network failure, retried', async () => {
    h.tg.dropNext('sendMessage', 1, 113);
    h.llama.reply({ chunks: ['Through ', 'a cut connection.'] });
    h.tg.user(113).says('network');
    await arrives(113, 'Through a cut connection.');
    expect(visible(113)).toEqual(['Through a cut connection.']);
    expect(failedCalls('sendMessage', 113).map((c) => c.description)).toEqual(['connection dropped']);
  });

  it('in a new message when the user deleted the one being edited', async () => {
    const g = gate();
    h.llama.reply({ chunks: ['Beginning', { wait: g.promise }, ' and the end.'] });
    const u = h.tg.user(114);
    u.says('delete it');
    const first = await arrives(114, 'Beginning');
    u.deletes(first.messageId);
    g.open();
    await arrives(114, 'Beginning and the end.');
    expect(visible(114)).toEqual(['Beginning and the end.']);
    expect(failedCalls('editMessageText', 114).map((c) => c.description)).toEqual([
      'Bad Request: message to edit not found',
    ]);
  });

  it('in a group, in a new message that still replies to the question when the one being edited was deleted', async () => {
    const group = -100810;
    const g = gate();
    h.llama.reply({ chunks: ['Started', { wait: g.promise }, ' and finished.'] });
    const u = h.tg.user(119, { chatId: group });
    const asked = u.says('answer me here');
    const first = await arrives(group, 'Started');
    expect(first.replyTo).toBe(asked);
    u.deletes(first.messageId);
    g.open();
    const again = await arrives(group, 'Started and finished.');
    // Before, the new message replied to nothing: in a group, nobody could tell whose question it answered.
    expect(again.replyTo).toBe(asked);
    expect(visible(group)).toEqual(['Started and finished.']);
  });

  it('after an edit Telegram refused mid-stream', async () => {
    const g1 = gate();
    const g2 = gate();
    h.llama.reply({ chunks: ['one', { wait: g1.promise }, ' two', { wait: g2.promise }, ' three'] });
    h.tg.user(115).says('refused edit');
    await arrives(115, 'one');
    h.tg.failNext('editMessageText', 1, { code: 400, description: 'Bad Request: the edit failed' }, 115);
    g1.open();
    await h.tg.waitFor(() => failedCalls('editMessageText', 115).length === 1, { timeoutMs: 60_000 });
    g2.open();
    const msg = await arrives(115, 'one two three');
    expect(visible(115)).toEqual(['one two three']);
    // No intermediate edit after the refused one: the next change is the final text.
    expect(msg.history).toEqual(['one', 'one two three']);
  });
});

describe('an answer Telegram refuses for good', { timeout: 90_000 }, () => {
  it('is followed by a short message saying so', async () => {
    const refusal = { code: 400, description: 'Bad Request: not enough rights to send text messages' };
    const g = gate();
    h.llama.reply({ chunks: ['Never ', { wait: g.promise }, 'shown.'] });
    h.tg.failNext('sendMessage', 2, refusal, 116);
    h.tg.user(116).says('refuse it');
    // The streamed first words are refused, then the final text.
    await h.tg.waitFor(() => failedCalls('sendMessage', 116).length === 1, { timeoutMs: 60_000 });
    g.open();
    const told = await h.tg.waitFor(() => h.tg.lastBotMessage(116), { timeoutMs: 60_000 });
    expect(failedCalls('sendMessage', 116)).toHaveLength(2);
    expect(told.text).toBe(
      '⚙️ [proxy] ⚠️ Telegram refused this answer (Bad Request: not enough rights to send text messages), so it did not arrive in full. Ask again, or /new.',
    );
    expect(visible(116)).toEqual([told.text]);
  });
});

describe('an answer to a user who blocked the bot', { timeout: 90_000 }, () => {
  it('is not followed by a message saying so: Telegram would refuse it too', async () => {
    const blocked = { code: 403, description: 'Forbidden: bot was blocked by the user' };
    const g = gate();
    h.llama.reply({ chunks: ['Never ', { wait: g.promise }, 'shown.'] });
    // The streamed first words and the final text; a third message would reach the chat.
    h.tg.failNext('sendMessage', 2, blocked, 118);
    const u = h.tg.user(118);
    u.says('blocked');
    await h.tg.waitFor(() => failedCalls('sendMessage', 118).length === 1, { timeoutMs: 60_000 });
    g.open();
    await h.tg.waitFor(() => failedCalls('sendMessage', 118).length === 2, { timeoutMs: 60_000 });
    h.llama.script();
    await turnsDone(h, u);
    expect(visible(118).filter((text) => /refused this answer/.test(text))).toEqual([]);
  });
});

describe('an answer with nothing to show', { timeout: 90_000 }, () => {
  it('is said to be empty, not refused by Telegram', async () => {
    // An empty code block renders to no visible text, which Telegram refuses ("message text is empty").
    h.llama.reply({ chunks: ['```\n', '```'] });
    h.tg.user(117).says('an empty block');
    const told = await h.tg.waitFor(() => h.tg.lastBotMessage(117), { timeoutMs: 60_000 });
    expect(told.text).toBe('⚙️ [proxy] The brain sent an empty answer.');
    expect(visible(117)).toEqual([told.text]);
    expect(failedCalls('sendMessage', 117)).toEqual([]);
  });
});
