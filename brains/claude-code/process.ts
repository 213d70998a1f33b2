import { randomUUID } from 'node:crypto';
import {
  forgetGroup,
  killMarked,
  MARK_VAR,
  settleMarked,
  signalTracked,
  stopGroup,
  trackGroup,
} from '../../src/process-group.js';
import type { Execa } from '../../src/subprocesses.js';
import { tailChars } from '../../src/text.js';
import type { TurnUsage } from '../types.js';
import type { CliResult, Tokens } from './stream-json.js';

/**
 * One `claude` child that speaks stream-json both ways: turns and control
 * answers go to its stdin, events come out of its stdout as lines. It may
 * serve one turn or many (a warm process). It leads its own process group so
 * that a kill reaches the MCP servers it started too, and marks its
 * environment so that a CLI that did not end by itself takes the Bash commands
 * it was running with it: the CLI starts each in a session of its own, out of
 * its group's reach.
 */

export interface SpawnOptions {
  bin: string;
  /** The mode's arguments; the protocol flags are added here. */
  args: string[];
  cwd: string;
  /** The whole environment: nothing of brainstem's own is inherited. */
  env: Record<string, string>;
  /** How many brains stand above the turns it serves; its MCP calls carry it. */
  depth: number;
  /**
   * Starts the CLI under `nice -n <nice>` (a spare): every thread it starts
   * inherits it, which a renice after the spawn would miss.
   */
  nice?: number;
}

export interface CliExit {
  exitCode?: number;
  /** Signal that ended the child, if any. */
  signal?: string;
  /** The child could not be started (e.g. ENOENT). */
  spawnFailure?: { code?: string; message: string };
  /** Last part of stderr, for classification and debug logs. */
  stderr: string;
}

/**
 * Turns on stdin as JSON lines, and tool permission requests on stdout instead
 * of a silent deny (`--permission-prompt-tool stdio` needs stream-json input).
 */
const PROTOCOL_ARGS = ['--input-format', 'stream-json', '--permission-prompt-tool', 'stdio'];

const STDERR_KEEP = 16 * 1024;
/** Time the CLI gets to exit on SIGTERM before its group gets SIGKILL. */
const KILL_GRACE_MS = 2_000;
/** Time the CLI gets to exit by itself once its stdin is closed. */
const CLOSE_GRACE_MS = 2_000;

export class ClaudeProcess {
  readonly pid: number | undefined;
  readonly cwd: string;
  /** See SpawnOptions.depth: a warm process serves turns of this depth only. */
  readonly depth: number;
  /** Settles once the child has exited and its group has been cleared. */
  readonly exit: Promise<CliExit>;
  /** The CLI session this process holds, once known. */
  sessionId?: string;
  private readonly child;
  /** Lines read and not yet taken by nextLine() (see between()). */
  private readonly lines: string[] = [];
  private linesEnded = false;
  private lineArrived?: () => void;
  /** Between turns: where lines go instead (see between()). */
  private idleReader?: (line: string | undefined) => void;
  private stderrTail = '';
  private exited = false;
  /** Asked to close or killed: no new turn may start on it. */
  private ending = false;
  /** Taken out of service between turns (see withdraw()). */
  private withdrawn = false;
  private killing = false;
  /** When its last turn ended (see settleMarked); undefined before the first. */
  private settledAt: number | undefined;
  /** Cancels the SIGKILL that follows kill()'s SIGTERM. */
  private cancelGrace?: () => void;
  /** `total_cost_usd` of its last result: the CLI reports a running total for the life of the process. */
  private costSoFar = 0;
  /** `modelUsage` of its last result, summed: a running total too. */
  private modelTokensSoFar: Tokens = {
    inputTokens: 0,
    outputTokens: 0,
    cacheReadTokens: 0,
    cacheWriteTokens: 0,
  };

  /**
   * Spawns at once. `execa` comes from subprocesses(), awaited by the caller
   * before it counts the process against claude.maxProcesses, so that nothing
   * awaits between that count and the spawn.
   */
  constructor(o: SpawnOptions, execa: Execa) {
    this.cwd = o.cwd;
    this.depth = o.depth;
    const argv = [...o.args, ...PROTOCOL_ARGS];
    // Here, not in the spec: a spare's spec is compared with a conversation's (spares.ts).
    const mark = randomUUID();
    const [file, args] =
      o.nice === undefined ? [o.bin, argv] : ['nice', ['-n', String(o.nice), o.bin, ...argv]];
    this.child = execa(file, args, {
      cwd: o.cwd,
      env: { ...o.env, [MARK_VAR]: mark },
      extendEnv: false,
      stdin: 'pipe',
      detached: true,
      buffer: false,
      reject: false,
    });
    const pid = this.child.pid;
    this.pid = pid;
    trackGroup(this.child, mark);
    // EPIPE when the CLI died between turns: the turn learns it from the end of stdout.
    this.child.stdin?.on('error', () => {});
    this.child.stderr?.on('data', (chunk: Buffer) => {
      this.stderrTail = tailChars(this.stderrTail + chunk.toString('utf8'), STDERR_KEEP);
    });
    void this.readLines();
    this.exit = this.child.then((r): CliExit => {
      this.exited = true;
      this.cancelGrace?.();
      if (pid !== undefined) {
        // Whatever is left in the group once the CLI is gone (helpers it started, a shell
        // killed mid-command) is an orphan. The CLI was reaped a while ago (execa waits for its
        // output to end too): a group that ended whole since may have given its id to another's.
        signalTracked(pid, 'SIGKILL');
        // Killed (by brainstem, the OOM killer, an operator) or crashed: what it ran outside its
        // group, a Bash command in its own session, would run on with nobody to read it. One that
        // exited by itself ended its turn: what a command of it left in the background is left be.
        // Only what the turn then running started: an ended turn's background processes are left be.
        if (this.killing || r.exitCode !== 0) killMarked(mark, this.settledAt);
        forgetGroup(pid);
      }
      // A child that never started has no exit code and no signal, only a Node error code.
      const spawnFailure =
        pid === undefined
          ? { code: r.code, message: r.originalMessage ?? r.shortMessage ?? 'spawn failed' }
          : undefined;
      return { exitCode: r.exitCode, signal: r.signal, spawnFailure, stderr: this.stderrTail };
    });
  }

  get alive(): boolean {
    return !this.exited && !this.ending && !this.withdrawn && this.pid !== undefined;
  }

  get stderr(): string {
    return this.stderrTail;
  }

  /** Writes one JSON line; dropped when the process is gone or going. */
  send(message: object): void {
    this.sendLine([JSON.stringify(message)]);
  }

  /** One JSON line given in pieces (a turn's images are pieces of their own: see userMessageWithImages). */
  sendLine(pieces: string[]): void {
    const stdin = this.child.stdin;
    if (this.exited || !stdin || stdin.destroyed || stdin.writableEnded) return;
    for (const piece of pieces) stdin.write(piece);
    stdin.write('\n');
  }

  /**
   * The next stdout line; undefined once the process has ended. One reader at a time; none
   * while between() hands the lines to another.
   */
  async nextLine(): Promise<string | undefined> {
    while (this.lines.length === 0 && !this.linesEnded) {
      await new Promise<void>((resolve) => {
        this.lineArrived = resolve;
      });
    }
    return this.lines.shift();
  }

  /**
   * Between turns, when nobody asked the CLI anything: `reader` gets every line from now on
   * (first those read after the last turn's end and not taken), then undefined at the end of
   * stdout, until the next turn takes the lines back with between(undefined). stdout is read
   * all the time, so that nothing the CLI writes unasked waits in the pipe for the next turn.
   */
  between(reader: ((line: string | undefined) => void) | undefined): void {
    this.idleReader = reader;
    if (!reader) return;
    for (const line of this.lines.splice(0)) reader(line);
    if (this.linesEnded) reader(undefined);
  }

  /** Takes the process out of service (no turn may start on it) while it still takes control messages. */
  withdraw(): void {
    this.withdrawn = true;
  }

  /** Whether withdraw() took it out of service. */
  get isWithdrawn(): boolean {
    return this.withdrawn;
  }

  private async readLines(): Promise<void> {
    try {
      // execa ends this iteration when the child exits, even if a grandchild still holds stdout.
      for await (const line of this.child.iterable()) this.line(line);
    } catch {
      // The process failed: its end is what the reader learns.
    }
    this.linesEnded = true;
    this.line(undefined);
  }

  private line(line: string | undefined): void {
    if (this.idleReader) {
      this.idleReader(line);
      return;
    }
    if (line !== undefined) this.lines.push(line);
    this.lineArrived?.();
    this.lineArrived = undefined;
  }

  /**
   * This turn's usage from its `result`. The tokens are `usage`'s, the turn's own
   * (an interrupted turn's too, with 2.1.197 and 2.1.332); when those are all zero
   * (an `error_max_budget_usd` result has no others) they are what the models used
   * since the process's previous result, as is the cost. 2.1.332 says that itself
   * (`model_usage_since_last_result`), and is taken at its word: resuming a session
   * in a new process, it starts `total_cost_usd` and `modelUsage` from the session's
   * earlier cost and tokens, which a difference from zero would count again. With
   * 2.1.197 it is the difference of those running totals (which start at zero in
   * every process). Never `modelUsage` itself: on a warm process a turn that got no
   * answer of its own (a 429, a stop before the API answered) would report every
   * earlier turn's tokens again.
   */
  turnUsage(result: CliResult): TurnUsage {
    // Every result goes through here: the turn ended, and what its commands left running is left be.
    if (this.pid !== undefined) this.settledAt = settleMarked(this.pid);
    const before = { costUsd: this.costSoFar, ...this.modelTokensSoFar };
    this.costSoFar = result.usage.costUsd;
    this.modelTokensSoFar = result.modelTokens ?? this.modelTokensSoFar;
    const spent: TurnUsage = result.sinceLast ?? {
      costUsd: Math.max(0, result.usage.costUsd - before.costUsd),
      inputTokens: Math.max(0, this.modelTokensSoFar.inputTokens - before.inputTokens),
      outputTokens: Math.max(0, this.modelTokensSoFar.outputTokens - before.outputTokens),
      cacheReadTokens: Math.max(0, this.modelTokensSoFar.cacheReadTokens - before.cacheReadTokens),
      cacheWriteTokens: Math.max(0, this.modelTokensSoFar.cacheWriteTokens - before.cacheWriteTokens),
    };
    const { costUsd: _, ...own } = result.usage;
    return Object.values(own).some((n) => n > 0) ? { ...own, costUsd: spent.costUsd } : spent;
  }

  /** SIGTERM to the whole group, SIGKILL after a grace period. */
  kill(): void {
    if (this.killing || this.exited || this.pid === undefined) return;
    this.killing = true;
    this.ending = true;
    this.cancelGrace = stopGroup(this.pid, KILL_GRACE_MS);
  }

  /** Ends stdin so the CLI exits by itself (its session file complete); killed if it lingers. */
  close(): Promise<CliExit> {
    if (!this.exited && !this.ending) {
      this.ending = true;
      this.child.stdin?.end();
      const timer = setTimeout(() => this.kill(), CLOSE_GRACE_MS);
      void this.exit.then(() => clearTimeout(timer));
    }
    return this.exit;
  }
}
