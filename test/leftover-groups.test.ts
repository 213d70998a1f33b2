/**
 * The process groups a SIGKILLed brainstem left running, stopped by the next start on its data dir
 * (src/leftover-groups.ts), with real process groups: `sh` leading one, a `sleep` in it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { takeOverGroups } from '../src/leftover-groups.js';
import { forgetGroup, journalGroups, MARK_VAR, settleMarked, trackGroup } from '../src/process-group.js';
import { recordingLogger } from './helpers/logs.js';

let dir: string;
const started: ChildProcess[] = [];
const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
/** Now, in the unit of /proc/<pid>/stat's start times: clock ticks (10 ms) since boot. */
const ticks = () => Math.floor(Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]) * 100);

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'bst-groups-'));
});
afterEach(() => {
  // The journal is one per process: the next test file in this worker keeps none.
  journalGroups(undefined);
  for (const c of started.splice(0)) {
    if (c.pid) for (const pid of groupMembers(c.pid)) kill(pid);
  }
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function kill(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {}
}

const stat = (pid: number) => {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return s.slice(s.lastIndexOf(')') + 2).split(' ');
};

/** Live (not zombie) processes whose group is `pgid`. */
function groupMembers(pgid: number): number[] {
  return readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .flatMap((n) => {
      try {
        const f = stat(Number(n));
        return Number(f[2]) === pgid && f[0] !== 'Z' ? [Number(n)] : [];
      } catch {
        return [];
      }
    });
}

/** `sh` leading a group of its own, with a `sleep` in it; resolves once both run. */
async function group(): Promise<{ leader: ChildProcess; pid: number; start: number }> {
  const leader = spawn('sh', ['-c', 'sleep 300 & echo up; wait'], {
    detached: true,
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  started.push(leader);
  await new Promise((resolve) => leader.stdout?.once('data', resolve));
  const pid = leader.pid as number;
  return { leader, pid, start: Number(stat(pid)[19]) };
}

async function journal(content: unknown, dataDir = dir): Promise<void> {
  await writeFile(path.join(dataDir, 'process-groups.json'), JSON.stringify(content));
}

async function gone(pgid: number): Promise<void> {
  await expect.poll(() => groupMembers(pgid), { timeout: 10_000 }).toEqual([]);
}

/**
 * brainstem as far as this goes (the list of groups, refreshed every `refreshMs`, and a tool run
 * through the tools' runner) in a process of its own, SIGKILLed while the run's command runs; the
 * command then starts a member, and its leader exits once brainstem is gone. `refreshed`: killed
 * once a refresh found the run running after the member started; else the member started after
 * the group's `at`, its last one (returned). Resolves once only the member is left in the group,
 * its leader reaped, with brainstem's data dir.
 */
async function crashDuringRun(o: {
  refreshMs: number;
  refreshed: boolean;
}): Promise<{ dataDir: string; leader: number; member: number; at: number }> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'bst-groups-tool-'));
  onTestFinished(() => rm(dataDir, { recursive: true, force: true }));
  const go = path.join(dataDir, 'go');
  const memberFile = path.join(dataDir, 'member');
  const script = path.join(dataDir, 'brainstem.mts');
  const src = path.resolve(import.meta.dirname, '../src');
  await writeFile(
    script,
    [
      `import { takeOverGroups } from ${JSON.stringify(path.join(src, 'leftover-groups.ts'))};`,
      `import { runCommand } from ${JSON.stringify(path.join(src, 'tools/exec.ts'))};`,
      `import { recordingLogger } from ${JSON.stringify(path.resolve(import.meta.dirname, 'helpers/logs.ts'))};`,
      `takeOverGroups(${JSON.stringify(dataDir)}, recordingLogger('info').logger, { refreshMs: ${o.refreshMs} });`,
      // Waits for the test's go, starts its work in the background, and ends once its parent is gone.
      `void runCommand(['sh', '-c', 'while [ ! -e "$0" ]; do sleep 0.02; done; sleep 300 & echo $! > "$1"; while kill -0 "$PPID" 2>/dev/null; do sleep 0.02; done', ${JSON.stringify(go)}, ${JSON.stringify(memberFile)}], { timeoutMs: 600_000, maxOutputChars: 1_000 });`,
    ].join('\n'),
  );
  const brainstem = spawn(process.execPath, ['--import', 'tsx', script], {
    detached: true,
    stdio: 'ignore',
  });
  started.push(brainstem);
  type Listed = { at: number; groups: { pid: number; at: number; groupMark?: string }[] };
  const listed = async () => {
    const j = JSON.parse(await readFile(path.join(dataDir, 'process-groups.json'), 'utf8').catch(() => '{}'));
    return j.groups?.length === 1 ? (j as Listed) : undefined;
  };
  await expect.poll(listed, { timeout: 30_000 }).toBeDefined();
  const { at, groups } = (await listed()) as Listed;
  const [run] = groups as [Listed['groups'][number]];
  // A test that fails before the crash leaves the run's group, which afterEach does not reach.
  onTestFinished(() => {
    for (const pid of groupMembers(run.pid)) kill(pid);
  });
  expect(run.groupMark).toMatch(/^[0-9a-f-]{36}$/);
  // Its work starts in a later 10 ms tick than the list was written.
  await expect.poll(ticks, { timeout: 30_000 }).toBeGreaterThan(Math.max(at, run.at));
  await writeFile(go, '');
  await expect
    .poll(() => readFile(memberFile, 'utf8').catch(() => ''), { timeout: 30_000 })
    .toMatch(/^\d+\n$/);
  const member = Number(await readFile(memberFile, 'utf8'));
  onTestFinished(() => kill(member));
  // brainstem has since found the run still there: its member started before that.
  if (o.refreshed)
    await expect
      .poll(async () => (await listed())?.groups[0]?.at ?? 0, { timeout: 30_000 })
      .toBeGreaterThanOrEqual(Number(stat(member)[19]));
  const exited = new Promise((resolve) => brainstem.once('exit', resolve));
  brainstem.kill('SIGKILL');
  await exited;
  const last = ((await listed())?.groups[0]?.at ?? 0) as number;
  await expect.poll(() => groupMembers(run.pid), { timeout: 10_000 }).toEqual([member]);
  // Its exit reaped (at once under systemd; this machine's init takes seconds): no leader is left.
  await expect.poll(() => existsSync(`/proc/${run.pid}`), { timeout: 30_000 }).toBe(false);
  expect(Number(stat(member)[19])).toBeGreaterThan(at);
  return { dataDir, leader: run.pid, member, at: last };
}

describe('process groups a crash left running', () => {
  it('are stopped by the next start in the same boot, leader and all, and logged', async () => {
    const g = await group();
    expect(groupMembers(g.pid)).toHaveLength(2);
    await journal({ boot, groups: [{ pid: g.pid, start: g.start }] });
    const { logger, logs } = recordingLogger('info');
    takeOverGroups(dir, logger);
    await gone(g.pid);
    expect(logs.find((l) => String(l.msg).startsWith('stopped the process groups'))).toMatchObject({
      pids: [g.pid],
    });
  });

  // Claude Code starts each Bash command in a session of its own: the CLI's group does not hold it.
  it('take with them what a Claude CLI ran outside its group (a command in a session of its own), by its mark', async (ctx) => {
    const mark = randomUUID();
    const leader = spawn('sh', ['-c', "setsid sh -c 'echo $$; exec sleep 300' & wait"], {
      detached: true,
      stdio: ['ignore', 'pipe', 'ignore'],
      env: { ...process.env, [MARK_VAR]: mark },
    });
    started.push(leader);
    const stray = Number(
      await new Promise<string>((resolve) => leader.stdout?.once('data', (d) => resolve(String(d)))),
    );
    ctx.onTestFinished(() => kill(stray));
    const pid = leader.pid as number;
    // A session, and so a group, of its own.
    expect(Number(stat(stray)[2])).toBe(stray);
    await journal({ boot, groups: [{ pid, start: Number(stat(pid)[19]), mark }] });
    takeOverGroups(dir, recordingLogger('info').logger);
    await gone(pid);
    await gone(stray);
  });

  // A server an ended turn's command left in the background is the user's: the mark is on it too.
  it("leave be the marked processes started before the CLI's last turn ended", async (ctx) => {
    const mark = randomUUID();
    const spawnMarked = async (): Promise<number> => {
      const c = spawn('sh', ['-c', 'echo $$; exec sleep 300'], {
        detached: true,
        stdio: ['ignore', 'pipe', 'ignore'],
        env: { ...process.env, [MARK_VAR]: mark },
      });
      started.push(c);
      const pid = Number(
        await new Promise<string>((resolve) => c.stdout?.once('data', (d) => resolve(String(d)))),
      );
      ctx.onTestFinished(() => kill(pid));
      return pid;
    };
    const server = await spawnMarked();
    const since = Number(stat(server)[19]);
    // Start times count 10 ms ticks since boot: the command starts in a later one than the server.
    await expect.poll(ticks).toBeGreaterThan(since);
    const command = await spawnMarked();
    const g = await group();
    await journal({ boot, groups: [{ pid: g.pid, start: g.start, mark, since }] });
    takeOverGroups(dir, recordingLogger('info').logger);
    await gone(command);
    expect(stat(server)[0]).not.toBe('Z');
  });

  it('are stopped when only a member is left (the leader died with brainstem)', async () => {
    const g = await group();
    const exited = new Promise((resolve) => g.leader.once('exit', resolve));
    g.leader.kill('SIGKILL');
    await exited;
    expect(groupMembers(g.pid)).toHaveLength(1);
    // Written (as brainstem writes it at each change) while the group ran.
    await journal({ boot, at: ticks(), groups: [{ pid: g.pid, start: g.start }] });
    takeOverGroups(dir, recordingLogger('info').logger);
    await gone(g.pid);
  });

  // Once a recorded group has ended whole, its pid is free: a process that takes it and leads a
  // group of its own (a daemon, a command in a session of its own) leaves, when it exits, members
  // in a group of that id, all started after brainstem last wrote the list. They are not its own.
  it('are left be when only members started after the list was last written are in a group of that id', async () => {
    const g = await group();
    const exited = new Promise((resolve) => g.leader.once('exit', resolve));
    g.leader.kill('SIGKILL');
    await exited;
    expect(groupMembers(g.pid)).toHaveLength(1);
    // The recorded group started, and the list was last written, before this group's member started.
    await journal({ boot, at: g.start - 5, groups: [{ pid: g.pid, start: g.start - 10 }] });
    const { logger, logs } = recordingLogger('info');
    takeOverGroups(dir, logger);
    // The group's own time it was last known running comes before the list's last writing.
    await journal({ boot, at: ticks(), groups: [{ pid: g.pid, start: g.start - 10, at: g.start - 5 }] });
    takeOverGroups(dir, logger);
    // A tool run's mark, which no process of that group carries: it is another's all the same.
    await journal({
      boot,
      at: ticks(),
      groups: [{ pid: g.pid, start: g.start - 10, at: g.start - 5, groupMark: randomUUID() }],
    });
    takeOverGroups(dir, logger);
    expect(logs.map((l) => l.msg)).not.toContain(
      'stopped the process groups (tool runs, Claude CLIs) that a brainstem killed before its exit left running',
    );
    expect(groupMembers(g.pid)).toHaveLength(1);
  });

  // A tool run (`make deploy`) is still running when brainstem is SIGKILLed; its leader then dies
  // (SIGPIPE on the pipe nobody reads, its parent gone) while what it started goes on: started after
  // brainstem last wrote the list, as a run's members mostly are (they come after its spawn).
  it("are stopped when a tool run's leader died after brainstem, leaving what it started after the list was written", async () => {
    const { dataDir, leader } = await crashDuringRun({ refreshMs: 50, refreshed: true });
    takeOverGroups(dataDir, recordingLogger('info').logger);
    // The member with it (gone lists the group's live members).
    await gone(leader);
  });

  // The same, with no refresh between the run's member's start and the crash (it started in the
  // last REFRESH_MS before it): only the run's mark, which the member inherited, tells it is the run's.
  it("are stopped when a tool run's leader died after brainstem, leaving what it started after brainstem last found it running, by the run's mark", async () => {
    const { dataDir, leader, member, at } = await crashDuringRun({ refreshMs: 3_600_000, refreshed: false });
    expect(Number(stat(member)[19])).toBeGreaterThan(at);
    const { logger, logs } = recordingLogger('info');
    takeOverGroups(dataDir, logger);
    // The member with it (gone lists the group's live members).
    await gone(leader);
    expect(logs.find((l) => String(l.msg).startsWith('stopped the process groups'))).toMatchObject({
      pids: [leader],
    });
  });

  it('are left be after a reboot (the pids name other processes), and when the file is unreadable', async () => {
    const g = await group();
    await journal({ boot: 'another-boot', groups: [{ pid: g.pid, start: g.start }] });
    takeOverGroups(dir, recordingLogger('info').logger);
    // A process of the same pid that started later is no leader brainstem started either.
    await journal({ boot, groups: [{ pid: g.pid, start: g.start - 1 }] });
    takeOverGroups(dir, recordingLogger('info').logger);
    await writeFile(path.join(dir, 'process-groups.json'), '{ not json');
    const { logger, logs } = recordingLogger('info');
    takeOverGroups(dir, logger);
    expect(logs.map((l) => l.msg)).toContain(
      'the list of running process groups is unreadable; none stopped',
    );
    expect(groupMembers(g.pid)).toHaveLength(2);
  });

  it('are written down while they run, and struck off when their leader exits', async () => {
    takeOverGroups(dir, recordingLogger('info').logger);
    // Without `at` (when it was written, checked in the tests above).
    const read = async () => {
      const { at, ...rest } = JSON.parse(await readFile(path.join(dir, 'process-groups.json'), 'utf8'));
      expect(at).toBeGreaterThan(0);
      return rest;
    };
    expect(await read()).toEqual({ boot, groups: [] });
    const g = await group();
    trackGroup(g.leader);
    // With when it was known running: its spawn.
    const at = expect.any(Number);
    expect(await read()).toEqual({ boot, groups: [{ pid: g.pid, start: g.start, at }] });
    forgetGroup(g.pid);
    expect(await read()).toEqual({ boot, groups: [] });
    // A tool run's, with the mark its group's processes carry.
    trackGroup(g.leader, 'a-run-mark', 'group');
    expect(await read()).toEqual({
      boot,
      groups: [{ pid: g.pid, start: g.start, at, groupMark: 'a-run-mark' }],
    });
    forgetGroup(g.pid);
    // A Claude CLI's, with the mark its processes carry.
    trackGroup(g.leader, 'a-mark');
    expect(await read()).toEqual({ boot, groups: [{ pid: g.pid, start: g.start, at, mark: 'a-mark' }] });
    // Its turn ended: what that turn left running is left be.
    const since = settleMarked(g.pid);
    expect(since).toBeGreaterThan(0);
    expect(await read()).toEqual({
      boot,
      groups: [{ pid: g.pid, start: g.start, at, mark: 'a-mark', since }],
    });
    forgetGroup(g.pid);
  });

  // What a run starts after its spawn is counted after a crash once a refresh found the run still
  // there; a group that has ended leaves the list, so that a later group of its freed id never counts.
  it('are confirmed running at each refresh, and struck off once they ended whole', async () => {
    takeOverGroups(dir, recordingLogger('info').logger, { refreshMs: 20 });
    const listed = async (): Promise<{ pid: number; start: number; at: number }[]> =>
      JSON.parse(await readFile(path.join(dir, 'process-groups.json'), 'utf8')).groups;
    const g = await group();
    trackGroup(g.leader);
    const [first] = await listed();
    const spawned = first?.at as number;
    expect(spawned).toBeGreaterThanOrEqual(g.start);
    await expect.poll(ticks).toBeGreaterThan(spawned);
    await expect.poll(async () => (await listed())[0]?.at, { timeout: 10_000 }).toBeGreaterThan(spawned);
    // Ended whole (the member reaped too, by init): struck off though brainstem never forgot it.
    const exited = new Promise((resolve) => g.leader.once('exit', resolve));
    for (const pid of groupMembers(g.pid)) kill(pid);
    await exited;
    await expect.poll(listed, { timeout: 30_000 }).toEqual([]);
    forgetGroup(g.pid);
  });
});
