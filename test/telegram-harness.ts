/**
 * brainstem started in-process for the Telegram tests: a temp data dir, a
 * config file written from the test's overrides, the Bot API emulator as
 * Telegram, the fake llama-server as the `local` brain, and the log kept in
 * memory so a test can read it.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type ConfigFile, loadConfig } from '../src/config.js';
import type { PartChoice } from '../src/service.js';
import { type FakeLlama, startFakeLlama } from './fakes/llama.js';
import { type FakeTelegram, type FakeUser, startFakeTelegram } from './fakes/telegram.js';
import { type LogRecord, recordingLogger } from './helpers/logs.js';
import { CLAUDE_BIN, type StartHooks, startWired, type WiredService } from './helpers/service.js';

/** The owner gets the notices; the other allowed users give each test a chat of its own. */
export const OWNER = 111;
export const USERS = [111, 112, 113, 114, 115, 116, 117, 118, 119];

export interface HarnessOptions {
  /** Merged over the base config (local mode on the fake llama, fast edits). */
  config?: ConfigFile;
  env?: Record<string, string>;
  /** Default: the bot alone. */
  parts?: PartChoice;
  /** Reuse these instead of starting new ones (a restart on the same data dir). */
  tg?: FakeTelegram;
  llama?: FakeLlama;
  dir?: string;
  /** As startWired's hooks; beforeBot also gets the log so far. */
  atListen?: StartHooks['atListen'];
  beforeBot?: (url: string, logs: Record<string, unknown>[]) => Promise<void>;
}

export interface Harness {
  tg: FakeTelegram;
  llama: FakeLlama;
  service: WiredService;
  dir: string;
  logs: Record<string, unknown>[];
  /** Stops the service only (the fakes and the dir stay, for a restart). */
  stopService(): Promise<void>;
  /** Stops everything and removes the temp dir. */
  close(): Promise<void>;
}

/**
 * The environment of a brainstem on the emulator with its home, config file and data in `dir`
 * (in this process, or spawned: switch-restart.test.ts), the allowed users USERS.
 */
export function harnessEnv(dir: string, configFile: string, tg: FakeTelegram): Record<string, string> {
  return {
    HOME: dir,
    BRAINSTEM_CONFIG: configFile,
    BRAINSTEM_DATA_DIR: path.join(dir, 'data'),
    TELEGRAM_BOT_TOKEN: tg.token,
    TELEGRAM_API_ROOT: tg.apiRoot,
    TELEGRAM_ALLOWED_USERS: USERS.join(','),
    // The default Claude modes exist; a missing binary makes their probes fail fast.
    CLAUDE_BIN: path.join(dir, 'no-claude'),
    CLAUDE_CREDENTIALS_FILE: path.join(dir, 'credentials.json'),
  };
}

export async function startHarness(opts: HarnessOptions = {}): Promise<Harness> {
  const dir = opts.dir ?? (await mkdtemp(path.join(tmpdir(), 'brainstem-tg-')));
  const tg = opts.tg ?? (await startFakeTelegram());
  const llama = opts.llama ?? (await startFakeLlama({ chunkDelayMs: 0 }));
  const base: ConfigFile = {
    defaultMode: 'local',
    server: { port: 0, modeTag: false },
    modes: { local: { kind: 'llama', description: 'Fake local model' } },
    llama: { baseUrl: llama.baseUrl, pollIntervalMs: 50, readyTimeoutMs: 10_000 },
    // Edit-in-place by default here, so a test sees every state of a streamed message (telegram-drafts tests drafts).
    telegram: { streaming: 'edit', editIntervalMs: 150, notifyChats: [OWNER] },
  };
  const file = deepMerge(base, opts.config ?? {});
  await writeFile(path.join(dir, 'brainstem.json'), JSON.stringify(file));
  const config = loadConfig({ ...harnessEnv(dir, path.join(dir, 'brainstem.json'), tg), ...opts.env }, dir);
  const { logger, logs } = recordingLogger();
  const { atListen, beforeBot } = opts;
  const service = await startWired(config, logger, opts.parts ?? { bot: true }, {
    atListen,
    beforeBot: beforeBot && ((url) => beforeBot(url, logs)),
  });
  let stopped = false;
  const stopService = async () => {
    if (stopped) return;
    stopped = true;
    await service.stop(2000);
  };
  return {
    tg,
    llama,
    service,
    dir,
    logs,
    stopService,
    async close() {
      await stopService();
      if (!opts.tg) await tg.close();
      if (!opts.llama) await llama.close();
      if (!opts.dir) await rm(dir, { recursive: true, force: true });
    },
  };
}

/** brainstem on its Claude mode, the real CLI with `cliEnv` (claudeTestEnv's), `config` merged over that. */
export function startClaudeHarness(
  cliEnv: Record<string, string>,
  config: ConfigFile = {},
): Promise<Harness> {
  const claude: ConfigFile = { defaultMode: 'assistant', claude: { env: cliEnv, maxRetries: 0 } };
  return startHarness({ env: { CLAUDE_BIN }, config: deepMerge(claude, config) as ConfigFile });
}

function deepMerge(a: unknown, b: unknown): unknown {
  if (isObject(a) && isObject(b)) {
    const out: Record<string, unknown> = { ...a };
    for (const [k, v] of Object.entries(b)) out[k] = deepMerge(a[k], v);
    return out;
  }
  return b === undefined ? a : b;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Holds the answer to "hold on" open until the returned release (which also puts the default
 * script back), so what the user sends next waits in the chat's queue; anything else is echoed
 * ("echo: " and the text of the last message, its parts' text joined when it has parts).
 */
export function holdOn(h: Harness): () => void {
  let open = () => {};
  const held = new Promise<void>((resolve) => {
    open = resolve;
  });
  h.llama.script((body) => {
    const last = body.messages?.at(-1)?.content;
    if (last === 'hold on') return { chunks: ['Holding ', { wait: held }, 'on'] };
    const parts = Array.isArray(last) ? (last as { text?: string }[]) : [{ text: String(last ?? '') }];
    return { chunks: [`echo: ${parts.map((p) => p.text ?? '').join('')}`] };
  });
  return () => {
    open();
    h.llama.script();
  };
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A wait for what the service logs next, set up before the action that causes it: the returned
 * function resolves with the `nth` record (default: the first) that `match` takes among those
 * logged after this call.
 */
export function nextLog(h: Harness, match: (l: LogRecord) => boolean): (nth?: number) => Promise<LogRecord> {
  const seen = () => h.logs.filter(match);
  const before = seen().length;
  return (nth = 1) => h.tg.waitFor(() => seen()[before + nth - 1], { timeoutMs: 20_000 });
}

let sentinels = 0;

/**
 * Resolves once the turns queued so far in `user`'s chat have ended (answers, tool runs): a chat
 * runs its turns one at a time in the order they were queued (handlers/telegram/turns.ts), and
 * this sends a message whose answer (the fake local model's echo) is one of them. A message is
 * handled after the chat's earlier messages, so the turns they queued come first; a button press
 * is handled in another lane, so after one, first have a later press on the same question
 * answered (both wait on its dialog).
 */
export async function turnsDone(h: Harness, user: FakeUser): Promise<void> {
  const text = `sentinel ${++sentinels} end`;
  user.says(text);
  await h.tg.waitFor(() => h.tg.botMessages(user.chatId).find((m) => m.text.includes(`echo: ${text}`)), {
    timeoutMs: 20_000,
  });
}
