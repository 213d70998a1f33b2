import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';

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

/** When `pid` started, in clock ticks (10 ms) since boot (/proc/<pid>/stat); undefined once it is gone. */
function startTicks(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
  } catch {
    return undefined;
  }
}

/** When `file` was last written, in the same ticks since boot. */
function writtenTicks(mtimeMs: number): number {
  const uptime = Number(readFileSync('/proc/uptime', 'latin1').split(' ')[0]);
  return uptime * 100 - (Date.now() - mtimeMs) / 10;
}

/**
 * Signals the process whose pid a test's command wrote to `file`, if it did and is still running.
 * A file read while the shell has created it but not yet written it is empty, and `Number('')` is
 * 0: `process.kill(0)` signals this test run's whole process group, which ended whole runs under
 * load. Only a real pid is signalled; an absent, empty or gone one is left. Nor is a pid another
 * process took once the writer ended (this machine has 32768 pids, and a test run goes through
 * them in minutes): the writer started before it wrote the file, a process started after is
 * another's (a vitest worker, another test's brainstem).
 */
export function killPidIn(file: string, signal: NodeJS.Signals = 'SIGTERM'): void {
  let pid: number;
  let written: number;
  try {
    pid = Number(readFileSync(file, 'utf8').trim());
    written = writtenTicks(statSync(file).mtimeMs);
  } catch {
    return;
  }
  if (!Number.isSafeInteger(pid) || pid <= 1) return;
  const started = startTicks(pid);
  // Two ticks of slack: /proc/uptime and the file's time come from different clocks.
  if (started === undefined || started > written + 2) return;
  try {
    process.kill(pid, signal);
  } catch {
    // Already gone.
  }
}

/**
 * Runs a TypeScript file (tsx) in a process leading a group of its own: a kill of its own group, or
 * of pid 0, ends it and not the test run. Its stdout, and how it exited.
 */
export async function runAlone(script: string): Promise<{ code: unknown; signal: unknown; out: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    detached: true,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const [code, signal] = await once(child, 'exit');
  return { code, signal, out };
}
