/**
 * Another process holding the state database (a sqlite3 shell inside a
 * transaction, a backup, a second brainstem about to exit): brainstem's
 * background writes wait in memory for the lock to go, and what the user sees
 * goes on. The lock is a second connection's open write transaction on the
 * same file; brainstem's busy_timeout is cut short through core.db so each
 * refused write fails within milliseconds instead of a quarter of a second.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import Database from 'better-sqlite3';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { html } from '../src/html.js';
import { NOTICE_LANG_KEY } from '../src/i18n.js';
import { text } from './fakes/anthropic.js';
import { claudeOnFake } from './helpers/claude-fake.js';
import { databaseLocks } from './helpers/database-lock.js';
import { type Harness, OWNER, startClaudeHarness, startHarness } from './telegram-harness.js';

let h: Harness;

beforeAll(async () => {
  h = await startHarness({ parts: { bot: true, tools: true } });
  h.service.core.db.pragma('busy_timeout = 50');
});
afterAll(async () => {
  await h.close();
});

const { hold, release } = databaseLocks(() => path.join(h.service.core.config.dataDir, 'brainstem.sqlite'));

const count = (sql: string, ...args: unknown[]) =>
  (h.service.core.db.prepare(sql).get(...args) as { n: number }).n;
const logged = (msg: RegExp) => h.logs.filter((l) => msg.test(String(l.msg)));
const KEEPING = /keeping writes in memory/;
const WRITTEN = /takes writes again/;

async function reply(chatId: number, pattern: RegExp) {
  return h.tg.waitFor(() => h.tg.botMessages(chatId).find((m) => pattern.test(m.text)), {
    timeoutMs: 30_000,
  });
}

describe('while another process holds the state database', () => {
  it('an answer ends normally, and its usage and its exchange are written once the lock is gone', async () => {
    const u = h.tg.user(112);
    u.says('before the lock');
    await reply(112, /^echo: before the lock$/);
    const usage = () => count('SELECT COUNT(*) AS n FROM usage WHERE session_key = ?', 'telegram:112');
    const history = () =>
      count('SELECT COUNT(*) AS n FROM telegram_history WHERE chat_key = ?', 'telegram:112');
    await vi.waitFor(() => expect(usage()).toBe(1), { timeout: 20_000 });
    const keeping = logged(KEEPING).length;
    const lock = hold();
    u.says('first while held');
    await reply(112, /^echo: first while held$/);
    // The chat's turns run one after the other: once the next is answered, the first has ended.
    u.says('second while held');
    await reply(112, /^echo: second while held$/);
    expect(logged(KEEPING).length).toBe(keeping + 1);
    expect(h.tg.botMessages(112).filter((m) => /database|failed|error/i.test(m.text))).toEqual([]);
    expect(usage()).toBe(1);
    release(lock);
    await vi.waitFor(() => expect(usage()).toBe(3), { timeout: 20_000 });
    expect(history()).toBe(6);
    await vi.waitFor(() => expect(logged(WRITTEN).length).toBeGreaterThan(0), { timeout: 20_000 });
    const rows = h.service.core.db
      .prepare('SELECT source, mode, error FROM usage WHERE session_key = ? ORDER BY id')
      .all('telegram:112');
    expect(rows).toEqual(Array(3).fill({ source: 'telegram', mode: 'local', error: null }));
  });

  it('/new says it failed and changes nothing; once the lock is gone it clears the history, and an exchange kept meanwhile does not come back', async () => {
    const u = h.tg.user(115);
    const history = () =>
      count('SELECT COUNT(*) AS n FROM telegram_history WHERE chat_key = ?', 'telegram:115');
    u.says('before the lock');
    await reply(115, /^echo: before the lock$/);
    await vi.waitFor(() => expect(history()).toBe(2), { timeout: 20_000 });
    const written = logged(WRITTEN).length;
    const lock = hold();
    u.says('kept');
    await reply(115, /^echo: kept$/);
    u.says('/new');
    await reply(115, /\/new failed: the state database is locked by another process/);
    expect(history()).toBe(2);
    release(lock);
    u.says('/new');
    await reply(115, /🆕 Fresh conversation/);
    // The kept exchange is written before the history is cleared, not by the next retry after it.
    await vi.waitFor(() => expect(logged(WRITTEN).length).toBe(written + 1), { timeout: 20_000 });
    expect(history()).toBe(0);
  });

  it('a message whose language must be recorded for the notices is still answered', async () => {
    expect(h.service.core.kv.get(NOTICE_LANG_KEY) ?? 'en').toBe('en');
    const lock = hold();
    h.tg.user(113, { languageCode: 'fr' }).says('bonjour');
    await reply(113, /^echo: bonjour$/);
    expect(h.service.core.kv.get(NOTICE_LANG_KEY) ?? 'en').toBe('en');
    release(lock);
    await vi.waitFor(() => expect(h.service.core.kv.get(NOTICE_LANG_KEY)).toBe('fr'), { timeout: 20_000 });
    // The next tests' notices speak English again.
    h.tg.user(114, { languageCode: 'en' }).says('hello');
    await reply(114, /^echo: hello$/);
    await vi.waitFor(() => expect(h.service.core.kv.get(NOTICE_LANG_KEY)).toBe('en'), { timeout: 20_000 });
  });

  it('/new refused by the lock says why in French to a reader in French', async () => {
    const u = h.tg.user(116, { languageCode: 'fr' });
    u.says('avant le verrou');
    await reply(116, /^echo: avant le verrou$/);
    const lock = hold();
    try {
      u.says('/new');
      const failed = await reply(116, /\/new a échoué/);
      expect(failed.text).toBe(
        '⚙️ [proxy] ⚠️ /new a échoué : la base de données d’état est verrouillée par un autre processus (un shell sqlite3, une sauvegarde, un autre brainstem). La conversation continue telle quelle ; renvoyez /new dans un instant.',
      );
    } finally {
      release(lock);
    }
    // The next tests' notices speak English again.
    h.tg.user(116, { languageCode: 'en' }).says('hello');
    await reply(116, /^echo: hello$/);
    await vi.waitFor(() => expect(h.service.core.kv.get(NOTICE_LANG_KEY)).toBe('en'), { timeout: 20_000 });
  });

  it('a notice is recorded and sent once the lock is gone, once', async () => {
    const lock = hold();
    h.service.core.notifier.notify({ kind: 'upgrade', text: html`told under a lock` });
    expect(h.service.core.notifier.pending().filter((n) => n.text.includes('told under a lock'))).toEqual([]);
    release(lock);
    await reply(OWNER, /told under a lock/);
    await vi.waitFor(() => expect(h.service.core.notifier.pending()).toEqual([]), { timeout: 20_000 });
    expect(h.tg.botMessages(OWNER).filter((m) => m.text.includes('told under a lock'))).toHaveLength(1);
  });

  it('a tool call is answered, and its audit row written once the lock is gone', async () => {
    const audited = () => count("SELECT COUNT(*) AS n FROM audit WHERE tool = 'usage' AND caller = 'api'");
    const before = audited();
    const lock = hold();
    const res = await fetch(`${h.service.url}/api/usage`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${h.service.core.apiToken.token}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify({ since: '7d' }),
    });
    expect(res.status).toBe(200);
    expect(audited()).toBe(before);
    release(lock);
    await vi.waitFor(() => expect(audited()).toBe(before + 1), { timeout: 20_000 });
  });
  it('an OpenAI client that sends no session key gets its answer, and its conversation is found again once the lock is gone', async () => {
    const client = new OpenAI({
      baseURL: `${h.service.url}/v1`,
      apiKey: h.service.core.apiToken.token,
      maxRetries: 0,
    });
    const heads = () => count('SELECT COUNT(*) AS n FROM conversation_heads');
    const before = heads();
    const lock = hold();
    const answer = await client.chat.completions.create({
      model: 'local',
      messages: [{ role: 'user', content: 'under the lock' }],
    });
    expect(answer.choices[0]?.message.content).toBe('echo: under the lock');
    expect(heads()).toBe(before);
    release(lock);
    await vi.waitFor(() => expect(heads()).toBe(before + 1), { timeout: 20_000 });
  });

  // Last here: it stops h's service, and the start after it serves only this test.
  it('a notice kept behind the lock when brainstem stops is sent by the next start, once', async () => {
    const { notifier } = h.service.core;
    const lock = hold();
    notifier.notify({ kind: 'brain_health', text: html`down before a stop`, dedupeKey: 'brain:down:x:1' });
    // One with no key of its own (a failed reload's) is not sent twice either.
    notifier.notify({ kind: 'upgrade', text: html`reload failed before a stop` });
    await h.stopService();
    const ends = path.join(h.service.core.config.dataDir, 'brainstem.sqlite-switch-ends');
    expect(
      logged(
        /(down|reload failed) before a stop.* waits in .*brainstem\.sqlite-switch-ends for the next start/,
      ),
    ).toHaveLength(2);
    release(lock);
    const next = await startHarness({
      parts: { bot: true, tools: true },
      tg: h.tg,
      llama: h.llama,
      dir: h.dir,
    });
    try {
      await reply(OWNER, /down before a stop/);
      await reply(OWNER, /reload failed before a stop/);
      await vi.waitFor(() => expect(next.service.core.notifier.pending()).toEqual([]), { timeout: 20_000 });
      await expect(stat(ends)).rejects.toMatchObject({ code: 'ENOENT' });
      const told = h.tg.botMessages(OWNER).filter((m) => /(down|reload failed) before a stop/.test(m.text));
      expect(told).toHaveLength(2);
    } finally {
      await next.stopService();
    }
  });
});

describe('a Claude turn while another process holds the state database', { timeout: 180_000 }, () => {
  const claude = claudeOnFake();

  it('ends normally, and its session is kept for the next turn once the lock is gone', async (ctx) => {
    const c = await startClaudeHarness(claude.cli.env, { server: { modeTag: false } });
    ctx.onTestFinished(() => c.close());
    c.service.core.db.pragma('busy_timeout = 50');
    claude.fake.script(() => text('answered under the lock'));
    const sessions = () =>
      (
        c.service.core.db
          .prepare("SELECT COUNT(*) AS n FROM sessions WHERE session_key = 'telegram:113'")
          .get() as { n: number }
      ).n;
    const other = new Database(path.join(c.service.core.config.dataDir, 'brainstem.sqlite'), { timeout: 0 });
    other.exec('BEGIN IMMEDIATE');
    try {
      c.tg.user(113).says('hello');
      const answer = await c.tg.waitFor(
        () => c.tg.botMessages(113).find((m) => /answered under the lock|failed|⚠️/.test(m.text)),
        { timeoutMs: 120_000 },
      );
      expect(answer.text).toBe('answered under the lock');
      expect(sessions()).toBe(0);
    } finally {
      other.exec('ROLLBACK');
      other.close();
    }
    await vi.waitFor(() => expect(sessions()).toBe(1), { timeout: 20_000 });
  });
});
