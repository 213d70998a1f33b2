import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, expect, it, vi } from 'vitest';
import { ClaudeProcess } from '../brains/claude-code/process.js';
import { killMarked, MARK_VAR, uptimeTicks } from '../src/process-group.js';
import { subprocesses } from '../src/subprocesses.js';
import { isAlive, runAlone } from './helpers/procs.js';

const dir = mkdtempSync(path.join(tmpdir(), 'bst-process-group-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A process's state letter (/proc/<pid>/stat), 'gone' once it is. */
function stateOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] ?? 'gone';
  } catch {
    return 'gone';
  }
}

it('never signals the group of the process that calls it, whatever pid it is given', async () => {
  // In a process leading a group of its own: a kill of its own group ends it, not this test run.
  const script = path.join(dir, 'kill-zero.ts');
  const module = pathToFileURL(path.resolve('src/process-group.ts')).href;
  writeFileSync(
    script,
    `import { killGroup } from ${JSON.stringify(module)};
killGroup(0, 'SIGTERM');
killGroup(Number.NaN, 'SIGTERM');
// Started detached, it leads its group: its own pid names the group it is in.
killGroup(process.pid, 'SIGTERM');
console.log('alive');
`,
  );
  expect(await runAlone(script)).toEqual({ code: 0, signal: null, out: 'alive\n' });
});

// A Claude CLI's Bash command runs in a session of its own, which the kill of the CLI's group at
// brainstem's exit did not reach: it ran on after brainstem was gone.
it('at exit, kills what a tracked group marked runs outside the group, as well as the group', async () => {
  const script = path.join(dir, 'exit-marked.ts');
  const module = pathToFileURL(path.resolve('src/process-group.ts')).href;
  writeFileSync(
    script,
    `import { spawn } from 'node:child_process';
import { MARK_VAR, trackGroup } from ${JSON.stringify(module)};
const mark = 'exit-test-' + process.pid;
const leader = spawn('sh', ['-c', "setsid sh -c 'echo $$; exec sleep 300' & wait"], {
  detached: true,
  stdio: ['ignore', 'pipe', 'ignore'],
  env: { ...process.env, [MARK_VAR]: mark },
});
trackGroup(leader, mark);
leader.stdout.once('data', (d) => {
  console.log(String(d).trim());
  process.exit(0);
});
`,
  );
  const { code, out } = await runAlone(script);
  expect(code).toBe(0);
  const stray = Number(out.trim());
  expect(stray).toBeGreaterThan(1);
  try {
    // Gone, or a zombie waiting for its reaper: it runs nothing any more.
    await expect.poll(() => stateOf(stray), { timeout: 30_000 }).toMatch(/^(gone|Z|X)$/);
  } finally {
    try {
      process.kill(stray, 'SIGKILL');
    } catch {}
  }
});

/** A Claude CLI as the brain starts it, here a shell running `script`. */
async function cli(script: string): Promise<ClaudeProcess> {
  const { execa } = await subprocesses();
  // The protocol flags the brain adds come after the script: the shell takes them as its $1…
  return new ClaudeProcess(
    { bin: 'sh', args: ['-c', script, 'sh'], cwd: dir, env: { PATH: process.env.PATH ?? '' }, depth: 0 },
    execa,
  );
}

// The CLI's exit handler SIGKILLs what is left of its group (MCP servers it started): it ran once
// execa's promise settled, after the CLI was reaped and its output ended, and signalled the group's
// bare id. A group that had ended whole by then had left its id free, and another program's group
// that took it (a daemon, a command in a session of its own) was SIGKILLed.
it("a Claude CLI's exit sends no SIGKILL to its group's id once the group has ended whole", async (ctx) => {
  const kills = vi.spyOn(process, 'kill');
  ctx.onTestFinished(() => kills.mockRestore());
  const claude = await cli('exit 0');
  const exit = await claude.exit;
  expect(exit.exitCode).toBe(0);
  expect(kills.mock.calls.filter(([target]) => target === -(claude.pid as number))).toEqual([]);
});

it("a Claude CLI's exit SIGKILLs what it started in its group before it exited", async (ctx) => {
  const kills = vi.spyOn(process, 'kill');
  ctx.onTestFinished(() => kills.mockRestore());
  const member = path.join(dir, 'mcp-server.pid');
  // An MCP server it started, still running when the CLI exits.
  const claude = await cli(`sleep 300 >/dev/null 2>&1 & echo $! > ${member}; exit 0`);
  await claude.exit;
  const pid = claude.pid as number;
  expect(kills.mock.calls).toContainEqual([-pid, 'SIGKILL']);
  // Gone once reaped (by init, its parent since the CLI exited).
  await expect.poll(() => isAlive(-pid), { timeout: 30_000 }).toBe(false);
  expect(Number(readFileSync(member, 'utf8'))).toBeGreaterThan(1);
});

// At brainstem's exit every group still tracked was SIGKILLed by its bare id, those whose leader
// brainstem had reaped too (a tool run whose output still drained, a CLI whose exit handler had not
// run yet): a group that had ended whole had left its id free for another program's group.
it("at exit, SIGKILLs no group's id once that group has ended whole, and what is left of one whose leader exited", async () => {
  const script = path.join(dir, 'exit-reaped.mts');
  const module = pathToFileURL(path.resolve('src/process-group.ts')).href;
  writeFileSync(
    script,
    `import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeSync } from 'node:fs';
import { trackGroup } from ${JSON.stringify(module)};
const kills: [number, unknown][] = [];
const kill = process.kill.bind(process);
process.kill = (pid: number, signal?: string | number) => {
  kills.push([pid, signal]);
  return kill(pid, signal);
};
// Ended whole: nothing of it is left.
const gone = spawn('sh', ['-c', 'exit 0'], { detached: true, stdio: 'ignore' });
trackGroup(gone);
// Its leader exited, leaving a server it started.
const left = spawn('sh', ['-c', 'sleep 300 >/dev/null & echo $!'], { detached: true, stdio: ['ignore', 'pipe', 'ignore'] });
trackGroup(left);
let member = '';
left.stdout.on('data', (d) => { member += d; });
// Reaped by this process ('exit'), not yet forgotten (forgetGroup) by their owner.
await Promise.all([once(gone, 'exit'), once(left, 'exit'), once(left.stdout, 'end')]);
process.once('exit', () => {
  writeSync(1, JSON.stringify({ gone: gone.pid, left: left.pid, member: Number(member), kills }));
});
process.exit(0);
`,
  );
  const { code, out } = await runAlone(script);
  expect(code).toBe(0);
  const r = JSON.parse(out) as { gone: number; left: number; member: number; kills: [number, unknown][] };
  expect(r.kills.filter(([target]) => target === -r.gone)).toEqual([]);
  expect(r.kills).toContainEqual([-r.left, 'SIGKILL']);
  expect(r.member).toBeGreaterThan(1);
  try {
    // Gone, or a zombie waiting for its reaper: it runs nothing any more.
    await expect.poll(() => stateOf(r.member), { timeout: 30_000 }).toMatch(/^(gone|Z|X)$/);
  } finally {
    try {
      process.kill(r.member, 'SIGKILL');
    } catch {}
  }
});

// killMarked looks through every process's environment, then SIGKILLed the group of each marked
// leader it had found by its bare id: one that ended whole meanwhile (a Bash command exiting as its
// CLI is stopped) left its id free for another program's group. Here each marked group, when the
// first is killed, has the other end and be reaped before killMarked comes to it.
it('killMarked sends no SIGKILL to the id of a marked group that ended after it was found', async (ctx) => {
  const mark = randomUUID();
  /** A Bash command as Claude Code runs it: in a session of its own, its parent gone. */
  const command = async (): Promise<number> => {
    const parent = spawn('sh', ['-c', "setsid sh -c 'echo $$; exec sleep 300 >/dev/null' &"], {
      detached: true,
      stdio: ['ignore', 'pipe', 'ignore'],
      env: { ...process.env, [MARK_VAR]: mark },
    });
    const exited = once(parent, 'exit');
    const [out] = (await once(parent.stdout, 'data')) as [Buffer];
    await exited;
    const pid = Number(String(out));
    expect(pid).toBeGreaterThan(1);
    ctx.onTestFinished(() => {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
    });
    return pid;
  };
  const groups = [await command(), await command()];
  const kill = process.kill.bind(process);
  const kills = vi.spyOn(process, 'kill').mockImplementation((target, signal) => {
    const first = kills.mock.calls.length === 1;
    kill(target, signal);
    const other = groups.find((g) => g !== Math.abs(target));
    if (first && other !== undefined) {
      // Ended, and reaped by init (its parent), before killMarked signals it.
      kill(-other, 'SIGKILL');
      const wait = new Int32Array(new SharedArrayBuffer(4));
      for (let i = 0; i < 3_000 && existsSync(`/proc/${other}`); i++) Atomics.wait(wait, 0, 0, 10);
      expect(existsSync(`/proc/${other}`)).toBe(false);
    }
    return true;
  });
  ctx.onTestFinished(() => kills.mockRestore());
  expect(killMarked(mark)).toBe(2);
  const calls = [...kills.mock.calls];
  kills.mockRestore();
  expect(calls).toHaveLength(1);
  for (const g of groups) await expect.poll(() => isAlive(g), { timeout: 30_000 }).toBe(false);
});

// Start times are compared with "now" in clock ticks (sameGroup): a "now" one tick low took a member
// started in that tick for another group's, and the exit hook left it running.
it('reads /proc/uptime as the exact count of clock ticks, never one low', () => {
  const wrong: number[] = [];
  for (let ticks = 7_900_000; ticks < 8_000_000; ticks++) {
    const text = `${Math.trunc(ticks / 100)}.${String(ticks % 100).padStart(2, '0')} 43727.57\n`;
    if (uptimeTicks(text) !== ticks) wrong.push(ticks);
  }
  expect(wrong).toEqual([]);
  expect(uptimeTicks('garbage')).toBeUndefined();
});
