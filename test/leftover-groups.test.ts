/**
 * The process groups a SIGKILLed brainstem left running, stopped by the next start on its data dir
 * (src/leftover-groups.ts), with real process groups: `sh` leading one, a `sleep` in it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
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
    expect(logs.map((l) => l.msg)).not.toContain(
      'stopped the process groups (tool runs, Claude CLIs) that a brainstem killed before its exit left running',
    );
    expect(groupMembers(g.pid)).toHaveLength(1);
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
    trackGroup(g.pid);
    expect(await read()).toEqual({ boot, groups: [{ pid: g.pid, start: g.start }] });
    forgetGroup(g.pid);
    expect(await read()).toEqual({ boot, groups: [] });
    // A Claude CLI's, with the mark its processes carry.
    trackGroup(g.pid, 'a-mark');
    expect(await read()).toEqual({ boot, groups: [{ pid: g.pid, start: g.start, mark: 'a-mark' }] });
    // Its turn ended: what that turn left running is left be.
    const since = settleMarked(g.pid);
    expect(since).toBeGreaterThan(0);
    expect(await read()).toEqual({
      boot,
      groups: [{ pid: g.pid, start: g.start, mark: 'a-mark', since }],
    });
    forgetGroup(g.pid);
  });
});
