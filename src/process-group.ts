/**
 * Children that brainstem starts detached lead a process group of their own,
 * so that one kill reaches everything they started (make → sh → compiler,
 * claude → its MCP servers; its Bash commands run in sessions of their own,
 * which killMarked reaches). A detached group outlives its parent:
 * every group still tracked is SIGKILLed when brainstem itself exits.
 * Used by the Claude brain and by the tools' command runner; it imports
 * nothing of src/, so brains can use it without reaching into the rest of it.
 */
import { readdirSync, readFileSync } from 'node:fs';

/**
 * Running groups by leader, with the mark their processes carry, if any, and since when a marked
 * process is still the run's (see killMarked, settleMarked).
 */
const live = new Map<number, { mark?: string; since?: number }>();
let exitHookInstalled = false;

/** Where running groups are written down, so that a start after a crash stops them (leftover-groups.ts). */
export interface GroupJournal {
  add(pid: number, mark?: string): void;
  /** The marked processes of `pid`'s group started up to `since` are left be from now on (settleMarked). */
  settle(pid: number, since: number): void;
  remove(pid: number): void;
}
let journal: GroupJournal | undefined;

/** Writes every group tracked from now on down in `j` (undefined: nowhere); one per process (the data dir's brainstem). */
export function journalGroups(j: GroupJournal | undefined): void {
  journal = j;
}

/**
 * The process group brainstem itself is in (/proc/self/stat; brainstem never changes it), undefined
 * off Linux. Read once, when a group is first to be signalled.
 */
let ownGroupId: number | undefined | null = null;
function ownGroup(): number | undefined {
  if (ownGroupId === null) {
    try {
      const stat = readFileSync('/proc/self/stat', 'latin1');
      const group = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
      ownGroupId = Number.isSafeInteger(group) && group > 0 ? group : undefined;
    } catch {
      ownGroupId = undefined;
    }
  }
  return ownGroupId;
}

/**
 * Signals the whole group led by `pid`; a group already gone is not an error. Only a child's pid
 * is a group brainstem started: 0 would signal brainstem's own group (pm2's or a test run's
 * processes with it), and -1 every process it may signal, so neither is ever sent; nor is the
 * group brainstem itself is in (it leads one under pm2; started by a shell or a test run, it is in
 * theirs), whatever pid names it.
 */
export function killGroup(pid: number, signal: NodeJS.Signals): void {
  if (!Number.isSafeInteger(pid) || pid <= 1 || pid === process.pid || pid === ownGroup()) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the whole group is already gone.
  }
}

/**
 * Remembers a running group, killed if brainstem exits before it does; with `mark`, every process
 * carrying it too (see killMarked), whatever group it runs in.
 */
export function trackGroup(pid: number, mark?: string): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const [leader, { mark, since }] of live) {
        killGroup(leader, 'SIGKILL');
        if (mark !== undefined) killMarked(mark, since);
      }
    });
  }
  live.set(pid, mark === undefined ? {} : { mark });
  journal?.add(pid, mark);
}

/**
 * The run of `pid`'s group ended a piece of its work (a Claude CLI its turn): what its processes
 * started up to now, still running, was left running on purpose (a server a command started in the
 * background), so killMarked spares it from now on, at brainstem's exit and after a crash too.
 * Returns that time, for the caller's own killMarked.
 */
export function settleMarked(pid: number): number | undefined {
  const entry = live.get(pid);
  const since = ticksNow();
  if (entry?.mark === undefined || since === undefined) return since;
  entry.since = since;
  journal?.settle(pid, since);
  return since;
}

/**
 * Now, in the unit of /proc/<pid>/stat's start times: clock ticks since boot (USER_HZ, 100 on
 * every Linux Node runs on; /proc/uptime counts the same boot time, suspends included).
 */
export function ticksNow(): number | undefined {
  try {
    const seconds = Number(readFileSync('/proc/uptime', 'latin1').split(' ')[0]);
    return Number.isFinite(seconds) ? Math.floor(seconds * 100) : undefined;
  } catch {
    return undefined;
  }
}

/** The group's leader has exited: nothing to kill at brainstem's exit any more. */
export function forgetGroup(pid: number): void {
  live.delete(pid);
  journal?.remove(pid);
}

/**
 * The environment variable that marks every process started under one child of brainstem's: a
 * child passes its environment on, so its mark reaches what it starts in any group or session.
 */
export const MARK_VAR = 'BRAINSTEM_PROCESS_MARK';

/**
 * SIGKILLs every process whose environment holds MARK_VAR=`mark` (Linux: /proc; elsewhere
 * nothing) and that started after `since` (settleMarked), and the group of each that leads one.
 * For what left its parent's process group: Claude Code starts each Bash command in a session of
 * its own, which a kill of the CLI's group does not reach, so a CLI that dies mid-command (the OOM
 * killer, a kill after its grace) left the command running with nobody to read it. What started
 * before `since` was left running by a turn that ended (a server, a tmux session): the user's now.
 * Returns how many processes were marked.
 */
export function killMarked(mark: string, since?: number): number {
  if (process.platform !== 'linux' || !mark) return 0;
  const entry = `\0${MARK_VAR}=${mark}\0`;
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return 0;
  }
  const marked: { pid: number; group: number }[] = [];
  for (const name of names) {
    const pid = Number(name);
    if (!Number.isSafeInteger(pid) || pid <= 1 || pid === process.pid || pid === process.ppid) continue;
    try {
      // Entries end with a NUL; one before the first makes every entry look alike.
      if (!`\0${readFileSync(`/proc/${pid}/environ`, 'latin1')}`.includes(entry)) continue;
      const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
      // After the command name (which may hold spaces or parentheses): [2] the group, [19] the start.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (since !== undefined && !(Number(fields[19]) > since)) continue;
      marked.push({ pid, group: Number(fields[2]) });
    } catch {
      // Gone meanwhile, or another user's: not ours to stop.
    }
  }
  const pids = new Set(marked.map((m) => m.pid));
  for (const { pid, group } of marked) {
    // A group whose leader is marked is all of the same run (a command and what it started).
    if (pids.has(group)) killGroup(group, 'SIGKILL');
    else {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // ESRCH: already gone.
      }
    }
  }
  return marked.length;
}
