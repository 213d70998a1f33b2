import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import type { Logger } from './logger.js';
import { journalGroups, killGroup, killMarked, sameGroup, startOf, ticksNow } from './process-group.js';

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
   * in a list written before it was kept.
   */
  at: z.number().int().min(0).optional(),
  groups: z.array(
    z.object({
      pid: z.number().int().min(2),
      start: z.number().int().min(0),
      /** The mark its processes carry (a Claude CLI's: its Bash commands run in sessions of their own). */
      mark: z.string().min(1).optional(),
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
 * Whether the group `e` names is still the one brainstem started (sameGroup): `at`, the list's last
 * writing, is a time when each group in it was still running.
 */
function stillThere(e: Entry, at: number | undefined): boolean {
  return sameGroup(e.pid, e.start, at);
}

/**
 * Stops the groups a brainstem before this one left running on `dataDir`, then writes down those
 * this one starts. Called once the data dir's lock is held: another brainstem's groups are never
 * touched.
 */
export function takeOverGroups(dataDir: string, logger: Logger): void {
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
  const stopped = left.filter((e) => stillThere(e, at));
  for (const e of stopped) killGroup(e.pid, 'SIGKILL');
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

  const running = new Map<number, { start: number; mark?: string; since?: number }>();
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
  write();
  journalGroups({
    add(pid, mark) {
      const start = startOf(pid);
      if (start === undefined) return;
      running.set(pid, mark === undefined ? { start } : { start, mark });
      write();
    },
    settle(pid, since) {
      const e = running.get(pid);
      if (e === undefined) return;
      e.since = since;
      write();
    },
    remove(pid) {
      if (running.delete(pid)) write();
    },
  });
}
