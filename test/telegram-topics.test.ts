import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { text } from './fakes/anthropic.js';
import { startBotOnFakeClaude } from './helpers/bot-on-fake-claude.js';
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

  it('an edit of a topic message is answered in that topic, as a turn of its conversation', async () => {
    const eleven = h.tg.user(115, { chatId: GROUP, topicId: 11 });
    const typo = eleven.says('wht is 2+2');
    await answerIn(GROUP, /^echo: wht is 2\+2$/, 11);
    eleven.edits(typo, 'what is 2+3');
    const answer = await answerIn(GROUP, /what is 2\+3$/, 11);
    // In a group the answer says whom it answers: the edited message.
    expect(answer.replyTo).toBe(typo);
    expect(userTurns()).toEqual([
      'wht is 2+2',
      expect.stringMatching(/^\[The user edited their message of [^\]]+\]\n\nwhat is 2\+3$/),
    ]);
  });

  it('a stranger, and an anonymous admin, writing in a topic are refused in that topic', async () => {
    const FORUM = -1003;
    h.tg.user(600, { chatId: FORUM, topicId: 7 }).says('/status');
    await answerIn(FORUM, /Your Telegram user id is 600/, 7);
    // Telegram's sender of every anonymous group admin, the group as sender_chat.
    h.tg.user(1087968824, { chatId: FORUM, topicId: 9 }).sends({
      text: '/status',
      entities: [{ type: 'bot_command', offset: 0, length: '/status'.length }],
      from: { id: 1087968824, is_bot: true, first_name: 'Group', username: 'GroupAnonymousBot' },
      sender_chat: { id: FORUM, type: 'supergroup', title: 'Forum' },
    });
    await answerIn(FORUM, /This bot is private, and this message does not say who you are/, 9);
    expect(h.tg.botMessages(FORUM).map((m) => m.topicId)).toEqual([7, 9]);
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

describe('forum topics on a Claude mode', () => {
  it('a chart and a command’s failure go to the topic the command came from', async () => {
    const five = h.tg.user(114, { chatId: GROUP, topicId: 5 });
    five.says('/usage chart 7d');
    const chart = await h.tg.waitFor(() => h.tg.botMessages(GROUP).find((m) => m.photo !== undefined), {
      timeoutMs: 30_000,
    });
    expect(chart.topicId).toBe(5);
    const actions = h.tg.calls.filter(
      (c) => c.method === 'sendChatAction' && c.params.action === 'upload_photo',
    );
    expect(actions.length).toBeGreaterThan(0);
    expect(actions.every((c) => Number(c.params.message_thread_id) === 5)).toBe(true);
  });

  it('each topic has its own Claude session; /new in one leaves the other resumed', async () => {
    const { c, fake, close } = await startBotOnFakeClaude({ telegram: { streaming: 'off' } });
    try {
      fake.script((req) => text(`heard ${req.lastUserTurn}`));
      const group = -100778;
      const a = c.tg.user(112, { chatId: group, topicId: 3 });
      const b = c.tg.user(113, { chatId: group, topicId: 4 });
      const answered = (pattern: RegExp, topicId: number) =>
        c.tg.waitFor(
          () => c.tg.botMessages(group).find((m) => pattern.test(m.text) && m.topicId === topicId),
          {
            timeoutMs: 60_000,
          },
        );
      const session = (topicId: number) =>
        c.service.core.sessions.get(`telegram:${group}:topic:${topicId}`, 'assistant')?.brainSessionId;

      a.says('one');
      await answered(/heard one/, 3);
      b.says('two');
      await answered(/heard two/, 4);
      const [sa, sb] = [session(3), session(4)];
      expect(sa).toBeDefined();
      expect(sb).toBeDefined();
      expect(sa).not.toBe(sb);

      a.says('/new');
      await answered(/Fresh conversation/, 3);
      expect(session(3)).toBeUndefined();
      expect(session(4)).toBe(sb);

      b.says('three');
      await answered(/heard three/, 4);
      expect(session(4)).toBe(sb);
      // The resumed session of topic 4 holds its own turns only.
      expect(fake.mainRequests().at(-1)?.userTexts.join(' ')).toContain('two');
      expect(fake.mainRequests().at(-1)?.userTexts.join(' ')).not.toContain('one');
    } finally {
      await close();
    }
  });
});
