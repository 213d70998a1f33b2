import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { html } from '../src/html.js';
import { NOTICE_LANG_KEY } from '../src/i18n.js';
import type { LogRecord } from './helpers/logs.js';
import { type Harness, nextLog, OWNER, startHarness } from './telegram-harness.js';

const BLOCKED = 120;
let h: Harness;

beforeAll(async () => {
  h = await startHarness({
    // Its probes keep their own time limit (10 s): the model goes down here by answering 503 at once,
    // and at 0.5 s a machine slow to answer /health for a second (one probe that two checks join)
    // had a model that was up called down and back, a notice more than the test counts.
    parts: { bot: true, brainMonitor: { intervalMs: 100, failuresBeforeDown: 2 } },
    config: { telegram: { notifyChats: [OWNER, BLOCKED] } },
  });
});
afterAll(async () => {
  await h.close();
});

const notices = (chatId: number, pattern: RegExp) =>
  h.tg.botMessages(chatId).filter((m) => pattern.test(m.text));

/** Resolves once the brain monitor has made `count` more checks and the notices they raised are delivered. */
async function checksLater(count: number): Promise<void> {
  await nextLog(h, (l) => l.msg === 'brain monitor checked')(count);
  await h.service.core.notifier.flush();
}
/**
 * A line brainstem writes once its wait for the lock (busy_timeout, 5 s) is over: the test's
 * lock can go then, and not before.
 */
const lockedLine = (msg: string) => (l: LogRecord) =>
  l.msg === msg && /database is locked/.test(String((l.err as { message?: string })?.message));
/** The write kept in memory while the lock lasts (src/db/kept-writes.ts), if `write` says what it records. */
const keptLine = (write: RegExp) => (l: LogRecord) =>
  String(l.msg).startsWith('the state database is locked by another process') && write.test(String(l.write));

describe('notices', () => {
  it('tells the notify chats when the active brain goes down and when it is back, once each', async () => {
    h.llama.setLoading(true);
    const down = await h.tg.waitFor(() => notices(OWNER, /Mode local does not answer/)[0], {
      timeoutMs: 60_000,
    });
    expect(down.text).toMatch(/^⚙️ \[proxy\] 🔴 Mode local does not answer since .* UTC: /);
    // Two more failed probes: a check that called it down again would have said so by now.
    await checksLater(2);
    expect(notices(OWNER, /does not answer/)).toHaveLength(1);

    h.llama.setLoading(false);
    const up = await h.tg.waitFor(() => notices(OWNER, /Mode local answers again/)[0], { timeoutMs: 60_000 });
    expect(up.text).toMatch(/answers again \(down for .*\)\.$/);
    await checksLater(2);
    expect(notices(OWNER, /answers again/)).toHaveLength(1);
    // Every notify chat has both before the next test starts (its failure is meant for its own notices).
    await h.tg.waitFor(() => h.service.core.notifier.pending().length === 0, { timeoutMs: 60_000 });
    expect(notices(BLOCKED, /does not answer/)).toHaveLength(1);
    expect(notices(BLOCKED, /answers again/)).toHaveLength(1);
  });

  it('a chat that blocked the bot does not hold back notices for the others', async () => {
    h.tg.failNext(
      'sendMessage',
      1,
      { code: 403, description: 'Forbidden: bot was blocked by the user' },
      BLOCKED,
    );
    h.service.core.notifier.notify({ kind: 'upgrade', text: html`first <b>notice</b>` });
    h.service.core.notifier.notify({ kind: 'upgrade', text: html`second notice` });
    await h.tg.waitFor(() => notices(OWNER, /second notice/)[0]);
    expect(notices(OWNER, /first notice/)).toHaveLength(1);
    expect(notices(BLOCKED, /first notice/)).toHaveLength(0);
    await h.tg.waitFor(() => notices(BLOCKED, /second notice/)[0]);
    await h.tg.waitFor(() => h.service.core.notifier.pending().length === 0);
  });

  it('a notice delivered while another process holds the database does not stop the later ones, nor comes twice', async () => {
    await h.tg.waitFor(() => h.service.core.notifier.pending().length === 0);
    // The owner's copy waits out a 429: meanwhile a sqlite3 shell (a backup) takes the write lock.
    h.tg.rateLimit('sendMessage', 1, 1);
    const refused = nextLog(h, keptLine(/^that notice \d+ was sent/));
    h.service.core.notifier.notify({ kind: 'upgrade', text: html`sent under a lock` });
    const other = new Database(path.join(h.service.core.config.dataDir, 'brainstem.sqlite'), { timeout: 0 });
    other.exec('BEGIN IMMEDIATE');
    try {
      await h.tg.waitFor(() => notices(BLOCKED, /sent under a lock/)[0], { timeoutMs: 10_000 });
      // Held until marking it sent has waited out the lock, and is kept for later.
      await refused();
    } finally {
      other.exec('ROLLBACK');
      other.close();
    }
    h.service.core.notifier.notify({ kind: 'upgrade', text: html`after the lock` });
    await h.tg.waitFor(() => notices(OWNER, /after the lock/)[0], { timeoutMs: 10_000 });
    await h.tg.waitFor(() => h.service.core.notifier.pending().length === 0, { timeoutMs: 10_000 });
    expect(notices(OWNER, /sent under a lock/)).toHaveLength(1);
    expect(notices(BLOCKED, /sent under a lock/)).toHaveLength(1);
  }, 30_000);

  it('a brain that goes down while another process holds the database is told once the lock is gone, and nothing crashes', async () => {
    await h.tg.waitFor(() => h.service.core.notifier.pending().length === 0);
    const before = notices(OWNER, /Mode local does not answer/).length;
    const backBefore = notices(OWNER, /Mode local answers again/).length;
    // Unhandled, a rejection brings brainstem down (Node's default).
    const unhandled: unknown[] = [];
    const onUnhandled = (err: unknown) => unhandled.push(err);
    process.on('unhandledRejection', onUnhandled);
    const failed = nextLog(h, lockedLine('brain monitor check failed; will retry'));
    const other = new Database(path.join(h.service.core.config.dataDir, 'brainstem.sqlite'), { timeout: 0 });
    other.exec('BEGIN IMMEDIATE');
    try {
      h.llama.setLoading(true);
      // Held until the monitor has called it down and failed to record it.
      await failed();
    } finally {
      other.exec('ROLLBACK');
      other.close();
    }
    await h.tg.waitFor(() => notices(OWNER, /Mode local does not answer/).length === before + 1, {
      timeoutMs: 10_000,
    });
    h.llama.setLoading(false);
    await h.tg.waitFor(() => notices(OWNER, /Mode local answers again/).length === backBefore + 1, {
      timeoutMs: 10_000,
    });
    process.off('unhandledRejection', onUnhandled);
    expect(unhandled).toEqual([]);
  }, 40_000);

  it('a notice longer than one message (an upstream’s long error quoted) arrives cut, with a note, instead of being skipped', async () => {
    // Tags, entities and emoji all the way, so the cut falls among them.
    const said = '&amp; <b>not bold</b> 😀 '.repeat(400);
    h.service.core.notifier.notify({
      kind: 'brain_health',
      text: html`🔴 Mode <b>local</b> does not answer (long-error test): ${said}`,
    });
    await h.service.core.notifier.flush();
    await h.tg.waitFor(() => h.service.core.notifier.pending().length === 0);
    for (const chat of [OWNER, BLOCKED]) {
      const told = notices(chat, /long-error test/);
      expect(told).toHaveLength(1);
      const m = told[0] as (typeof told)[number];
      expect(m.text.length).toBeLessThanOrEqual(4096);
      expect(m.text).toMatch(
        /^⚙️ \[proxy\] 🔴 Mode local does not answer \(long-error test\): &amp; <b>not bold<\/b> 😀 /,
      );
      expect(m.text).toMatch(/\n\[… cut here: \d+ more characters, past what one Telegram message holds\]$/);
      // What the text from outside says stays text: the only bold is brainstem's own.
      expect(
        m.entities.filter((e) => e.type === 'bold').map((e) => m.text.slice(e.offset, e.offset + e.length)),
      ).toEqual(['local']);
    }
  });

  it('a switch no chat asked for (the API) is told to the notify chats in the notices’ language', async () => {
    // As the owner's last message in French records it.
    h.service.core.kv.set(NOTICE_LANG_KEY, 'fr');
    try {
      // The Claude modes' CLI does not exist here: the switch fails at once, with a reason in both languages.
      const o = await h.service.core.switcher.switchTo('assistant', { source: 'api', by: 'api' });
      expect(o.ok).toBe(false);
      await h.service.core.notifier.flush();
      const told = await h.tg.waitFor(() => notices(OWNER, /assistant/).at(-1));
      expect(told.text).toMatch(
        /^⚙️ \[proxy\] Échec de la bascule vers assistant après .+ : CLI Claude Code introuvable : « .+ » \(installez-le, .+\)\. Toujours en local\.$/,
      );
    } finally {
      h.service.core.kv.set(NOTICE_LANG_KEY, 'en');
    }
  });
});
