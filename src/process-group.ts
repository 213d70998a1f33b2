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

/** Signals the whole group led by `pid`; a group already gone is not an error. */
export function killGroup(pid: number, signal: NodeJS.Signals): void {
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
}

/** The group's leader has exited: nothing to kill at brainstem's exit any more. */
export function forgetGroup(pid: number): void {
  live.delete(pid);
}
