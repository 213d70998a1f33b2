/**
 * The Bot API front in groups, supergroups and forum topics: what a group's
 * own life sends (topic messages, service messages, an upgrade to a
 * supergroup, member updates) reaches the second grammY bot (OpenClaw's
 * channel) as Telegram sent it, its calls into a topic come back as Telegram
 * answered them, and brainstem answers its own commands in the topic they
 * were typed in.
 */
import { GrammyError } from 'grammy';
import type { Update } from 'grammy/types';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Downstream, startDownstream } from './helpers/downstream-bot.js';
import { type Harness, nextLog, OWNER, startHarness } from './telegram-harness.js';

let h: Harness;
let oc: Downstream;

beforeAll(async () => {
  h = await startHarness({
    parts: { tools: true, bot: true },
    config: { telegram: { front: { enabled: true } } },
  });
  oc = await startDownstream(`${h.service.url}/telegram`, h.tg.token);
});
afterAll(async () => {
  await oc?.stop();
  await h?.close();
});

/** The update the emulator created with this id, once the downstream bot has it: both must be equal. */
async function delivered(id: number): Promise<{ sent: Record<string, unknown>; got: Update }> {
  const sent = h.tg.updateLog.find((u) => u.update_id === id) ?? {};
  const got = await h.tg.waitFor(() => oc.received.find((u) => u.update_id === id));
  return { sent, got };
}
const lastUpdateId = () => Number(h.tg.updateLog.at(-1)?.update_id);

describe('the Bot API front in groups and forum topics', () => {
  it('hands a topic’s messages over whole (thread, topic flag, caption, reply, service messages), and the downstream bot’s calls into the topic come back as Telegram answered them', async () => {
    const FORUM = -1_000_000_009_101;
    const member = h.tg.user(113, { chatId: FORUM, topicId: 5 });
    member.says('hello topic');
    let d = await delivered(lastUpdateId());
    expect(d.got).toEqual(d.sent);
    expect(d.got.message).toMatchObject({ message_thread_id: 5, is_topic_message: true });
    const first = Number(d.got.message?.message_id);
    member.sendsPhoto(new Uint8Array([1, 2, 3]), 'a caption');
    d = await delivered(lastUpdateId());
    expect(d.got).toEqual(d.sent);
    // A reply in the topic, with a mention and a link, and the topic's service messages.
    member.says(`@${h.tg.botUsername} see https://example.org`, { replyTo: first, quote: 'hello' });
    d = await delivered(lastUpdateId());
    expect(d.got).toEqual(d.sent);
    expect(d.got.message?.reply_to_message?.message_id).toBe(first);
    for (const service of [
      { forum_topic_edited: { name: 'Renamed' } },
      { forum_topic_closed: {} },
      { forum_topic_reopened: {} },
    ]) {
      member.sends(service);
      d = await delivered(lastUpdateId());
      expect(d.got).toEqual(d.sent);
    }

    const sent = await oc.bot.api.sendMessage(FORUM, 'in the topic', { message_thread_id: 5 });
    expect(sent).toMatchObject({ message_thread_id: 5, is_topic_message: true });
    await oc.bot.api.sendChatAction(FORUM, 'typing', { message_thread_id: 5 });
    await oc.bot.api.editMessageText(FORUM, sent.message_id, 'edited in the topic');
    expect(h.tg.botMessages(FORUM).map((m) => [m.text, m.topicId])).toEqual([['edited in the topic', 5]]);

    h.tg.closesTopic(FORUM, 5);
    const refused = await oc.bot.api.sendMessage(FORUM, 'closed?', { message_thread_id: 5 }).catch((e) => e);
    expect(refused).toBeInstanceOf(GrammyError);
    expect([refused.error_code, refused.description]).toEqual([400, 'Bad Request: TOPIC_CLOSED']);
  });

  it('answers its own commands and presses in the topic they came from; the topic’s other commands reach the downstream bot', async () => {
    const FORUM = -1_000_000_009_102;
    const owner = h.tg.user(OWNER, { chatId: FORUM, topicId: 8 });
    const ownIds: number[] = [];
    owner.says('/mode');
    ownIds.push(lastUpdateId());
    const menu = await h.tg.waitFor(() => h.tg.botMessages(FORUM).find((m) => /Modes/.test(m.text)));
    owner.presses(menu.messageId, 'bs:mode:local');
    ownIds.push(lastUpdateId());
    await h.tg.waitFor(() => /Already in mode/.test(menu.text));
    owner.says(`/bstatus@${h.tg.botUsername}`);
    ownIds.push(lastUpdateId());
    await h.tg.waitFor(() => h.tg.botMessages(FORUM).find((m) => /Status/.test(m.text)));
    expect(h.tg.botMessages(FORUM).map((m) => m.topicId)).toEqual([8, 8]);

    owner.says('/new');
    const d = await delivered(lastUpdateId());
    expect(d.got).toEqual(d.sent);
    const got = new Set(oc.received.map((u) => u.update_id));
    expect(ownIds.filter((id) => got.has(id))).toEqual([]);
  });

  it('a group upgraded to a supergroup: both service messages reach the downstream bot once, its call to the old id gets Telegram’s 400 with migrate_to_chat_id, and brainstem’s own conversation of the group follows', async () => {
    const GROUP = -9_103;
    const SUPERGROUP = -1_000_000_009_103;
    const member = h.tg.user(114, { chatId: GROUP, basicGroup: true });
    member.says('in the basic group');
    await delivered(lastUpdateId());
    // What the group's conversation on the direct route left (before the front was turned on).
    const { core } = h.service;
    core.sessions.set(`telegram:${GROUP}`, 'assistant', 'session-of-the-group', h.dir);
    core.db
      .prepare('INSERT INTO telegram_history (chat_key, role, content, ts) VALUES (?, ?, ?, ?)')
      .run(`telegram:${GROUP}`, 'user', 'the word is kiwi', Date.now());

    const from = h.tg.updateLog.length;
    h.tg.migrates(GROUP, SUPERGROUP);
    const service = h.tg.updateLog.slice(from).map((u) => Number(u.update_id));
    expect(service).toHaveLength(2);
    for (const id of service) {
      const d = await delivered(id);
      expect(d.got).toEqual(d.sent);
    }
    expect(oc.received.filter((u) => service.includes(u.update_id))).toHaveLength(2);

    const refused = await oc.bot.api.sendMessage(GROUP, 'to the old id').catch((e) => e);
    expect(refused).toBeInstanceOf(GrammyError);
    expect([refused.error_code, refused.parameters]).toEqual([400, { migrate_to_chat_id: SUPERGROUP }]);

    // Turning the front off later, the supergroup goes on with the group's conversation.
    const moved = await h.tg.waitFor(() => core.sessions.get(`telegram:${SUPERGROUP}`, 'assistant'), {
      timeoutMs: 10_000,
    });
    expect(moved.brainSessionId).toBe('session-of-the-group');
    expect(
      core.db
        .prepare<[string], { content: string }>('SELECT content FROM telegram_history WHERE chat_key = ?')
        .all(`telegram:${SUPERGROUP}`),
    ).toEqual([{ content: 'the word is kiwi' }]);
    expect(h.tg.botMessages(SUPERGROUP)).toEqual([]);
  });

  it('a forum topic reopened: its service message reaches the downstream bot and brainstem, which writes into the topic again', async () => {
    const FORUM = -1_000_000_009_107;
    const owner = h.tg.user(OWNER, { chatId: FORUM, topicId: 6 });
    const tried = () =>
      h.tg.callsOf('sendMessage', FORUM).filter((c) => Number(c.params.message_thread_id) === 6);
    h.tg.closesTopic(FORUM, 6);
    owner.says('/bstatus');
    await h.tg.waitFor(() => h.tg.botMessages(FORUM).find((m) => /Status/.test(m.text)));
    expect(tried().map((c) => c.ok)).toEqual([false]);
    const reopened = nextLog(h, (l) => l.msg === 'a forum topic was reopened: messages go into it again');
    const id = h.tg.reopensTopic(FORUM, 6);
    expect(id).toBeGreaterThan(0);
    const d = await delivered(lastUpdateId());
    expect(d.got).toEqual(d.sent);
    expect(await reopened()).toMatchObject({ chatId: FORUM, topicId: 6 });
    owner.says('/bstatus');
    await h.tg.waitFor(() => h.tg.botMessages(FORUM).find((m) => /Status/.test(m.text) && m.topicId === 6));
    expect(tried().map((c) => c.ok)).toEqual([false, true]);
  });

  it('hands a group’s member update over once the downstream bot asks for chat_member, and a press on its button in a group', async () => {
    const GROUP = -1_000_000_009_104;
    await oc.stop();
    const { run } = await import('@grammyjs/runner');
    const handle = run(oc.bot, {
      runner: {
        fetch: { allowed_updates: ['message', 'callback_query', 'chat_member'], timeout: 30 },
        silent: true,
      },
    });
    try {
      await h.tg.waitFor(() => h.tg.polling.allowedUpdates?.includes('chat_member'));
      const chat = { id: GROUP, type: 'supergroup', title: 'Group' };
      const user = { id: 115, is_bot: false, first_name: 'User115' };
      const id = h.tg.pushes({
        chat_member: {
          chat,
          from: user,
          date: 1,
          old_chat_member: { status: 'left', user },
          new_chat_member: { status: 'member', user },
        },
      });
      let d = await delivered(id);
      expect(d.got).toEqual(d.sent);

      const question = await oc.bot.api.sendMessage(GROUP, 'Approve?', {
        reply_markup: { inline_keyboard: [[{ text: 'Yes', callback_data: 'approve:7' }]] },
      });
      const press = h.tg.user(115, { chatId: GROUP }).presses(question.message_id, 'approve:7');
      d = await delivered(lastUpdateId());
      expect(d.got).toEqual(d.sent);
      // The downstream bot's to answer, not brainstem's.
      expect(h.tg.callbackAnswers.filter((a) => a.callbackQueryId === press)).toEqual([]);
    } finally {
      await handle.stop();
    }
  });
});

describe('a command menu OpenClaw set for one basic group, upgraded to a supergroup since', () => {
  const GROUP = -9_105;
  const SUPERGROUP = -1_000_000_009_105;
  const config = { telegram: { front: { enabled: true } } };
  let first: Harness | undefined;
  let second: Harness | undefined;
  afterAll(async () => {
    await second?.close();
    await first?.close();
  });

  it('follows the group to its new id, and no start after sends it to the old id again', async () => {
    first = await startHarness({ config });
    const oc1 = await startDownstream(`${first.service.url}/telegram`, first.tg.token, { commands: false });
    const here = [{ command: 'here', description: 'Only in this group' }];
    const menu = (id: number) => first?.tg.menus.get(`chat:${id}|`)?.map((c) => c.command);
    try {
      first.tg.user(116, { chatId: GROUP, basicGroup: true }).says('in the basic group');
      await oc1.bot.api.setMyCommands(here, { scope: { type: 'chat', chat_id: GROUP } });
      expect(menu(GROUP)).toContain('here');
      first.tg.migrates(GROUP, SUPERGROUP);
      // The supergroup shows the group's list, merged with brainstem's as before.
      await first.tg.waitFor(() => menu(SUPERGROUP)?.includes('here'), { timeoutMs: 10_000 });
      // OpenClaw reads it back under the id its chat now has, and nothing under the old one.
      expect(await oc1.bot.api.getMyCommands({ scope: { type: 'chat', chat_id: SUPERGROUP } })).toEqual(here);
      expect(await oc1.bot.api.getMyCommands({ scope: { type: 'chat', chat_id: GROUP } })).toEqual([]);
    } finally {
      await oc1.stop();
    }
    await first.stopService();
    const from = first.tg.calls.length;
    second = await startHarness({ config, tg: first.tg, llama: first.llama, dir: first.dir });
    // A change of OpenClaw's is queued behind the start's menu sync: once it is answered, that sync has ended.
    const res = await fetch(`${second.service.url}/telegram/bot${second.tg.token}/deleteMyCommands`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ scope: { type: 'all_private_chats' } }),
    });
    expect(res.status).toBe(200);
    const menuCalls = second.tg.calls.slice(from).filter((c) => /MyCommands$/.test(c.method));
    expect(menuCalls.filter((c) => !c.ok)).toEqual([]);
    expect(second.logs.filter((l) => /Telegram refused the merged command menu/.test(String(l.msg)))).toEqual(
      [],
    );
    expect(first.tg.menus.get(`chat:${SUPERGROUP}|`)?.map((c) => c.command)).toContain('here');
  });

  it('kept under the old id from before (upgraded while brainstem was away): refused once, then it follows', async () => {
    const OLD = -9_106;
    const NEW = -1_000_000_009_106;
    const a = await startHarness({ config });
    const oc = await startDownstream(`${a.service.url}/telegram`, a.tg.token, { commands: false });
    const here = [{ command: 'here', description: 'Only in this group' }];
    a.tg.user(117, { chatId: OLD, basicGroup: true }).says('in the basic group');
    await oc.bot.api.setMyCommands(here, { scope: { type: 'chat', chat_id: OLD } });
    await oc.stop();
    await a.stopService();
    // Upgraded while no brainstem polled, its service messages fetched by another poller: brainstem
    // never hears of it but from Telegram's refusal.
    a.tg.migrates(OLD, NEW);
    const poll = async (offset?: number) =>
      (await (
        await fetch(`${a.tg.apiRoot}/bot${a.tg.token}/getUpdates`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ timeout: 0, ...(offset ? { offset } : {}) }),
        })
      ).json()) as { result: { update_id: number }[] };
    const { result } = await poll();
    await poll(Number(result.at(-1)?.update_id) + 1);
    const restart = async () =>
      startHarness({ config, tg: a.tg, llama: a.llama, dir: a.dir }).then(async (h) => {
        // OpenClaw's call is queued behind the start's menu sync, and the move it plans: answered, both ended.
        for (let i = 0; i < 2; i++) {
          await fetch(`${h.service.url}/telegram/bot${h.tg.token}/deleteMyCommands`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ scope: { type: 'all_private_chats' } }),
          });
        }
        return h;
      });
    const refused = (h: Harness) =>
      h.logs.filter((l) => /Telegram refused the merged command menu/.test(String(l.msg)));
    const b = await restart();
    try {
      expect(refused(b).length).toBeGreaterThan(0);
      expect(a.tg.menus.get(`chat:${NEW}|`)?.map((c) => c.command)).toContain('here');
    } finally {
      await b.close();
    }
    const c = await restart();
    try {
      expect(refused(c)).toEqual([]);
      expect(a.tg.menus.get(`chat:${NEW}|`)?.map((c) => c.command)).toContain('here');
    } finally {
      await c.close();
      await a.close();
    }
  });
});
