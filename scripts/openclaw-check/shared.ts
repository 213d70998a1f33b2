/**
 * What the stages of `npm run openclaw-check` share: the OpenClaw they run, the
 * scripted fake llama-server, the check list, and the children to stop.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import path from 'node:path';
import { promisify, stripVTControlCharacters } from 'node:util';
import type { FakeLlama, FakeReply, FakeRequest } from '../../test/fakes/llama.js';
import { collectOutput, type ServiceProcess } from '../../test/helpers/process.js';

export interface Check {
  turn: string;
  name: string;
  ok: boolean;
  why: string;
}

/** Records one check and prints its PASS/FAIL line. */
export type CheckFn = (turn: string, name: string, ok: boolean, why: string) => void;

export interface OpenClaw {
  /** node_modules/openclaw/openclaw.mjs */
  entry: string;
  /** The Node >= 24 that runs it. */
  node24: string;
  version: string;
}

/** The body of a chat completion request as the fake llama-server got it. */
export type ChatBody = Parameters<NonNullable<Parameters<FakeLlama['script']>[0]>>[0];

/**
 * The fake llama-server: each chat completion takes the next reply of `queue`, or, while
 * `respond` is set, what it makes of the request (for turns whose number is not known).
 */
export interface ScriptedLlama {
  fake: FakeLlama;
  queue: FakeReply[];
  respond: ((body: ChatBody) => FakeReply) | undefined;
  chatRequests(): FakeRequest[];
}

export interface StageContext {
  openclaw: OpenClaw;
  llama: ScriptedLlama;
  check: CheckFn;
  /** A fresh directory of the stage's own. */
  dir: string;
  /** Runs `stop` when the check ends, however it ends (newest first). */
  defer(stop: () => Promise<void> | void): void;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export const show = (s: unknown) => JSON.stringify(s);

/** The last `lines` lines of a child's log on one line, colours removed, at most `chars` characters. */
export const logTail = (log: string, lines = 5, chars = 800) =>
  stripVTControlCharacters(log).trim().split('\n').slice(-lines).join(' | ').slice(-chars);

/**
 * OpenClaw's environment: its own HOME, nothing that reaches the network or updates it,
 * and its Node first on PATH for any `node` it runs itself.
 */
export function openclawEnv(openclaw: OpenClaw, home: string): Record<string, string> {
  // NODE24 may be a bare `node` found on PATH: then PATH stays as it is.
  const own = openclaw.node24.includes(path.sep) ? [path.dirname(path.resolve(openclaw.node24))] : [];
  return {
    PATH: [...own, process.env.PATH ?? ''].join(path.delimiter),
    HOME: home,
    OPENCLAW_OFFLINE: '1',
    OPENCLAW_NO_AUTO_UPDATE: '1',
    OPENCLAW_DISABLE_BONJOUR: '1',
  };
}

/** Kills a detached child's whole process group (OpenClaw starts children of its own). */
export function killGroup(child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

/** How long one `openclaw agent` turn may take before it is killed. */
const TURN_TIMEOUT_MS = 300_000;

export interface TurnResult {
  code: number | null;
  stdout: string;
  stderr: string;
  json?: {
    payloads?: { text?: string | null }[];
    meta?: { agentMeta?: { sessionId?: string }; stopReason?: string };
  };
  /** The payloads' texts, one per line. */
  text: string;
  ms: number;
}

/**
 * One headless turn of OpenClaw's main agent (`openclaw agent --local --agent main
 * --message … --json`, then `args`) with its HOME at `home`; the child is in `children` while it runs,
 * for the stage to kill if it ends first.
 */
export function agentTurn(
  openclaw: OpenClaw,
  at: { home: string; cwd: string; children: Set<ChildProcess> },
  message: string,
  args: string[] = [],
): Promise<TurnResult> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const child = spawn(
      openclaw.node24,
      [openclaw.entry, 'agent', '--local', '--agent', 'main', '--message', message, '--json', ...args],
      { cwd: at.cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: openclawEnv(openclaw, at.home) },
    );
    at.children.add(child);
    const output = collectOutput(child);
    const timer = setTimeout(() => {
      output.note(`(openclaw-check: no exit within ${TURN_TIMEOUT_MS} ms, killed)`);
      killGroup(child);
    }, TURN_TIMEOUT_MS);
    child.on('close', (code) => {
      clearTimeout(timer);
      killGroup(child); // anything it left behind in its group
      at.children.delete(child);
      const { stdout, stderr } = output;
      let json: TurnResult['json'];
      try {
        json = JSON.parse(stdout.slice(stdout.indexOf('{'))) as TurnResult['json'];
      } catch {
        json = undefined;
      }
      const text = (json?.payloads ?? []).map((p) => p.text ?? '').join('\n');
      resolve({ code, stdout, stderr, json, text, ms: Date.now() - t0 });
    });
  });
}

/**
 * `brainstem openclaw-config` with these arguments, as a user runs it against the
 * brainstem listening on `port`. Not execFileSync: it asks the fake llama-server,
 * which answers from this process.
 */
export async function openclawConfig(
  env: Record<string, string>,
  port: string,
  args: string[] = [],
): Promise<{ stdout: string; stderr: string }> {
  return promisify(execFile)(process.execPath, ['dist/src/main.js', 'openclaw-config', ...args], {
    env: { PATH: process.env.PATH ?? '', ...env, BRAINSTEM_PORT: port },
    encoding: 'utf8',
    timeout: 60_000,
  });
}

/** Stops a brainstem a stage started: SIGTERM, and SIGKILL if it has not exited 10 s later. */
export async function stopService(svc: ServiceProcess): Promise<void> {
  if (svc.child.exitCode !== null) return;
  const killer = setTimeout(() => svc.child.kill('SIGKILL'), 10_000);
  await svc.stop('SIGTERM').catch(() => undefined);
  clearTimeout(killer);
}
