/**
 * A ClaudeCodeBrain wired to the real `claude` CLI, a fake Anthropic API, a
 * real SQLite session store and a logger whose records the test can read.
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TestContext } from 'vitest';
import { ClaudeCodeBrain, type ClaudeCodeBrainOptions } from '../../brains/claude-code/index.js';
import type { McpOptions } from '../../brains/claude-code/mcp.js';
import { ProcessCap } from '../../brains/claude-code/process-cap.js';
import { Spares } from '../../brains/claude-code/spares.js';
import { WarmPool } from '../../brains/claude-code/warm-pool.js';
import type { ChatMessage, TurnEvent, TurnRequest } from '../../brains/types.js';
import type { Config, ModeConfig } from '../../src/config.js';
import { openDb } from '../../src/db/index.js';
import { KeptWrites } from '../../src/db/kept-writes.js';
import { SessionStore } from '../../src/sessions.js';
import {
  type ClaudeTestEnv,
  claudeTestEnv,
  type FakeAnthropic,
  startFakeAnthropic,
} from '../fakes/anthropic.js';
import { CLAUDE_BIN } from './claude-bin.js';
import { recordingLogger } from './logs.js';
import { modeConfig } from './mode-config.js';

export interface ClaudeHarness {
  fake: FakeAnthropic;
  cli: ClaudeTestEnv;
  brain: ClaudeCodeBrain;
  /** What `brain` was built with, for a twin brain (e.g. one without the pool). */
  options: ClaudeCodeBrainOptions;
  /** The warm process pool, unless `claude.warm.enabled` is false. */
  warm: WarmPool | undefined;
  /** The spares, when asked for (`spares: true`), kept for the harness's mode. */
  spares: Spares | undefined;
  /** Counts every CLI process of the brain (claude.maxProcesses). */
  processes: ProcessCap;
  sessions: SessionStore;
  /** The brain's working directory. */
  cwd: string;
  /** Every log record, parsed. */
  logs: Record<string, unknown>[];
  /** The pid of the last CLI started (from the brain's log); throws when none was. */
  lastPid(): number;
  close(): Promise<void>;
}

export interface HarnessOptions {
  auth?: 'api-key' | 'oauth';
  mode?: Partial<ModeConfig>;
  claude?: Partial<Config['claude']>;
  mcp?: Omit<McpOptions, 'configDir' | 'readOnlyTools'> & { readOnlyTools?: string[] };
  /** Keep spares for the mode (as many as `mode.spares`, default 1), as the service does for the active mode. */
  spares?: boolean;
  /** Told what a turn the CLI started by itself cost (the core records it in the ledger). */
  unasked?: ClaudeCodeBrainOptions['unasked'];
}

/** A harness closed when the test ends (tests run concurrently, so no shared afterEach). */
export async function harness(ctx: TestContext, opts?: HarnessOptions): Promise<ClaudeHarness> {
  const h = await claudeHarness(opts);
  ctx.onTestFinished(() => h.close());
  return h;
}

export async function claudeHarness(opts: HarnessOptions = {}): Promise<ClaudeHarness> {
  const dir = await mkdtemp(path.join(tmpdir(), 'claude-brain-'));
  const fake = await startFakeAnthropic();
  const cli = await claudeTestEnv(fake.url, { auth: opts.auth });
  const db = openDb(path.join(dir, 'data'));
  const { logger, logs } = recordingLogger();
  const sessions = new SessionStore(db, new KeptWrites(db, logger), 3_600_000);
  const cwd = path.join(dir, 'work');
  const mode = modeConfig({ id: 'assistant', kind: 'claude', ...opts.mode });
  const claude = {
    bin: CLAUDE_BIN,
    credentialsFile: path.join(cli.home, '.claude', '.credentials.json'),
    maxRetries: 2,
    apiTimeoutMs: 30_000,
    turnTimeoutMs: 60_000,
    sessionTtlHours: 1,
    warm: { enabled: true, idleMs: 600_000, max: 4 },
    approvalTimeoutMs: 120_000,
    maxProcesses: 6,
    ...opts.claude,
    env: { ...cli.env, ...opts.claude?.env },
  };
  const mcp = opts.mcp ? { readOnlyTools: [], ...opts.mcp, configDir: path.join(dir, 'mcp') } : undefined;
  const warm = claude.warm.enabled ? new WarmPool(claude.warm, logger) : undefined;
  const processes = new ProcessCap(claude.maxProcesses);
  const spares = opts.spares ? new Spares(processes, logger) : undefined;
  const options: ClaudeCodeBrainOptions = {
    mode,
    cwd,
    claude,
    sessions,
    logger,
    mcp,
    warm,
    processes,
    spares,
    unasked: opts.unasked,
  };
  const brain = new ClaudeCodeBrain(options);
  spares?.serve(mode.id);
  // What the service's readiness probe tells the spares once the CLI is logged in (src/service.ts).
  spares?.brainReady(mode.id, true);
  return {
    fake,
    cli,
    brain,
    options,
    warm,
    spares,
    processes,
    sessions,
    cwd,
    logs,
    lastPid: () => {
      const pid = [...logs].reverse().find((l) => typeof l.pid === 'number')?.pid;
      if (typeof pid !== 'number' || pid <= 0)
        throw new Error('no claude process was started (no pid in the log)');
      return pid;
    },
    async close() {
      await brain.close();
      await fake.close();
      db.close();
      await cli.cleanup();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A turn request as the core builds it from a user text (and optional earlier history). */
export function userTurn(
  text: string,
  opts: { key?: string; history?: ChatMessage[]; extraContext?: string } = {},
) {
  const history = opts.history ?? [];
  return {
    sessionKey: opts.key ?? 'test:1',
    messages: [...history, { role: 'user', content: text }],
    freshSession: !history.some((m) => m.role === 'assistant'),
    extraContext: opts.extraContext,
  } satisfies TurnRequest;
}

export async function collect<E = TurnEvent>(events: AsyncIterable<E>): Promise<E[]> {
  const out: E[] = [];
  for await (const e of events) out.push(e);
  return out;
}

export const textOf = (events: TurnEvent[]) =>
  events.flatMap((e) => (e.type === 'text' ? [e.text] : [])).join('');

/**
 * Live pids whose process group is `pgid` (the CLI leads its own group), read
 * from /proc. Zombies are left out: they run nothing and wait for their reaper.
 */
export async function processGroup(pgid: number): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    // Fields after "(comm)": state ppid pgrp …; comm may hold spaces, so split after its last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[2]) === pgid && fields[0] !== 'Z') pids.push(Number(entry));
  }
  return pids;
}

/**
 * Polls until the group has no live process (a SIGKILL takes effect asynchronously); returns what is
 * left. The bound only ends a failing test: on a loaded machine the kernel may take a while to reap.
 */
export async function groupAfterKill(pgid: number, timeoutMs = 15_000): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = await processGroup(pgid);
    if (left.length === 0 || Date.now() > deadline) return left;
    await sleep(20);
  }
}
