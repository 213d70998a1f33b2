/**
 * The Bot API front while another process holds the state database (a sqlite3
 * shell inside a transaction, a backup): an update that arrives waits in
 * memory, unconfirmed at Telegram, OpenClaw's polls go on and what they confirm is never served
 * twice, a stall ends once the lock is gone, a call that must write
 * (setMyCommands) is told to retry, and gets through once the lock is gone,
 * and brainstem's own menu, set at start, waits for the lock to go.
 * brainstem's busy_timeout is cut short through core.db, as in
 * database-locked.test.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import { databaseLocks } from './helpers/database-lock.js';
import { type Downstream, startDownstream } from './helpers/downstream-bot.js';
import { type Harness, OWNER, startHarness } from './telegram-harness.js';

const CHAT = 113;
let h: Harness;
const running: Downstream[] = [];

beforeAll(async () => {
  h = await startHarness({ config: { telegram: { front: { enabled: true, stallNoticeMs: 1000 } } } });
  h.service.core.db.pragma('busy_timeout = 50');
});
afterAll(async () => {
  for (const oc of running) await oc.stop();
  await h?.close();
});

const { hold, release, releaseAll } = databaseLocks(() =>
  path.join(h.service.core.config.dataDir, 'brainstem.sqlite'),
);

async function openclaw(opts: { commands?: boolean } = {}): Promise<Downstream> {
  const oc = await startDownstream(`${h.service.url}/telegram`, h.tg.token, opts);
  running.push(oc);
  return oc;
}
const texts = (oc: Downstream) => oc.received.map((u) => u.message?.text).filter((t) => t?.startsWith('m'));
const logged = (msg: RegExp, from = 0) => h.logs.slice(from).filter((l) => msg.test(String(l.msg)));
/** The owner's notices matching `pattern`, after the message whose id is `after`. */
const notices = (pattern: RegExp, after = 0) =>
  h.tg.botMessages(OWNER).filter((m) => m.messageId > after && pattern.test(m.text));
const WRITTEN = /takes writes again/;
/** What waits for OpenClaw, as its getWebhookInfo (answered by the front, a read) says. */
const pending = async () => {
  const res = await fetch(`${h.service.url}/telegram/bot${h.tg.token}/getWebhookInfo`);
  return ((await res.json()) as { result: { pending_update_count: number } }).result.pending_update_count;
};
const rows = () =>
  (h.service.core.db.prepare('SELECT COUNT(*) AS n FROM front_updates').get() as { n: number }).n;

describe('the front while another process holds the state database', { timeout: 60_000 }, () => {
  it('an update that arrives meanwhile waits in brainstem’s memory, unconfirmed at Telegram and without holding the process, then reaches OpenClaw once', async () => {
    const oc = await openclaw();
    const u = h.tg.user(CHAT);
    u.says('m1');
    await h.tg.waitFor(() => texts(oc).length === 1);

    const from = h.logs.length;
    const fetched = new Set(h.tg.releasedAt.keys());
    // SQLite waits for the lock inside the call that meets it: had the intake (or a write of
    // OpenClaw's polls) waited, this process, the lock's holder with it, would stand still for a
    // minute, past the test's time.
    h.service.core.db.pragma('busy_timeout = 60000');
    onTestFinished(() => {
      h.service.core.db.pragma('busy_timeout = 50');
    });
    const lock = hold();
    u.says('m2');
    await vi.waitFor(
      () => expect(logged(/updates fetched from Telegram wait in memory/, from)).toHaveLength(1),
      { timeout: 20_000 },
    );
    const [m2] = [...h.tg.releasedAt].filter(([id]) => !fetched.has(id));
    expect(texts(oc)).toEqual(['m1']);
    release(lock);

    await h.tg.waitFor(() => texts(oc).length === 2, { timeoutMs: 20_000 });
    expect(logged(/the waiting updates are stored/, from)).toHaveLength(1);
    // Telegram answered it once: the batch waited in memory, it was not fetched again.
    expect(m2).toBeDefined();
    expect(h.tg.releasedAt.get(m2?.[0] ?? 0)).toBe(m2?.[1]);
    u.says('m3');
    await h.tg.waitFor(() => texts(oc).length === 3, { timeoutMs: 20_000 });
    expect(texts(oc)).toEqual(['m1', 'm2', 'm3']);
    // Confirmed (its next poll's offset) before it stops, as a running channel does.
    await vi.waitFor(async () => expect(await pending()).toBe(0), { timeout: 20_000 });
    await oc.stop();
  }, 30_000);

  it('OpenClaw’s polls go on: what waits is served and confirmed once, and the stall ends once the lock is gone', async () => {
    // Counted from here: a machine that stalled the process for a second (stallNoticeMs) between a
    // delivery above and its confirmation had a stall rightly told and ended there, which this test
    // took for its own.
    await h.service.core.notifier.flush();
    const told = h.tg.botMessages(OWNER).at(-1)?.messageId ?? 0;
    const u = h.tg.user(CHAT);
    u.says('m4');
    await h.tg.waitFor(() => notices(/OpenClaw is not fetching messages/, told)[0], { timeoutMs: 20_000 });

    const from = h.logs.length;
    hold();
    const oc = await openclaw({ commands: false });
    await h.tg.waitFor(() => texts(oc).includes('m4'), { timeoutMs: 20_000 });
    // Its next poll confirms m4: m4 no longer waits, and its deletion waits for the lock.
    await vi.waitFor(async () => expect(await pending()).toBe(0), { timeout: 20_000 });
    expect(rows()).toBe(1);
    // The stall's end is written, and told, once the lock is gone.
    expect(notices(/OpenClaw is fetching messages again/, told)).toEqual([]);

    releaseAll();
    await h.tg.waitFor(() => notices(/OpenClaw is fetching messages again/, told)[0], { timeoutMs: 20_000 });
    await vi.waitFor(() => expect(logged(WRITTEN, from).length).toBeGreaterThan(0), { timeout: 20_000 });
    expect(rows()).toBe(0);
    // A later update comes next: m4 was not served again meanwhile.
    u.says('m5');
    await h.tg.waitFor(() => texts(oc).includes('m5'), { timeoutMs: 20_000 });
    expect(texts(oc)).toEqual(['m4', 'm5']);
    expect(notices(/OpenClaw is fetching messages again/, told)).toHaveLength(1);
    await oc.stop();
  });

  it('setMyCommands is told to retry after 2 s, and gets through once the lock is gone', async () => {
    const from = h.logs.length;
    const lock = hold();
    const starting = openclaw();
    await vi.waitFor(() => expect(logged(/OpenClaw is told to retry/, from).length).toBeGreaterThan(0), {
      timeout: 20_000,
    });
    release(lock);
    const oc = await starting;
    const calls = oc.answers.filter((a) => a.method === 'setMyCommands');
    expect(calls[0]).toEqual({ method: 'setMyCommands', ok: false, error_code: 429, retry_after: 2 });
    expect(calls.at(-1)?.ok).toBe(true);
    // OpenClaw's commands reached Telegram's menu, behind brainstem's own (a clash as oc_<name>).
    const menu = (h.tg.menus.get('default|') ?? []).map((c) => c.command);
    expect(menu).toEqual(expect.arrayContaining(['mode', 'help', 'model', 'oc_usage']));
    await oc.stop();
  });
});

describe('brainstem’s own command menu, set at start while another process holds the state database', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'bst-front-menu-locked-'));
  const locks = databaseLocks(() => path.join(dir, 'data', 'brainstem.sqlite'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('waits in memory for the lock to go, then reaches Telegram merged', { timeout: 60_000 }, async () => {
    let lock: ReturnType<typeof locks.hold> | undefined;
    const started = await startHarness({
      dir,
      config: { telegram: { front: { enabled: true } } },
      // Right after listen, before the bot starts and sets its menu.
      atListen: () => {
        lock = locks.hold();
      },
    });
    try {
      await vi.waitFor(
        () =>
          expect(
            started.logs.filter(
              (l) => l.write === "brainstem's command menu" && /keeping writes/.test(String(l.msg)),
            ),
          ).toHaveLength(1),
        { timeout: 20_000 },
      );
      expect(started.tg.menus.get('default|')).toBeUndefined();
      if (lock) locks.release(lock);
      await started.tg.waitFor(() => started.tg.menus.get('default|')?.some((c) => c.command === 'mode'), {
        timeoutMs: 20_000,
      });
      expect(started.tg.menus.get('default|')?.map((c) => c.command)).toEqual(
        expect.arrayContaining(['mode', 'usage', 'bhelp', 'creds']),
      );
    } finally {
      await started.close();
    }
  });
});
