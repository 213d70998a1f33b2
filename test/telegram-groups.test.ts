import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGate, text } from './fakes/anthropic.js';
import type { FakeMessage } from './fakes/telegram.js';
import { answerHeldInTopic } from './helpers/answer-held-in-topic.js';
import { startBotOnFakeClaude } from './helpers/bot-on-fake-claude.js';
import { type Harness, holdOn, nextLog, startHarness } from './telegram-harness.js';

/**
 * The bot in groups, against the Bot API emulator and the fake llama-server
 * (edit-in-place streaming): what a group's own life does to an answer under
 * way (a basic group upgraded to a supergroup, a forum topic closed), and how
 * a message in a group addresses the bot.
 */

let h: Harness;

beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h.close();
});

/** The user messages of the last request to the fake llama-server: the conversation the brain was given. */
const userTurns = () =>
  (
    h.llama.requests.filter((r) => r.path.endsWith('/chat/completions')).at(-1)?.body as
      | { messages: { role: string; content: unknown }[] }
      | undefined
  )?.messages
    .filter((m) => m.role === 'user')
    .map((m) => m.content);

/**
 * A basic group whose conversation has begun (`first`, echoed) and whose answer to 'hold on' is under
 * way, its first words shown in the group: `release` lets that answer end.
 */
async function answerUnderWay(userId: number, group: number, first: string): Promise<() => void> {
  const user = h.tg.user(userId, { chatId: group, basicGroup: true });
  user.says(first);
  await h.tg.waitFor(() => h.tg.botMessages(group).find((m) => m.text === `echo: ${first}`));
  const release = holdOn(h);
  try {
    user.says('hold on');
    await h.tg.waitFor(() => h.tg.botMessages(group).find((m) => m.text.startsWith('Holding')));
  } catch (e) {
    release();
    throw e;
  }
  return release;
}

describe('a group upgraded to a supergroup', () => {
  it('an answer under way when the group is upgraded arrives in the supergroup, and the conversation goes on there', async () => {
    const GROUP = -4_301;
    const SUPERGROUP = -1_000_000_004_301;
    const release = await answerUnderWay(112, GROUP, 'the word is kiwi');
    try {
      // The group's Claude session, as a Claude mode's turn would have left it.
      h.service.core.sessions.set(`telegram:${GROUP}`, 'assistant', 'session-of-the-group', h.dir);
      h.tg.migrates(GROUP, SUPERGROUP);
    } finally {
      release();
    }
    // The old group takes no changes any more: the rest of the answer comes in the supergroup.
    const answer = await h.tg.waitFor(() =>
      h.tg.botMessages(SUPERGROUP).find((m) => m.text === 'Holding on'),
    );
    expect(answer.replyTo).toBeUndefined();
    expect(
      h.logs.some(
        (l) =>
          l.chatId === GROUP &&
          l.newChatId === SUPERGROUP &&
          /messages for it go there now/.test(String(l.msg)),
      ),
    ).toBe(true);

    // Telegram sends the group's messages from its new id from then on: the same conversation.
    h.tg.user(112, { chatId: SUPERGROUP }).says('still there?');
    await h.tg.waitFor(() => h.tg.botMessages(SUPERGROUP).find((m) => m.text === 'echo: still there?'));
    expect(userTurns()).toEqual(['the word is kiwi', 'hold on', 'still there?']);
    expect(h.service.core.sessions.get(`telegram:${SUPERGROUP}`, 'assistant')?.brainSessionId).toBe(
      'session-of-the-group',
    );
  });

  it('/new and /stop in the supergroup count the group’s answer still written, which its turns wait for', async () => {
    const GROUP = -4_315;
    const SUPERGROUP = -1_000_000_004_315;
    const release = await answerUnderWay(118, GROUP, 'the word is fig');
    try {
      const followed = nextLog(h, (l) => l.msg === 'a group became a supergroup: its conversation follows');
      h.tg.migrates(GROUP, SUPERGROUP);
      await followed(2);
      const there = h.tg.user(118, { chatId: SUPERGROUP });
      // As in the group: the fresh start waits for the answer under way, and says so.
      there.says('/new');
      await h.tg.waitFor(() =>
        h.tg
          .botMessages(SUPERGROUP)
          .find((m) => /A fresh conversation starts once the current answer is done/.test(m.text)),
      );
      there.says('a new start');
      await h.tg.waitFor(() =>
        h.tg.botMessages(SUPERGROUP).find((m) => /Queued: I will answer/.test(m.text)),
      );
      // /stop stops the group's answer, and says that the two turns sent here follow it.
      there.says('/stop');
      await h.tg.waitFor(() =>
        h.tg
          .botMessages(SUPERGROUP)
          .find((m) => /Stopped the answer in progress\. 2 queued message\(s\) follow\./.test(m.text)),
      );
    } finally {
      release();
    }
    await h.tg.waitFor(() => h.tg.botMessages(SUPERGROUP).find((m) => m.text === 'echo: a new start'));
    expect(userTurns()).toEqual(['a new start']);
  });
});

describe('a group on Claude upgraded to a supergroup', () => {
  it('goes on in the warm Claude process of the group, not in a second process resuming the same session beside it', async () => {
    const GROUP = -4_311;
    const SUPERGROUP = -1_000_000_004_311;
    const { c, fake, close } = await startBotOnFakeClaude({ telegram: { streaming: 'off' } });
    try {
      fake.script((req) => text(`heard ${req.lastUserTurn}`));
      const started = (key: string) => (l: Record<string, unknown>) =>
        l.msg === 'claude turn started' && l.sessionKey === key;
      c.tg.user(114, { chatId: GROUP, basicGroup: true }).says('one');
      await c.tg.waitFor(() => c.tg.botMessages(GROUP).find((m) => /heard one/.test(m.text)), {
        timeoutMs: 60_000,
      });
      const followed = nextLog(c, (l) => l.msg === 'a group became a supergroup: its conversation follows');
      c.tg.migrates(GROUP, SUPERGROUP);
      await followed(2);
      const turn = nextLog(c, started(`telegram:${SUPERGROUP}`));
      c.tg.user(114, { chatId: SUPERGROUP }).says('two');
      await c.tg.waitFor(() => c.tg.botMessages(SUPERGROUP).find((m) => /heard two/.test(m.text)), {
        timeoutMs: 60_000,
      });
      // The group's process holds the session and writes its last answer to it as it exits: a second
      // process resuming it meanwhile might not have it, and both would write the same session.
      expect((await turn()).warm).toBe(true);
      expect(fake.mainRequests().at(-1)?.userTexts.join(' ')).toContain('one');
    } finally {
      await close();
    }
  });
});

/**
 * A basic group on Claude (the real CLI, the fake Messages API) upgraded to a supergroup while
 * Claude writes its answer to 'hold' (after one to 'one'): `release` lets that answer end.
 */
async function upgradedWhileAnswering(userId: number, group: number, supergroup: number) {
  const bot = await startBotOnFakeClaude({ telegram: { streaming: 'off' } });
  const { c, fake } = bot;
  const gate = createGate();
  const close = async () => {
    gate.open();
    await bot.close();
  };
  try {
    const asked = createGate();
    fake.script(async (req) => {
      if (req.lastUserTurn === 'hold') {
        asked.open();
        await gate.promise;
      }
      return text(`heard ${req.lastUserTurn}`);
    });
    const user = c.tg.user(userId, { chatId: group, basicGroup: true });
    user.says('one');
    await c.tg.waitFor(() => c.tg.botMessages(group).find((m) => /heard one/.test(m.text)), {
      timeoutMs: 60_000,
    });
    user.says('hold');
    await asked.promise;
    const followed = nextLog(c, (l) => l.msg === 'a group became a supergroup: its conversation follows');
    c.tg.migrates(group, supergroup);
    await followed(2);
  } catch (e) {
    await close();
    throw e;
  }
  /** The next 'claude turn started' of the supergroup's conversation. */
  const turn = () =>
    nextLog(c, (l) => l.msg === 'claude turn started' && l.sessionKey === `telegram:${supergroup}`);
  return { c, fake, release: () => gate.open(), turn, close };
}

describe('a group on Claude upgraded to a supergroup while it answers', () => {
  it('the process of the answer under way serves the supergroup once the answer is done', async () => {
    const SUPERGROUP = -1_000_000_004_312;
    const { c, fake, release, turn, close } = await upgradedWhileAnswering(115, -4_312, SUPERGROUP);
    try {
      release();
      await c.tg.waitFor(() => c.tg.botMessages(SUPERGROUP).find((m) => /heard hold/.test(m.text)), {
        timeoutMs: 60_000,
      });
      const started = turn();
      c.tg.user(115, { chatId: SUPERGROUP }).says('two');
      await c.tg.waitFor(() => c.tg.botMessages(SUPERGROUP).find((m) => /heard two/.test(m.text)), {
        timeoutMs: 60_000,
      });
      expect((await started()).warm).toBe(true);
      // The session has the answer to 'hold': it is not told it again as something it missed.
      expect(fake.mainRequests().at(-1)?.lastUserText).not.toContain('heard hold');
    } finally {
      await close();
    }
  });
});

describe('a message in the supergroup while the group’s answer is still written', () => {
  it('waits for that answer, saying it is queued, and then goes on in the group’s session and process', async () => {
    const SUPERGROUP = -1_000_000_004_313;
    const { c, fake, release, turn, close } = await upgradedWhileAnswering(116, -4_313, SUPERGROUP);
    try {
      const started = turn();
      const askedTwo = () => fake.mainRequests().some((r) => r.lastUserTurn === 'two');
      c.tg.user(116, { chatId: SUPERGROUP }).says('two');
      // Either it waits for the group's answer (and says so), or Claude is asked beside it.
      await c.tg.waitFor(
        () => askedTwo() || c.tg.botMessages(SUPERGROUP).some((m) => /Queued: I will answer/.test(m.text)),
        { timeoutMs: 60_000 },
      );
      const beside = askedTwo();
      release();
      await c.tg.waitFor(() => c.tg.botMessages(SUPERGROUP).find((m) => /heard two/.test(m.text)), {
        timeoutMs: 60_000,
      });
      expect(beside).toBe(false);
      // The answer to 'two' reads below the group's answer it waited for.
      expect(c.tg.botMessages(SUPERGROUP).map((m) => m.text)).toEqual([
        expect.stringMatching(/heard hold/),
        expect.stringMatching(/heard two/),
      ]);
      // One process holds the session: the group's, which answered 'hold' in it.
      expect((await started()).warm).toBe(true);
      expect(fake.mainRequests().at(-1)?.userTurns).toEqual(['one', 'hold', 'two']);
    } finally {
      await close();
    }
  });
});

describe('a group upgraded to a supergroup while its answer streams', () => {
  it('the answer goes on in one message in the supergroup, not a new one at each edit', async () => {
    const GROUP = -4_314;
    const SUPERGROUP = -1_000_000_004_314;
    const { c, fake, close } = await startBotOnFakeClaude({ telegram: { streaming: 'edit' } });
    const second = createGate();
    const third = createGate();
    try {
      // The rest of the answer comes after the upgrade, each part once the one before it is shown in
      // the supergroup: each is an edit of its own (a group's edits go 4 s apart, and parts coming
      // within one interval would be one edit), of the message the answer goes on in.
      fake.script(() =>
        text(['first part', ' second part', ' third part'], { holds: [second.promise, third.promise] }),
      );
      c.tg.user(117, { chatId: GROUP, basicGroup: true }).says('stream');
      await c.tg.waitFor(() => c.tg.botMessages(GROUP).find((m) => /first part/.test(m.text)), {
        timeoutMs: 60_000,
      });
      const followed = nextLog(c, (l) => l.msg === 'a group became a supergroup: its conversation follows');
      c.tg.migrates(GROUP, SUPERGROUP);
      await followed(2);
      second.open();
      await c.tg.waitFor(
        () => c.tg.botMessages(SUPERGROUP).find((m) => /first part second part/.test(m.text)),
        { timeoutMs: 60_000 },
      );
      third.open();
      await c.tg.waitFor(
        () => c.tg.botMessages(SUPERGROUP).find((m) => /first part second part third part/.test(m.text)),
        { timeoutMs: 60_000 },
      );
      // Once in the supergroup, the answer is edited there: the group takes no edits any more, and
      // each edit sent there was refused and sent again as a new message.
      const answers = c.tg.botMessages(SUPERGROUP).filter((m) => /first part/.test(m.text));
      expect(answers.map((m) => m.text)).toEqual([
        expect.stringMatching(/first part second part third part/),
      ]);
    } finally {
      second.open();
      third.open();
      await close();
    }
  });
});

describe('/stop in the supergroup while the group’s answer is still written', () => {
  it('stops that answer, says so there, and the next message is answered at once', async () => {
    const SUPERGROUP = -1_000_000_004_316;
    const { c, fake, close } = await upgradedWhileAnswering(117, -4_316, SUPERGROUP);
    try {
      const user = c.tg.user(117, { chatId: SUPERGROUP });
      user.says('/stop');
      await c.tg.waitFor(
        () => c.tg.botMessages(SUPERGROUP).find((m) => /Stopped the answer in progress/.test(m.text)),
        { timeoutMs: 60_000 },
      );
      // The group's answer, never released at the fake API, ends as stopped, where the chat now is.
      await c.tg.waitFor(() => c.tg.botMessages(SUPERGROUP).find((m) => /⏹ stopped/.test(m.text)), {
        timeoutMs: 60_000,
      });
      user.says('two');
      await c.tg.waitFor(() => c.tg.botMessages(SUPERGROUP).find((m) => /heard two/.test(m.text)), {
        timeoutMs: 60_000,
      });
      expect(c.tg.botMessages(SUPERGROUP).map((m) => m.text)).toEqual([
        expect.stringMatching(/Stopped the answer in progress/),
        expect.stringMatching(/⏹ stopped/),
        expect.stringMatching(/heard two/),
      ]);
      // The session goes on: the stopped turn is in it (as the CLI notes a stop), then 'two'.
      expect(fake.mainRequests().at(-1)?.userTurns).toEqual(['one', expect.stringMatching(/^hold/), 'two']);
    } finally {
      await close();
    }
  });
});

describe('a forum topic closed while its answer is written', () => {
  it('the answer comes to the group outside the topic, saying why, rather than vanishing', async () => {
    const FORUM = -1_000_000_004_302;
    const open = await answerHeldInTopic(
      h,
      { userId: 113, chatId: FORUM, topicId: 8 },
      'a long question',
      'the answer, written after the topic closed',
    );
    let moved: FakeMessage;
    try {
      h.tg.closesTopic(FORUM, 8);
      open();
      moved = await h.tg.waitFor(() =>
        h.tg.botMessages(FORUM).find((m) => m.text.includes('the answer, written after the topic closed')),
      );
    } finally {
      open();
      h.llama.script();
    }
    expect(moved.topicId).toBeUndefined();
    expect(moved.text).toMatch(/refused this answer in the topic it was written for \(TOPIC_CLOSED/);
    // Nothing of it reached the closed topic.
    expect(h.tg.botMessages(FORUM).filter((m) => m.topicId === 8)).toEqual([]);
  });
});

describe('a message that names the bot in a group', () => {
  const lastTurn = () => userTurns()?.at(-1);

  it('is read without the mention that addresses it: brainstem’s own words work, the brain gets the rest', async () => {
    const GROUP = -1_000_000_004_303;
    const user = h.tg.user(114, { chatId: GROUP });
    const at = `@${h.tg.botUsername}`;

    // With privacy mode on, a mention is how a group message reaches the bot at all.
    user.says(`${at} status`);
    const status = await h.tg.waitFor(() => h.tg.botMessages(GROUP).find((m) => /Active mode:/.test(m.text)));
    expect(status.text).toMatch(/Uptime: /);

    user.says(`${at}, what is 2+2?`);
    await h.tg.waitFor(() => h.tg.botMessages(GROUP).find((m) => m.text === 'echo: what is 2+2?'));
    expect(lastTurn()).toBe('what is 2+2?');

    user.says(`thanks ${at}`);
    await h.tg.waitFor(() => h.tg.botMessages(GROUP).find((m) => m.text === 'echo: thanks'));

    // A mention inside the text is part of what the user says; another bot's is not ours to take out.
    user.says(`ask ${at} or @other_helper_bot later`);
    await h.tg.waitFor(() =>
      h.tg.botMessages(GROUP).find((m) => m.text === `echo: ask ${at} or @other_helper_bot later`),
    );
    user.says(`${at}`);
    await h.tg.waitFor(() => h.tg.botMessages(GROUP).find((m) => m.text === `echo: ${at}`));
  });

  it('in a file’s caption too: the brain gets the caption without it', async () => {
    const GROUP = -1_000_000_004_304;
    const user = h.tg.user(115, { chatId: GROUP });
    const asked = h.llama.requests.length;
    user.sendsDocument(
      'notes.txt',
      new TextEncoder().encode('milk, eggs'),
      `@${h.tg.botUsername} what is in this file?`,
    );
    await h.tg.waitFor(() => h.llama.requests.slice(asked).find((r) => r.path.endsWith('/chat/completions')));
    const said = JSON.stringify(lastTurn());
    expect(said).toContain('what is in this file?');
    expect(said).not.toContain(h.tg.botUsername);
  });
});
