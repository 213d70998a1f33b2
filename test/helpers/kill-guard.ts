/**
 * Loaded in every test worker before each test file (vitest.config.ts `setupFiles`): process.kill
 * throws instead of signalling the test run itself. A pid read from a file a shell has created but
 * not yet written is Number('') = 0, and process.kill(0) signals the caller's whole process group:
 * the worker, vitest, its other workers, the brainstem services the tests started and the shell
 * that started the run, all gone at once with no line saying why (it ended whole runs twice).
 * -1 signals every process the user may signal; 1 is init; the worker, vitest (its parent) and the
 * shell above them, by pid or by group, are the run itself. What a test may signal is a child it
 * started. Code under test that runs in the worker (the Claude brain, the tools' runner) goes
 * through here too. The processes the tests spawn (brainstem, fakes) do not: src/process-group.ts
 * refuses the same for them.
 *
 * Pool 'forks' with isolate:false runs file after file in one process: installed once per worker.
 */
import { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';

const INSTALLED = Symbol.for('brainstem.test.killGuard');

/** Thrown for a signal that would reach the test run itself. */
export class KillGuardError extends Error {
  constructor(pid: number, signal: string | number | undefined, why: string) {
    super(
      `kill-guard: refused process.kill(${pid}, ${String(signal ?? 'SIGTERM')}): ${why}. ` +
        'Signal only a pid of a process the test started (a pid read from a file may be empty: ' +
        "Number('') is 0): see killPidIn and killGroupOf in test/helpers/procs.ts.",
    );
    this.name = 'KillGuardError';
  }
}

/** [ppid, pgrp] of `pid` from /proc/<pid>/stat (after the command name, which may hold spaces). */
function parentAndGroup(pid: number | 'self'): [number, number] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return [Number(fields[1]), Number(fields[2])];
  } catch {
    return undefined;
  }
}

/**
 * The worker and its ancestors (vitest, npm, the shell that started the run), by pid, and the
 * groups they are in. All alive for as long as the worker is, so no new process can take their
 * pids, nor a new group their groups' ids: read once.
 */
function runProcesses(): { pids: Map<number, string>; groups: Map<number, string> } {
  const pids = new Map<number, string>([[process.pid, 'the test worker itself']]);
  const groups = new Map<number, string>();
  const own = parentAndGroup('self');
  if (own) groups.set(own[1], "the test worker's own process group (the whole test run)");
  pids.set(process.ppid, 'vitest, the parent of the test worker');
  // Up the chain to init, a few steps at most; a bounded loop in case /proc says something odd.
  let pid = process.ppid;
  for (let step = 0; step < 64 && pid > 1; step++) {
    const pg = parentAndGroup(pid);
    if (!pg) break;
    if (!pids.has(pid)) pids.set(pid, 'a process the test run descends from');
    if (!groups.has(pg[1])) groups.set(pg[1], "the process group of the test run's parents");
    pid = pg[0];
  }
  return { pids, groups };
}

/** Why signalling `pid` would hit the run itself, or undefined when it may be sent. */
export function refusal(
  pid: number,
  run: { pids: Map<number, string>; groups: Map<number, string> },
): string | undefined {
  // Node itself throws for a pid that is not an integer (NaN included).
  if (pid === 0) return "0 is the caller's own process group: the whole test run";
  if (pid === -1) return '-1 is every process this user may signal';
  if (pid === 1) return '1 is init';
  if (pid > 0) return run.pids.get(pid);
  return run.groups.get(-pid) ?? (run.pids.has(-pid) ? `the group led by ${run.pids.get(-pid)}` : undefined);
}

/**
 * signal-exit (loaded by execa) re-raises, on itself, a signal it caught once its handlers ran, so
 * that the worker dies of it as asked: that is the one signal to its own pid a worker sends.
 */
function reRaisedBySignalExit(): boolean {
  return /[\\/]node_modules[\\/]signal-exit[\\/]/.test(new Error().stack ?? '');
}

export function installKillGuard(): void {
  const holder = globalThis as { [INSTALLED]?: true };
  if (holder[INSTALLED]) return;
  holder[INSTALLED] = true;
  const run = runProcesses();
  const kill = process.kill.bind(process);
  process.kill = ((pid: number, signal?: string | number) => {
    const why = refusal(pid, run);
    if (why !== undefined && !(pid === process.pid && reRaisedBySignalExit())) {
      throw new KillGuardError(pid, signal, why);
    }
    return signal === undefined ? kill(pid) : kill(pid, signal);
  }) as typeof process.kill;
  guardChildKill();
}

/**
 * ChildProcess.kill() does not go through process.kill: on a program that failed to start, before
 * its 'error' event, it signals the pid its handle never got, 0 (the whole test run) or whatever
 * that memory holds. execa did so for a cut run of a program not found, and ended whole runs;
 * brainstem's execa now never kills a program without a pid (src/subprocesses.ts). A test's own
 * spawn is refused here the same way.
 */
function guardChildKill(): void {
  const proto = ChildProcess.prototype as ChildProcess & { _handle?: unknown };
  const kill = proto.kill;
  proto.kill = function (this: ChildProcess & { _handle?: unknown }, signal?: NodeJS.Signals | number) {
    if (this.pid === undefined && this._handle) {
      throw new KillGuardError(
        0,
        signal,
        'the program never started (no pid): its kill() would signal pid 0, the whole test run',
      );
    }
    return kill.call(this, signal);
  };
}

installKillGuard();
