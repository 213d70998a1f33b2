/**
 * The memory of forum topics that refused a message for good (send/gone-topics.ts): a refusal stands
 * for GONE_KEPT_MS, then one send tries the topic again (a reopening brainstem missed); Telegram's
 * word that the topic was reopened forgets it at once. Each bot has its own.
 */
import { Api } from 'grammy';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  forgetGone,
  GONE_KEPT_MS,
  goneRefusal,
  rememberGone,
} from '../handlers/telegram/send/gone-topics.js';
import { ChatOutput } from '../handlers/telegram/send/output.js';
import { linesOutput } from '../handlers/telegram/send/outside-topic.js';
import { type FakeTelegram, startFakeTelegram } from './fakes/telegram.js';

const bot = (id: number) => ({ token: `${id}:secret` }) as Api;

describe('the topics that refused a message for good', () => {
  it('stand for a while, then lapse, so a topic reopened unseen is tried again', () => {
    const api = bot(901);
    const refusal = new Error('TOPIC_CLOSED');
    rememberGone(api, -1_000_000_004_414, 3, refusal, 1_000);
    expect(goneRefusal(api, -1_000_000_004_414, 3, 1_000 + GONE_KEPT_MS - 1)).toBe(refusal);
    // Another topic of the chat, and another bot, know nothing of it.
    expect(goneRefusal(api, -1_000_000_004_414, 4, 1_000)).toBeUndefined();
    expect(goneRefusal(bot(902), -1_000_000_004_414, 3, 1_000)).toBeUndefined();
    expect(goneRefusal(api, -1_000_000_004_414, 3, 1_000 + GONE_KEPT_MS)).toBeUndefined();
  });

  it('are forgotten once Telegram says the topic was reopened', () => {
    const api = bot(903);
    rememberGone(api, -1_000_000_004_415, 3, new Error('TOPIC_CLOSED'));
    expect(forgetGone(api, -1_000_000_004_415, 3)).toBe(true);
    expect(goneRefusal(api, -1_000_000_004_415, 3)).toBeUndefined();
    expect(forgetGone(api, -1_000_000_004_415, 3)).toBe(false);
  });
});

describe('a message sent outside its closed topic, edited by another output', () => {
  let tg: FakeTelegram;
  beforeAll(async () => {
    tg = await startFakeTelegram();
  });
  afterAll(async () => {
    await tg?.close();
  });

  it('is cut to fit with the note in the language its line was written in', async () => {
    const FORUM = -1_000_000_004_416;
    tg.user(113, { chatId: FORUM, topicId: 6, languageCode: 'fr' });
    tg.closesTopic(FORUM, 6);
    const api = new Api(tg.token, { apiRoot: tg.apiRoot });
    const id = await linesOutput(api, FORUM, 6, 'fr').sendHtml('⏳ En cours…');
    // A progress turned into a long outcome by an output that knows no language (a live message's).
    await new ChatOutput(api, FORUM, 6).editHtml(id, 'x'.repeat(5_000));
    const shown = tg.botMessages(FORUM).find((m) => m.messageId === id)?.text ?? '';
    expect(shown).toMatch(/^⚙️ \[proxy\] ⚠️ Telegram a refusé ce message/);
    expect(shown).toMatch(
      /\[… coupé ici : \d+ caractères de plus, au-delà de ce que tient un message Telegram\]$/,
    );
    expect(shown).not.toContain('cut here');
  });
});
