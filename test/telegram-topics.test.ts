import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from './telegram-harness.js';

/**
 * Forum topics and replies on the direct route, against the Bot API emulator
 * and the fake llama-server: each topic is a conversation of its own (its own
 * history and brain session, its answers in the topic, its own /new), and a
 * reply gives the brain the text it replies to.
 */

const GROUP = -100777;
let h: Harness;

beforeAll(async () => {
  h = await startHarness({ config: { telegram: { streaming: 'off' } } });
});
afterAll(async () => {
  await h.close();
});

/** The user messages of the last request to the fake llama-server. */
const userTurns = () => {
  const body = h.llama.requests.filter((r) => r.path.endsWith('/chat/completions')).at(-1)?.body as
    | { messages: { role: string; content: unknown }[] }
    | undefined;
  return (body?.messages ?? []).filter((m) => m.role === 'user').map((m) => m.content);
};

const answerIn = (chatId: number, pattern: RegExp, topicId?: number) =>
  h.tg.waitFor(() => h.tg.botMessages(chatId).find((m) => pattern.test(m.text) && m.topicId === topicId), {
    timeoutMs: 15_000,
  });

describe('forum topics', () => {
  it('each topic keeps its own conversation, answers go to the topic, and /new resets only that topic', async () => {
    const seven = h.tg.user(112, { chatId: GROUP, topicId: 7 });
    const nine = h.tg.user(113, { chatId: GROUP, topicId: 9 });

    seven.says('alpha');
    await answerIn(GROUP, /^echo: alpha$/, 7);
    nine.says('beta');
    await answerIn(GROUP, /^echo: beta$/, 9);

    seven.says('alpha again');
    await answerIn(GROUP, /^echo: alpha again$/, 7);
    expect(userTurns()).toEqual(['alpha', 'alpha again']);

    seven.says('/new');
    await answerIn(GROUP, /Fresh conversation/, 7);
    seven.says('after new');
    await answerIn(GROUP, /^echo: after new$/, 7);
    expect(userTurns()).toEqual(['after new']);

    nine.says('beta again');
    await answerIn(GROUP, /^echo: beta again$/, 9);
    expect(userTurns()).toEqual(['beta', 'beta again']);

    // Every send of a topic's turn (typing included) named its topic; nothing went to the General topic.
    const sends = h.tg.calls.filter(
      (c) => ['sendMessage', 'sendChatAction'].includes(c.method) && Number(c.params.chat_id) === GROUP,
    );
    expect(sends.length).toBeGreaterThan(0);
    expect(sends.every((c) => [7, 9].includes(Number(c.params.message_thread_id)))).toBe(true);
    expect(h.tg.botMessages(GROUP).every((m) => m.topicId === 7 || m.topicId === 9)).toBe(true);

    // Two sessions in the store of conversations, one per topic.
    const keys = h.service.core.db
      .prepare<[], { chat_key: string }>('SELECT DISTINCT chat_key FROM telegram_history ORDER BY chat_key')
      .all()
      .map((r) => r.chat_key);
    expect(keys).toEqual([`telegram:${GROUP}:topic:7`, `telegram:${GROUP}:topic:9`]);
  });
});

describe('replies', () => {
  it('a reply gives the brain the quoted part, or the whole message it replies to', async () => {
    const user = h.tg.user(114);
    user.says('the meeting is on Tuesday at 10');
    const answer = await answerIn(114, /^echo: the meeting is on Tuesday at 10$/);

    user.says('move it to 11', { replyTo: answer.messageId, quote: 'Tuesday at 10' });
    await answerIn(114, /move it to 11/);
    expect(userTurns().at(-1)).toBe(
      '[The user replies to this part of your earlier answer: "Tuesday at 10"]\n\nmove it to 11',
    );

    const mine = user.says('buy bread');
    await answerIn(114, /^echo: buy bread$/);
    user.says('and milk', { replyTo: mine });
    await answerIn(114, /and milk/);
    expect(userTurns().at(-1)).toBe('[The user replies to an earlier message: "buy bread"]\n\nand milk');
  });
});
