import { Api, GrammyError, InputFile } from 'grammy';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeTelegram, startFakeTelegram, UPLOAD_LIMIT } from './fakes/telegram.js';

/** The emulator itself answers like Telegram, so the bot tests mean something. */
let tg: FakeTelegram;
let api: Api;
beforeAll(async () => {
  tg = await startFakeTelegram();
  api = new Api(tg.token, { apiRoot: tg.apiRoot });
});
afterAll(async () => {
  await tg.close();
});

const refusal = async (p: Promise<unknown>) => {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(GrammyError);
  return err as GrammyError;
};

describe('Bot API emulator', () => {
  it('parses HTML like Telegram and refuses what Telegram refuses', async () => {
    const ok = await api.sendMessage(7, '<b>bold</b> &amp; <a href="https://x.y/?a=1&amp;b=2">link</a>', {
      parse_mode: 'HTML',
    });
    expect(ok.text).toBe('bold & link');
    expect(ok.entities).toEqual([
      { type: 'bold', offset: 0, length: 4 },
      { type: 'text_link', offset: 7, length: 4, url: 'https://x.y/?a=1&b=2' },
    ]);
    for (const bad of ['a < b', '<b>open', 'x & y', '<b><i>x</b></i>', '<script>x</script>']) {
      expect((await refusal(api.sendMessage(7, bad, { parse_mode: 'HTML' }))).description).toMatch(
        /can't parse entities/,
      );
    }
    expect((await refusal(api.sendMessage(7, 'x'.repeat(4097)))).description).toMatch(/message is too long/);
    // Half of 🎵 alone is not UTF-8; the whole emoji is.
    expect((await refusal(api.sendMessage(7, 'a \ud83c'))).description).toMatch(
      /text must be encoded in UTF-8/,
    );
    expect((await api.sendMessage(7, 'a 🎵')).text).toBe('a 🎵');
    expect(await api.sendMessage(7, `<b>${'x'.repeat(4096)}</b>`, { parse_mode: 'HTML' })).toBeDefined();
  });

  it('answers "message is not modified" to an edit that changes nothing', async () => {
    const m = await api.sendMessage(7, 'same');
    expect((await refusal(api.editMessageText(7, m.message_id, 'same'))).description).toMatch(
      /message is not modified/,
    );
    await api.editMessageText(7, m.message_id, 'changed');
    expect(tg.messages(7).find((x) => x.messageId === m.message_id)?.history).toEqual(['same', 'changed']);
  });

  it('keeps a text without the whitespace at its ends, as Telegram does: an edit adding only a paragraph break changes nothing', async () => {
    const m = await api.sendMessage(23, '\n  <b>Hello</b>\n\n', { parse_mode: 'HTML' });
    expect([m.text, m.entities]).toEqual(['Hello', [{ type: 'bold', offset: 0, length: 5 }]]);
    expect(
      (await refusal(api.editMessageText(23, m.message_id, '<b>Hello</b>\n\n', { parse_mode: 'HTML' })))
        .description,
    ).toMatch(/message is not modified/);
  });

  it('injects 429s with retry_after and other failures, per method and chat', async () => {
    tg.rateLimit('sendChatAction', 1, 3);
    const limited = await refusal(api.sendChatAction(7, 'typing'));
    expect(limited.error_code).toBe(429);
    expect(limited.parameters.retry_after).toBe(3);
    expect(await api.sendChatAction(7, 'typing')).toBe(true);
    tg.failNext('sendMessage', 1, { code: 403, description: 'Forbidden: bot was blocked by the user' }, 8);
    await api.sendMessage(7, 'other chat unaffected');
    expect((await refusal(api.sendMessage(8, 'blocked'))).error_code).toBe(403);
  });

  it('refuses a message to a chat before its 429’s retry_after is over, as Telegram does: no hammering let through', async () => {
    const m = await api.sendMessage(20, 'live');
    tg.rateLimit('editMessageText', 1, 30);
    expect((await refusal(api.editMessageText(20, m.message_id, 'next'))).parameters.retry_after).toBe(30);
    // Made again at once, another edit or a new message: still under the chat's flood control.
    const again = await refusal(api.editMessageText(20, m.message_id, 'next'));
    expect([again.error_code, again.parameters.retry_after]).toEqual([429, 30]);
    expect((await refusal(api.sendMessage(20, 'more'))).error_code).toBe(429);
    // Other chats, and what Telegram does not count ("typing…", a deletion), go on.
    await api.sendMessage(21, 'other chat');
    expect(await api.sendChatAction(20, 'typing')).toBe(true);
    expect(await api.deleteMessage(20, m.message_id)).toBe(true);
  });

  it("refuses an edit of a message the bot did not send: message can't be edited", async () => {
    const said = tg.user(22).says('my words');
    expect((await refusal(api.editMessageText(22, said, 'yours now'))).description).toMatch(
      /message can't be edited/,
    );
  });

  it('accepts drafts in private chats only', async () => {
    expect(await api.sendMessageDraft(7, 1, 'partial')).toBe(true);
    expect(tg.drafts(7)).toEqual([{ draftId: 1, text: 'partial' }]);
    expect((await refusal(api.sendMessageDraft(-100, 1, 'partial'))).error_code).toBe(400);
  });

  it('serves files users sent and takes documents as multipart', async () => {
    tg.user(9).sendsDocument('a.txt', new TextEncoder().encode('file body'));
    const update = (await api.getUpdates({ timeout: 0 })).at(-1);
    const fileId = update?.message?.document?.file_id ?? '';
    const file = await api.getFile(fileId);
    const res = await fetch(`${tg.apiRoot}/file/bot${tg.token}/${file.file_path}`);
    expect(await res.text()).toBe('file body');
    await api.sendDocument(9, new InputFile(new TextEncoder().encode('report'), 'report.txt'), {
      caption: 'here',
    });
    expect(tg.lastBotMessage(9)).toMatchObject({ text: 'here', document: { fileName: 'report.txt' } });
  });

  it('keeps the bytes of voice notes, audio, video and albums (attach:// parts) the bot uploads', async () => {
    const bytes = (n: number) => new Uint8Array(n).map((_, i) => (i * 7) & 255);
    await api.sendVoice(13, new InputFile(bytes(10), 'v.ogg'), { caption: 'said' });
    expect(tg.lastBotMessage(13)).toMatchObject({ text: 'said', voice: { fileName: 'v.ogg', size: 10 } });
    await api.sendAudio(13, new InputFile(bytes(11), 'a.mp3'));
    expect(tg.lastBotMessage(13)?.audio?.bytes).toEqual(bytes(11));
    const video = await api.sendVideo(13, new InputFile(bytes(12), 'c.mp4'));
    expect(video.video).toBeDefined();
    expect(tg.lastBotMessage(13)?.video?.size).toBe(12);

    const album = await api.sendMediaGroup(13, [
      { type: 'photo', media: new InputFile(bytes(5), 'one.png'), caption: 'first' },
      { type: 'video', media: new InputFile(bytes(6), 'two.mp4') },
      { type: 'photo', media: 'https://example.com/three.png' },
    ]);
    expect(album).toHaveLength(3);
    expect(new Set(album.map((m) => (m as { media_group_id?: string }).media_group_id)).size).toBe(1);
    const stored = tg.botMessages(13).slice(-3);
    expect(
      stored.map((m) => [m.photo?.fileName ?? m.video?.fileName, m.photo?.size ?? m.video?.size]),
    ).toEqual([
      ['one.png', 5],
      ['two.mp4', 6],
      ['https://example.com/three.png', 0],
    ]);
    expect(stored[0]?.photo?.bytes).toEqual(bytes(5));
    expect(stored[0]?.text).toBe('first');
    expect((await refusal(api.sendMediaGroup(13, [{ type: 'photo', media: 'x' }]))).description).toMatch(
      /wrong number of media/,
    );
  });

  it('refuses an upload over Telegram’s 50 MB with its 413, as soon as the body passes it, and takes the next call', async () => {
    const limit = 64 * 1024;
    tg.setUploadLimit(limit);
    try {
      // grammY streams a multipart body without a length: refused once it passes the limit.
      const err = await refusal(api.sendDocument(14, new InputFile(new Uint8Array(limit + 1), 'big.bin')));
      expect([err.error_code, err.description]).toEqual([413, 'Request Entity Too Large']);
      // A length over the limit is refused at once, and the body sent on is read and dropped.
      const res = await fetch(`${tg.apiRoot}/bot${tg.token}/sendDocument`, {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream' },
        body: new Uint8Array(4 * limit),
      });
      expect(res.status).toBe(413);
      expect(await res.json()).toEqual({
        ok: false,
        error_code: 413,
        description: 'Request Entity Too Large',
      });
      expect(tg.tooLarge).toEqual(['sendDocument', 'sendDocument']);
      await api.sendDocument(14, new InputFile(new Uint8Array(limit / 2), 'fits.bin'));
      expect(tg.lastBotMessage(14)?.document?.size).toBe(limit / 2);
    } finally {
      tg.setUploadLimit(UPLOAD_LIMIT);
    }
  });

  it('takes setMessageReaction as Telegram does and records the reaction', async () => {
    const asked = tg.user(11).says('react to me');
    expect(await api.setMessageReaction(11, asked, [{ type: 'emoji', emoji: '👀' }], { is_big: true })).toBe(
      true,
    );
    expect(tg.messages(11).find((m) => m.messageId === asked)?.reaction).toEqual(['👀']);
    expect(tg.reactions.at(-1)).toEqual({ chatId: 11, messageId: asked, emojis: ['👀'], isBig: true });
    // Only Telegram's reaction emojis, one at a time, on a message that is there.
    const refused = async (...args: Parameters<Api['setMessageReaction']>) =>
      (await refusal(api.setMessageReaction(...args))).description;
    expect(await refused(11, asked, [{ type: 'emoji', emoji: '🦀' as '👀' }])).toBe(
      'Bad Request: REACTION_INVALID',
    );
    expect(await refused(11, asked, [{ type: 'custom_emoji', custom_emoji_id: '1' }])).toBe(
      'Bad Request: REACTION_INVALID',
    );
    expect(
      await refused(11, asked, [
        { type: 'emoji', emoji: '👍' },
        { type: 'emoji', emoji: '🔥' },
      ]),
    ).toBe('Bad Request: REACTIONS_TOO_MANY');
    expect(await refused(11, 9999, [{ type: 'emoji', emoji: '👍' }])).toBe('Bad Request: MESSAGE_ID_INVALID');
    expect(await api.setMessageReaction(11, asked, [{ type: 'emoji', emoji: '❤\u200d🔥' }])).toBe(true);
    // An empty list removes the bot's reaction.
    expect(await api.setMessageReaction(11, asked, [])).toBe(true);
    expect(tg.messages(11).find((m) => m.messageId === asked)?.reaction).toEqual([]);
    expect(tg.reactions.filter((r) => r.chatId === 11).map((r) => r.emojis)).toEqual([
      ['👀'],
      ['❤\u200d🔥'],
      [],
    ]);
  });

  it('returns the topic and the reply of a bot message sent into a forum topic', async () => {
    const asked = tg.user(12, { chatId: -100700, topicId: 7 }).says('in topic 7');
    const sent = await api.sendMessage(-100700, 'to the topic', { message_thread_id: 7 });
    expect(sent).toMatchObject({
      message_thread_id: 7,
      is_topic_message: true,
      reply_to_message: { message_id: 7, forum_topic_created: { name: 'Topic 7' } },
    });
    const reply = await api.sendMessage(-100700, 'the answer', {
      message_thread_id: 7,
      reply_parameters: { message_id: asked },
    });
    expect(reply).toMatchObject({
      message_thread_id: 7,
      is_topic_message: true,
      reply_to_message: { message_id: asked, text: 'in topic 7' },
    });
    const doc = await api.sendDocument(-100700, new InputFile(new Uint8Array([1]), 'a.txt'), {
      message_thread_id: 7,
      reply_parameters: { message_id: reply.message_id },
    });
    expect(doc).toMatchObject({ message_thread_id: 7, reply_to_message: { message_id: reply.message_id } });
    expect(doc.reply_to_message?.reply_to_message).toBeUndefined();
    // Outside a topic, none of it.
    const plain = await api.sendMessage(-100700, 'general');
    expect(plain.message_thread_id).toBeUndefined();
    expect(plain.is_topic_message).toBeUndefined();
    expect(plain.reply_to_message).toBeUndefined();
  });

  it('refuses a message for a thread the forum has not, or a topic closed or deleted, as Telegram does', async () => {
    tg.user(13, { chatId: -100701, topicId: 4 });
    tg.user(13, { chatId: -100701, topicId: 5 });
    // The General topic is written to without a thread id: with its id, 1, the thread is not found.
    for (const thread of [1, 99]) {
      expect((await refusal(api.sendMessage(-100701, 'x', { message_thread_id: thread }))).description).toBe(
        'Bad Request: message thread not found',
      );
    }
    tg.closesTopic(-100701, 4);
    expect((await refusal(api.sendMessage(-100701, 'x', { message_thread_id: 4 }))).description).toBe(
      'Bad Request: TOPIC_CLOSED',
    );
    const kept = await api.sendMessage(-100701, 'before', { message_thread_id: 5 });
    tg.deletesTopic(-100701, 5);
    expect(
      (
        await refusal(
          api.sendDocument(-100701, new InputFile(new Uint8Array([1]), 'a.txt'), { message_thread_id: 5 }),
        )
      ).description,
    ).toBe('Bad Request: message thread not found');
    expect(tg.botMessages(-100701).map((m) => m.messageId)).not.toContain(kept.message_id);
    expect((await api.sendMessage(-100701, 'general')).message_thread_id).toBeUndefined();
  });

  it('upgrades a basic group to a supergroup: both service messages, then the old id refused with the new one', async () => {
    tg.user(14, { chatId: -702, basicGroup: true }).says('in the group');
    expect(tg.updateLog.at(-1)).toMatchObject({ message: { chat: { id: -702, type: 'group' } } });
    tg.migrates(-702, -100702);
    expect(tg.updateLog.slice(-2)).toMatchObject([
      { message: { chat: { id: -702, type: 'group' }, migrate_to_chat_id: -100702 } },
      { message: { chat: { id: -100702, type: 'supergroup' }, migrate_from_chat_id: -702 } },
    ]);
    const err = await refusal(api.sendMessage(-702, 'x'));
    expect(err.description).toBe('Bad Request: group chat was upgraded to a supergroup chat');
    expect(err.parameters.migrate_to_chat_id).toBe(-100702);
    expect((await api.sendMessage(-100702, 'y')).chat.id).toBe(-100702);
  });

  it('holds getUpdates until an update arrives', async () => {
    const offset = ((await api.getUpdates({ timeout: 0 })).at(-1)?.update_id ?? 0) + 1;
    const started = Date.now();
    const polling = api.getUpdates({ offset, timeout: 5 });
    setTimeout(() => tg.user(10).says('/status'), 200);
    const updates = await polling;
    expect(Date.now() - started).toBeGreaterThanOrEqual(150);
    expect(updates[0]?.message?.text).toBe('/status');
    expect(updates[0]?.message?.entities).toEqual([{ type: 'bot_command', offset: 0, length: 7 }]);
  });
});
