import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/** Pids of live processes whose working directory is inside `dir` (the claude children of a test). */
export function processesIn(dir: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readlinkSync(`/proc/${entry}/cwd`).startsWith(dir)) pids.push(Number(entry));
    } catch {
      // gone, or not ours to read
    }
  }
  return pids;
}

/** Whether a process (or, given `-pgid`, any process of a group) is there to signal. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * SIGKILLs the process group that `leader` leads. A pid read from a log or a file that is not one
 * (0 from an empty file, or no pid at all) throws: as a group, 0 is this test run's own, whose
 * kill would end the whole run, and -1 every process there is.
 */
export function killGroupOf(leader: number | undefined): void {
  if (leader === undefined || !Number.isSafeInteger(leader) || leader <= 1) {
    throw new Error(`not the pid of a process group's leader: ${leader}`);
  }
  process.kill(-leader, 'SIGKILL');
}

/**
 * Signals the process whose pid a test's command wrote to `file`, if it did. A file read while the
 * shell has created it but not yet written it is empty, and `Number('')` is 0: `process.kill(0)`
 * signals this test run's whole process group, which ended whole runs under load. Only a real pid
 * is signalled; an absent, empty or gone one is left.
 */
export function killPidIn(file: string, signal: NodeJS.Signals = 'SIGTERM'): void {
  let pid: number;
  try {
    pid = Number(readFileSync(file, 'utf8').trim());
  } catch {
    return;
  }
  if (!Number.isSafeInteger(pid) || pid <= 1) return;
  try {
    process.kill(pid, signal);
  } catch {
    // Already gone.
  }
}
