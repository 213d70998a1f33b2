import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import type { ConfigFile } from '../src/config.js';
import { html } from '../src/html.js';
import { type FakeLlama, loadingCommand, startFakeLlama } from './fakes/llama.js';
import { type FakeTelegram, startFakeTelegram } from './fakes/telegram.js';
import { databaseLocks } from './helpers/database-lock.js';
import { llamaServerLaunchCommand } from './helpers/llama-server-launch.js';
import { type ServiceProcess, spawnService } from './helpers/process.js';
import { type Harness, harnessEnv, OWNER, startHarness } from './telegram-harness.js';

/**
 * A restart (pm2, an upgrade, a crash) in the middle of a mode switch, through
 * the Bot API emulator: brainstem stopped and started again on the same data
 * dir, the model commands real processes that load and unload fake
 * llama-servers as `systemctl` would real ones.
 */

const NOOP = [process.execPath, '-e', '0'];
const FAILS = [process.execPath, '-e', 'console.error("Unit llama-coder.service failed."); process.exit(5)'];

let tg: FakeTelegram;
let dir: string;
/** qwen's server: loaded by its start command, unloaded by its stop command. */
let qwen: FakeLlama;
/** coder's server: loading until the test says otherwise (a model that takes minutes). */
let coder: FakeLlama;
/** An Ollama on another server, for the tests that add an Ollama mode. */
let ollama: FakeLlama | undefined;
const running: Harness[] = [];
const spawned: ServiceProcess[] = [];

/**
 * brainstem on the test's data dir; coder's start command is `coderStart` (nothing by default);
 * `atListen` as startHarness's; `coderMode: false` takes the coder mode out of the config (its model stays);
 * `claudeMode` adds a Claude mode, `scribe`; `ollamaMode` a mode on `ollama`, `olla`, that starts no model.
 */
async function start(
  coderStart: string[][] = [],
  atListen?: (url: string) => void,
  { coderMode = true, claudeMode = false, ollamaMode = false } = {},
): Promise<Harness> {
  const config: ConfigFile = {
    modes: {
      qwen: { kind: 'llama', llamaModel: 'qwen', baseUrl: qwen.baseUrl, description: 'Qwen' },
      ...(coderMode
        ? { coder: { kind: 'llama', llamaModel: 'coder', baseUrl: coder.baseUrl, description: 'Coder' } }
        : {}),
      ...(claudeMode ? { scribe: { kind: 'claude', description: 'Claude' } } : {}),
      ...(ollamaMode && ollama
        ? { olla: { kind: 'llama', baseUrl: ollama.baseUrl, model: 'qwen2.5:7b', description: 'Ollama' } }
        : {}),
    },
    llama: {
      // Only the test decides when coder is loaded.
      readyTimeoutMs: 120_000,
      models: {
        qwen: { start: [loadingCommand(qwen, false)], stop: [loadingCommand(qwen, true)] },
        coder: { start: coderStart, stop: [loadingCommand(coder, true)] },
      },
    },
  };
  // A CLI whose login check never answers: a switch to the Claude mode waits for it until a stop.
  const env = claudeMode ? { CLAUDE_BIN: await waitingCli() } : undefined;
  const h = await startHarness({ tg, dir, config, atListen, env });
  running.push(h);
  return h;
}

/** A Claude CLI whose runs (its login check first) never end: only a stop, which ends them, cuts the wait. */
async function waitingCli(): Promise<string> {
  const bin = path.join(dir, 'claude-waits');
  await writeFile(bin, '#!/bin/sh\nexec sleep 600\n', { mode: 0o755 });
  return bin;
}

const loading = async (fake: FakeLlama) => (await fetch(`${fake.url}/health`)).status === 503;

const message = (chatId: number, pattern: RegExp, after = 0) =>
  tg.waitFor(
    () =>
      tg
        .botMessages(chatId)
        .slice(after)
        .find((m) => pattern.test(m.text)),
    { timeoutMs: 60_000 },
  );

/** Starts brainstem on qwen, then asks user 112 for coder and waits until that switch is under way. */
async function cutSwitchToCoder(): Promise<Harness> {
  const h = await start();
  const u = tg.user(112);
  u.says('/mode qwen');
  await message(112, /✅ Mode qwen is ready/);
  const before = tg.botMessages(112).length;
  u.says('/mode coder');
  await message(112, /Switching to coder…/, before);
  await expect.poll(() => h.service.core.switcher.underWay(), { timeout: 30_000 }).toBe('coder');
  // The swap stopped qwen: coder's start is what it waits for.
  await expect.poll(() => loading(qwen), { timeout: 30_000 }).toBe(true);
  return h;
}

/** What a usage-limit fallback leaves in a stopped brainstem's database, the local mode active. */
function leaveFallback(
  stopped: Harness,
  fallback: { from: string; to: string; since: number; resetsAt: number },
) {
  const db = new Database(path.join(stopped.service.core.config.dataDir, 'brainstem.sqlite'));
  const put = db.prepare('INSERT OR REPLACE INTO kv (key, value, updated_at) VALUES (?, ?, ?)');
  put.run('active_mode', 'local', Date.now());
  put.run('usage_limit_fallback', JSON.stringify(fallback), Date.now());
  db.close();
}

describe('a restart during a mode switch', { timeout: 120_000 }, () => {
  const locks = databaseLocks(() => path.join(dir, 'data', 'brainstem.sqlite'));
  afterEach(async () => {
    for (const h of running.splice(0)) await h.close();
    for (const p of spawned.splice(0)) await p.stop('SIGKILL');
    await rm(dir, { recursive: true, force: true });
    await tg?.close();
    await qwen?.close();
    await coder?.close();
    await ollama?.close();
    ollama = undefined;
  });

  async function fresh(): Promise<void> {
    tg = await startFakeTelegram();
    dir = await mkdtemp(path.join(tmpdir(), 'bst-switch-restart-'));
    qwen = await startFakeLlama({ loading: true });
    coder = await startFakeLlama({ loading: true });
  }

  it("says so in the switch's message, and the next start finishes the switch, then the one asked after it", async () => {
    await fresh();
    const first = await cutSwitchToCoder();
    // Another switch asked for meanwhile waits behind it: it never started.
    const queuedAt = tg.botMessages(113).length;
    tg.user(113).says('/mode qwen');
    await message(113, /Switching to qwen…/, queuedAt);
    // coder comes up while brainstem stops, as Telegram holds back (429) an edit that tells a chat how
    // the next start deals with its switch: the switch is left to that start all the same, as told.
    tg.rateLimit('editMessageText', 1, 2);
    const stopping = first.stopService();
    const held = () => tg.calls.find((c) => c.method === 'editMessageText' && c.errorCode === 429);
    await tg.waitFor(held, { timeoutMs: 30_000 });
    coder.setLoading(false);
    await stopping;
    await message(
      112,
      /⏳ brainstem is restarting in the middle of the switch to coder\. It finishes the switch once it is back/,
    );
    expect(tg.botMessages(112).map((m) => m.text)).not.toContainEqual(
      expect.stringMatching(/Switching to coder…/),
    );
    await message(
      113,
      /⏳ brainstem is restarting before the switch to qwen began\. It makes the switch once it is back, and says so\./,
      queuedAt,
    );

    // Ends of other switches the database had taken already (a crash came before the file went):
    // the switch cut, the same as one that ended but for its id, and the one queued are made all the same.
    const data = path.join(dir, 'data');
    const db = new Database(path.join(data, 'brainstem.sqlite'), { readonly: true });
    const record = db.prepare("SELECT value FROM kv WHERE key = 'switch_under_way'").pluck().get() as string;
    db.close();
    const ended = JSON.stringify({ ...JSON.parse(record), id: 'another switch' });
    const ends = path.join(data, 'brainstem.sqlite-switch-ends');
    await writeFile(ends, JSON.stringify({ cut: ended, queued: ['another queued switch'] }), { mode: 0o600 });
    const noticesAt = tg.botMessages(OWNER).length;
    const second = await start();
    const woke = await message(OWNER, /Mode coder is awake/, noticesAt);
    expect(woke.text).toMatch(/Switched from qwen in .*, finishing the switch a restart had cut\./);
    await expect(stat(ends)).rejects.toMatchObject({ code: 'ENOENT' });
    // The chat that asked (not a notify chat) is told there, as its message said it would be.
    await message(112, /✅ Mode coder is ready \(from qwen in /);
    // Then the switch asked last, as it would have run without the restart: the user ends on it.
    await message(
      OWNER,
      /Mode qwen is awake \(Qwen\)\. Switched from coder in .*, as asked before a restart\./,
      noticesAt,
    );
    await message(113, /✅ Mode qwen is ready \(from coder in /, queuedAt);
    expect(second.service.core.switcher.active().id).toBe('qwen');
    expect(await loading(coder)).toBe(true);
    tg.user(112).says('are you there?');
    await message(112, /^echo: are you there\?$/);
    // Finished: a third start has nothing to resume.
    await second.stopService();
    const third = await start();
    expect(third.logs.some((l) => l.msg === 'resuming the switch a restart cut')).toBe(false);
    expect(third.service.core.switcher.isSwitching()).toBe(false);
    expect(third.service.core.switcher.active().id).toBe('qwen');
  });

  it('a restart during /mode <the active mode>, whose model went down, still ends with the wake notice it promised', async () => {
    await fresh();
    // coder's start command does nothing the test can see: only the test decides when coder is loaded.
    const first = await start([NOOP]);
    const u = tg.user(112);
    coder.setLoading(false);
    u.says('/mode coder');
    await message(112, /✅ Mode coder is ready/);
    // A reboot or an OOM kill: coder's model is gone, brainstem still has it as loaded.
    coder.setLoading(true);
    const before = tg.botMessages(112).length;
    u.says('/mode coder');
    // Its start command ran; the switch waits for the model.
    await expect.poll(() => first.service.core.switcher.underWay(), { timeout: 30_000 }).toBe('coder');
    await first.stopService();
    const cut = await message(
      112,
      /⏳ brainstem is restarting in the middle of the switch to coder\. It finishes the switch once it is back, and says so\./,
      before,
    );
    // The model comes up while brainstem is down.
    coder.setLoading(false);
    const noticesAt = tg.botMessages(OWNER).length;
    // Telegram refuses to tell the chat that asked, at once (beyond what grammY retries itself).
    tg.failNext('sendMessage', 1, { code: 401, description: 'Unauthorized' }, 112);
    const second = await start([NOOP]);
    const woke = await message(OWNER, /Mode coder is awake/, noticesAt);
    expect(woke.text).toMatch(
      /Mode coder is awake \(Coder\)\. Its model was started again, finishing the switch a restart had cut\./,
    );
    expect(second.service.core.switcher.active().id).toBe('coder');
    expect(second.service.core.kv.get('switch_under_way')).toBeUndefined();
    // Kept as a notice for that chat: a stop before it is sent does not lose it either.
    await tg.waitFor(() =>
      second.logs.find((l) => l.msg === 'notice not delivered; will retry' && l.chatId === 112),
    );
    await second.stopService();
    await start([NOOP]);
    // The chat that asked (not a notify chat) hears it there, as its message said it would.
    const done = await message(112, /✅ Mode coder is ready/, tg.botMessages(112).indexOf(cut) + 1);
    expect(done.text).toBe('⚙️ [proxy] ✅ Mode coder is ready: its model was started again.');
  });

  it('a resumed switch that fails starts again the model the cut switch had stopped', async () => {
    await fresh();
    const first = await cutSwitchToCoder();
    // Asked back to qwen meanwhile: where the failed switch leaves the user anyway.
    const queuedAt = tg.botMessages(113).length;
    tg.user(113).says('/mode qwen');
    await message(113, /Switching to qwen…/, queuedAt);
    await first.stopService();
    // The next start finds coder's unit broken.
    const noticesAt = tg.botMessages(OWNER).length;
    const second = await start([FAILS]);
    const failed = await message(OWNER, /Switch to coder failed/, noticesAt);
    expect(failed.text).toMatch(/exit code 5/);
    expect(failed.text).toMatch(/model qwen was started again\. Still on qwen\.$/);
    expect(await loading(qwen)).toBe(false);
    expect(second.service.core.switcher.active().id).toBe('qwen');
    // The switch queued behind the cut one has nothing left to do, and its chat, told it would hear, hears so.
    await message(113, /Already in mode qwen/, queuedAt);
    tg.user(114).says('still there?');
    await message(114, /^echo: still there\?$/);
  });

  it('a cut switch whose mode left the config by the next start stops what it started, starts again the model it had stopped, and tells the chat that asked', async () => {
    await fresh();
    const first = await cutSwitchToCoder();
    await first.stopService();
    // coder's server came up after the stop (its unit went on starting): nothing uses it now.
    coder.setLoading(false);
    const askedAt = tg.botMessages(112).length;
    const second = await start([], undefined, { coderMode: false });
    const told = await message(112, /❌ Switch to coder failed/, askedAt);
    expect(told.text).toMatch(
      /mode coder is no longer configured; model qwen was started again\. Still on qwen\.$/,
    );
    expect(second.service.core.switcher.active().id).toBe('qwen');
    expect(await loading(qwen)).toBe(false);
    expect(await loading(coder)).toBe(true);
    tg.user(114).says('still there?');
    await message(114, /^echo: still there\?$/);
  });

  it('a cut switch to a Claude mode that left the config by the next start starts no model again: it stopped none', async () => {
    await fresh();
    const first = await start([], undefined, { claudeMode: true });
    const u = tg.user(112);
    u.says('/mode qwen');
    await message(112, /✅ Mode qwen is ready/);
    u.says('/mode scribe');
    await expect.poll(() => first.service.core.switcher.underWay(), { timeout: 30_000 }).toBe('scribe');
    // Cut: the stop ends the login check, and the wait for it.
    await first.stopService();
    const askedAt = tg.botMessages(112).length;
    const second = await start();
    const told = await message(112, /❌ Switch to scribe failed/, askedAt);
    expect(told.text).toMatch(/mode scribe is no longer configured\. Still on qwen\.$/);
    expect(second.service.core.switcher.active().id).toBe('qwen');
  });

  it('a cut switch to an Ollama mode that left the config by the next start starts again the llama-server model it had stopped', async () => {
    await fresh();
    ollama = await startFakeLlama({ ollama: { models: ['qwen2.5:7b'] } });
    const first = await start([], undefined, { ollamaMode: true });
    const u = tg.user(116);
    u.says('/mode qwen');
    await message(116, /✅ Mode qwen is ready/);
    // Ollama's load of its model never ends: the switch is under way when brainstem stops.
    ollama.holdLoads(new Promise<void>(() => {}));
    u.says('/mode olla');
    await ollama.arrived((r) => r.path === '/api/generate');
    // Ollama's mode is on another server: the switch stopped qwen first, so that Ollama had the GPU.
    expect(await loading(qwen)).toBe(true);
    await first.stopService();
    ollama.holdLoads(undefined);
    const askedAt = tg.botMessages(116).length;
    const second = await start();
    const told = await message(116, /❌ Switch to olla failed/, askedAt);
    expect(told.text).toMatch(
      /mode olla is no longer configured; model qwen was started again\. Still on qwen\.$/,
    );
    expect(second.service.core.switcher.active().id).toBe('qwen');
    expect(await loading(qwen)).toBe(false);
    tg.user(117).says('still there?');
    await message(117, /^echo: still there\?$/);
  });

  it('a cut switch from an Ollama mode whose target left the config by the next start stops the model it started, and loads the Ollama model back', async () => {
    await fresh();
    ollama = await startFakeLlama({ ollama: { models: ['qwen2.5:7b'] } });
    const first = await start([], undefined, { ollamaMode: true });
    const u = tg.user(119);
    u.says('/mode olla');
    await message(119, /✅ Mode olla is ready/);
    u.says('/mode coder');
    // Ollama's model unloaded, coder's start ran (none here): the switch waits for coder to load.
    await expect.poll(() => first.service.core.switcher.underWay(), { timeout: 30_000 }).toBe('coder');
    await expect.poll(() => ollama?.unloads ?? [], { timeout: 30_000 }).toEqual(['qwen2.5:7b']);
    await first.stopService();
    // coder's server came up after the stop (its unit went on starting): it holds the GPU Ollama needs.
    coder.setLoading(false);
    const askedAt = tg.botMessages(119).length;
    const second = await start([], undefined, { coderMode: false, ollamaMode: true });
    const told = await message(119, /❌ Switch to coder failed/, askedAt);
    expect(told.text).toMatch(
      /mode coder is no longer configured; model coder was stopped\. Still on olla\.$/,
    );
    expect(second.service.core.switcher.active().id).toBe('olla');
    expect(await loading(coder)).toBe(true);
    // The mode the user stays on answers its next message without the whole load.
    await tg.waitFor(() => second.logs.find((l) => l.msg === 'brain olla: its model is loaded'), {
      timeoutMs: 30_000,
    });
    expect([...(ollama?.loaded ?? [])]).toEqual(['qwen2.5:7b']);
  });

  it('a cut switch to a mode that starts no model, left by an older version that did not say whether it stopped one, starts the model again only if its mode does not answer', async () => {
    await fresh();
    const leaveCut = (stopped: Harness) => {
      // What a version before `vacates` left for a cut switch to an Ollama mode (model null).
      const db = new Database(path.join(stopped.service.core.config.dataDir, 'brainstem.sqlite'));
      const cut = {
        to: 'olla',
        loaded: 'qwen',
        model: null,
        trigger: { source: 'command', by: '118', chat: { id: 118 } },
      };
      db.prepare('INSERT OR REPLACE INTO kv (key, value, updated_at) VALUES (?, ?, ?)').run(
        'switch_under_way',
        JSON.stringify(cut),
        Date.now(),
      );
      db.close();
    };
    const starts = () =>
      qwen.requests.filter(
        (r) => r.path === '/_fake/loading' && (r.body as { loading?: unknown }).loading === false,
      ).length;
    const first = await start();
    tg.user(118).says('/mode qwen');
    await message(118, /✅ Mode qwen is ready/);
    await first.stopService();
    leaveCut(first);
    // Its switch had run qwen's stop commands.
    qwen.setLoading(true);
    let askedAt = tg.botMessages(118).length;
    const second = await start();
    let told = await message(118, /❌ Switch to olla failed/, askedAt);
    expect(told.text).toMatch(
      /mode olla is no longer configured; model qwen was started again\. Still on qwen\.$/,
    );
    expect(await loading(qwen)).toBe(false);
    await second.stopService();
    // Its switch had not (a Claude target): qwen answers, and is not started twice.
    leaveCut(second);
    const startsBefore = starts();
    askedAt = tg.botMessages(118).length;
    await start();
    told = await message(118, /❌ Switch to olla failed/, askedAt);
    expect(told.text).toMatch(/mode olla is no longer configured\. Still on qwen\.$/);
    expect(starts()).toBe(startsBefore);
  });

  it('a crash while a switch runs the stop commands of the model it leaves starts no model already up: its record says they had not run', async () => {
    await fresh();
    // qwen is up, as at boot; its start command, a raw llama-server launch, fails on a port taken.
    qwen.setLoading(false);
    ollama = await startFakeLlama({ ollama: { models: ['qwen2.5:7b'] } });
    const launch = llamaServerLaunchCommand(qwen);
    // Tells the test it began, then runs until brainstem, its parent, is gone.
    const blocks = `const parent = process.ppid; fetch(${JSON.stringify(`${qwen.url}/_fake/stop-began`)}).finally(() => setInterval(() => { if (process.ppid !== parent) process.exit(0); }, 100))`;
    const qwenMode = {
      kind: 'llama' as const,
      llamaModel: 'qwen',
      baseUrl: qwen.baseUrl,
      description: 'Qwen',
    };
    const file = path.join(dir, 'brainstem.json');
    const config: ConfigFile = {
      defaultMode: 'qwen',
      server: { port: 0, modeTag: false },
      modes: {
        qwen: qwenMode,
        olla: { kind: 'llama', baseUrl: ollama.baseUrl, model: 'qwen2.5:7b', description: 'Ollama' },
      },
      llama: {
        pollIntervalMs: 50,
        models: {
          qwen: {
            start: [launch],
            stop: [[process.execPath, '-e', blocks], loadingCommand(qwen, true)],
          },
        },
      },
      telegram: { notifyChats: [OWNER] },
    };
    await writeFile(file, JSON.stringify(config));
    const first = await spawnService(harnessEnv(dir, file, tg));
    spawned.push(first);
    // The switch to Ollama's mode, on another server, stops qwen first: killed in its stop commands.
    tg.user(115).says('/mode olla');
    await qwen.arrived((r) => r.path === '/_fake/stop-began');
    await first.stop('SIGKILL');
    expect(await loading(qwen)).toBe(false);
    // The next start, Ollama's mode gone from the config: the cut switch is not made.
    const askedAt = tg.botMessages(115).length;
    const second = await startHarness({
      tg,
      dir,
      config: {
        defaultMode: 'qwen',
        modes: { qwen: qwenMode },
        llama: {
          models: { qwen: { start: [launch], stop: [loadingCommand(qwen, true)] } },
        },
      },
    });
    running.push(second);
    const told = await message(115, /❌ Switch to olla failed/, askedAt);
    expect(told.text).toMatch(/mode olla is no longer configured\. Still on qwen\.$/);
    expect(second.service.core.switcher.active().id).toBe('qwen');
    expect(await loading(qwen)).toBe(false);
    tg.user(115).says('still there?');
    await message(115, /^echo: still there\?$/);
  });

  it("leaves a fallback's cut switch to its watcher, which decides again (and arms the way back)", async () => {
    await fresh();
    const first = await start();
    await first.stopService();
    // As a credit fallback's switch leaves it when a restart cuts it.
    const db = new Database(path.join(first.service.core.config.dataDir, 'brainstem.sqlite'));
    const cut = { to: 'coder', trigger: { source: 'fallback', by: 'credit', onlyFrom: 'local' } };
    db.prepare('INSERT INTO kv (key, value, updated_at) VALUES (?, ?, ?)').run(
      'switch_under_way',
      JSON.stringify(cut),
      Date.now(),
    );
    db.close();
    const second = await start();
    expect(
      second.logs.some((l) => l.msg === 'a fallback switch was cut by a restart: its watcher decides again'),
    ).toBe(true);
    expect(second.service.core.switcher.isSwitching()).toBe(false);
    expect(second.service.core.switcher.active().id).toBe('local');
    expect(second.service.core.kv.get('switch_under_way')).toBeUndefined();
  });

  it("finishes at the next start a fallback's switch back that a restart cut: the user is not left on the fallback", async () => {
    await fresh();
    const first = await start();
    await first.stopService();
    // As the usage limit's fallback leaves it: switched from coder to local, the reset due in a moment.
    const now = Date.now();
    leaveFallback(first, { from: 'coder', to: 'local', since: now - 60_000, resetsAt: now + 1000 });
    // The switch back waits for coder, which is still loading: a restart cuts it.
    const second = await start();
    await expect.poll(() => second.service.core.switcher.underWay(), { timeout: 30_000 }).toBe('coder');
    await second.stopService();
    coder.setLoading(false);
    const noticesAt = tg.botMessages(OWNER).length;
    const third = await start();
    await message(OWNER, /usage limit has reset: back to coder/, noticesAt);
    expect(third.service.core.switcher.active().id).toBe('coder');
  });

  it('a way back that is moot while another process holds the database is forgotten once the lock is gone, and nothing crashes', async () => {
    await fresh();
    const first = await start();
    await first.stopService();
    // A usage-limit fallback to qwen whose mode was changed since (by a restart on another default):
    // at the reset the switch back is moot, and only its state is to be forgotten.
    // Passed already: the switch back is due as soon as the next start has read it.
    leaveFallback(first, { from: 'coder', to: 'qwen', since: Date.now(), resetsAt: Date.now() - 1000 });
    // Run from a timer, a rejection would bring brainstem down (Node's default).
    const unhandled: unknown[] = [];
    const onUnhandled = (err: unknown) => unhandled.push(err);
    process.on('unhandledRejection', onUnhandled);
    try {
      let other: Database.Database | undefined;
      /** The way back as the database held it when the lock was taken. */
      let atLock: unknown;
      // The core arms the switch back on a timer; the start reaches its listen without the event
      // loop turning, so a lock taken there is held before that timer can run.
      const second = await start([], () => {
        other = new Database(path.join(first.service.core.config.dataDir, 'brainstem.sqlite'), {
          timeout: 0,
        });
        other.exec('BEGIN IMMEDIATE');
        atLock = other.prepare('SELECT value FROM kv WHERE key = ?').pluck().get('usage_limit_fallback');
      });
      try {
        expect(atLock, 'the lock is taken before the switch back is handled').toMatch(/"to":"qwen"/);
        await expect
          .poll(
            () => second.logs.some((l) => l.msg === 'could not forget the switch back: trying again shortly'),
            {
              timeout: 30_000,
            },
          )
          .toBe(true);
      } finally {
        other?.exec('ROLLBACK');
        other?.close();
      }
      await expect
        .poll(() => second.service.core.kv.get('usage_limit_fallback'), { timeout: 30_000 })
        .toBe('');
      expect(second.service.core.switcher.active().id).toBe('local');
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
    expect(unhandled).toEqual([]);
  });

  it('switches that ended while another process held the database are not made again at the next start', async () => {
    await fresh();
    const first = await cutSwitchToCoder();
    const queuedAt = tg.botMessages(113).length;
    tg.user(113).says('/mode qwen');
    await message(113, /Switching to qwen…/, queuedAt);
    expect(first.service.core.kv.get('switches_queued')).toMatch(/"to":"qwen"/);
    // Held while coder loads: neither the switch under way nor the one queued behind it can be cleared when it ends.
    const lock = locks.hold();
    coder.setLoading(false);
    // Coder's switch could not save the mode it loaded: qwen, which its swap had stopped, runs again, so
    // "still on qwen" holds, and the switch to qwen queued behind it finds qwen there.
    await message(
      112,
      /❌ Switch to coder failed: it broke off \(database is locked\); model qwen was started again\. Still on qwen\.$/,
    );
    expect(await loading(qwen)).toBe(false);
    await message(113, /^⚙️ \[proxy\] Already in mode qwen\.$/, queuedAt);
    locks.release(lock);
    const written = 'the state database takes writes again: the kept writes are written';
    await expect.poll(() => first.logs.some((l) => l.msg === written), { timeout: 30_000 }).toBe(true);
    // The notify chats' notice was recorded with the rest: nothing waits in the file for the next start.
    await message(OWNER, /Switch to coder failed after .*: it broke off \(database is locked\)/);
    const ends = path.join(first.service.core.config.dataDir, 'brainstem.sqlite-switch-ends');
    await expect(stat(ends)).rejects.toMatchObject({ code: 'ENOENT' });
    await first.stopService();
    const second = await start();
    const logged = (msg: string) => second.logs.some((l) => l.msg === msg);
    expect(logged('resuming the switch a restart cut')).toBe(false);
    expect(logged('making a switch a restart left queued')).toBe(false);
    expect(second.service.core.kv.get('switch_under_way')).toBeUndefined();
    expect(second.service.core.kv.get('switches_queued')).toBeUndefined();
    expect(second.service.core.switcher.isSwitching()).toBe(false);
  });

  it('a resumed switch cut again is not tried a third time, and the owner is told', async () => {
    await fresh();
    const first = await cutSwitchToCoder();
    await first.stopService();
    const second = await start();
    await expect.poll(() => second.service.core.switcher.underWay(), { timeout: 30_000 }).toBe('coder');
    await second.stopService();
    const noticesAt = tg.botMessages(OWNER).length;
    const third = await start();
    const told = await message(OWNER, /Switch to coder failed: /, noticesAt);
    // qwen, whose model the cut switch had stopped, is started again: the mode the owner is told they are on answers.
    expect(told.text).toMatch(
      /brainstem restarted during it twice, so it did not try a third time \(send \/mode coder to try again\); model qwen was started again\. Still on qwen\.$/,
    );
    await message(112, /❌ Switch to coder failed: brainstem restarted during it twice/);
    expect(third.service.core.switcher.isSwitching()).toBe(false);
    expect(third.service.core.switcher.active().id).toBe('qwen');
    expect(await loading(qwen)).toBe(false);
    tg.user(115).says('back?');
    await message(115, /^echo: back\?$/);
  });

  it('a notice delivered while another process holds the database is not sent again after a stop that came before the lock went', async () => {
    await fresh();
    const first = await start();
    await first.service.core.notifier.flush();
    first.service.core.notifier.notify({ kind: 'upgrade', text: html`delivered under a lock` });
    // Recorded: then a sqlite3 shell (a backup) takes the write lock before the notice is marked sent.
    const held = locks.hold();
    await message(OWNER, /delivered under a lock/);
    // Its delivery is over once a flush queued behind it is: its mark waits for the lock.
    await first.service.core.notifier.flush();
    await first.stopService();
    locks.release(held);
    // A power loss took the last commits (synchronous=NORMAL) but not the synced file: a notice
    // recorded after this one, delivered, its mark kept there, is gone from the database, and one
    // the file keeps for the next start takes its id. That one is not taken for delivered.
    const file = path.join(dir, 'data', 'brainstem.sqlite-switch-ends');
    const ends = JSON.parse(await readFile(file, 'utf8')) as { sent: number[]; notices?: unknown[] };
    expect(ends.sent).toHaveLength(1);
    const lost = (ends.sent[0] ?? 0) + 1;
    const kept = {
      ts: Date.now(),
      kind: 'upgrade',
      text: '⚙️ [proxy] kept for the next start',
      dedupeKey: 'k1',
    };
    await writeFile(file, JSON.stringify({ ...ends, notices: [kept], sent: [...ends.sent, lost] }));
    const second = await start();
    await message(OWNER, /kept for the next start/);
    await second.service.core.notifier.flush();
    expect(tg.botMessages(OWNER).filter((m) => /delivered under a lock/.test(m.text))).toHaveLength(1);
    expect(second.service.core.notifier.pending()).toEqual([]);
    await expect(stat(path.join(dir, 'data', 'brainstem.sqlite-switch-ends'))).rejects.toMatchObject({
      code: 'ENOENT',
    });
  });

  /** brainstem as pm2 runs it, its own process, on the test's data dir, qwen active. */
  async function spawnOn(): Promise<ServiceProcess> {
    const file = path.join(dir, 'brainstem.json');
    const config: ConfigFile = {
      defaultMode: 'qwen',
      server: { port: 0, modeTag: false },
      modes: {
        qwen: { kind: 'llama', llamaModel: 'qwen', baseUrl: qwen.baseUrl, description: 'Qwen' },
        coder: { kind: 'llama', llamaModel: 'coder', baseUrl: coder.baseUrl, description: 'Coder' },
      },
      // Only the test decides which server answers. qwen's stop command (which leaves it up) tells the test
      // that a swap is past its writes but the mode's; no node process is started for it.
      llama: {
        pollIntervalMs: 50,
        readyTimeoutMs: 120_000,
        models: { qwen: { stop: [['true']] }, coder: {} },
      },
      telegram: { notifyChats: [OWNER] },
    };
    await writeFile(file, JSON.stringify(config));
    const p = await spawnService(harnessEnv(dir, file, tg));
    spawned.push(p);
    return p;
  }

  /**
   * `user` asks for coder; once the switch is under way another process takes the database, and
   * coder comes up: the switch cannot save its mode, starts qwen again and ends, its end kept in
   * memory behind the lock; so does the record that a switch `queuedBy` asked for behind it (to qwen,
   * where it finds the user) began. Returns the lock, still held.
   */
  async function failUnderLock(
    p: ServiceProcess,
    user: number,
    queuedBy?: number,
  ): Promise<Database.Database> {
    coder.setLoading(true);
    const ran = () => p.logs.filter((l) => l.includes('"msg":"llama swap command ran"')).length;
    const stopped = ran();
    const before = tg.botMessages(user).length;
    tg.user(user).says('/mode coder');
    // qwen's stop command ran: the switch's record is written, and it waits for coder.
    await expect.poll(ran, { timeout: 30_000 }).toBe(stopped + 1);
    if (queuedBy !== undefined) {
      tg.user(queuedBy).says('/mode qwen');
      await message(queuedBy, /Switching to qwen…/);
    }
    const lock = locks.hold();
    coder.setLoading(false);
    await message(
      user,
      /❌ Switch to coder failed: it broke off \(database is locked\); model qwen was started again\. Still on qwen\.$/,
      before,
    );
    if (queuedBy !== undefined) await message(queuedBy, /Already in mode qwen/);
    return lock;
  }

  /** Asks for qwen, the mode `user` was told they are still on: already there, not behind a switch made again. */
  async function stillOnQwen(user: number): Promise<void> {
    const before = tg.botMessages(user).length;
    tg.user(user).says('/mode qwen');
    const answer = await message(user, /Already in mode|Switching to|Mode qwen is ready|failed/, before);
    expect(answer.text).toBe('⚙️ [proxy] Already in mode qwen.');
    expect(tg.botMessages(OWNER).map((m) => m.text)).not.toContainEqual(
      expect.stringMatching(/Mode coder is awake/),
    );
  }

  it('a switch that ended while another process held the database is not made again after a stop (SIGTERM) or a crash (SIGKILL) that came before the lock went, and the notify chats hear how it ended', async () => {
    await fresh();
    qwen.setLoading(false);
    const first = await spawnOn();
    const held = await failUnderLock(first, 112, 114);
    const failed = /Switch to <b>coder<\/b> failed after .*: it broke off \(database is locked\)/;
    const told = () => tg.botMessages(OWNER).filter((m) => /Switch to coder failed/.test(m.text));
    // The chat that asked was told; the notify chats' notice waits for the lock.
    expect(told()).toEqual([]);
    // pm2 stops brainstem while the lock is held: the stop cannot write the ends of the switches nor
    // their notice either, and leaves them next to the database, readable by brainstem's user only.
    expect(await first.stop('SIGTERM')).toBe(0);
    const ends = path.join(dir, 'data', 'brainstem.sqlite-switch-ends');
    const kept = async () => JSON.parse(await readFile(ends, 'utf8'));
    expect((await stat(ends)).mode & 0o777).toBe(0o600);
    expect(await kept()).toEqual({
      cut: expect.stringMatching(/"to":"coder"/),
      queued: [expect.any(String)],
      notices: [expect.objectContaining({ kind: 'switch_failed', text: expect.stringMatching(failed) })],
      sent: [],
    });
    // Its last lines may come after its exit: waited for.
    await first.waitForLog((l) =>
      l.includes(`the end of the switch under way waits in ${ends} for the next start`),
    );
    locks.release(held);
    const second = await spawnOn();
    // The notify chat hears at this start how the switch ended, once.
    await message(OWNER, /Switch to coder failed after .*: it broke off \(database is locked\)/);
    await stillOnQwen(112);
    expect(told()).toHaveLength(1);
    // The lock gone, the start wrote the ends to the database, and the file went.
    await expect(stat(ends)).rejects.toMatchObject({ code: 'ENOENT' });
    const db = new Database(path.join(dir, 'data', 'brainstem.sqlite'), { readonly: true });
    const record = (key: string) => db.prepare('SELECT value FROM kv WHERE key = ?').pluck().get(key);
    expect([record('switch_under_way'), record('switches_queued')]).toEqual([undefined, undefined]);
    db.close();
    // A crash while the lock is held: the same ends live on in the file.
    const again = await failUnderLock(second, 113);
    await second.stop('SIGKILL');
    expect(await kept()).toEqual({
      cut: expect.stringMatching(/"to":"coder"/),
      queued: [],
      notices: [expect.objectContaining({ kind: 'switch_failed', text: expect.stringMatching(failed) })],
      sent: [],
    });
    locks.release(again);
    // The switch queued behind the first was not made again either: its chat heard of it once.
    expect(tg.botMessages(114).filter((m) => /Already in mode qwen/.test(m.text))).toHaveLength(1);
    expect(told()).toHaveLength(1);
  });
});
