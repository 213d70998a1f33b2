/**
 * The Bot API front's own answers and guards, called over raw HTTP (OpenClaw's
 * channel only polls in the last test, so no other getUpdates takes from the
 * queue meanwhile), and brainstem's poll at Telegram when another program
 * polls the token or Telegram's update ids start again lower.
 */
import { mkdirSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { API_CONSTANTS, Bot, type GrammyError } from 'grammy';
import type { Update } from 'grammy/types';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALL_UPDATE_TYPES, OPT_IN_TYPES } from '../handlers/telegram-front/bot-api.js';
import { migrate } from '../src/db/index.js';
import { migrations } from '../src/db/migrations.js';
import Sqlite from '../src/db/sqlite.js';
import { startFakeTelegram } from './fakes/telegram.js';
import { startDownstream } from './helpers/downstream-bot.js';
import { type Harness, OWNER, startHarness } from './telegram-harness.js';

const CHAT = 112;
let h: Harness;
let front: string;

beforeAll(async () => {
  h = await startHarness({ config: { telegram: { front: { enabled: true } } } });
  front = `${h.service.url}/telegram`;
});
afterAll(async () => {
  await h?.close();
});

type Answer = { ok: boolean; result?: unknown; error_code?: number; description?: string };
const method = async (name: string, init?: RequestInit, query = ''): Promise<[number, Answer]> => {
  const res = await fetch(`${front}/bot${h.tg.token}/${name}${query}`, init);
  return [res.status, (await res.json()) as Answer];
};
const json = (body: object): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(body),
});
/** A call with the path exactly as given (fetch would resolve `..` before sending it). */
const raw = (path: string, method = 'GET') =>
  new Promise<number>((resolve, reject) => {
    const { hostname, port } = new URL(h.service.url);
    http
      .request({ hostname, port, path, method }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      })
      .on('error', reject)
      .end();
  });
const pending = async () =>
  ((await method('getWebhookInfo'))[1].result as { pending_update_count: number }).pending_update_count;
/** The queue fills without a Telegram call to wait on: its state is read until it holds (bounded). */
async function until(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
/** OpenClaw's getUpdates over raw HTTP, answered at once. */
const take = async (body: object) => {
  const [status, answer] = await method('getUpdates', json({ timeout: 0, ...body }));
  expect([status, answer.ok]).toEqual([200, true]);
  return answer.result as Update[];
};
/** An update's message text, or its type when it has no message. */
const shown = (updates: Update[]) => updates.map((x) => x.message?.text ?? Object.keys(x)[1]);
const texts = (updates: Update[]) => updates.map((u) => u.message?.text).filter((t) => t?.startsWith('m'));

describe('the Bot API front’s own methods and guards', () => {
  it('reads getUpdates parameters as Telegram does: clamped, never refused, also as multipart', async () => {
    for (const query of ['?timeout=-1', '?timeout=0.5&limit=abc', '?limit=1000&offset=x']) {
      const [status, answer] = await method('getUpdates', undefined, query);
      expect([status, answer.ok]).toEqual([200, true]);
    }
    const form = new FormData();
    form.set('timeout', '0');
    form.set('allowed_updates', '["message","edited_message","callback_query"]');
    expect(await method('getUpdates', { method: 'POST', body: form })).toEqual([
      200,
      { ok: true, result: [] },
    ]);
    const withFile = new FormData();
    withFile.set('offset', new Blob(['1']), 'offset.txt');
    expect(await method('getUpdates', { method: 'POST', body: withFile })).toEqual([
      400,
      { ok: false, error_code: 400, description: 'Bad Request: offset: this method takes no file' },
    ]);
  });

  it('takes an offset past any update id (2^31 - 1) as Telegram does: it confirms nothing and what waits keeps ids a poller can confirm', async () => {
    const strayLines = () => h.logs.filter((l) => /offset past any update id/.test(String(l.msg)));
    h.tg.user(CHAT).says('s1');
    let waiting: Update[] = [];
    await until(async () => {
      waiting = await take({});
      return waiting.length > 0;
    });
    const id = waiting[0]?.update_id ?? 0;
    // A client's bug; Telegram clamps anything above to it. Numbered from there, the update
    // would be confirmed only by offset 2^31, read as 2^31 - 1: the same update at every poll.
    for (const offset of [2 ** 31 - 1, 2 ** 31, 2 ** 40]) {
      expect([offset, shown(await take({ offset }))]).toEqual([offset, ['s1']]);
    }
    expect(strayLines()).toHaveLength(1);
    expect((await take({ offset: 2 ** 31 - 1 }))[0]?.update_id).toBe(id);
    expect(await take({ offset: id + 1 })).toEqual([]);
    expect(await pending()).toBe(0);
  });

  it('keeps the update types asked for before when allowed_updates is null or no list, as Telegram does', async () => {
    await take({ allowed_updates: ['message'] });
    for (const kept of [null, 'message', { message: true }, ['message', 1]])
      await take({ allowed_updates: kept });
    const u = h.tg.user(CHAT);
    u.edits(u.says('n1'), 'n1 edited');
    u.says('n2');
    // The edit came before n2: once n2 waits, the edit would too, had the set gone back to the default.
    let waiting: Update[] = [];
    await until(async () => {
      waiting = await take({});
      return waiting.some((x) => x.message?.text === 'n2');
    });
    expect(shown(waiting)).toEqual(['n1', 'n2']);
    await take({ offset: (waiting.at(-1)?.update_id ?? 0) + 1, allowed_updates: [] });
  });

  it('knows the update types grammY knows', () => {
    expect([...ALL_UPDATE_TYPES].sort()).toEqual([...API_CONSTANTS.ALL_UPDATE_TYPES].sort());
    expect(ALL_UPDATE_TYPES.filter((t) => !OPT_IN_TYPES.includes(t)).sort()).toEqual(
      [...API_CONSTANTS.DEFAULT_UPDATE_TYPES].sort(),
    );
  });

  it('matches allowed_updates names in any case and ignores names of no update type, as Telegram does', async () => {
    const ignoredLines = () => h.logs.filter((l) => /Telegram does not have/.test(String(l.msg)));
    /**
     * What a message, then its edit, then another message leave waiting for OpenClaw; confirmed once
     * read. brainstem's poll at Telegram keeps the types it was sent with until it ends: a first
     * message ends it, and the edit is made once Telegram is asked for edits.
     */
    const sayAndEdit = async (text: string) => {
      const u = h.tg.user(CHAT);
      u.says(`${text}0`);
      await until(async () => h.tg.polling.allowedUpdates?.includes('edited_message') === true);
      u.edits(u.says(`${text}1`), `${text}1 edited`);
      u.says(`${text}2`);
      let waiting: Update[] = [];
      await until(async () => {
        waiting = await take({});
        return waiting.some((x) => x.message?.text === `${text}2`);
      });
      await take({ offset: (waiting.at(-1)?.update_id ?? 0) + 1 });
      return shown(waiting);
    };
    await take({ allowed_updates: ['MESSAGE', 'Edited_Message', 'no such type'] });
    await take({ allowed_updates: ['no such type', 'Edited_Message', 'MESSAGE'] });
    expect(await sayAndEdit('c')).toEqual(['c0', 'c1', 'edited_message', 'c2']);
    // Said once per list OpenClaw sends, not at every poll.
    expect(ignoredLines().map((l) => l.ignored)).toEqual([['no such type']]);
    // Nothing known left: Telegram's default set, as for [].
    await take({ allowed_updates: ['no_such_type'] });
    expect(await sayAndEdit('d')).toEqual(['d0', 'd1', 'edited_message', 'd2']);
    expect(ignoredLines()).toHaveLength(2);
    await take({ allowed_updates: [] });
  });

  it('asks Telegram for a type of a newer Bot API than brainstem’s grammY knows, when OpenClaw names it: its updates reach OpenClaw', async () => {
    // OpenClaw's grammY, newer than brainstem's, asks for a type Telegram has and brainstem does not know.
    await take({ allowed_updates: ['message', 'Newer_Update'] });
    await until(async () => h.tg.polling.allowedUpdates?.includes('newer_update') === true);
    h.tg.pushes({ newer_update: { id: 'n' } });
    h.tg.user(CHAT).says('after the newer one');
    let waiting: Update[] = [];
    await until(async () => {
      waiting = await take({});
      return waiting.some((x) => x.message?.text === 'after the newer one');
    });
    expect(shown(waiting)).toEqual(['newer_update', 'after the newer one']);
    // getWebhookInfo says it is asked for, as Telegram would.
    const info = (await method('getWebhookInfo'))[1].result as { allowed_updates?: string[] };
    expect(info.allowed_updates).toEqual(['message', 'newer_update']);
    await take({ offset: (waiting.at(-1)?.update_id ?? 0) + 1, allowed_updates: [] });
  });

  it('asks Telegram at once for a type OpenClaw adds, ending the poll open without it: a reaction made then is not lost', async () => {
    const asksForReactions = async () => h.tg.polling.allowedUpdates?.includes('message_reaction') === true;
    await take({ allowed_updates: ['message'] });
    // brainstem's own types on the front are messages and presses: edits (which the direct route
    // takes) are OpenClaw's, asked of Telegram only when OpenClaw asks for them.
    await until(
      async () => [...(h.tg.polling.allowedUpdates ?? [])].sort().join() === 'callback_query,message',
    );
    // brainstem's long poll now waits at Telegram for 30 s, for messages and button presses only.
    await take({ allowed_updates: ['message', 'message_reaction'] });
    await until(asksForReactions);
    const u = h.tg.user(CHAT);
    u.reacts(u.says('react to me'), '👍');
    let waiting: Update[] = [];
    await until(async () => {
      waiting = await take({});
      return waiting.some((x) => x.message_reaction !== undefined);
    });
    expect(shown(waiting)).toEqual(['react to me', 'message_reaction']);
    await take({ offset: (waiting.at(-1)?.update_id ?? 0) + 1, allowed_updates: [] });
  });

  it('drops what waits for OpenClaw when deleteWebhook asks to, and only then', async () => {
    h.tg.user(CHAT).says('old 1');
    h.tg.user(CHAT).says('old 2');
    await until(async () => (await pending()) === 2);
    expect(await method('deleteWebhook', json({}))).toEqual([200, { ok: true, result: true }]);
    expect(await pending()).toBe(2);
    expect(await method('deleteWebhook', undefined, '?drop_pending_updates=true')).toEqual([
      200,
      { ok: true, result: true },
    ]);
    expect(await pending()).toBe(0);
    expect(h.tg.callsOf('deleteWebhook')).toHaveLength(1); // brainstem's own, at start
  });

  it('takes setWebhook with an empty or no url as deleteWebhook, as Telegram does; a url it refuses', async () => {
    h.tg.user(CHAT).says('waiting 1');
    await until(async () => (await pending()) === 1);
    expect(await method('setWebhook')).toEqual([200, { ok: true, result: true }]);
    expect(await pending()).toBe(1);
    expect(await method('setWebhook', json({ url: '', drop_pending_updates: true }))).toEqual([
      200,
      { ok: true, result: true },
    ]);
    expect(await pending()).toBe(0);
    const [status, answer] = await method('setWebhook', json({ url: 'https://example.org/hook' }));
    expect([status, answer.ok, answer.description]).toEqual([
      400,
      false,
      "Bad Request: brainstem's Bot API front serves updates by getUpdates only; use long polling (no webhook)",
    ]);
    expect(h.tg.callsOf('setWebhook')).toHaveLength(0);
  });

  it('says in getWebhookInfo which update types the poller asked for, by getUpdates or a setWebhook with no url, as Telegram does', async () => {
    const info = async () => (await method('getWebhookInfo'))[1].result as Record<string, unknown>;
    await take({ allowed_updates: ['message_reaction', 'message'] });
    expect(await info()).toMatchObject({ url: '', allowed_updates: ['message', 'message_reaction'] });
    expect(await method('setWebhook', json({ url: '', allowed_updates: ['callback_query'] }))).toEqual([
      200,
      { ok: true, result: true },
    ]);
    expect((await info()).allowed_updates).toEqual(['callback_query']);
    // As at Telegram, one that drops what waits leaves the list as it was.
    await method('deleteWebhook', json({ drop_pending_updates: true, allowed_updates: ['message'] }));
    expect((await info()).allowed_updates).toEqual(['callback_query']);
    // Telegram's default set is not said, whether named or [].
    await take({ allowed_updates: ALL_UPDATE_TYPES.filter((t) => !OPT_IN_TYPES.includes(t)) });
    expect(Object.keys(await info()).sort()).toEqual([
      'has_custom_certificate',
      'pending_update_count',
      'url',
    ]);
    await take({ allowed_updates: [] });
    expect((await info()).allowed_updates).toBeUndefined();
  });

  it('answers its guards’ refusals in Telegram’s shape, which grammY shows, not OpenAI’s', async () => {
    const { hostname, port } = new URL(h.service.url);
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      http
        .request(
          { hostname, port, path: `/telegram/bot${h.tg.token}/getMe`, headers: { host: 'evil.example' } },
          (res) => {
            let body = '';
            res.on('data', (d) => (body += d));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          },
        )
        .on('error', reject)
        .end();
    });
    expect(answer.status).toBe(403);
    expect(JSON.parse(answer.body)).toEqual({
      ok: false,
      error_code: 403,
      description: expect.stringContaining('server.allowedHosts'),
    });
  });

  it('tells the owner which of OpenClaw’s commands a full menu leaves out', async () => {
    const scope = { type: 'all_private_chats' };
    const commands = Array.from({ length: 100 }, (_, i) => ({
      command: `c${String(i).padStart(3, '0')}`,
      description: `command ${i}`,
    }));
    expect(await method('setMyCommands', json({ commands, scope, language_code: 'de' }))).toEqual([
      200,
      { ok: true, result: true },
    ]);
    const menu = h.tg.menus.get('all_private_chats|de')?.map((c) => c.command) ?? [];
    expect(menu).toHaveLength(100);
    const left = commands.map((c) => `/${c.command}`).filter((c) => !menu.includes(c.slice(1)));
    expect(left.at(-1)).toBe('/c099');
    const notice = await h.tg.waitFor(() =>
      h.tg.botMessages(OWNER).find((m) => /left out of it/.test(m.text)),
    );
    expect(notice.text).toContain(`${left.join(' ')} are left out of it. They still work when typed.`);
    await method('deleteMyCommands', json({ scope, language_code: 'de' }));
  });

  it('refuses a download path that would leave /file/bot<token>/, and nothing reaches Telegram', async () => {
    const token = h.tg.token;
    const calls = h.tg.calls.length;
    const conflicts = h.tg.polling.conflicts;
    for (const path of [
      `/telegram/file/bot${token}/../../bot${token}/logOut`,
      `/telegram/file/bot${token}/%2e%2e/%2E%2E/bot${token}/getUpdates`,
      `/telegram/file/bot${token}/documents%2F..%2F..%2Fbot${token}%2Fclose`,
      `/telegram/file/bot${token}/documents/./file_1.txt`,
      `/telegram/file/bot${token}/documents//file_1.txt`,
    ]) {
      expect([path, await raw(path)]).toEqual([path, 404]);
    }
    expect(h.tg.calls.slice(calls).filter((c) => c.method !== 'getUpdates')).toEqual([]);
    expect(h.tg.polling.conflicts).toBe(conflicts);
  });

  it('refuses HEAD on a method, which would act, and nothing reaches Telegram', async () => {
    const token = h.tg.token;
    const calls = h.tg.calls.length;
    const commands = encodeURIComponent(JSON.stringify([{ command: 'head', description: 'x' }]));
    for (const path of [
      `/telegram/bot${token}/sendMessage?chat_id=${CHAT}&text=from%20a%20HEAD`,
      `/telegram/bot${token}/setMyCommands?commands=${commands}`,
    ]) {
      expect([path, await raw(path, 'HEAD')]).toEqual([path, 405]);
    }
    expect(h.tg.calls.slice(calls).filter((c) => c.method !== 'getUpdates')).toEqual([]);
    expect(await method('getMyCommands')).toEqual([200, { ok: true, result: [] }]);
    const res = await fetch(`${front}/bot${token}/sendMessage`, { method: 'HEAD' });
    expect([res.status, res.headers.get('allow')]).toEqual([405, 'GET, POST']);
  });

  it('leaves a command menu Telegram refuses unchanged, as Telegram does', async () => {
    const names = (key: string) => h.tg.menus.get(key)?.map((c) => c.command) ?? [];
    const ask = [{ command: 'ask', description: 'Ask' }];
    expect(await method('setMyCommands', json({ commands: ask }))).toEqual([200, { ok: true, result: true }]);
    expect(names('default|')).toContain('ask');
    h.tg.failNext('setMyCommands', 1, { code: 400, description: 'Bad Request: BOT_COMMAND_INVALID' });
    const [status, answer] = await method(
      'setMyCommands',
      json({ commands: [{ command: 'Bad-Name', description: 'x' }] }),
    );
    expect([status, answer.description]).toEqual([400, 'Bad Request: BOT_COMMAND_INVALID']);
    expect(await method('getMyCommands', json({}))).toEqual([200, { ok: true, result: ask }]);
    // Every list Telegram holds is the one before: the French one, sent meanwhile, is put back too.
    for (const key of ['default|', 'default|fr']) {
      expect(names(key)).toContain('ask');
      expect(names(key)).not.toContain('Bad-Name');
    }
  });

  it('takes a chat or user id written in digits for that number, as Telegram does', async () => {
    const ok = [200, { ok: true, result: true }];
    const here = [{ command: 'here', description: 'Only in this group' }];
    const chat = (chat_id: number | string) => ({ scope: { type: 'chat', chat_id } });
    const chatKeys = () => [...h.tg.menus.keys()].filter((k) => k.startsWith('chat')).sort();
    expect(await method('setMyCommands', json({ ...chat('-100777'), commands: here }))).toEqual(ok);
    expect(await method('getMyCommands', json(chat(-100777)))).toEqual([200, { ok: true, result: here }]);
    // That group's French users get brainstem's French list before it.
    expect(h.tg.menus.get('chat:-100777|fr')?.at(-1)).toEqual(here[0]);
    expect(h.tg.menus.get('chat:-100777|fr')?.[0]?.description).toMatch(/changer de cerveau/);
    expect(await method('deleteMyCommands', json(chat(-100777)))).toEqual(ok);
    expect(chatKeys()).toEqual([]);
    expect(await method('getMyCommands', json(chat('-100777')))).toEqual([200, { ok: true, result: [] }]);

    const member = (user_id: number | string) => ({
      scope: { type: 'chat_member', chat_id: -100777, user_id },
    });
    expect(await method('setMyCommands', json({ ...member('42'), commands: here }))).toEqual(ok);
    expect(await method('getMyCommands', json(member(42)))).toEqual([200, { ok: true, result: here }]);
    expect(await method('deleteMyCommands', json(member(42)))).toEqual(ok);
    expect(chatKeys()).toEqual([]);
    const [status, answer] = await method('setMyCommands', json({ ...member('someone'), commands: here }));
    expect([status, answer.description]).toEqual([
      400,
      expect.stringMatching(/^Bad Request: scope\.user_id/),
    ]);
  });

  it('keeps the bot token out of the log whatever the case or encoding of /bot', async () => {
    const token = h.tg.token;
    for (const prefix of ['Bot', 'BOT', '%62ot', 'file/B%4fT', '', 'bot%20', '%2562ot']) {
      const res = await fetch(`${front}/${prefix}${token}/getMe`);
      expect([401, 404]).toContain(res.status);
    }
    const all = h.logs.map((l) => JSON.stringify(l)).join('\n');
    expect(all).not.toContain(token.split(':')[1]);
  });

  it('polls Telegram again after another program’s getUpdates took over (409), saying what to fix', async () => {
    const other = new Bot(h.tg.token, { client: { apiRoot: h.tg.apiRoot } });
    // brainstem's poll waits; another bot's poll that waits too ends it (a short one would not).
    await h.tg.waitFor(() => h.tg.polling.waiting);
    const otherPoll = other.api.getUpdates({ timeout: 1 }).then(
      () => 'timed out',
      (err: GrammyError) => err.error_code,
    );
    const line = await h.tg.waitFor(
      () => h.logs.find((l) => /another program polled this bot token/.test(String(l.msg))),
      { timeoutMs: 15_000 },
    );
    expect(line.msg).toMatch(/point OpenClaw at the Bot API front/);
    // Its poll timed out, or brainstem's next waiting poll took over from it in turn; either way
    // it is over before the message comes, which brainstem must then get.
    expect(['timed out', 409]).toContain(await otherPoll);
    h.tg.user(CHAT).says('/mode');
    await h.tg.waitFor(() => h.tg.botMessages(CHAT).find((m) => /local/.test(m.text)), { timeoutMs: 20_000 });
  });

  it('keeps OpenClaw’s update ids growing when Telegram’s start again lower, and loses none', async () => {
    const oc = await startDownstream(front, h.tg.token, { commands: false });
    try {
      h.tg.restartUpdateIds(5000);
      h.tg.user(CHAT).says('m1');
      h.tg.user(CHAT).says('m2');
      await h.tg.waitFor(() => texts(oc.received).length === 2);
      // As after a week without updates: brainstem's offset at Telegram is now in the future.
      h.tg.restartUpdateIds(100);
      h.tg.user(CHAT).says('m3');
      h.tg.user(CHAT).says('m4');
      h.tg.user(CHAT).says('/mode');
      h.tg.user(CHAT).says('m5');
      await h.tg.waitFor(() => texts(oc.received).length === 5);
      const mine = oc.received.filter((u) => u.message?.text?.startsWith('m'));
      expect(texts(mine)).toEqual(['m1', 'm2', 'm3', 'm4', 'm5']);
      const ids = mine.map((u) => u.update_id);
      expect(ids).toEqual([5000, 5001, 5002, 5003, 5004]);
      // brainstem's own command after the change is answered too.
      await h.tg.waitFor(() => h.tg.botMessages(CHAT).filter((m) => /local/.test(m.text)).length === 2);
      // Nothing comes twice: the next message is the only new one.
      h.tg.user(CHAT).says('m6');
      await h.tg.waitFor(() => texts(oc.received).length === 6);
      expect(texts(oc.received)).toEqual(['m1', 'm2', 'm3', 'm4', 'm5', 'm6']);
    } finally {
      await oc.stop();
    }
  });
});

describe('a command menu stored by an older version', () => {
  it('takes a chat id it kept as text ("-100777") for that chat: OpenClaw reads its list back and deletes it', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'brainstem-tg-'));
    // The database as such a version left it: the schema of then, the scope with the id in quotes.
    mkdirSync(path.join(dir, 'data'));
    const old = new Sqlite(path.join(dir, 'data', 'brainstem.sqlite'));
    for (const m of migrations.filter((x) => x.version <= 5)) old.exec(m.sql);
    old.pragma('user_version = 5');
    const insert = old.prepare(
      "INSERT INTO front_commands (owner, scope, lang, commands) VALUES ('openclaw', ?, ?, ?)",
    );
    const here = [{ command: 'here', description: 'Only in this group' }];
    insert.run('{"type":"chat","chat_id":"-100777"}', '', JSON.stringify(here));
    // Its French list was set again since, under the number: the newer one stays.
    const there = [{ command: 'there', description: 'Set since' }];
    insert.run('{"type":"chat","chat_id":"-100777"}', 'fr', JSON.stringify(here));
    insert.run('{"type":"chat","chat_id":-100777}', 'fr', JSON.stringify(there));
    old.close();
    const older = await startHarness({ config: { telegram: { front: { enabled: true } } }, dir });
    try {
      const call = async (name: string, body: object) => {
        const res = await fetch(`${older.service.url}/telegram/bot${older.tg.token}/${name}`, json(body));
        return [res.status, await res.json()];
      };
      const chat = { scope: { type: 'chat', chat_id: -100777 } };
      expect(await call('getMyCommands', chat)).toEqual([200, { ok: true, result: here }]);
      const fr = { ...chat, language_code: 'fr' };
      expect(await call('getMyCommands', fr)).toEqual([200, { ok: true, result: there }]);
      expect(await call('deleteMyCommands', fr)).toEqual([200, { ok: true, result: true }]);
      expect(await call('deleteMyCommands', chat)).toEqual([200, { ok: true, result: true }]);
      expect(await call('getMyCommands', { scope: { type: 'chat', chat_id: '-100777' } })).toEqual([
        200,
        { ok: true, result: [] },
      ]);
      expect([...older.tg.menus.keys()].filter((k) => k.startsWith('chat'))).toEqual([]);
    } finally {
      await older.close();
    }
  });
});

describe('update types stored by an older version', () => {
  it('matches a name it kept as OpenClaw gave it (MESSAGE) before OpenClaw polls again: its messages wait for it', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'brainstem-tg-'));
    mkdirSync(path.join(dir, 'data'));
    const old = new Sqlite(path.join(dir, 'data', 'brainstem.sqlite'));
    migrate(old);
    old
      .prepare("INSERT INTO kv (key, value, updated_at) VALUES ('front_allowed_updates', ?, 0)")
      .run(JSON.stringify(['MESSAGE']));
    old.close();
    const older = await startHarness({ config: { telegram: { front: { enabled: true } } }, dir });
    try {
      older.tg.user(CHAT).says('kept for OpenClaw');
      // Read without a getUpdates, which would set the types again.
      const info = async () => {
        const res = await fetch(`${older.service.url}/telegram/bot${older.tg.token}/getWebhookInfo`);
        return ((await res.json()) as { result: { pending_update_count: number } }).result;
      };
      await until(async () => (await info()).pending_update_count === 1);
    } finally {
      await older.close();
    }
  });
});

describe('Telegram failing at start', () => {
  it('says so in the log at the first failed getMe, and polls once Telegram answers', async () => {
    const tg = await startFakeTelegram();
    tg.failNext('getMe', 1, { code: 502, description: 'Bad Gateway' });
    const h = await startHarness({ tg });
    try {
      const line = await h.tg.waitFor(
        () => h.logs.find((l) => /Telegram getMe failed; retrying/.test(String(l.msg))),
        { timeoutMs: 15_000 },
      );
      expect(line.err).toMatch(/Bad Gateway/);
      h.tg.user(CHAT).says('/status');
      await h.tg.waitFor(() => h.tg.botMessages(CHAT).find((m) => m.text.includes('Status')));
    } finally {
      await h.close();
      await tg.close();
    }
  });
});

describe('a bot token Telegram refuses', () => {
  it('says so once, naming TELEGRAM_BOT_TOKEN, instead of retrying getMe forever', async () => {
    const wrong = await startHarness({ env: { TELEGRAM_BOT_TOKEN: '123456:not-the-bot-token' } });
    try {
      const line = await wrong.tg.waitFor(
        () => wrong.logs.find((l) => /Telegram refused the bot token/.test(String(l.msg))),
        { timeoutMs: 15_000 },
      );
      expect(line.msg).toMatch(/check TELEGRAM_BOT_TOKEN/);
      expect(wrong.logs.filter((l) => /getMe failed; retrying/.test(String(l.msg)))).toEqual([]);
    } finally {
      await wrong.close();
    }
  });
});
