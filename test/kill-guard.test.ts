/**
 * test/helpers/kill-guard.ts, loaded in every worker by vitest.config.ts: process.kill refuses a
 * pid that is the test run itself. Each refusal is tried with signal 0 (which only asks whether the
 * target exists), so that a run without the guard fails here instead of killing itself.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { killPidIn } from './helpers/procs.js';

const dir = mkdtempSync(path.join(tmpdir(), 'bst-kill-guard-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

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

  it('refuses the kill() of a program that never started, which Node sends to pid 0', async () => {
    const child = spawn('brainstem-test-no-such-command', [], { stdio: 'ignore' });
    const failed = once(child, 'error');
    expect(() => child.kill(0)).toThrow(/kill-guard: refused.*never started/);
    await failed;
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

describe('killPidIn (test/helpers/procs.ts)', () => {
  const sleeper = () => {
    const child = spawn('sleep', ['300'], { stdio: 'ignore' });
    return { pid: child.pid as number, exited: once(child, 'exit') };
  };

  it('signals the process that wrote its pid to the file', async () => {
    const s = sleeper();
    const file = path.join(dir, 'writer.pid');
    writeFileSync(file, String(s.pid));
    killPidIn(file, 'SIGKILL');
    expect(await s.exited).toEqual([null, 'SIGKILL']);
  });

  // The writer ended and, pids being few (32768), another process took its pid: one started after
  // the file was written is not the writer, and may be anything (a vitest worker, another test's).
  it('leaves be a process that took the pid after the file was written', async () => {
    // Says which signals it got, in order; SIGUSR2 ends it. Were both pending, the lower (SIGINT)
    // would come first: a SIGINT sent before the SIGUSR2 is always said before it.
    const child = spawn(
      process.execPath,
      [
        '-e',
        `process.on('SIGINT', () => process.stdout.write('SIGINT\\n'));
process.on('SIGUSR2', () => { process.stdout.write('SIGUSR2\\n'); process.exit(0); });
process.stdout.write('ready\\n');
setInterval(() => {}, 60_000);`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    await new Promise((resolve) => child.stdout.once('data', resolve));
    const file = path.join(dir, 'recycled.pid');
    writeFileSync(file, String(child.pid));
    // Written a minute before this process started.
    const before = new Date(Date.now() - 60_000);
    utimesSync(file, before, before);
    killPidIn(file, 'SIGINT');
    // 'close': once its output is all read too.
    const exited = once(child, 'close');
    child.kill('SIGUSR2');
    expect(await exited).toEqual([0, null]);
    expect(out).toBe('ready\nSIGUSR2\n');
  });

  it('signals nothing for an empty file (Number("") is 0) or a missing one', () => {
    const empty = path.join(dir, 'empty.pid');
    writeFileSync(empty, '');
    expect(() => killPidIn(empty, 'SIGKILL')).not.toThrow();
    expect(() => killPidIn(path.join(dir, 'none.pid'), 'SIGKILL')).not.toThrow();
  });
});
