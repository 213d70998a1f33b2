import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { chatOutbox } from '../handlers/telegram/route/outbox.js';
import type { ConfigFile } from '../src/config.js';
import { migrations } from '../src/db/migrations.js';
import Sqlite from '../src/db/sqlite.js';
import { type FakeLlama, startFakeLlama } from './fakes/llama.js';
import { type FakeTelegram, startFakeTelegram } from './fakes/telegram.js';
import { type ServiceProcess, spawnService } from './helpers/process.js';
import { processesIn } from './helpers/procs.js';
import { harnessEnv, OWNER, startHarness, USERS } from './telegram-harness.js';

/**
 * brainstem killed (SIGKILL: a crash, the OOM killer, a power loss) while it answers on the direct
 * route, as its own process started again by pm2 on the same data dir, with the Bot API emulator
 * as Telegram and the fake llama-server as the brain.
 */

const CHAT = 115;
/** Runs the shortcut word `wait`: a make target that runs until the test ends it. */
const TOOL_CHAT = 116;
/** Runs the shortcut word `late`. */
const LATE_CHAT = 120;
let tg: FakeTelegram;
let llama: FakeLlama;
let dir: string;
let env: Record<string, string>;
const spawned: ServiceProcess[] = [];
/** Ends the held answer ("hold on"), so nothing waits on it at the end. */
let release = () => {};
/** Ends the answer "with a file" once the test has put the file in its outbox. */
let fileDone = () => {};
const fileWritten = new Promise<void>((resolve) => {
  fileDone = resolve;
});

beforeAll(async () => {
  tg = await startFakeTelegram();
  llama = await startFakeLlama({ chunkDelayMs: 0 });
  dir = await mkdtemp(path.join(tmpdir(), 'bst-tg-crash-'));
  const config: ConfigFile = {
    defaultMode: 'local',
    server: { port: 0, modeTag: false },
    modes: { local: { kind: 'llama', description: 'Fake local model' } },
    llama: { baseUrl: llama.baseUrl, pollIntervalMs: 50, readyTimeoutMs: 10_000 },
    telegram: { streaming: 'edit', editIntervalMs: 150, notifyChats: [OWNER] },
    tools: {
      make: { dir, targets: ['hang', 'quick', 'late'] },
      shortcuts: {
        wait: { tool: 'make_target', input: { target: 'hang' }, mutating: false },
        late: { tool: 'make_target', input: { target: 'late' }, mutating: false },
        quick: { tool: 'make_target', input: { target: 'quick' }, mutating: false },
      },
    },
  };
  // Runs until the file \`done\` appears (afterAll writes it): a crash of brainstem leaves it running.
  await writeFile(
    path.join(dir, 'Makefile'),
    'hang:\n\t@echo "waiting"; while [ ! -f done ]; do sleep 0.1; done\nquick:\n\t@echo "quick result"\n' +
      // Starts its work once the file `go` appears, and ends (make, the run's leader, with it) once
      // brainstem (make's parent) is gone: its work left running, started after brainstem last
      // found the run running.
      'late:\n\t@echo "late started"; while [ ! -f go ]; do sleep 0.05; done; sleep 300 & echo $$! > member; ' +
      "b=$$(cut -d' ' -f4 /proc/$$PPID/stat); while kill -0 $$b 2>/dev/null; do sleep 0.05; done\n",
  );
  await writeFile(path.join(dir, 'brainstem.json'), JSON.stringify(config));
  env = harnessEnv(dir, path.join(dir, 'brainstem.json'), tg);
  // The harness's users are all taken by this file's chats.
  env.TELEGRAM_ALLOWED_USERS = [...USERS, LATE_CHAT].join(',');
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });
  llama.script((body) => {
    const last = String(body.messages?.at(-1)?.content ?? '');
    if (last === 'hold on') return { chunks: ['Partial answer ', { wait: held }, 'rest'] };
    if (last === 'with a file') return { chunks: ['Here is your file.', { wait: fileWritten }] };
    if (last === 'refused') return { status: 400, error: 'the fake refuses this one' };
    return { chunks: [`echo: ${last}`] };
  });
});

afterEach(async () => {
  for (const p of spawned.splice(0)) await p.stop('SIGTERM');
});

afterAll(async () => {
  release();
  fileDone();
  if (dir) await writeFile(path.join(dir, 'done'), '');
  await tg?.close();
  await llama?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function start(): Promise<ServiceProcess> {
  const p = await spawnService(env);
  spawned.push(p);
  return p;
}

/** The processes of the `hang` target (their working directory is the make dir). */
const running = () => processesIn(dir).filter(alive);
/** Alive and not a zombie waiting to be reaped. */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** Now, in the unit of /proc/<pid>/stat's start times: clock ticks (10 ms) since boot. */
const ticks = () => Math.floor(Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]) * 100);

const cutNotices = () => tg.botMessages(CHAT).filter((m) => /before it finished answering/.test(m.text));
const TOLD = 'told a chat the answers a restart cut';
const asked = (text: string) =>
  llama.requests.filter(
    (r) => (r.body as { messages?: { content?: unknown }[] })?.messages?.at(-1)?.content === text,
  );

describe('a crash while brainstem answers in a chat', () => {
  it('tells the chat at the next start, once, which answers were cut (the running one and the one queued behind it), and answers none twice', async () => {
    const first = await start();
    const u = tg.user(CHAT);
    u.says('done before');
    await tg.waitFor(() => tg.botMessages(CHAT).find((m) => m.text === 'echo: done before'));
    u.says('hold on');
    await tg.waitFor(() => tg.botMessages(CHAT).find((m) => m.text.startsWith('Partial answer')));
    u.says('waits <behind>');
    await tg.waitFor(() => tg.botMessages(CHAT).find((m) => /Queued/.test(m.text)));
    await first.stop('SIGKILL');

    const second = await start();
    const told = await tg.waitFor(() => cutNotices()[0], { timeoutMs: 30_000 });
    // Both cut messages are quoted (the user's text escaped, not read as HTML); the answered one is not.
    expect(told.text).toBe(
      '⚙️ [proxy] brainstem restarted (a crash?) before it finished answering 2 messages: “hold on”, “waits <behind>”. Those answers will not come. Send them again.',
    );
    expect(told.text).not.toContain('done before');
    // Nothing was fetched again and answered twice: the brain was asked each once.
    u.says('after');
    await tg.waitFor(() => tg.botMessages(CHAT).find((m) => m.text === 'echo: after'));
    expect([asked('hold on'), asked('waits <behind>')].map((r) => r.length)).toEqual([1, 0]);

    // A stop (SIGTERM) and a start: what was told is not told again, and an answered turn leaves nothing.
    expect(await second.stop('SIGTERM')).toBe(0);
    const third = await start();
    // The notice is recorded before the start says it listens: had there been one, its line is there.
    expect(third.logs.filter((l) => l.includes(TOLD))).toEqual([]);
    expect(cutNotices()).toHaveLength(1);
    expect(tg.botMessages(OWNER).filter((m) => /before it finished answering/.test(m.text))).toEqual([]);
  });

  it('tells the chat at the next start, once, that a tool run (a shortcut word) it cut has no result, and does not run it again', async () => {
    const first = await start();
    const u = tg.user(TOOL_CHAT);
    u.says('wait');
    await tg.waitFor(() => tg.botMessages(TOOL_CHAT).find((m) => /waiting/.test(m.text)), {
      timeoutMs: 30_000,
    });
    await first.stop('SIGKILL');
    // Nothing ran brainstem's exit hook: make and its shell run on, with no one to read them.
    const left = running();
    expect(left.length).toBeGreaterThan(0);

    const second = await start();
    // The next start stops them (SIGKILL) before anything else runs, and says so.
    expect(second.logs.some((l) => l.includes('stopped the process groups'))).toBe(true);
    await tg.waitFor(() => (left.some(alive) ? undefined : true));
    const told = await tg.waitFor(() => tg.botMessages(TOOL_CHAT).find((m) => /while it ran/.test(m.text)), {
      timeoutMs: 30_000,
    });
    expect(told.text).toBe(
      '⚙️ [proxy] brainstem restarted (a crash?) while it ran make hang: the result will not come, and the run may have stopped part way. Check before running it again.',
    );
    expect(second.logs.filter((l) => l.includes('"tool":"make_target"') && l.includes('hang'))).toEqual([]);
    expect(await second.stop('SIGTERM')).toBe(0);
    const third = await start();
    expect(third.logs.filter((l) => l.includes(TOLD))).toEqual([]);
    expect(tg.botMessages(TOOL_CHAT).filter((m) => /while it ran/.test(m.text))).toHaveLength(1);
  });
});

describe("a crash while a tool run runs, whose leader exits after brainstem's", () => {
  it('stops at the next start what the run started after brainstem last found it running', async (ctx) => {
    const first = await start();
    tg.user(LATE_CHAT).says('late');
    await tg.waitFor(() => tg.botMessages(LATE_CHAT).find((m) => /late started/.test(m.text)), {
      timeoutMs: 30_000,
    });
    const journal = path.join(env.BRAINSTEM_DATA_DIR as string, 'process-groups.json');
    const [run] = JSON.parse(readFileSync(journal, 'utf8')).groups as [{ pid: number; at: number }];
    // Its work starts in a later 10 ms tick than brainstem last found the run running.
    await expect.poll(ticks, { timeout: 30_000 }).toBeGreaterThan(run.at);
    await writeFile(path.join(dir, 'go'), '');
    const memberFile = path.join(dir, 'member');
    await expect
      .poll(() => readFile(memberFile, 'utf8').catch(() => ''), { timeout: 30_000 })
      .toMatch(/^\d+\n$/);
    const member = Number(await readFile(memberFile, 'utf8'));
    ctx.onTestFinished(() => {
      try {
        process.kill(member, 'SIGKILL');
      } catch {}
    });
    // It started after the run's last `at` unless a refresh (every 30 s: a loaded machine may take
    // that long) came between; either way the next start must stop it.
    await first.stop('SIGKILL');
    // make has exited, and been reaped (at once under systemd; this machine's init takes seconds).
    await expect.poll(() => existsSync(`/proc/${run.pid}`), { timeout: 30_000 }).toBe(false);
    expect(alive(member)).toBe(true);

    const second = await start();
    expect(second.logs.some((l) => l.includes('stopped the process groups'))).toBe(true);
    await expect.poll(() => alive(member), { timeout: 30_000 }).toBe(false);
  });
});

/** A chat whose message waits behind another of its messages still being handled. */
const LANE_CHAT = 118;

describe('a crash while a message waits for the one before it to be handled', () => {
  it('tells the chat at the next start about the message Telegram had already handed over', async () => {
    const first = await start();
    const u = tg.user(LANE_CHAT);
    // The sticker's "not supported" reply is slow on its way (a 429's wait, a network that
    // hesitates): the message after it waits in its chat's lane, already confirmed at Telegram.
    const release = tg.holdNext('sendMessage', LANE_CHAT);
    u.sendsSticker();
    await tg.waitFor(() => tg.receiving.includes('sendMessage'));
    u.says('behind the <sticker>');
    const id = Number(tg.updateLog.at(-1)?.update_id);
    await tg.waitFor(() => tg.polling.confirmed >= id);
    await first.stop('SIGKILL');
    release();

    await start();
    const told = await tg.waitFor(
      () => tg.botMessages(LANE_CHAT).find((m) => /before it finished answering/.test(m.text)),
      { timeoutMs: 30_000 },
    );
    // The message alone (escaped), not the sticker, which asked nothing.
    expect(told.text).toBe(
      '⚙️ [proxy] brainstem restarted (a crash?) before it finished answering “behind the <sticker>”: that answer will not come. Send it again.',
    );
    // Told, not answered: Telegram does not send it again, and brainstem asked no brain about it.
    u.says('after');
    await tg.waitFor(() => tg.botMessages(LANE_CHAT).find((m) => m.text === 'echo: after'));
    expect(asked('behind the <sticker>')).toHaveLength(0);
  });
});

/** A chat whose answer was sent while the fetch confirming its message failed. */
const UNCONFIRMED_CHAT = 119;

describe('a crash after an answer whose message Telegram never heard confirmed', () => {
  it('does not answer the message again when Telegram sends it again', async () => {
    // Ids far above where they start again below, as Telegram picks them (see the end).
    tg.restartUpdateIds(1_000_000);
    const first = await start();
    const u = tg.user(UNCONFIRMED_CHAT);
    u.says('settled');
    await tg.waitFor(() => tg.botMessages(UNCONFIRMED_CHAT).find((m) => m.text === 'echo: settled'));
    await tg.waitFor(() => tg.polling.confirmed >= Number(tg.updateLog.at(-1)?.update_id));
    // The fetch after the one that brings the message (its offset confirms it) never reaches Telegram.
    tg.dropNext('getUpdates', 1);
    u.says('answer me once');
    const id = Number(tg.updateLog.at(-1)?.update_id);
    await tg.waitFor(() => tg.botMessages(UNCONFIRMED_CHAT).find((m) => m.text === 'echo: answer me once'));
    expect(tg.polling.confirmed).toBeLessThan(id);
    await first.stop('SIGKILL');

    const second = await start();
    u.says('after');
    await tg.waitFor(() => tg.botMessages(UNCONFIRMED_CHAT).find((m) => m.text === 'echo: after'));
    expect(asked('answer me once')).toHaveLength(1);
    expect(tg.botMessages(UNCONFIRMED_CHAT).filter((m) => m.text === 'echo: answer me once')).toHaveLength(1);

    // Telegram's ids start again lower (a week without updates): the place kept is past them, and
    // what comes is answered all the same, once.
    expect(await second.stop('SIGTERM')).toBe(0);
    tg.restartUpdateIds(1);
    await start();
    u.says('lower ids');
    await tg.waitFor(() => tg.botMessages(UNCONFIRMED_CHAT).find((m) => m.text === 'echo: lower ids'));
    u.says('and on');
    await tg.waitFor(() => tg.botMessages(UNCONFIRMED_CHAT).find((m) => m.text === 'echo: and on'));
    expect([asked('lower ids'), asked('and on')].map((r) => r.length)).toEqual([1, 1]);
  });
});

/** A chat of its own for the database an older version left. */
const OLD_CHAT = 117;

describe('a crash under the version whose migration 13 had no kind of turn (92c81cc)', () => {
  it('tells the chat the answer that crash cut, and records and ends the turns after it', async () => {
    // The data dir as that version left it: migration 13 as it first shipped, and the turn a crash cut.
    const old = await mkdtemp(path.join(tmpdir(), 'bst-tg-crash-13-'));
    mkdirSync(path.join(old, 'data'));
    const db = new Sqlite(path.join(old, 'data', 'brainstem.sqlite'));
    for (const m of migrations.filter((x) => x.version <= 12)) db.exec(m.sql);
    db.exec(`
      CREATE TABLE telegram_turns (
        key TEXT PRIMARY KEY,
        chat_id INTEGER NOT NULL,
        topic_id INTEGER,
        lang TEXT NOT NULL,
        said TEXT NOT NULL,
        ts INTEGER NOT NULL
      );
    `);
    db.pragma('user_version = 13');
    db.prepare(
      "INSERT INTO telegram_turns (key, chat_id, topic_id, lang, said, ts) VALUES ('k', ?, NULL, 'en', 'cut by the old version', 1)",
    ).run(OLD_CHAT);
    db.close();
    const h = await startHarness({ tg, llama, dir: old });
    try {
      const told = await tg.waitFor(() =>
        tg.botMessages(OLD_CHAT).find((m) => /before it finished answering/.test(m.text)),
      );
      expect(told.text).toContain('“cut by the old version”');
      tg.user(OLD_CHAT).says('after the upgrade');
      await tg.waitFor(() => tg.botMessages(OLD_CHAT).find((m) => m.text === 'echo: after the upgrade'));
      // The turn was recorded and ended: nothing is left for the next start to tell.
      const state = new Sqlite(path.join(old, 'data', 'brainstem.sqlite'), { readonly: true });
      await tg.waitFor(
        () => (state.prepare('SELECT count(*) AS n FROM telegram_turns').get() as { n: number }).n === 0,
      );
      state.close();
      const sqliteErrors = h.logs.filter(
        (l) => (l.err as { type?: string } | undefined)?.type === 'SqliteError',
      );
      expect(sqliteErrors.map((l) => l.msg)).toEqual([]);
    } finally {
      await h.close();
      await rm(old, { recursive: true, force: true });
    }
  });
});

/** Chats whose answer (or result) Telegram had when brainstem was killed, before it ended the turn. */
const FILE_CHAT = 112;
const RESULT_CHAT = 113;
const FAILED_CHAT = 114;

describe('a crash once the answer has come, before brainstem recorded the turn as ended', () => {
  it('does not tell the chat the answer will not come when only a file of it was on its way: the file comes with the next answer', async () => {
    const first = await start();
    const u = tg.user(FILE_CHAT);
    u.says('with a file');
    await tg.waitFor(() => tg.botMessages(FILE_CHAT).find((m) => m.text === 'Here is your file.'));
    const outbox = chatOutbox(path.join(dir, 'data'), FILE_CHAT, undefined);
    mkdirSync(outbox, { recursive: true });
    writeFileSync(path.join(outbox, 'report.txt'), 'the report');
    const reached = tg.holdNext('sendDocument', FILE_CHAT);
    fileDone();
    // The answer's text is all there; its file is on its way when brainstem is killed.
    await tg.waitFor(() => (tg.receiving.includes('sendDocument') ? true : undefined));
    await first.stop('SIGKILL');
    reached();

    await start();
    u.says('after the file');
    await tg.waitFor(() => tg.botMessages(FILE_CHAT).find((m) => m.text === 'echo: after the file'));
    // Before, the chat was told "that answer will not come. Send it again" under the answer it had.
    expect(tg.botMessages(FILE_CHAT).filter((m) => /brainstem restarted/.test(m.text))).toEqual([]);
    expect(tg.botMessages(FILE_CHAT).filter((m) => m.document?.fileName === 'report.txt')).toHaveLength(1);
  });

  it("says a tool run's result may have come, not that it will not, when Telegram had it and brainstem had not heard so", async () => {
    const first = await start();
    const u = tg.user(RESULT_CHAT);
    // The result is the last edit of the run's message; Telegram shows it, its answer never comes back.
    const edits = tg.callsOf('editMessageText', RESULT_CHAT).length;
    const answered = tg.holdAnswerOf('editMessageText', RESULT_CHAT);
    u.says('quick');
    await tg.waitFor(() =>
      tg
        .callsOf('editMessageText', RESULT_CHAT)
        .slice(edits)
        .find((c) => /quick result/.test(String(c.params.text)) && !/Running|⏳/.test(String(c.params.text))),
    );
    await first.stop('SIGKILL');
    answered();

    await start();
    const told = await tg.waitFor(
      () => tg.botMessages(RESULT_CHAT).find((m) => /brainstem restarted/.test(m.text)),
      { timeoutMs: 30_000 },
    );
    expect(told.text).toBe(
      '⚙️ [proxy] brainstem restarted (a crash?) as it sent the result of make quick: the run ended, but its result may not have arrived in full. Check before running it again.',
    );
  });

  it('says an answer may have come, not that it will not, when Telegram had its final text and brainstem had not heard so', async () => {
    const first = await start();
    const u = tg.user(FAILED_CHAT);
    // The brain refuses: the final text (saying so) is the answer's only message.
    const answered = tg.holdAnswerOf('sendMessage', FAILED_CHAT);
    u.says('refused');
    await tg.waitFor(() => tg.botMessages(FAILED_CHAT).find((m) => /the fake refuses this one/.test(m.text)));
    await first.stop('SIGKILL');
    answered();

    await start();
    const told = await tg.waitFor(
      () => tg.botMessages(FAILED_CHAT).find((m) => /brainstem restarted/.test(m.text)),
      { timeoutMs: 30_000 },
    );
    expect(told.text).toBe(
      '⚙️ [proxy] brainstem restarted (a crash?) as it sent its answer to “refused”: if it did not arrive in full, send it again.',
    );
  });
});
