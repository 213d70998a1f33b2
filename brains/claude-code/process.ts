import { execa } from 'execa';

/**
 * One run of the CLI as a child process: stdout as lines, stopped (with every
 * process it started) on abort, on the turn time limit, or when the reader
 * stops reading. The child leads its own process group so that a kill reaches
 * the shells and MCP servers it spawned too.
 */

export interface RunOptions {
  bin: string;
  args: string[];
  cwd: string;
  /** Added to process.env. */
  env: Record<string, string>;
  /** Written to stdin, which is then closed. */
  input: string;
  signal: AbortSignal;
  timeoutMs: number;
}

export interface CliExit {
  exitCode?: number;
  /** Signal that ended the child, if any. */
  signal?: string;
  /** Why brainstem stopped it, if it did. */
  stopped?: 'aborted' | 'timeout';
  /** The child could not be started (e.g. ENOENT). */
  spawnFailure?: { code?: string; message: string };
  /** Last part of stderr, for classification and debug logs. */
  stderr: string;
}

export interface CliRun {
  pid: number | undefined;
  /** stdout lines; leaving the loop early kills the child. */
  lines: AsyncIterable<string>;
  /** Settles once the child has exited and been reaped. */
  exit: Promise<CliExit>;
}

const STDERR_KEEP = 16 * 1024;
/** Time the CLI gets to exit on SIGTERM before its group gets SIGKILL. */
const KILL_GRACE_MS = 2_000;

/** Process groups still running, killed if brainstem itself exits (detached children outlive it otherwise). */
const liveGroups = new Set<number>();
let exitHookInstalled = false;

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the whole group is already gone.
  }
}

export function runCli(o: RunOptions): CliRun {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const pid of liveGroups) killGroup(pid, 'SIGKILL');
    });
  }
  const child = execa(o.bin, o.args, {
    cwd: o.cwd,
    env: o.env,
    input: o.input,
    detached: true,
    buffer: false,
    reject: false,
  });
  const pid = child.pid;
  if (pid !== undefined) liveGroups.add(pid);

  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-STDERR_KEEP);
  });

  let stopped: CliExit['stopped'];
  let exited = false;
  let graceTimer: NodeJS.Timeout | undefined;
  const stop = (why: NonNullable<CliExit['stopped']>) => {
    if (stopped || exited || pid === undefined) return;
    stopped = why;
    killGroup(pid, 'SIGTERM');
    graceTimer = setTimeout(() => killGroup(pid, 'SIGKILL'), KILL_GRACE_MS);
  };
  const onAbort = () => stop('aborted');
  o.signal.addEventListener('abort', onAbort, { once: true });
  const timer = setTimeout(() => stop('timeout'), o.timeoutMs);
  if (o.signal.aborted) onAbort();

  const exit = child.then((r): CliExit => {
    exited = true;
    clearTimeout(timer);
    clearTimeout(graceTimer);
    o.signal.removeEventListener('abort', onAbort);
    if (pid !== undefined) {
      // Whatever is left in the group once the CLI is gone (helpers it started, a shell
      // killed mid-command) is an orphan.
      killGroup(pid, 'SIGKILL');
      liveGroups.delete(pid);
    }
    // A child that never started has no exit code and no signal, only a Node error code.
    const spawnFailure =
      pid === undefined
        ? { code: r.code, message: r.originalMessage ?? r.shortMessage ?? 'spawn failed' }
        : undefined;
    return { exitCode: r.exitCode, signal: r.signal, stopped, spawnFailure, stderr };
  });

  async function* lines(): AsyncGenerator<string> {
    // execa ends this iteration when the child exits, even if a grandchild still holds stdout.
    // Iterated by hand: closing execa's iterator waits for the child to exit, so a reader
    // that stops early must kill the child first, and for-await would close it first.
    const it = child.iterable()[Symbol.asyncIterator]();
    try {
      for (let next = await it.next(); !next.done; next = await it.next()) yield next.value;
    } finally {
      if (!exited) stop('aborted');
      await it.return?.();
      await exit;
    }
  }

  return { pid, lines: lines(), exit };
}
