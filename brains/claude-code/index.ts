import { mkdir } from 'node:fs/promises';
import { execa } from 'execa';
import type { Config, ModeConfig } from '../../src/config.js';
import type { Logger } from '../../src/logger.js';
import type { SessionStore } from '../../src/sessions.js';
import type { Brain, Readiness, TurnEvent, TurnRequest } from '../types.js';
import { buildArgs } from './args.js';
import {
  abortedError,
  classifyFailure,
  emptyPromptError,
  type FailureSignals,
  isMissingSession,
  notFound,
  prepareError,
  scrub,
  shortReason,
  spawnError,
  timeoutError,
} from './errors.js';
import { type McpOptions, writeMcpConfig } from './mcp.js';
import { runCli } from './process.js';
import { planPrompt } from './prompt.js';
import { RunReader } from './run-reader.js';
import { parseCliLine } from './stream-json.js';

export interface ClaudeCodeBrainOptions {
  mode: ModeConfig;
  /** Working directory of the CLI; created if missing. Sessions belong to it. */
  cwd: string;
  claude: Config['claude'];
  sessions: SessionStore;
  logger: Logger;
  /** brainstem's MCP endpoint, offered to Claude Code as the `brainstem` server. */
  mcp?: McpOptions;
}

const VERSION_TIMEOUT_MS = 10_000;

/** How one run of the CLI ended, for the retry decision in `turn`. */
type Attempt = { retryFresh: boolean };

/**
 * A brain backed by the real `claude` CLI, one child process per turn.
 * Conversations map to CLI sessions (`--resume`) through the session store.
 */
export class ClaudeCodeBrain implements Brain {
  readonly kind = 'claude';
  readonly id: string;
  private readonly log: Logger;
  private mcpConfig?: Promise<string>;

  constructor(private readonly opts: ClaudeCodeBrainOptions) {
    this.id = opts.mode.id;
    this.log = opts.logger.child({ brain: 'claude', mode: opts.mode.id });
  }

  async ready(signal?: AbortSignal): Promise<Readiness> {
    const bin = this.opts.claude.bin;
    const r = await execa(bin, ['--version'], {
      env: this.env(),
      stdin: 'ignore',
      timeout: VERSION_TIMEOUT_MS,
      cancelSignal: signal,
      reject: false,
    });
    if (!r.failed) return { ok: true, detail: r.stdout.trim() };
    let reason = `"${bin} --version" failed: ${shortReason(r.stderr || r.shortMessage || '')}`;
    if (r.code === 'ENOENT') reason = notFound(bin);
    else if (r.timedOut) reason = `"${bin} --version" did not answer within ${VERSION_TIMEOUT_MS / 1000} s.`;
    else if (r.isCanceled) reason = 'The readiness check was cancelled.';
    return { ok: false, reason };
  }

  forget(sessionKey: string): void {
    this.opts.sessions.delete(sessionKey, this.id);
  }

  async *turn(req: TurnRequest, signal: AbortSignal): AsyncGenerator<TurnEvent> {
    if (signal.aborted) {
      yield { type: 'error', error: abortedError };
      return;
    }
    let mcpConfigPath: string | undefined;
    try {
      await mkdir(this.opts.cwd, { recursive: true });
      mcpConfigPath = await this.mcpConfigPath();
    } catch (err) {
      this.log.error({ err }, 'claude turn could not be prepared');
      yield { type: 'error', error: prepareError(err) };
      return;
    }
    const stored = this.opts.sessions.get(req.sessionKey, this.id);
    let resumeId = !req.freshSession && stored?.cwd === this.opts.cwd ? stored.brainSessionId : undefined;
    for (;;) {
      const attempt = yield* this.attempt(req, resumeId, mcpConfigPath, signal);
      if (!attempt.retryFresh) return;
      this.log.info(
        { sessionKey: req.sessionKey, staleSession: resumeId },
        'stored Claude session is gone; starting fresh',
      );
      resumeId = undefined;
    }
  }

  /** One CLI run. Asks for a fresh retry only when a resume failed before anything was yielded. */
  private async *attempt(
    req: TurnRequest,
    resumeId: string | undefined,
    mcpConfigPath: string | undefined,
    signal: AbortSignal,
  ): AsyncGenerator<TurnEvent, Attempt> {
    const plan = planPrompt(req, this.opts.mode, resumeId !== undefined);
    if (!plan.stdin.trim()) {
      yield { type: 'error', error: emptyPromptError };
      return { retryFresh: false };
    }
    const started = Date.now();
    const run = runCli({
      bin: this.opts.claude.bin,
      args: buildArgs({
        mode: this.opts.mode,
        resumeId,
        appendSystemPrompt: plan.appendSystemPrompt,
        mcpConfigPath,
      }),
      cwd: this.opts.cwd,
      env: this.env(),
      input: plan.stdin,
      signal,
      timeoutMs: this.opts.claude.turnTimeoutMs,
    });
    const log = this.log.child({ sessionKey: req.sessionKey, pid: run.pid });
    log.info({ resumed: resumeId !== undefined, promptChars: plan.stdin.length }, 'claude turn started');

    const reader = new RunReader((id) => this.opts.sessions.set(req.sessionKey, this.id, id, this.opts.cwd));
    for await (const line of run.lines) {
      const ev = parseCliLine(line);
      if (ev?.type === 'invalid') {
        log.warn({ lineType: ev.lineType, problem: ev.problem }, 'unexpected Claude Code output line');
      } else if (ev) {
        yield* reader.read(ev);
      }
    }
    const exit = await run.exit;
    const durationMs = Date.now() - started;
    const failure: FailureSignals = {
      ...reader.signals,
      exitCode: exit.exitCode,
      signal: exit.signal,
      stderr: exit.stderr,
    };

    if (signal.aborted || exit.stopped === 'aborted') {
      log.info({ durationMs }, 'claude turn aborted');
      yield { type: 'error', error: abortedError };
      return { retryFresh: false };
    }
    if (exit.stopped === 'timeout') {
      log.warn({ durationMs }, 'claude turn hit the time limit');
      yield { type: 'error', error: timeoutError(this.opts.claude.turnTimeoutMs) };
      return { retryFresh: false };
    }
    if (exit.spawnFailure) {
      log.error({ code: exit.spawnFailure.code }, 'claude could not be started');
      yield {
        type: 'error',
        error: spawnError(this.opts.claude.bin, exit.spawnFailure.code, exit.spawnFailure.message),
      };
      return { retryFresh: false };
    }
    if (resumeId !== undefined && !reader.yielded && isMissingSession(failure)) return { retryFresh: true };

    yield* reader.settle();
    const { result } = reader.signals;
    if (result && !result.isError) {
      log.info({ durationMs, costUsd: result.usage.costUsd }, 'claude turn finished');
      yield { type: 'done', finishReason: 'stop' };
      return { retryFresh: false };
    }
    const error = classifyFailure(failure);
    log.warn(
      { durationMs, kind: error.kind, status: error.status, exitCode: exit.exitCode, signal: exit.signal },
      'claude turn failed',
    );
    log.debug({ stderr: scrub(exit.stderr.slice(-2000)) }, 'claude stderr');
    yield { type: 'error', error };
    return { retryFresh: false };
  }

  /** The CLI environment: bounded retries and API timeout, then the configured extras. */
  private env(): Record<string, string> {
    return {
      CLAUDE_CODE_MAX_RETRIES: String(this.opts.claude.maxRetries),
      API_TIMEOUT_MS: String(this.opts.claude.apiTimeoutMs),
      ...this.opts.claude.env,
    };
  }

  /** Written once per brain; a failed write is tried again on the next turn. */
  private mcpConfigPath(): Promise<string | undefined> {
    const mcp = this.opts.mcp;
    if (!mcp) return Promise.resolve(undefined);
    this.mcpConfig ??= writeMcpConfig(mcp, this.id).catch((err: unknown) => {
      this.mcpConfig = undefined;
      throw err;
    });
    return this.mcpConfig;
  }
}
