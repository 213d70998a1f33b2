/**
 * test/helpers/kill-guard.ts, loaded in every worker by vitest.config.ts: process.kill refuses a
 * pid that is the test run itself. Each refusal is tried with signal 0 (which only asks whether the
 * target exists), so that a run without the guard fails here instead of killing itself.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const ownGroup = () => {
  const stat = readFileSync('/proc/self/stat', 'latin1');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
};

describe('the kill guard of the test workers', () => {
  it("refuses process.kill(0), which signals the caller's whole process group", () => {
    expect(() => process.kill(0, 0)).toThrow(/kill-guard: refused process\.kill\(0, 0\).*whole test run/);
    // Number('') from an empty pid file.
    expect(() => process.kill(Number(''), 0)).toThrow(/kill-guard/);
  });

  it('refuses -1 (every process), 1 (init), the run by group, and the worker and vitest by pid', () => {
    for (const pid of [-1, 1, -ownGroup(), process.pid, process.ppid, -process.ppid]) {
      expect(() => process.kill(pid, 0), String(pid)).toThrow(/kill-guard: refused/);
    }
  });

  it('lets a signal through to a process the test started, and to its group', async () => {
    const child = spawn('sleep', ['300'], { detached: true, stdio: 'ignore' });
    const pid = child.pid as number;
    const exited = once(child, 'exit');
    expect(process.kill(-pid, 0)).toBe(true);
    process.kill(pid, 'SIGKILL');
    expect(await exited).toEqual([null, 'SIGKILL']);
  });
});
