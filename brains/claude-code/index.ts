import { mkdir } from 'node:fs/promises';
import type { Config, ModeConfig } from '../../src/config.js';
import { credentialsFromEnv } from '../../src/credentials.js';
import { SENT_FILES_KEEP_DAYS } from '../../src/keep-days.js';
import type { Logger } from '../../src/logger.js';
import { prepareOutboxRoot } from '../../src/outbox.js';
import { loginDir } from '../../src/own-files.js';
import { scrubText } from '../../src/redact.js';
import type { SessionStore } from '../../src/sessions.js';
import { type Execa, subprocesses } from '../../src/subprocesses.js';
import { tailChars } from '../../src/text.js';
import type { Brain, BrainError, Readiness, Refusal, TurnEvent, TurnRequest, TurnUsage } from '../types.js';
import { Approvals } from './approvals.js';
import { buildArgs } from './args.js';
import { CLI_ENV, MCP_CONNECT_TIMEOUT_MS } from './cli-compat.js';
import { cliEnv, exemptFromProxy } from './env.js';
import {
  abortedError,
  busyError,
  classifyFailure,
  emptyPromptError,
  type FailureSignals,
  isMissingSession,
  isOutputCut,
  isRefusal,
  outputCutNotice,
  prepareError,
  refusalNotice,
  spawnError,
  timeoutError,
} from './errors.js';
import { guardIdle } from './idle-guard.js';
import { sweepImageCopies } from './image-copies.js';
import { type McpOptions, writeMcpConfig } from './mcp.js';
import { claudeRefusal } from './options.js';
import { ClaudeProcess, type SpawnOptions } from './process.js';
import type { ProcessCap, Slot } from './process-cap.js';
import { answerDigest, argvSystemPrompt, clientInstructions, planPrompt } from './prompt.js';
import { cliReadiness } from './readiness.js';
import { RunReader } from './run-reader.js';
import { DEFAULT_SPARES, type Spare, type Spares } from './spares.js';
import { ownToolOf } from './tool-names.js';
import { sweepTranscripts } from './transcripts.js';
import { runTurn, type TurnOutcome } from './turn-runner.js';
import { stoppedTurnUsage, unreportedUsage } from './usage-estimate.js';
import type { WarmPool } from './warm-pool.js';

export interface ClaudeCodeBrainOptions {
  mode: ModeConfig;
  /** Working directory of the CLI; created if missing. Sessions belong to it. */
  cwd: string;
  claude: Pick<
    Config['claude'],
    | 'bin'
    | 'env'
    | 'maxRetries'
    | 'apiTimeoutMs'
    | 'turnTimeoutMs'
    | 'approvalTimeoutMs'
    | 'credentialsFile'
    | 'sessionTtlHours'
  >;
  sessions: SessionStore;
  logger: Logger;
  /** brainstem's MCP endpoint, offered to Claude Code as the `brainstem` server. */
  mcp?: McpOptions;
  /** Keeps a CLI process per conversation between turns; without it every turn starts the CLI afresh. */
  warm?: WarmPool;
  /** Bounds the CLI processes alive at once; shared by every Claude brain (claude.maxProcesses). */
  processes: ProcessCap;
  /** CLI processes started ahead for new conversations (`modes.<id>.spares`); without it every new conversation starts the CLI. */
  spares?: Spares;
  /** The folder of every conversation's outbox (src/outbox.ts), which the CLI may write into (`--add-dir`). */
  outboxRoot?: string;
  /**
   * What a turn the CLI started by itself between two turns cost (see guardIdle): no turn
   * reports it, so the ledger hears it here. `sessionKey` is unset for a spare.
   */
  unasked?: (spent: UnaskedSpend) => void;
  /** Paths (globs) Claude never reads nor writes whatever the mode allows or an approver says (buildArgs). */
  unreadable?: readonly string[];
}

export interface UnaskedSpend {
  sessionKey: string | undefined;
  sessionId: string | undefined;
  usage: TurnUsage;
  durationMs: number;
}

/** What `turn` does after an attempt: nothing more, the same turn on a new process, or on a new session. */
type Next = 'done' | 'cold' | 'fresh';

interface AttemptOptions {
  key: string;
  sessionKey: string;
  resumeId?: string;
  /** The client's instructions the session `resumeId` was last told, when known. */
  told?: string;
  /** The answerDigest of the last answer the session `resumeId` gave, when known. */
  answered?: string;
  /** A process started before this turn: the warm one holding `resumeId`, or a spare for a new session. */
  ready?: { from: 'warm'; proc: ClaudeProcess } | ({ from: 'spare' } & Spare);
  reader: RunReader;
  mcpConfigPath?: string;
  /** See TurnRequest.depth. */
  depth: number;
  signal: AbortSignal;
}

/** Conversations whose last instructions and answer are remembered (see `told`); the oldest is forgotten past it. */
const TOLD_MAX = 1000;
/** How often the CLI's old transcripts are looked for (see sweepTranscripts): at the first turn, then daily. */
const TRANSCRIPT_SWEEP_MS = 24 * 60 * 60 * 1000;

/** What a conversation's session was last told of the client's instructions, and the digest of its last answer. */
interface Told {
  instructions: string;
  answered: string;
}

/**
 * A brain backed by the real `claude` CLI. Conversations map to CLI sessions
 * (`--resume`) through the session store; with a warm pool, the process of a
 * conversation stays alive for its next turn. Tools outside the mode's
 * allow-list are asked of the turn's approver.
 */
export class ClaudeCodeBrain implements Brain {
  readonly kind = 'claude';
  readonly id: string;
  private readonly log: Logger;
  private readonly approvals: Approvals;
  /** The MCP config file per turn depth, written once. */
  private readonly mcpConfigs = new Map<number, Promise<string | undefined>>();
  /**
   * The client's instructions each conversation's session was last told, and
   * its last answer, so a resumed one hears what changed and what other modes
   * answered since (planPrompt). The session store keeps them too, for a
   * session resumed after a restart; this map is what this process told,
   * which a store write kept behind another process's lock has not yet
   * recorded (KeptWrites).
   */
  private readonly told = new Map<string, Told>();
  /** When the CLI's old transcripts were last looked for; undefined: not yet. */
  private transcriptsSweptAt: number | undefined;
  /**
   * Conversations that went on under another key (move) while this run ran: a turn that began under
   * the old key records its session and its answer under the new one, where the next turn reads them.
   */
  private readonly movedTo = new Map<string, string>();
  private closed = false;

  constructor(private readonly opts: ClaudeCodeBrainOptions) {
    this.id = opts.mode.id;
    this.log = opts.logger.child({ brain: 'claude', mode: opts.mode.id });
    this.approvals = new Approvals({
      mode: opts.mode.id,
      timeoutMs: opts.claude.approvalTimeoutMs,
      log: this.log,
      refusal: (tool, input) => {
        const own = ownToolOf(tool);
        return own === undefined ? undefined : this.opts.mcp?.refusal?.(own, input);
      },
    });
    opts.spares?.register(this.id, {
      count: opts.mode.spares ?? DEFAULT_SPARES,
      spec: () => this.spareSpec(),
      guard: (proc) => this.guard(proc, undefined),
    });
  }

  /**
   * Ready when the CLI runs and is logged in (`claude auth status`, which needs
   * no network); a logged-in answer is kept while the CLI and its credentials
   * file stay as they were (see cliReadiness).
   */
  ready(signal?: AbortSignal): Promise<Readiness> {
    return cliReadiness(this.opts.claude.bin, this.env(), {
      credentialsFile: this.opts.claude.credentialsFile,
      signal,
    });
  }

  refuse(req: Pick<TurnRequest, 'options' | 'toolChoice' | 'messages'>): Refusal | undefined {
    return claudeRefusal(req);
  }

  /** Forgets the session, what was allowed "for this session", and closes the warm process. */
  forget(sessionKey: string): void {
    this.told.delete(this.key(sessionKey));
    this.opts.sessions.delete(sessionKey, this.id);
    this.approvals.forget(sessionKey);
    void this.opts.warm?.drop(this.key(sessionKey));
  }

  /**
   * The conversation `sessionKey` goes on as `to` (its sessions moved by the caller): its warm
   * process, what it was told and what was allowed "for this session" go with it.
   */
  move(sessionKey: string, to: string): void {
    this.movedTo.set(sessionKey, to);
    const [from, now] = [this.key(sessionKey), this.key(to)];
    const told = this.told.get(from);
    if (told !== undefined && !this.told.has(now)) this.told.set(now, told);
    this.told.delete(from);
    this.approvals.move(sessionKey, to);
    this.opts.warm?.move(from, now);
  }

  /** Ends this brain's warm processes (running turns keep theirs until they end) and spares; for shutdown. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([this.opts.warm?.closeAll(this.key('')), this.opts.spares?.retire(this.id)]);
  }

  async *turn(req: TurnRequest, signal: AbortSignal): AsyncGenerator<TurnEvent> {
    // A spare starts only once no turn runs: never while one may wait for the CPU.
    const ended = this.opts.spares?.turnStarted();
    try {
      yield* this.run(req, signal);
    } finally {
      ended?.();
    }
  }

  private async *run(req: TurnRequest, signal: AbortSignal): AsyncGenerator<TurnEvent> {
    if (signal.aborted) {
      yield { type: 'error', error: abortedError };
      return;
    }
    const depth = req.depth ?? 0;
    let mcpConfigPath: string | undefined;
    try {
      mcpConfigPath = await this.mcpConfigPath(depth);
    } catch (err) {
      yield this.unprepared(err);
      return;
    }
    // In the background: a year of transcripts to remove must not hold up the answer.
    void this.sweepTranscripts();
    // A new conversation starts with nothing allowed "for this session".
    if (req.freshSession) this.approvals.forget(req.sessionKey);
    const stored = this.opts.sessions.get(req.sessionKey, this.id);
    const key = this.key(req.sessionKey);
    const newReader = () =>
      new RunReader((id) => this.opts.sessions.set(this.current(req.sessionKey), this.id, id, this.opts.cwd));
    const resumeId = !req.freshSession && stored?.cwd === this.opts.cwd ? stored.brainSessionId : undefined;
    const told = resumeId === undefined ? undefined : this.told.get(key);
    const a: AttemptOptions = {
      key,
      sessionKey: req.sessionKey,
      resumeId,
      told: resumeId === undefined ? undefined : (told?.instructions ?? stored?.instructions),
      answered: resumeId === undefined ? undefined : (told?.answered ?? stored?.answered),
      reader: newReader(),
      mcpConfigPath,
      depth,
      signal,
    };
    // The CLI holds `--max-budget-usd` against the running total of its process: a capped
    // turn gets a process of its own, so the cap is this turn's alone.
    if (req.maxBudgetUsd === undefined)
      a.ready = (await this.warmFor(key, a.resumeId, depth)) ?? this.spareFor(a);
    else await this.opts.warm?.drop(key);
    for (;;) {
      const next = yield* this.attempt(req, a);
      if (next === 'done') return;
      if (next === 'fresh') {
        this.log.info(
          { sessionKey: req.sessionKey, staleSession: a.resumeId },
          'stored Claude session is gone; starting fresh',
        );
        a.resumeId = undefined;
        a.told = undefined;
        a.answered = undefined;
        a.reader = newReader();
      }
      // 'cold' keeps the session and the reader: a new process resumes exactly where the warm one was.
      a.ready = undefined;
    }
  }

  /**
   * The warm process of a conversation, if it holds exactly the session this
   * turn resumes, in this cwd, at this depth. Any other (a new conversation, a
   * session that changed meanwhile) belongs to something else and is closed.
   */
  private async warmFor(
    key: string,
    resumeId: string | undefined,
    depth: number,
  ): Promise<AttemptOptions['ready']> {
    const pool = this.opts.warm;
    const proc = await pool?.take(key);
    if (!pool || !proc) return undefined;
    if (
      resumeId !== undefined &&
      proc.sessionId === resumeId &&
      proc.cwd === this.opts.cwd &&
      proc.depth === depth
    )
      return { from: 'warm', proc };
    pool.release(key, proc, false);
    void proc.close();
    return undefined;
  }

  /** A spare for a new session of a turn a person asked for: one to resume, or a nested one, spawns its own. */
  private spareFor(a: AttemptOptions): AttemptOptions['ready'] {
    if (!this.opts.spares || this.closed || a.resumeId !== undefined || a.depth !== 0) return undefined;
    const spare = this.opts.spares.take(this.id, this.spawnOptions(a, argvSystemPrompt(this.opts.mode)));
    return spare && { from: 'spare', ...spare };
  }

  /** The cwd and the outbox folder: the CLI refuses to start with an `--add-dir` that does not exist. */
  private async prepareDirs(): Promise<void> {
    await mkdir(this.opts.cwd, { recursive: true });
    if (this.opts.outboxRoot) await prepareOutboxRoot(this.opts.outboxRoot);
  }

  private unprepared(err: unknown): TurnEvent {
    this.log.error({ err }, 'claude turn could not be prepared');
    return { type: 'error', error: prepareError(err) };
  }

  /** What a spare is spawned with: exactly what a new conversation of this mode would spawn. */
  private async spareSpec(): Promise<SpawnOptions> {
    await this.prepareDirs();
    const mcpConfigPath = await this.mcpConfigPath(0);
    return this.spawnOptions({ mcpConfigPath, depth: 0 }, argvSystemPrompt(this.opts.mode));
  }

  /** One turn on one process (warm, or started here). */
  private async *attempt(req: TurnRequest, a: AttemptOptions): AsyncGenerator<TurnEvent, Next> {
    const plan = planPrompt(req, this.opts.mode, a.resumeId !== undefined, a.told, a.answered);
    const ready = a.ready;
    if (!plan.stdin.trim() && plan.images.length === 0) {
      if (ready?.from === 'warm' && !this.opts.warm?.release(a.key, ready.proc, true))
        void ready.proc.close();
      if (ready?.from === 'spare') ready.proc.kill();
      yield { type: 'error', error: emptyPromptError };
      return 'done';
    }
    // The CLI keeps a copy of each image it is sent: the older ones go as a new one comes.
    if (plan.images.length > 0) await this.sweepImageCopies();
    if (ready?.from === 'spare' && !(await this.spareStarted(ready, a.signal))) {
      if (a.signal.aborted) {
        yield { type: 'error', error: abortedError };
        return 'done';
      }
      this.log.warn(
        { pid: ready.proc.pid },
        'spare Claude process ended before the turn; starting a fresh one',
      );
      return 'cold';
    }
    if (!ready) {
      // Only a process about to start needs them: a warm one or a spare already runs there.
      try {
        await this.prepareDirs();
      } catch (err) {
        yield this.unprepared(err);
        return 'done';
      }
    }
    // Loaded before the place is held: nothing may await between room() and the spawn.
    const { execa } = await subprocesses();
    let proc: ClaudeProcess;
    if (ready) proc = ready.proc;
    else {
      const slot = await this.opts.processes.room((n) => this.opts.warm?.evict(n));
      if (!slot) {
        this.log.warn(
          { sessionKey: req.sessionKey, max: this.opts.processes.max },
          'claude process cap reached',
        );
        yield { type: 'error', error: busyError(this.opts.processes.max) };
        return 'done';
      }
      proc = this.spawn(slot, a, plan.appendSystemPrompt, req.maxBudgetUsd, execa);
    }
    const started = Date.now();
    const pooled =
      ready?.from === 'warm' ||
      (!this.closed && req.maxBudgetUsd === undefined && this.opts.warm?.claim(a.key, proc) === true);
    const log = this.log.child({ sessionKey: req.sessionKey, pid: proc.pid });
    log.info(
      {
        resumed: a.resumeId !== undefined,
        warm: ready?.from === 'warm',
        spare: ready?.from === 'spare',
        promptChars: plan.stdin.length,
        images: plan.images.length,
      },
      'claude turn started',
    );

    let outcome: TurnOutcome | undefined;
    let keep = false;
    /** The session holds the turn as the client got it, or this attempt left it as it was (see unfinished). */
    let settled = false;
    try {
      outcome = yield* runTurn(proc, {
        prompt: plan.stdin,
        images: plan.images,
        signal: a.signal,
        timeoutMs: this.opts.claude.turnTimeoutMs,
        expectSession: ready?.from === 'warm' ? a.resumeId : undefined,
        reader: a.reader,
        permit: (p, signal, emit) => this.approvals.decide(req, p, signal, emit),
        log,
      });
      const durationMs = Date.now() - started;
      const { end } = outcome;
      // A stopped turn still cost what its API calls cost: recorded like any other.
      if ((end.kind === 'aborted' || end.kind === 'timeout') && end.result)
        yield* a.reader.settle(stoppedTurnUsage(proc.turnUsage(end.result), a.reader.calls));
      else if (end.kind !== 'result') yield* this.unreported(a.reader, log);
      if (end.kind === 'aborted') {
        log.info({ durationMs }, 'claude turn aborted');
        yield { type: 'error', error: abortedError };
        return 'done';
      }
      if (end.kind === 'timeout') {
        log.warn({ durationMs }, 'claude turn hit the time limit');
        yield { type: 'error', error: timeoutError(this.opts.claude.turnTimeoutMs) };
        return 'done';
      }
      if (end.kind === 'lost') {
        // Nothing of the turn happened yet: another process can take it without doing or saying anything twice.
        if (ready && !outcome.progressed) {
          log.warn(
            { why: end.why, from: ready.from },
            `${ready.from} Claude process did not take the turn; starting a fresh one`,
          );
          settled = true;
          return 'cold';
        }
        const exit = await proc.exit;
        if (exit.spawnFailure) {
          settled = true;
          log.error({ code: exit.spawnFailure.code }, 'claude could not be started');
          yield {
            type: 'error',
            error: spawnError(this.opts.claude.bin, exit.spawnFailure.code, exit.spawnFailure.message),
          };
          return 'done';
        }
        const failure = {
          ...a.reader.signals,
          exitCode: exit.exitCode,
          signal: exit.signal,
          stderr: exit.stderr,
        };
        if (a.resumeId !== undefined && !a.reader.yielded && isMissingSession(failure)) {
          settled = true;
          return 'fresh';
        }
        const classified = this.failed(req.sessionKey, this.classified(failure), log);
        // It died mid-turn (killed, crashed) after it began: sent again, the turn would redo what it did.
        const error: BrainError = outcome.progressed ? { ...classified, noRetry: true } : classified;
        log.warn(
          { durationMs, kind: error.kind, exitCode: exit.exitCode, signal: exit.signal, why: end.why },
          'claude turn failed',
        );
        log.debug({ stderr: scrubText(tailChars(exit.stderr, 2000)) }, 'claude stderr');
        yield { type: 'error', error };
        return 'done';
      }

      const { result } = end;
      const usage = proc.turnUsage(result);
      const failure = { ...a.reader.signals, stderr: proc.stderr };
      const cut = result.isError && isOutputCut(failure);
      const refused = result.isError && !cut && isRefusal(failure);
      if (!result.isError || cut || refused) {
        yield* a.reader.settle(usage);
        if (cut) yield { type: 'notice', text: outputCutNotice(req.lang) };
        if (refused) yield { type: 'notice', text: refusalNotice(req.lang) };
        log.info(
          {
            durationMs,
            costUsd: usage.costUsd,
            permissionDenials: result.permissionDenials.map((d) => d.tool),
            ...(cut ? { cut: 'output token limit' } : {}),
            ...(refused ? { cut: 'refusal' } : {}),
          },
          'claude turn finished',
        );
        proc.sessionId = result.sessionId ?? a.reader.sessionId;
        this.remember(a, proc.sessionId, {
          instructions: clientInstructions(req.messages),
          answered: answerDigest(a.reader.text),
        });
        keep = pooled && !this.closed && outcome.invalidLines === 0;
        settled = true;
        yield { type: 'done', finishReason: cut ? 'length' : refused ? 'content_filter' : 'stop' };
        return 'done';
      }
      if (a.resumeId !== undefined && !a.reader.yielded && isMissingSession(failure)) {
        settled = true;
        return 'fresh';
      }
      yield* a.reader.settle(usage);
      const classified = this.failed(req.sessionKey, this.classified(failure), log);
      // Claude's API failed after it had answered a call of this turn (a 5xx after a tool ran): sent
      // again, the turn would run its tools again and be billed again for what it did. Failed on its
      // first call, nothing was done: a client's own retry of a 5xx may well succeed.
      const error: BrainError = a.reader.calls.seen ? { ...classified, noRetry: true } : classified;
      log.warn({ durationMs, kind: error.kind, status: error.status }, 'claude turn failed');
      log.debug({ stderr: scrubText(tailChars(proc.stderr, 2000)) }, 'claude stderr');
      yield { type: 'error', error };
      return 'done';
    } finally {
      if (!settled) this.unfinished(req, a, log);
      // A failed turn, an unfinished one (the consumer stopped reading) or a stopped one ends its process.
      const kept = pooled && this.opts.warm?.release(a.key, proc, keep) === true;
      if (kept) this.guard(proc, req.sessionKey);
      else {
        if (!outcome) proc.kill();
        await proc.close();
      }
    }
  }

  /**
   * The usage of a turn whose process ended before its result (killed, crashed, or stopped and
   * killed when it did not answer the interrupt): the CLI never said the cost, so it is estimated
   * from the API calls the stream showed (CallTally).
   */
  private *unreported(reader: RunReader, log: Logger): Generator<TurnEvent> {
    const usage = unreportedUsage(reader.calls, log, 'claude turn');
    if (usage) yield { type: 'usage', usage };
  }

  /** Watches a process between turns (a warm one, a spare): a turn nobody asked for never reaches the next one. */
  private guard(proc: ClaudeProcess, sessionKey: string | undefined): void {
    guardIdle(proc, {
      log: this.log.child({ sessionKey }),
      spent: (usage, sessionId, durationMs) =>
        this.opts.unasked?.({ sessionKey, sessionId, usage, durationMs }),
    });
  }

  /**
   * A failed turn's error, after what it says about the session: the CLI keeps
   * a turn that did not fit the context in its session, so resuming that
   * session would be refused every time. The conversation goes on in a new
   * one, from the history the client sends (what was allowed in it stays).
   */
  private failed(sessionKey: string, error: BrainError, log: Logger): BrainError {
    if (error.kind === 'context_overflow') {
      this.opts.sessions.delete(this.current(sessionKey), this.id);
      log.warn('Claude session over the context closed; the next turn starts a new one');
    }
    return error;
  }

  /**
   * A turn that ended without its answer stays in the CLI's session: the user's words, what was
   * said before the stop, "[Request interrupted by user]". A client that sends its history whole
   * (TurnRequest.clientHistory) does not have that turn, and sends it again or something else in
   * its place: resumed, the session would hear it twice, the cut answer between. The conversation
   * goes on in a new session, from the history the client sends (as after an edited history).
   */
  private unfinished(req: TurnRequest, a: AttemptOptions, log: Logger): void {
    if (!req.clientHistory) return;
    this.told.delete(a.key);
    this.opts.sessions.forget(req.sessionKey, this.id);
    log.info(
      'Claude session of an unfinished turn left: the next turn starts a new one from the client’s history',
    );
  }

  /**
   * Waits until a taken spare has started (it may still be starting), at most
   * the turn's time limit; an abort kills it. False when it ended first.
   */
  private async spareStarted(spare: Spare, signal: AbortSignal): Promise<boolean> {
    const kill = () => spare.proc.kill();
    // Stopped between taking the spare and here (an image sweep awaits): no abort event comes,
    // and nothing else holds the spare (not the spares, not the warm pool) to ever close it.
    if (signal.aborted) kill();
    signal.addEventListener('abort', kill, { once: true });
    const timer = setTimeout(kill, this.opts.claude.turnTimeoutMs);
    try {
      return (await spare.started) && !signal.aborted;
    } finally {
      signal.removeEventListener('abort', kill);
      clearTimeout(timer);
    }
  }

  /** A new CLI process for this attempt, in `slot`: counted against claude.maxProcesses until it exits. */
  private spawn(
    slot: Slot,
    a: AttemptOptions,
    appendSystemPrompt: string | undefined,
    maxBudgetUsd: number | undefined,
    execa: Execa,
  ): ClaudeProcess {
    return slot(() => new ClaudeProcess(this.spawnOptions(a, appendSystemPrompt, maxBudgetUsd), execa));
  }

  private spawnOptions(
    a: Pick<AttemptOptions, 'resumeId' | 'mcpConfigPath' | 'depth'>,
    appendSystemPrompt: string | undefined,
    maxBudgetUsd?: number,
  ): SpawnOptions {
    return {
      bin: this.opts.claude.bin,
      args: buildArgs({
        mode: this.opts.mode,
        resumeId: a.resumeId,
        appendSystemPrompt,
        mcpConfigPath: a.mcpConfigPath,
        preallowed: this.preallowed(),
        maxBudgetUsd,
        addDir: this.opts.outboxRoot,
        unreadable: this.opts.unreadable,
      }),
      cwd: this.opts.cwd,
      env: this.env(),
      depth: a.depth,
    };
  }

  /**
   * The client's instructions a conversation's session now holds and its answer, once a turn
   * of it went through: in memory, and in the session store (the instructions when they
   * changed: once a day for OpenClaw's, whose prompt has the date in it).
   */
  private remember(a: AttemptOptions, sessionId: string | undefined, told: Told): void {
    const sessionKey = this.current(a.sessionKey);
    const key = this.key(sessionKey);
    this.told.delete(key);
    this.told.set(key, told);
    if (this.told.size > TOLD_MAX) this.told.delete(this.told.keys().next().value as string);
    if (sessionId === undefined) return;
    if (sessionId !== a.resumeId || told.instructions !== a.told)
      this.opts.sessions.setInstructions(sessionKey, this.id, sessionId, told.instructions);
    this.opts.sessions.setAnswered(sessionKey, this.id, sessionId, told.answered);
  }

  /** The key a conversation goes on under now (see move). */
  private current(sessionKey: string): string {
    return this.movedTo.get(sessionKey) ?? sessionKey;
  }

  /**
   * Removes the CLI's transcripts of the sessions of this cwd unwritten for longer than it would
   * keep them itself, at the first turn and then once a day (see sweepTranscripts: it never
   * throws, what it cannot remove stays).
   */
  private async sweepTranscripts(now = Date.now()): Promise<void> {
    if (this.transcriptsSweptAt !== undefined && now - this.transcriptsSweptAt < TRANSCRIPT_SWEEP_MS) return;
    this.transcriptsSweptAt = now;
    const removed = await sweepTranscripts(this.opts.cwd, this.env(), this.opts.claude.sessionTtlHours, now);
    if (removed > 0)
      this.log.info({ removed }, "old Claude transcripts removed (the CLI's cleanupPeriodDays)");
  }

  /** Removes the CLI's copies of old images (see sweepImageCopies: it never throws, what it cannot remove stays). */
  private async sweepImageCopies(): Promise<void> {
    const removed = await sweepImageCopies(this.opts.cwd, this.env());
    if (removed > 0)
      this.log.info({ removed, keepDays: SENT_FILES_KEEP_DAYS }, 'old Claude image copies removed');
  }

  private key(sessionKey: string): string {
    return `${this.id}\u0000${sessionKey}`;
  }

  /** A failure as the user is told it, with what renews the credentials this CLI ran with. */
  private classified(failure: FailureSignals): BrainError {
    const env = this.env();
    const { mode, claude } = this.opts;
    return classifyFailure(failure, credentialsFromEnv(env, {}), loginDir(mode.env ?? {}, claude.env));
  }

  /**
   * The CLI environment: an allow-list of brainstem's own, bounded retries and API timeout,
   * `claude.env`, the mode's `env`, then what brainstem needs of every CLI (CLI_ENV).
   */
  private env(): Record<string, string> {
    const env = cliEnv(process.env, {
      CLAUDE_CODE_MAX_RETRIES: String(this.opts.claude.maxRetries),
      API_TIMEOUT_MS: String(this.opts.claude.apiTimeoutMs),
      ...(process.env.MCP_CONNECT_TIMEOUT_MS
        ? {}
        : { MCP_CONNECT_TIMEOUT_MS: String(MCP_CONNECT_TIMEOUT_MS) }),
      ...this.opts.claude.env,
      ...this.opts.mode.env,
      ...CLI_ENV,
    });
    return exemptFromProxy(env, this.opts.mcp?.url);
  }

  /** brainstem tools the CLI runs without asking: read-only ones, those the mode names if it does. */
  private preallowed(): string[] {
    const readOnly = this.opts.mcp?.readOnlyTools ?? [];
    const wanted = this.opts.mode.brainstemTools;
    return wanted === undefined ? readOnly : wanted.filter((t) => readOnly.includes(t));
  }

  /**
   * Written once per depth, when brainstem serves /mcp (its URL is known once
   * the server listens); a failed write is tried again on the next turn.
   */
  private mcpConfigPath(depth: number): Promise<string | undefined> {
    const mcp = this.opts.mcp;
    if (!mcp?.url) return Promise.resolve(undefined);
    let file = this.mcpConfigs.get(depth);
    if (!file) {
      file = writeMcpConfig(mcp, this.id, depth).catch((err: unknown) => {
        this.mcpConfigs.delete(depth);
        throw err;
      });
      this.mcpConfigs.set(depth, file);
    }
    return file;
  }
}
