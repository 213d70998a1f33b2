/**
 * Children that brainstem starts detached lead a process group of their own,
 * so that one kill reaches everything they started (make → sh → compiler,
 * claude → its shells and MCP servers). A detached group outlives its parent:
 * every group still tracked is SIGKILLed when brainstem itself exits.
 * Used by the Claude brain and by the tools' command runner; it imports
 * nothing, so brains can use it without reaching into the rest of src/.
 */

const live = new Set<number>();
let exitHookInstalled = false;

/** Where running groups are written down, so that a start after a crash stops them (leftover-groups.ts). */
export interface GroupJournal {
  add(pid: number): void;
  remove(pid: number): void;
}
let journal: GroupJournal | undefined;

/** Writes every group tracked from now on down in `j` (undefined: nowhere); one per process (the data dir's brainstem). */
export function journalGroups(j: GroupJournal | undefined): void {
  journal = j;
}

/**
 * Signals the whole group led by `pid`; a group already gone is not an error. Only a child's pid
 * is a group brainstem started: 0 would signal brainstem's own group (pm2's or a test run's
 * processes with it), and -1 every process it may signal, so neither is ever sent.
 */
export function killGroup(pid: number, signal: NodeJS.Signals): void {
  if (!Number.isSafeInteger(pid) || pid <= 1) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the whole group is already gone.
  }
}

/** Remembers a running group, killed if brainstem exits before it does. */
export function trackGroup(pid: number): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const leader of live) killGroup(leader, 'SIGKILL');
    });
  }
  live.add(pid);
  journal?.add(pid);
}

/** The group's leader has exited: nothing to kill at brainstem's exit any more. */
export function forgetGroup(pid: number): void {
  live.delete(pid);
  journal?.remove(pid);
}
