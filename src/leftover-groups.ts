import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import type { Logger } from './logger.js';
import { journalGroups, killMarked, sameGroup, signalSameGroup, startOf, ticksNow } from './process-group.js';

/**
 * The process groups brainstem runs (a tool's command, a Claude CLI) are SIGKILLed when it exits,
 * but a brainstem that is itself SIGKILLed (the OOM killer, pm2's max_memory_restart after its
 * grace, a crash of Node) runs no exit hook: a `make deploy` or an `incus exec` it ran went on with
 * nobody to read its output, and a chat was told at the next start that its result would not come
 * while it was still running. So each running group is written down in the data dir, with its
 * leader's start time, and the next start on that dir, in the same boot, stops those still there.
 * Linux only (/proc); elsewhere nothing is written and nothing stopped.
 */

/** In the data dir. Claude may not write it (own-files.ts): a pid planted there would be killed. */
export const PROCESS_GROUPS_FILE = 'process-groups.json';

const journalSchema = z.object({
  /** The boot the pids belong to: after a reboot they name other processes. */
  boot: z.string(),
  /**
   * When it was last written (clock ticks since boot): each group in it was running then. Absent
   * in a list written before it was kept. A group's own `at`, when there, comes first: it is set
   * only by a look at that group (this one is written at any change, a group ended moments ago
   * still in it); this one is still written for an older brainstem started on the same data dir.
   */
  at: z.number().int().min(0).optional(),
  groups: z.array(
    z.object({
      pid: z.number().int().min(2),
      start: z.number().int().min(0),
      /**
       * The last time (clock ticks since boot) the group was known to be running: its spawn, then
       * each refresh that found it still there (REFRESH_MS). Absent in a list written before it was kept.
       */
      at: z.number().int().min(0).optional(),
      /** The mark its processes carry (a Claude CLI's: its Bash commands run in sessions of their own). */
      mark: z.string().min(1).optional(),
      /**
       * The mark a tool run's processes carry, which reaches only its group (MarkReach): a member
       * carrying it is the run's whatever its start. Not in `mark`: an older brainstem would stop
       * every process carrying it there, what the run started with setsid (pm2's daemon) too.
       */
      groupMark: z.string().min(1).optional(),
      /** Marked processes started up to then were left running by a turn that ended: not stopped. */
      since: z.number().int().min(0).optional(),
    }),
  ),
});
type Entry = z.infer<typeof journalSchema>['groups'][number];

function bootId(): string | undefined {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return undefined;
  }
}

/**
 * How often, while brainstem runs groups, each is confirmed still running and its `at` moved to
 * now. A group whose leader is gone counts after a crash only by a member started up to its `at`
 * (sameGroup: a later one may be of another group that took the freed id) or carrying its tool
 * run's mark (groupMark), and a run's members mostly start after its spawn: a `make deploy` whose
 * leader died after brainstem (SIGPIPE on the pipe nobody reads) left its compilers and servers
 * running, never stopped, when `at` was only the list's last writing (a spawn or an exit, maybe
 * long before). The mark now tells those apart; of
 * what dropped it from its environment (`sudo`, `env -i`), only what started within the last
 * REFRESH_MS before the crash is left be. A small file, renamed into place: cheap at this rate.
 */
export const REFRESH_MS = 30_000;

/**
 * SIGKILLs the group `e` names if it is still the one brainstem started (signalSameGroup): its own
 * `at`, else (a list of an older brainstem) the list's last writing, is a time when it was still
 * running; a member carrying its tool run's mark is the run's whenever it started. Says whether it did.
 */
function stopIfThere(e: Entry, at: number | undefined): boolean {
  return signalSameGroup(e.pid, e.start, e.at ?? at, 'SIGKILL', e.groupMark);
}

/**
 * Stops the groups a brainstem before this one left running on `dataDir`, then writes down those
 * this one starts. Called once the data dir's lock is held: another brainstem's groups are never
 * touched.
 */
export function takeOverGroups(dataDir: string, logger: Logger, opts: { refreshMs?: number } = {}): void {
  const boot = bootId();
  if (boot === undefined) return;
  const file = path.join(dataDir, PROCESS_GROUPS_FILE);
  let left: Entry[] = [];
  let at: number | undefined;
  try {
    const journal = journalSchema.parse(JSON.parse(readFileSync(file, 'utf8')));
    if (journal.boot === boot) {
      left = journal.groups;
      at = journal.at;
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
      logger.warn(
        { file, err: (err as Error).message },
        'the list of running process groups is unreadable; none stopped',
      );
  }
  // Each checked right before its kill: all checked first, the last ones' ids were free longer.
  const stopped = left.filter((e) => stopIfThere(e, at));
  if (stopped.length > 0)
    logger.warn(
      { pids: stopped.map((e) => e.pid) },
      'stopped the process groups (tool runs, Claude CLIs) that a brainstem killed before its exit left running',
    );
  // What a Claude CLI ran outside its group (a Bash command) outlives the group's leader and members;
  // its mark, a random id, names nothing else, so it is looked for whether the group is there or not.
  const marked = left.flatMap((e) => (e.mark === undefined ? [] : [killMarked(e.mark, e.since)]));
  const strays = marked.reduce((a, b) => a + b, 0);
  if (strays > 0)
    logger.warn(
      { processes: strays },
      'stopped the commands Claude CLIs ran outside their process groups that a brainstem killed before its exit left running',
    );

  const running = new Map<
    number,
    { start: number; at?: number; mark?: string; groupMark?: string; since?: number }
  >();
  let failing = false;
  const write = () => {
    try {
      const groups: Entry[] = [...running].map(([pid, e]) => ({ pid, ...e }));
      writeFileSync(`${file}.tmp`, JSON.stringify({ boot, at: ticksNow(), groups }));
      renameSync(`${file}.tmp`, file);
      failing = false;
    } catch (err) {
      // Once per run of failures: a full disk would otherwise log every spawn.
      if (!failing)
        logger.warn(
          { file, err: (err as Error).message },
          'cannot write down the running process groups: a crash would leave them running',
        );
      failing = true;
    }
  };
  // Confirms each group still running (REFRESH_MS); one that is not (ended, its id taken by
  // another's) leaves the list. Now is read before the check: a group found running after it was
  // running then too (a group that ended never comes back), while a time read after the check
  // could fall after its end and count a later group of its freed id as this one.
  const refresh = () => {
    for (const [pid, e] of running) {
      const now = ticksNow();
      if (!sameGroup(pid, e.start, e.at, e.groupMark)) running.delete(pid);
      else if (now !== undefined) e.at = now;
    }
    write();
    keepRefreshing();
  };
  let refresher: NodeJS.Timeout | undefined;
  // Only while a group without a mark (a tool run: its groupMark misses what drops it from its
  // environment) is tracked, and never keeping brainstem up by itself. A Claude CLI's group needs
  // none: what it started carries its mark, found by that after a crash whatever its start
  // (killMarked), and a spare or a kept-warm CLI, tracked for hours, would otherwise rewrite the
  // file every REFRESH_MS all day long.
  const keepRefreshing = () => {
    const needed = [...running.values()].some((e) => e.mark === undefined);
    if (needed && refresher === undefined) {
      refresher = setInterval(refresh, opts.refreshMs ?? REFRESH_MS);
      refresher.unref();
    } else if (!needed && refresher !== undefined) {
      clearInterval(refresher);
      refresher = undefined;
    }
  };
  write();
  journalGroups({
    add(pid, mark, reach) {
      const start = startOf(pid);
      if (start === undefined) return;
      // Running now: brainstem's child, not reaped before this (trackGroup is called at the spawn).
      const at = ticksNow();
      running.set(pid, {
        start,
        ...(at === undefined ? {} : { at }),
        ...(mark === undefined ? {} : reach === 'group' ? { groupMark: mark } : { mark }),
      });
      write();
      keepRefreshing();
    },
    settle(pid, since) {
      const e = running.get(pid);
      if (e === undefined) return;
      e.since = since;
      write();
    },
    remove(pid) {
      if (running.delete(pid)) write();
      keepRefreshing();
    },
  });
}
