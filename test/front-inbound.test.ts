/**
 * The Bot API front, inbound: brainstem polls the emulator, answers what is
 * its own, and everything else reaches the second grammY bot (OpenClaw's
 * channel) through the front, with the same update ids and content.
 */
import { tmpdir } from 'node:os';
import type { Update } from 'grammy/types';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Downstream, startDownstream } from './helpers/downstream-bot.js';
import { type Harness, OWNER, startHarness } from './telegram-harness.js';

let h: Harness;
let oc: Downstream;
const CHAT = 112;
const STRANGER = 999;

beforeAll(async () => {
  h = await startHarness({
    parts: { tools: true, bot: true },
    config: {
      telegram: { front: { enabled: true } },
      // Set, and unread with the front on: a voice note is OpenClaw's (never transcribed, never the brain's).
      transcription: {
        command: [process.execPath, '-e', 'console.log("transcribed by brainstem")', '{file}'],
      },
      tools: {
        tests: { argv: [process.execPath, '-e', 'console.log("all green")'], cwd: tmpdir(), readOnly: true },
      },
    },
  });
  oc = await startDownstream(`${h.service.url}/telegram`, h.tg.token);
});
afterAll(async () => {
  await oc?.stop();
  await h?.close();
});

/** The update the emulator created last, once the downstream bot has it: both must be equal. */
async function delivered(): Promise<{ sent: Record<string, unknown>; got: Update }> {
  const sent = h.tg.updateLog.at(-1) ?? {};
  const got = await h.tg.waitFor(() => oc.received.find((u) => u.update_id === sent.update_id));
  return { sent, got };
}

/** Waits until the downstream bot has a later update, so anything before it would have arrived. */
async function settled(): Promise<void> {
  h.tg.user(CHAT).says('sentinel');
  await delivered();
}

const receivedIds = () => new Set(oc.received.map((u) => u.update_id));

describe('the Bot API front, inbound', () => {
  it('hands a text, a photo, a voice note, a document, an edit and a reaction over as they came', async () => {
    const u = h.tg.user(CHAT);
    const text = u.says('hello OpenClaw');
    let d = await delivered();
    expect(d.got).toEqual(d.sent);
    expect(d.got.message?.text).toBe('hello OpenClaw');

    u.sendsPhoto(new Uint8Array([1, 2, 3, 4]), 'a photo');
    d = await delivered();
    expect(d.got).toEqual(d.sent);
    expect(d.got.message?.photo).toHaveLength(2);

    u.sendsVoice();
    d = await delivered();
    expect(d.got).toEqual(d.sent);
    expect(d.got.message?.voice?.mime_type).toBe('audio/ogg');

    u.sendsDocument('report.pdf', new Uint8Array([5, 6]), 'read this', 'application/pdf');
    d = await delivered();
    expect(d.got).toEqual(d.sent);
    expect(d.got.message?.document?.file_name).toBe('report.pdf');

    u.edits(text, 'hello again, OpenClaw');
    d = await delivered();
    expect(d.got).toEqual(d.sent);
    expect(d.got.edited_message?.text).toBe('hello again, OpenClaw');

    u.reacts(text, '👍');
    d = await delivered();
    expect(d.got).toEqual(d.sent);
    expect(d.got.message_reaction?.new_reaction).toEqual([{ type: 'emoji', emoji: '👍' }]);

    // Delivered in order, each once.
    const ids = oc.received.map((x) => x.update_id);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    expect(new Set(ids).size).toBe(ids.length);
    // brainstem answered none of them: no brain call, no message of its own in the chat.
    expect(h.llama.requests.filter((r) => r.path === '/v1/chat/completions')).toHaveLength(0);
    expect(h.tg.botMessages(CHAT)).toHaveLength(0);
  });

  it('says at start that its own transcription is unused: voice messages are OpenClaw’s', () => {
    expect(h.logs).toContainEqual(
      expect.objectContaining({
        level: 40,
        msg: expect.stringMatching(
          /^transcription is set, but the Bot API front is on: voice messages go to OpenClaw/,
        ),
      }),
    );
  });

  it('hands a press on the downstream bot’s own button to it', async () => {
    const m = await oc.bot.api.sendMessage(CHAT, 'Approve?', {
      reply_markup: { inline_keyboard: [[{ text: 'Yes', callback_data: 'approve:42' }]] },
    });
    h.tg.user(CHAT).presses(m.message_id, 'approve:42');
    const d = await delivered();
    expect(d.got).toEqual(d.sent);
    expect(d.got.callback_query?.data).toBe('approve:42');
    expect(h.tg.callbackAnswers).toHaveLength(0);
  });

  it('answers /mode, /usage and a press on its mode keyboard itself; none reaches the downstream bot', async () => {
    const owner = h.tg.user(OWNER);
    const ownIds: number[] = [];
    owner.says('/mode');
    ownIds.push(Number(h.tg.updateLog.at(-1)?.update_id));
    const menu = await h.tg.waitFor(() => h.tg.botMessages(OWNER).find((x) => /Modes/.test(x.text)));
    const buttons = (
      menu.replyMarkup as { inline_keyboard: { callback_data: string }[][] }
    ).inline_keyboard.flat();
    expect(buttons.every((b) => b.callback_data.startsWith('bs:'))).toBe(true);
    owner.presses(menu.messageId, 'bs:mode:local');
    ownIds.push(Number(h.tg.updateLog.at(-1)?.update_id));
    await h.tg.waitFor(() => h.tg.callbackAnswers.length > 0);
    await h.tg.waitFor(() => /Already in mode/.test(menu.text));
    // A second press (a double tap) edits the menu to the text it has: Telegram's "message is not
    // modified" is taken as done, not retried, and nothing more is said.
    const notModified = () =>
      h.tg.callsOf('editMessageText', OWNER).filter((c) => /not modified/.test(c.description ?? ''));
    const shown = h.tg.botMessages(OWNER).length;
    const logged = h.logs.length;
    owner.presses(menu.messageId, 'bs:mode:local');
    ownIds.push(Number(h.tg.updateLog.at(-1)?.update_id));
    await h.tg.waitFor(() => notModified().length > 0);
    owner.says('/usage');
    ownIds.push(Number(h.tg.updateLog.at(-1)?.update_id));
    await h.tg.waitFor(() => h.tg.botMessages(OWNER).find((x) => /Usage|Consommation/.test(x.text)));
    expect(h.tg.botMessages(OWNER).slice(shown)).toHaveLength(1);
    expect(notModified()).toHaveLength(1);
    expect(h.logs.slice(logged).filter((l) => Number(l.level) >= 50)).toEqual([]);
    owner.says('passe en mode local');
    ownIds.push(Number(h.tg.updateLog.at(-1)?.update_id));
    await h.tg.waitFor(
      () => h.tg.botMessages(OWNER).filter((x) => /Already in mode local/.test(x.text)).length,
    );
    owner.says('/bstatus');
    ownIds.push(Number(h.tg.updateLog.at(-1)?.update_id));
    await h.tg.waitFor(() => h.tg.botMessages(OWNER).find((x) => /Status/.test(x.text)));

    await settled();
    const got = receivedIds();
    expect(ownIds.filter((id) => got.has(id))).toEqual([]);
  });

  it('hands channel posts, their edits and member updates over; a type OpenClaw did not ask for is left out, as at Telegram', async () => {
    // Once OpenClaw polled, brainstem asks Telegram for OpenClaw's types: the default set and reactions.
    await h.tg.waitFor(() => {
      const asked = h.tg.polling.allowedUpdates ?? ['chat_member'];
      return asked.includes('message_reaction') && !asked.includes('chat_member');
    });
    const chat = { id: -1001234, type: 'channel', title: 'News' };
    const from = { id: CHAT, is_bot: false, first_name: 'User' };
    const member = { chat, from, date: 1, old_chat_member: {}, new_chat_member: {} };
    const handed = [
      h.tg.pushes({ channel_post: { message_id: 1, date: 1, chat, text: 'a post' } }),
      h.tg.pushes({
        edited_channel_post: { message_id: 1, date: 1, edit_date: 2, chat, text: 'a post, edited' },
      }),
      h.tg.pushes({ my_chat_member: member }),
    ];
    const left = [
      h.tg.pushes({ chat_member: member }),
      h.tg.pushes({ message_reaction_count: { chat, message_id: 1, date: 1, reactions: [] } }),
    ];
    await settled();
    const got = (id: number) => oc.received.find((u) => u.update_id === id);
    expect(handed.map(got)).toEqual(handed.map((id) => h.tg.updateLog.find((u) => u.update_id === id)));
    expect(left.filter((id) => receivedIds().has(id))).toEqual([]);
  });

  it('answers a press on a button of its own it no longer knows (an older version’s, or made up), so no spinner waits', async () => {
    const owner = h.tg.user(OWNER);
    const before = h.tg.botMessages(OWNER).length;
    owner.says('/bstatus');
    const message = await h.tg.waitFor(() => h.tg.botMessages(OWNER)[before]);
    for (const data of ['bs:gone:1', 'bs:']) {
      const press = owner.presses(message.messageId, data);
      const answer = await h.tg.waitFor(() => h.tg.callbackAnswers.find((a) => a.callbackQueryId === press));
      expect([data, answer.text]).toEqual([data, 'This button no longer works.']);
    }
    await settled();
    expect(oc.received.filter((u) => u.callback_query?.data?.startsWith('bs:'))).toEqual([]);
  });

  it('answers its commands typed with capitals (/Usage, /RUN) itself, as its handlers read them: not the brain, not the downstream bot', async () => {
    const owner = h.tg.user(OWNER);
    const before = h.tg.botMessages(OWNER).length;
    const asked = h.llama.requests.length;
    const ownIds: number[] = [];
    owner.says('/Usage');
    ownIds.push(Number(h.tg.updateLog.at(-1)?.update_id));
    await h.tg.waitFor(() =>
      h.tg
        .botMessages(OWNER)
        .slice(before)
        .find((x) => /Usage/.test(x.text)),
    );
    owner.says('/RUN');
    ownIds.push(Number(h.tg.updateLog.at(-1)?.update_id));
    await h.tg.waitFor(() =>
      h.tg
        .botMessages(OWNER)
        .slice(before)
        .find((m) => /git_log/.test(m.text)),
    );
    await settled();
    expect(ownIds.filter((id) => receivedIds().has(id))).toEqual([]);
    expect(
      h.tg
        .botMessages(OWNER)
        .slice(before)
        .filter((m) => /^echo:/.test(m.text)),
    ).toEqual([]);
    expect(h.llama.requests.length).toBe(asked);
  });

  it('gives /new, /status and /help to the downstream bot, and /oc_usage as its own /usage', async () => {
    const u = h.tg.user(CHAT);
    const before = h.tg.botMessages(CHAT).length;
    for (const command of ['/new', '/status', '/help']) {
      u.says(command);
      const d = await delivered();
      expect(d.got).toEqual(d.sent);
    }
    const asked = u.says('/oc_usage 7d');
    const { got } = await delivered();
    expect(got.message?.text).toBe('/usage 7d');
    expect(got.message?.entities).toEqual([{ type: 'bot_command', offset: 0, length: 6 }]);
    // Its edit too: OpenClaw got it as /usage, and an edit to /oc_usage would name no command of its own.
    u.edits(asked, '/oc_usage 30d');
    const edit = await delivered();
    expect(edit.got.edited_message?.text).toBe('/usage 30d');
    expect(edit.got.edited_message?.entities).toEqual([{ type: 'bot_command', offset: 0, length: 6 }]);
    // brainstem said nothing: these are OpenClaw's to answer.
    expect(h.tg.botMessages(CHAT)).toHaveLength(before);
  });

  it('gives OpenClaw /oc_usage as its /usage after a mention of the bot in a group, in a text, its edit and a caption, as without the mention', async () => {
    const GROUP = -1_000_000_004_316;
    const member = h.tg.user(116, { chatId: GROUP });
    const at = `@${h.tg.botUsername}`;
    const n = at.length;
    const asked = member.says(`${at} /oc_usage 7d`);
    let got = (await delivered()).got.message;
    expect(got?.text).toBe(`${at} /usage 7d`);
    expect(got?.entities).toEqual([
      { type: 'mention', offset: 0, length: n },
      { type: 'bot_command', offset: n + 1, length: 6 },
    ]);
    member.edits(asked, `${at}, /oc_usage 30d`);
    const edit = (await delivered()).got.edited_message;
    expect(edit?.text).toBe(`${at}, /usage 30d`);
    expect(edit?.entities).toEqual([
      { type: 'mention', offset: 0, length: n },
      { type: 'bot_command', offset: n + 2, length: 6 },
    ]);
    member.sendsPhoto(new Uint8Array([1, 2, 3]), `${at} /oc_usage`);
    got = (await delivered()).got.message;
    expect([got?.caption, got?.caption_entities]).toEqual([
      `${at} /usage`,
      [
        { type: 'mention', offset: 0, length: n },
        { type: 'bot_command', offset: n + 1, length: 6 },
      ],
    ]);
    member.sendsPhoto(new Uint8Array([4, 5, 6]), `/oc_usage${at}`);
    got = (await delivered()).got.message;
    expect([got?.caption, got?.caption_entities]).toEqual([
      `/usage${at}`,
      [{ type: 'bot_command', offset: 0, length: 6 + n }],
    ]);
    // Another bot's command, or a mention of another bot, is not brainstem's to rewrite.
    for (const text of ['@somebody_else_bot /oc_usage', '/oc_usage@somebody_else_bot']) {
      member.says(text);
      const d = await delivered();
      expect(d.got).toEqual(d.sent);
    }
    member.edits(asked, '/oc_usage@somebody_else_bot');
    const other = await delivered();
    expect(other.got).toEqual(other.sent);
    expect(h.tg.botMessages(GROUP)).toEqual([]);
  });

  it('answers its shortcut words and /run itself', async () => {
    const owner = h.tg.user(OWNER);
    const ownIds: number[] = [];
    owner.says('tests');
    ownIds.push(Number(h.tg.updateLog.at(-1)?.update_id));
    await h.tg.waitFor(() => h.tg.botMessages(OWNER).find((m) => /all green/.test(m.text)), {
      timeoutMs: 15_000,
    });
    owner.says('/run');
    ownIds.push(Number(h.tg.updateLog.at(-1)?.update_id));
    await h.tg.waitFor(() => h.tg.botMessages(OWNER).find((m) => /git_log/.test(m.text)));
    await settled();
    const got = receivedIds();
    expect(ownIds.filter((id) => got.has(id))).toEqual([]);
  });

  it('answers a shortcut word that names the bot in a group itself; the group’s other words reach the downstream bot as they came', async () => {
    const GROUP = -1_000_000_004_304;
    const member = h.tg.user(113, { chatId: GROUP });
    const at = `@${h.tg.botUsername}`;
    member.says(`${at} tests`);
    const own = Number(h.tg.updateLog.at(-1)?.update_id);
    await h.tg.waitFor(() => h.tg.botMessages(GROUP).find((m) => /all green/.test(m.text)), {
      timeoutMs: 15_000,
    });
    member.says(`${at} hello`);
    const { sent, got } = await delivered();
    expect(got).toEqual(sent);
    expect(receivedIds().has(own)).toBe(false);
  });

  it('answers its own command after a mention of the bot in a group itself, as without the front', async () => {
    const GROUP = -1_000_000_004_305;
    const member = h.tg.user(114, { chatId: GROUP });
    member.says(`@${h.tg.botUsername} /bstatus`);
    const own = Number(h.tg.updateLog.at(-1)?.update_id);
    await h.tg.waitFor(() => h.tg.botMessages(GROUP).find((m) => /Status/.test(m.text)), {
      timeoutMs: 15_000,
    });
    await settled();
    expect(receivedIds().has(own)).toBe(false);
  });

  it('hands a forwarded command, switch request or shortcut word to the downstream bot: someone else wrote it', async () => {
    const from = {
      type: 'user',
      date: 1,
      sender_user: { id: STRANGER, is_bot: false, first_name: 'Mallory' },
    };
    for (const text of ['/mode local', 'switch to local', 'tests']) {
      const command = text.startsWith('/')
        ? { entities: [{ type: 'bot_command', offset: 0, length: 5 }] }
        : {};
      h.tg.user(OWNER).sends({ text, ...command, forward_origin: from });
      const { sent, got } = await delivered();
      expect(got).toEqual(sent);
    }
  });

  it('hands a photo, a file or an album whose caption starts with one of brainstem’s commands to the downstream bot whole: a caption is never a command', async () => {
    const owner = h.tg.user(OWNER);
    const shown = h.tg.botMessages(OWNER).length;
    owner.sendsPhoto(new Uint8Array([1, 2, 3]), '/new');
    owner.sendsDocument('todo.txt', new Uint8Array([4, 5]), '/run tests', 'text/plain');
    owner.sendsAlbum([new Uint8Array([6]), new Uint8Array([7])], '/stop');
    const sent = h.tg.updateLog.slice(-4);
    await settled();
    expect(sent.map((u) => oc.received.find((g) => g.update_id === u.update_id))).toEqual(sent);
    expect(sent[0]?.message).toMatchObject({ caption: '/new', caption_entities: [{ type: 'bot_command' }] });
    expect(h.tg.botMessages(OWNER)).toHaveLength(shown);
  });

  it('leaves strangers to OpenClaw’s own access policy, but refuses them brainstem’s commands', async () => {
    const stranger = h.tg.user(STRANGER);
    stranger.says('hi, may I pair?');
    const d = await delivered();
    expect(d.got).toEqual(d.sent);
    // A switch request or a shortcut word from a stranger is plain text for OpenClaw, not brainstem's to refuse.
    stranger.says('switch to local');
    await delivered();
    stranger.says('tests');
    await delivered();
    expect(h.tg.botMessages(STRANGER)).toHaveLength(0);

    stranger.says('/mode');
    const id = Number(h.tg.updateLog.at(-1)?.update_id);
    await h.tg.waitFor(() => h.tg.botMessages(STRANGER).find((m) => /This bot is private/.test(m.text)));
    await settled();
    expect(receivedIds().has(id)).toBe(false);
  });
});
