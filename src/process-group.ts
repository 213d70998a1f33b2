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
 * Running groups by leader, with the leader's start time (stopGroup), when brainstem saw the leader
 * exit (reaped it), the mark their processes carry, if any, and since when a marked process is
 * still the run's (see killMarked, settleMarked).
 */
const live = new Map<number, { start?: number; exited?: number; mark?: string; since?: number }>();
let exitHookInstalled = false;

/** Where running groups are written down, so that a start after a crash stops them (leftover-groups.ts). */
export interface GroupJournal {
  add(pid: number, mark?: string, reach?: MarkReach): void;
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

/** Fields of /proc/<pid>/stat after the command name (which may hold spaces): [2] the group, [19] the start. */
export function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** When `pid` started, in clock ticks since boot (see ticksNow): with the pid, names one process for good. */
export function startOf(pid: number): number | undefined {
  const start = statFields(pid)?.[19];
  return start === undefined ? undefined : Number(start);
}

/**
 * Whether the group of id `pid` is still the one whose leader started at `start`: its leader, the
 * same process, or, the leader gone, a member started between the leader and `at`, a time the group
 * was known to be running (undefined: any member started after the leader), or one carrying `mark`
 * (a tool run's, see trackGroup) whenever it started: a process the run started holds the group's
 * id, never freed since, so the whole group is still the run's. Linux gives no pid to a new
 * process while a group still uses it as its id, but once the whole group has ended, the pid
 * is free: a process that took it and led a group of its own (a daemon, a command started in a
 * session of its own, which leaves its members behind when it exits) makes a group of that id
 * with only members started after `at`, someone else's. (A 32768-pid machine reuses pids within
 * minutes.) A group that is gone altogether is not the same either.
 */
export function sameGroup(pid: number, start: number, at: number | undefined, mark?: string): boolean {
  const leader = startOf(pid);
  if (leader !== undefined) return leader === start;
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return false;
  }
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    const f = statFields(Number(name));
    if (!f || Number(f[2]) !== pid) continue;
    const memberStart = Number(f[19]);
    if (memberStart < start) continue;
    if (at === undefined || memberStart <= at || (mark !== undefined && carries(Number(name), mark)))
      return true;
  }
  return false;
}

/**
 * Signals the group of id `pid` only if it is still the one whose leader started at `start`
 * (sameGroup, `at` a time it was known running, `mark` its processes'), and says whether it did.
 * Every signal to a group after its leader may have been reaped goes through here: the group may
 * have ended whole since, and another (a daemon, a command in a session of its own, another run's)
 * taken its freed id.
 * Without a start (off Linux: no /proc) the group is signalled as it is.
 */
export function signalSameGroup(
  pid: number,
  start: number | undefined,
  at: number | undefined,
  signal: NodeJS.Signals,
  mark?: string,
): boolean {
  if (start !== undefined && !sameGroup(pid, start, at, mark)) return false;
  killGroup(pid, signal);
  return true;
}

/**
 * Signals the tracked group led by `pid` (trackGroup) if it is still that group: its leader, or,
 * once brainstem has reaped the leader, a member started before then (signalSameGroup).
 */
export function signalTracked(pid: number, signal: NodeJS.Signals): boolean {
  const entry = live.get(pid);
  return signalSameGroup(pid, entry?.start, entry?.exited, signal);
}

/**
 * Stops the group led by `pid`, a tracked one (trackGroup): SIGTERM now, and SIGKILL after
 * `graceMs` to what is left of it. The one way brainstem stops a group with a grace (a tool's
 * command, a Claude CLI). The group may end within the grace, and its id is then free for any new
 * group (another run's, the user's): the SIGKILL goes only to the group the SIGTERM went to, which
 * its leader's start time read at the spawn tells apart (sameGroup), and not at all to a group
 * that is gone. (The cost: once the leader has exited, a group left with only processes it started
 * after the SIGTERM is taken for another's and left be.) Off Linux (no /proc, no start time) the
 * group is signalled as it is.
 * Returns what cancels the SIGKILL (the caller saw the group end).
 */
export function stopGroup(pid: number, graceMs: number): () => void {
  const start = live.get(pid)?.start;
  // The leader may have been reaped already (a caller that learns of its exit late): its id may
  // name another group by now.
  if (!signalTracked(pid, 'SIGTERM')) return () => undefined;
  // The group was there, and brainstem's, at this time: a member started since is no proof of it.
  const at = ticksNow();
  const timer = setTimeout(() => signalSameGroup(pid, start, at, 'SIGKILL'), graceMs);
  timer.unref();
  return () => clearTimeout(timer);
}

/** A child brainstem started detached (a ChildProcess, an execa subprocess): the leader of its group. */
export interface GroupLeader {
  readonly pid?: number | undefined;
  once(event: 'exit', listener: () => void): unknown;
}

/**
 * How far a group's mark reaches: `anywhere` (a Claude CLI's), every process carrying it is the
 * run's, whatever group it runs in (killMarked); `group` (a tool run's), only those in its group,
 * which tells them, after a crash, from another group's that took the freed id (sameGroup): what
 * a command started outside its group (setsid, a daemon, pm2's) is left be, as at brainstem's exit.
 */
export type MarkReach = 'anywhere' | 'group';

/**
 * Remembers a running group, killed if brainstem exits before it does; with `mark` (`reach`
 * anywhere), every process carrying it too (see killMarked), whatever group it runs in. A mark that
 * reaches its group only goes in the journal only, for the start after a crash: brainstem's own
 * exit and its stops signal the group as without it.
 */
export function trackGroup(leader: GroupLeader, mark?: string, reach: MarkReach = 'anywhere'): void {
  const pid = leader.pid;
  if (pid === undefined) return;
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      // A group whose leader brainstem has reaped, not yet forgotten (its output still drains), may
      // have ended whole and its id been taken by another's: signalTracked tells them apart.
      for (const [leader, { mark, since }] of live) {
        signalTracked(leader, 'SIGKILL');
        if (mark !== undefined) killMarked(mark, since);
      }
    });
  }
  // Read now, before the loop can reap the child: with the pid, it names this group for good (stopGroup).
  const start = startOf(pid);
  const entry: { start?: number; exited?: number; mark?: string } = {
    ...(start === undefined ? {} : { start }),
    ...(mark === undefined || reach !== 'anywhere' ? {} : { mark }),
  };
  live.set(pid, entry);
  // Node emits 'exit' in the callback that reaps the child: until then its pid (a zombie's) holds
  // the group's id; from then on the id is free once the group's last member is gone, and only a
  // member started by now can be of this group (signalTracked). Callers learn of the exit later
  // (execa's promise waits for the output too).
  leader.once('exit', () => {
    if (live.get(pid) !== entry) return;
    const now = ticksNow();
    if (now !== undefined) entry.exited = now;
  });
  journal?.add(pid, mark, reach);
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
    return uptimeTicks(readFileSync('/proc/uptime', 'latin1'));
  } catch {
    return undefined;
  }
}

/**
 * /proc/uptime's first field ("79323.29") in clock ticks, read as hundredths from its text: parsed
 * as seconds and multiplied, a sixth of the readings came out a tick low (7932328.999…), before the
 * start of a process started in that very tick, which was then taken for another's (sameGroup).
 */
export function uptimeTicks(text: string): number | undefined {
  const hundredths = /^(\d+)\.(\d\d)\s/.exec(text);
  return hundredths ? Number(hundredths[1]) * 100 + Number(hundredths[2]) : undefined;
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

/** Whether `pid`'s environment holds MARK_VAR=`mark` (another user's process, or one gone: no). */
function carries(pid: number, mark: string): boolean {
  try {
    // Entries end with a NUL; one before the first makes every entry look alike.
    return `\0${readFileSync(`/proc/${pid}/environ`, 'latin1')}`.includes(`\0${MARK_VAR}=${mark}\0`);
  } catch {
    return false;
  }
}

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
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return 0;
  }
  // Read before the look: each marked process was running at this time or after.
  const at = ticksNow();
  const marked: { pid: number; group: number; start: number }[] = [];
  for (const name of names) {
    const pid = Number(name);
    if (!Number.isSafeInteger(pid) || pid <= 1 || pid === process.pid || pid === process.ppid) continue;
    if (!carries(pid, mark)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
      // After the command name (which may hold spaces or parentheses): [2] the group, [19] the start.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (since !== undefined && !(Number(fields[19]) > since)) continue;
      marked.push({ pid, group: Number(fields[2]), start: Number(fields[19]) });
    } catch {
      // Gone meanwhile, or another user's: not ours to stop.
    }
  }
  const starts = new Map(marked.map((m) => [m.pid, m.start]));
  const signalled = new Set<number>();
  // What was found may have ended since (the look reads every process's environment), and its pid,
  // or its group's id, been taken by another: each is signalled only if still the one found.
  for (const { pid, group, start } of marked) {
    const leader = starts.get(group);
    // A group whose leader is marked is all of the same run (a command and what it started).
    if (leader !== undefined) {
      if (!signalled.has(group)) signalSameGroup(group, leader, at, 'SIGKILL');
      signalled.add(group);
    } else if (startOf(pid) === start) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // ESRCH: already gone.
      }
    }
  }
  return marked.length;
}
