/**
 * Tool approvals asked in forum topics, with the real `claude` CLI on the fake Messages API: the
 * fake asks for `Bash touch <words>.txt` (outside the assistant mode's allow-list), the question
 * comes to the topic of the turn, and a topic an admin closes changes where it is asked, not who
 * can answer it.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { modeCwd } from '../src/config.js';
import { button, buttonsOf } from './helpers/buttons.js';
import { claudeOnFake, touchWithBash } from './helpers/claude-fake.js';
import { type Harness, OWNER, startClaudeHarness } from './telegram-harness.js';

/** Allowed to use the bot, not to answer approvals. */
const NOT_APPROVER = 119;
const QUESTION = '⚙️ [proxy] 🔐 Claude wants to use Bash:\ntouch closed-topic.txt\nCreate the file';
const REFUSED_CLOSED =
  '⚙️ [proxy] ⚠️ Telegram refused this message in the topic it was meant for (TOPIC_CLOSED: the topic was closed or deleted), so it comes here:';

const claude = claudeOnFake({ script: touchWithBash() });
let h: Harness;

beforeAll(async () => {
  h = await startClaudeHarness(claude.cli.env, { telegram: { approvers: [OWNER, 112, 113, 114, 115] } });
});
afterAll(async () => {
  await h?.close();
});

const questionIn = (chatId: number, file: string) =>
  h.tg.waitFor(
    () =>
      h.tg.botMessages(chatId).find((m) => /Claude wants to use Bash/.test(m.text) && m.text.includes(file)),
    { timeoutMs: 20_000 },
  );
const answerIn = (chatId: number, pattern: RegExp) =>
  h.tg.waitFor(() => h.tg.botMessages(chatId).find((m) => pattern.test(m.text)), { timeoutMs: 20_000 });
const fileIn = (name: string) =>
  path.join(modeCwd(h.service.core.config, h.service.core.modes.get('assistant')), name);

describe('tool approvals in forum topics', { timeout: 60_000 }, () => {
  it('a question for a topic an admin closed comes to the group outside it, saying why, and its buttons answer it', async () => {
    const FORUM = -1_000_000_005_501;
    const user = h.tg.user(112, { chatId: FORUM, topicId: 3 });
    h.tg.closesTopic(FORUM, 3);
    // An admin may still write in a closed topic; the bot, without the right to manage topics, may not.
    user.says('closed-topic');
    const question = await questionIn(FORUM, 'touch closed-topic.txt');
    expect(question.topicId).toBeUndefined();
    expect(question.text).toBe(`${REFUSED_CLOSED}\n\n${QUESTION}`);
    expect(buttonsOf(question)).toHaveLength(3);

    user.presses(question.messageId, button(question, /Allow once/));
    const answer = await answerIn(FORUM, /\n\nDone\.$/);
    expect(answer.topicId).toBeUndefined();
    expect(existsSync(fileIn('closed-topic.txt'))).toBe(true);
    // The outcome is added to the question as it came: the line saying why stays.
    expect(question.text).toBe(`${REFUSED_CLOSED}\n\n${QUESTION}\n\n✅ Allowed once by User112.`);
    expect(buttonsOf(question)).toEqual([]);
  });

  // The question is made to fit one message with room for its outcome; outside its topic the line
  // saying why is added above it, and the outcome no longer fitted: it was cut off, for a note in
  // English that the text went past one message.
  it("a long question outside its closed topic still shows its outcome once answered, in the asker's language", async () => {
    const FORUM = -1_000_000_005_504;
    const name = `Approbatrice ${'é'.repeat(51)}`;
    const user = h.tg.user(115, { chatId: FORUM, topicId: 7, languageCode: 'fr', firstName: name });
    h.tg.closesTopic(FORUM, 7);
    user.says(`long-${'x'.repeat(3990)}`);
    const question = await h.tg.waitFor(
      () => h.tg.botMessages(FORUM).find((m) => m.text.includes('touch long-xxx')),
      { timeoutMs: 20_000 },
    );
    expect(question.topicId).toBeUndefined();
    expect(question.text).toMatch(/^⚙️ \[proxy\] ⚠️ Telegram a refusé ce message/);
    expect(question.text).toContain('Seul le début est affiché');
    user.presses(question.messageId, button(question, /Refuser/));
    await h.tg.waitFor(() => (buttonsOf(question).length === 0 ? true : undefined));
    expect(question.text).toMatch(new RegExp(`\n\n✖️ Refusé par ${name}\\.$`));
    // The question gave way, saying so in French.
    expect(question.text).toMatch(
      /\[… coupé ici : \d+ caractères de plus, au-delà de ce que tient un message Telegram\]\n\n✖️/,
    );
    expect(question.text).not.toContain('cut here');
  });

  it('a question asked before its topic is closed is still answered there', async () => {
    const FORUM = -1_000_000_005_502;
    const user = h.tg.user(113, { chatId: FORUM, topicId: 4 });
    user.says('closed-after');
    const question = await questionIn(FORUM, 'touch closed-after.txt');
    expect(question.topicId).toBe(4);
    h.tg.closesTopic(FORUM, 4);
    user.presses(question.messageId, button(question, /Allow once/));
    const answer = await answerIn(FORUM, /Done\.$/);
    expect(existsSync(fileIn('closed-after.txt'))).toBe(true);
    expect(question.text).toMatch(/\n\n✅ Allowed once by User113\.$/);
    expect(answer.topicId).toBeUndefined();
  });

  it('two questions at once in two topics of one group: each press answers its own, a non-approver none of them', async () => {
    const FORUM = -1_000_000_005_503;
    const inFive = h.tg.user(114, { chatId: FORUM, topicId: 5 });
    const inSix = h.tg.user(114, { chatId: FORUM, topicId: 6 });
    const other = h.tg.user(NOT_APPROVER, { chatId: FORUM, topicId: 5 });
    inFive.says('topic-five');
    inSix.says('topic-six');
    const five = await questionIn(FORUM, 'touch topic-five.txt');
    const six = await questionIn(FORUM, 'touch topic-six.txt');
    expect([five.topicId, six.topicId]).toEqual([5, 6]);

    const refused = other.presses(five.messageId, button(five, /Allow once/));
    const alert = await h.tg.waitFor(() => h.tg.callbackAnswers.find((a) => a.callbackQueryId === refused));
    expect(alert.text).toBe('Only an approver can answer this; nothing changed.');

    inSix.presses(six.messageId, button(six, /Deny/));
    await h.tg.waitFor(() => six.text.endsWith('✖️ Denied by User114.') || undefined);
    expect(buttonsOf(five)).toHaveLength(3);
    inFive.presses(five.messageId, button(five, /Allow once/));
    await h.tg.waitFor(() =>
      h.tg.botMessages(FORUM).filter((m) => m.text === 'Done.').length === 2 ? true : undefined,
    );
    expect(five.text).toMatch(/\n\n✅ Allowed once by User114\.$/);
    expect(existsSync(fileIn('topic-five.txt'))).toBe(true);
    expect(existsSync(fileIn('topic-six.txt'))).toBe(false);
  });
  it("a press on an open question carrying another question's data says that one is closed and leaves the open one's buttons", async () => {
    const FORUM = -1_000_000_005_505;
    const inSeven = h.tg.user(113, { chatId: FORUM, topicId: 7 });
    const inEight = h.tg.user(113, { chatId: FORUM, topicId: 8 });
    inSeven.says('topic-seven');
    const seven = await questionIn(FORUM, 'touch topic-seven.txt');
    const sevenAllow = button(seven, /Allow once/);
    inSeven.presses(seven.messageId, sevenAllow);
    await answerIn(FORUM, /^Done\.$/);
    inEight.says('topic-eight');
    const eight = await questionIn(FORUM, 'touch topic-eight.txt');

    // Only a modified client sends this: question eight's message, the closed question seven's data.
    const pressed = inEight.presses(eight.messageId, sevenAllow);
    const alert = await h.tg.waitFor(() => h.tg.callbackAnswers.find((a) => a.callbackQueryId === pressed));
    expect(alert.text).toBe('This question is closed.');
    // Presses of a chat are handled one after the other: once this one is answered, that one is through.
    const allowed = inEight.presses(eight.messageId, button(eight, /Allow once/));
    await h.tg.waitFor(() => h.tg.callbackAnswers.find((a) => a.callbackQueryId === allowed));
    // Before, question eight lost its buttons to the first press while it still waited for an answer.
    const stripped = h.tg
      .callsOf('editMessageReplyMarkup', FORUM)
      .filter((c) => Number(c.params.message_id) === eight.messageId);
    expect(stripped).toEqual([]);
    await h.tg.waitFor(() =>
      h.tg.botMessages(FORUM).filter((m) => m.text === 'Done.').length === 2 ? true : undefined,
    );
    expect(eight.text).toMatch(/\n\n✅ Allowed once by User113\.$/);
    expect(existsSync(fileIn('topic-eight.txt'))).toBe(true);
  });
});
