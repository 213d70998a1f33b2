/**
 * A tool approval question deleted while it waits, with the real `claude` CLI on the fake Messages
 * API (it asks for `Bash touch <words>.txt`, outside the assistant mode's allow-list). Telegram tells
 * the bot nothing of a deleted message or forum topic: the question is checked every
 * `telegram.questionCheckMs` (short here), and one found gone is denied then, the user told why.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { modeCwd } from '../src/config.js';
import { createGate } from './fakes/anthropic.js';
import { button } from './helpers/buttons.js';
import { claudeOnFake, touchWithBash } from './helpers/claude-fake.js';
import { type Harness, nextLog, OWNER, startClaudeHarness } from './telegram-harness.js';

const claude = claudeOnFake({ script: touchWithBash() });
let h: Harness;

beforeAll(async () => {
  h = await startClaudeHarness(claude.cli.env, {
    telegram: { approvers: [OWNER, 112, 113, 114], questionCheckMs: 200 },
  });
});
afterAll(async () => {
  await h?.close();
});

const questionIn = (chatId: number, file: string) =>
  h.tg.waitFor(
    () =>
      h.tg
        .botMessages(chatId)
        .find((m) => /Claude wants to use Bash/.test(m.text) && m.text.includes(file) && !m.deleted),
    { timeoutMs: 20_000 },
  );
const fileIn = (name: string) =>
  path.join(modeCwd(h.service.core.config, h.service.core.modes.get('assistant')), name);
const denied = (file: string) =>
  `⚙️ [proxy] The approval request for Bash (touch ${file}) can no longer be answered (its question was deleted in Telegram, by hand or with its forum topic), so it was denied.`;

describe('an approval question deleted while it waits', { timeout: 60_000 }, () => {
  it('with its forum topic: denied, and the answer comes to the group outside the topic saying why', async () => {
    const FORUM = -1_000_000_005_601;
    const user = h.tg.user(112, { chatId: FORUM, topicId: 3 });
    user.says('gone-topic');
    const question = await questionIn(FORUM, 'touch gone-topic.txt');
    expect(question.topicId).toBe(3);
    h.tg.deletesTopic(FORUM, 3);
    // Before, nothing came until claude.approvalTimeoutMs (120 s) was over.
    const answer = await h.tg.waitFor(
      () => h.tg.botMessages(FORUM).find((m) => m.text.includes('can no longer be answered') && !m.deleted),
      { timeoutMs: 20_000 },
    );
    expect(answer.topicId).toBeUndefined();
    expect(answer.text).toMatch(
      /^⚙️ \[proxy\] ⚠️ Telegram refused this answer in the topic it was written for \(message thread not found: the topic was closed or deleted\), so it comes here:\n\n/,
    );
    expect(answer.text).toContain(denied('gone-topic.txt'));
    expect(existsSync(fileIn('gone-topic.txt'))).toBe(false);
  });

  it('by hand: denied at once, the chat told why', async () => {
    const user = h.tg.user(113);
    user.says('gone-question');
    const question = await questionIn(113, 'touch gone-question.txt');
    user.deletes(question.messageId);
    const answer = await h.tg.waitFor(
      () => h.tg.botMessages(113).find((m) => m.text.includes('can no longer be answered')),
      { timeoutMs: 20_000 },
    );
    expect(answer.text).toContain(denied('gone-question.txt'));
    expect(existsSync(fileIn('gone-question.txt'))).toBe(false);
  });

  it('in a chat shut to the bot (the approver blocked it): denied at once, saying why', async () => {
    const user = h.tg.user(112);
    user.says('shut-chat');
    await questionIn(112, 'touch shut-chat.txt');
    // The next check's edit meets the block; before, the turn waited out claude.approvalTimeoutMs.
    h.tg.failNext(
      'editMessageReplyMarkup',
      1,
      { code: 403, description: 'Forbidden: bot was blocked by the user' },
      112,
    );
    const answer = await h.tg.waitFor(
      () => h.tg.botMessages(112).find((m) => m.text.includes('can no longer be answered')),
      { timeoutMs: 20_000 },
    );
    expect(answer.text).toContain(
      '⚙️ [proxy] The approval request for Bash (touch shut-chat.txt) can no longer be answered (Telegram no longer lets the bot into the chat it was asked in: the bot was blocked or removed there, or its question deleted), so it was denied.',
    );
    expect(existsSync(fileIn('shut-chat.txt'))).toBe(false);
  });

  it('in a group upgraded to a supergroup meanwhile: asked again there, where its buttons answer it', async () => {
    const GROUP = -5_602;
    const SUPERGROUP = -1_000_000_005_602;
    h.tg.user(113, { chatId: GROUP, basicGroup: true }).says('moved-group');
    await questionIn(GROUP, 'touch moved-group.txt');
    // The group's messages take no edits any more (400 with migrate_to_chat_id): before, the check
    // met that at every turn, and the turn waited out claude.approvalTimeoutMs (120 s).
    h.tg.migrates(GROUP, SUPERGROUP);
    const again = await questionIn(SUPERGROUP, 'touch moved-group.txt');
    h.tg.user(113, { chatId: SUPERGROUP }).presses(again.messageId, button(again, /Allow once/));
    await h.tg.waitFor(() => h.tg.botMessages(SUPERGROUP).find((m) => m.text === 'Done.'), {
      timeoutMs: 20_000,
    });
    expect(existsSync(fileIn('moved-group.txt'))).toBe(true);
    expect(again.text).toMatch(/\n\n✅ Allowed once by User113\.$/);
  });

  it('asked after its group was upgraded: it lands in the supergroup, where its buttons answer it, asked once', async () => {
    const GROUP = -5_603;
    const SUPERGROUP = -1_000_000_005_603;
    // Claude asks for the tool only once the group is a supergroup: the turn, begun in the group,
    // still names the group, and Telegram's refusal sends the question to the supergroup.
    const asked = createGate();
    const gate = createGate();
    const touch = touchWithBash();
    claude.fake.script(async (req) => {
      if (req.lastUserTurn === 'late-question') {
        asked.open();
        await gate.promise;
      }
      return touch(req);
    });
    try {
      h.tg.user(114, { chatId: GROUP, basicGroup: true }).says('late-question');
      await asked.promise;
      const followed = nextLog(h, (l) => l.msg === 'a group became a supergroup: its conversation follows');
      h.tg.migrates(GROUP, SUPERGROUP);
      await followed(2);
      gate.open();
      const question = await questionIn(SUPERGROUP, 'touch late-question.txt');
      h.tg.user(114, { chatId: SUPERGROUP }).presses(question.messageId, button(question, /Allow once/));
      await h.tg.waitFor(() => h.tg.botMessages(SUPERGROUP).find((m) => m.text === 'Done.'), {
        timeoutMs: 20_000,
      });
      expect(existsSync(fileIn('late-question.txt'))).toBe(true);
      expect(question.text).toMatch(/\n\n✅ Allowed once by User114\.$/);
      // Not asked a second time there, as if the first were still in the group.
      expect(
        h.tg.botMessages(SUPERGROUP).filter((m) => /Claude wants to use Bash/.test(m.text)),
      ).toHaveLength(1);
    } finally {
      gate.open();
      claude.fake.script(touchWithBash());
    }
  });

  /**
   * `word` said in the basic group GROUP, its Bash question held until the group has become
   * SUPERGROUP, then asked there with Telegram's answer to its sending held (`release` lets it go):
   * the bot does not know yet where it landed. The answer runs on once `gate` opens.
   */
  async function askedInSupergroupHeld(
    word: string,
    GROUP: number,
    SUPERGROUP: number,
    gate: ReturnType<typeof createGate>,
  ) {
    const asked = createGate();
    const touch = touchWithBash();
    claude.fake.script(async (req) => {
      if (req.lastUserTurn === word) {
        asked.open();
        await gate.promise;
      }
      return touch(req);
    });
    h.tg.user(114, { chatId: GROUP, basicGroup: true }).says(word);
    await asked.promise;
    const followed = nextLog(h, (l) => l.msg === 'a group became a supergroup: its conversation follows');
    h.tg.migrates(GROUP, SUPERGROUP);
    await followed(2);
    const release = h.tg.holdAnswerOf('sendMessage', SUPERGROUP);
    gate.open();
    const question = await questionIn(SUPERGROUP, `touch ${word}.txt`);
    return { question, release };
  }

  it('stopped while Telegram has not yet answered its sending to the supergroup: it shows the stop there, its buttons gone', async () => {
    const GROUP = -5_604;
    const SUPERGROUP = -1_000_000_005_604;
    const gate = createGate();
    try {
      const { question, release } = await askedInSupergroupHeld('held-question', GROUP, SUPERGROUP, gate);
      // The stop closes the question before the bot knows where it landed.
      h.tg.user(114, { chatId: SUPERGROUP }).says('/stop');
      await h.tg.waitFor(() => h.tg.botMessages(SUPERGROUP).find((m) => /⏹/.test(m.text) && m !== question), {
        timeoutMs: 20_000,
      });
      release();
      await h.tg.waitFor(() => /⏹ The answer stopped before a decision: nothing ran\.$/.test(question.text), {
        timeoutMs: 20_000,
      });
      expect(question.replyMarkup).toBeUndefined();
      expect(existsSync(fileIn('held-question.txt'))).toBe(false);
    } finally {
      gate.open();
      claude.fake.script(touchWithBash());
    }
  });

  it('pressed in the supergroup before Telegram has answered its sending there: the press answers it', async () => {
    const GROUP = -5_605;
    const SUPERGROUP = -1_000_000_005_605;
    const gate = createGate();
    try {
      const { question, release } = await askedInSupergroupHeld('held-press', GROUP, SUPERGROUP, gate);
      const answered = h.tg.callbackAnswers.length;
      h.tg.user(114, { chatId: SUPERGROUP }).presses(question.messageId, button(question, /Allow once/));
      // Released once the bot has the press: its update fetched, and the poller waiting for the next
      // (neither tells the emulator's waitFor: polled).
      const pressId = Number(h.tg.updateLog.at(-1)?.update_id);
      await vi.waitFor(() => expect(h.tg.releasedAt.has(pressId) && h.tg.polling.waiting).toBe(true), {
        timeout: 20_000,
      });
      release();
      const answer = await h.tg.waitFor(() => h.tg.callbackAnswers[answered], { timeoutMs: 20_000 });
      expect(answer.text).not.toBe('This question is closed.');
      await h.tg.waitFor(() => existsSync(fileIn('held-press.txt')), { timeoutMs: 20_000 });
      expect(question.replyMarkup).toBeUndefined();
    } finally {
      gate.open();
      claude.fake.script(touchWithBash());
    }
  });

  it('a question still there is left as it is by the checks, and its buttons answer it', async () => {
    const user = h.tg.user(114);
    user.says('still-there');
    const question = await questionIn(114, 'touch still-there.txt');
    // Checked several times (each an edit Telegram refuses as "not modified"), the question stays open.
    const checks = () =>
      h.tg
        .callsOf('editMessageReplyMarkup', 114)
        .filter((c) => Number(c.params.message_id) === question.messageId);
    await h.tg.waitFor(() => (checks().length >= 2 ? true : undefined));
    expect(question.text).not.toMatch(/denied|Denied/);
    user.presses(question.messageId, button(question, /Allow once/));
    await h.tg.waitFor(() => h.tg.botMessages(114).find((m) => m.text === 'Done.'));
    expect(existsSync(fileIn('still-there.txt'))).toBe(true);
    expect(question.text).toMatch(/\n\n✅ Allowed once by User114\.$/);
  });
});
