import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { sayError } from '../src/errors.js';
import { MARK_VAR } from '../src/process-group.js';
import { OutputCap, omittedMarker, runCommand, ToolRunError } from '../src/tools/exec.js';
import { isAlive as alive, killGroupOf, killPidIn } from './helpers/procs.js';

const dir = mkdtempSync(path.join(tmpdir(), 'bst-exec-'));
const node = process.execPath;
const defaults = { timeoutMs: 10_000, maxOutputChars: 10_000, killGraceMs: 500 };

/** Whether any process of the group led by `pid` (the leader may have exited) is still there. */
const groupAlive = (pid: number) => alive(-pid);

describe('runCommand', () => {
  it('passes every argv element as one literal argument, shell metacharacters included', async () => {
    const args = [';rm -rf /', '$(id)', '`id`', 'a b', '&& echo pwned', '*'];
    const r = await runCommand(
      [node, '-e', 'console.log(JSON.stringify(process.argv.slice(1)))', ...args],
      defaults,
    );
    expect(r.exitCode).toBe(0);
    expect(JSON.parse(r.output)).toEqual(args);
  });

  it('streams output line by line as it comes, before the command ends', async () => {
    // The command prints "two" only once the test has seen "one": it can end only if "one" was streamed.
    const go = path.join(dir, 'go-on');
    const script = `const fs = require('node:fs');
      console.log('one');
      const wait = setInterval(() => { if (fs.existsSync(${JSON.stringify(go)})) { clearInterval(wait); console.log('two'); } }, 10);`;
    const seen: string[] = [];
    const r = await runCommand([node, '-e', script], {
      ...defaults,
      timeoutMs: 60_000,
      onOutput: (chunk) => {
        seen.push(chunk);
        if (chunk === 'one\n') writeFileSync(go, '');
      },
    });
    expect(r.output).toBe('one\ntwo\n');
    expect(seen).toEqual(['one\n', 'two\n']);
  });

  it('interleaves stderr with stdout and reports a non-zero exit code', async () => {
    const r = await runCommand(
      [node, '-e', 'console.log("out"); console.error("err"); process.exit(3)'],
      defaults,
    );
    expect(r.exitCode).toBe(3);
    expect(r.output).toContain('out');
    expect(r.output).toContain('err');
  });

  it('caps an oversize output to its head and tail with a marker', async () => {
    const script = 'for (let i = 0; i < 20000; i++) console.log("line " + i);';
    const r = await runCommand([node, '-e', script], { ...defaults, maxOutputChars: 2_000 });
    expect(r.truncated).toBe(true);
    expect(r.output.startsWith('line 0\nline 1\n')).toBe(true);
    expect(r.output.endsWith('line 19999\n')).toBe(true);
    expect(r.output).toMatch(/\[… \d+ characters omitted …\]/);
    expect(r.output.length).toBeLessThan(2_100);
  });

  it('kills the whole process tree when the time limit is hit, and keeps what was printed', async () => {
    // The limit must fall after node started and printed: a try whose limit came first proves nothing
    // about what was kept, so on a loaded machine the next try has twice the time. What is checked is
    // checked on a try that printed, never skipped.
    for (let limit = 1_000; ; limit *= 2) {
      if (limit > 16_000) throw new Error('node never printed within the time limit, even at 16 s');
      const pids = path.join(dir, `tree-${limit}.json`);
      const script = `
        const { spawn } = require('node:child_process');
        const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
        require('node:fs').writeFileSync(${JSON.stringify(pids)}, JSON.stringify([process.pid, child.pid]));
        console.log('started');
        setTimeout(() => {}, 60000);
      `;
      const err = await runCommand([node, '-e', script], { ...defaults, timeoutMs: limit }).catch(
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ToolRunError);
      expect((err as ToolRunError).code).toBe('TOOL_TIMEOUT');
      if (!(err as ToolRunError).output.includes('started')) continue;
      expect((err as ToolRunError).message).toContain('tools.timeoutMs');
      // A French reader (Telegram) is told in French, the API in English.
      const seconds = (limit / 1000).toFixed(1).replace('.', '\\.');
      expect(sayError(err as ToolRunError, 'fr')).toMatch(
        new RegExp(
          `^« [\\s\\S]+ » a été arrêtée après ${seconds} s \\(sa limite de temps\\) ; augmentez tools\\.timeoutMs si elle a besoin de plus de temps\\.$`,
        ),
      );
      expect(sayError(err as ToolRunError, 'en')).toBe((err as ToolRunError).message);
      const [parent, grandchild] = JSON.parse(readFileSync(pids, 'utf8')) as number[];
      await expect
        .poll(() => [alive(parent as number), alive(grandchild as number)], { timeout: 30_000 })
        .toEqual([false, false]);
      return;
    }
  });

  it('ends when the command exits, with its exit code, leaving running what it started in the background', async (ctx) => {
    const group = path.join(dir, 'bg-group');
    const go = path.join(dir, 'bg-go');
    const wrote = path.join(dir, 'bg-wrote');
    // The background subshell keeps the command's stdout open; once told to, it writes to it again.
    const script = `echo $$ > ${group}; (while [ ! -e ${go} ]; do sleep 0.05; done; echo later; touch ${wrote}; exec sleep 300) & echo started; exit 3`;
    ctx.onTestFinished(() => {
      try {
        killGroupOf(Number(readFileSync(group, 'utf8')));
      } catch {
        // Already gone.
      }
    });
    const lines: string[] = [];
    // Without the fix the run lasts until this limit, and fails as a timeout.
    const r = await runCommand(['sh', '-c', script], { ...defaults, onOutput: (c) => lines.push(c) });
    expect(r.exitCode).toBe(3);
    expect(r.output).toMatch(
      /^started\n\n\[The command exited, but a process it started in the background still holds its output; it was left running/,
    );
    expect(lines.join('')).toContain('left running');
    // Left running, and writing to the pipe it holds does not kill it (SIGPIPE) nor block it.
    const leader = Number(readFileSync(group, 'utf8'));
    writeFileSync(go, '');
    await expect.poll(() => existsSync(wrote), { timeout: 30_000 }).toBe(true);
    expect(groupAlive(leader)).toBe(true);
  });

  it('stops the command when the caller aborts', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 200);
    const err = await runCommand([node, '-e', 'setTimeout(() => {}, 60000)'], {
      ...defaults,
      signal: controller.signal,
    }).catch((e: unknown) => e);
    expect((err as ToolRunError).code).toBe('TOOL_ABORTED');
  });

  it('a stop ends the run even when a process that left its process group (setsid) holds the output', async (ctx) => {
    const escaped = path.join(dir, 'escaped.pid');
    // A deploy starts a daemon in a session of its own, which keeps stdout, then hangs.
    const script = `setsid sh -c 'echo $$ > ${escaped}; echo escaped; exec sleep 60' & sleep 60`;
    ctx.onTestFinished(() => killPidIn(escaped, 'SIGKILL'));
    const controller = new AbortController();
    const err = await runCommand(['sh', '-c', script], {
      ...defaults,
      signal: controller.signal,
      onOutput: (chunk) => chunk.includes('escaped') && controller.abort(),
    }).catch((e: unknown) => e);
    expect((err as ToolRunError).code).toBe('TOOL_ABORTED');
    expect((err as ToolRunError).message).toContain('still held its output: it was left running');
    expect(sayError(err as ToolRunError, 'fr')).toMatch(
      /a été arrêtée\. Un processus .* tenait encore sa sortie/,
    );
    expect((err as ToolRunError).output).toBe('escaped\n');
    // The run did not wait for it: it is still there (without the fix the run lasts its 60 s).
    expect(alive(Number(readFileSync(escaped, 'utf8')))).toBe(true);
  });

  // After a stop, the SIGKILL that follows the grace went to the group's id whatever had become of
  // it: a group that had ended meanwhile left its id free for any new group (another run's, the
  // user's), which got the SIGKILL. The grace's timer is faked, so that it ends when the test says:
  // once the group is seen gone.
  it('a stop sends no SIGKILL after the grace to a group that ended within it', async (ctx) => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const kills = vi.spyOn(process, 'kill');
    ctx.onTestFinished(() => {
      vi.useRealTimers();
      kills.mockRestore();
    });
    const controller = new AbortController();
    const err = await runCommand([node, '-e', 'console.log("up"); setInterval(() => {}, 60000)'], {
      ...defaults,
      signal: controller.signal,
      onOutput: (chunk) => chunk.includes('up') && controller.abort(),
    }).catch((e: unknown) => e);
    expect((err as ToolRunError).code).toBe('TOOL_ABORTED');
    const term = kills.mock.calls.find(([, signal]) => signal === 'SIGTERM');
    const group = -Number(term?.[0]);
    expect(group).toBeGreaterThan(1);
    // Its only process died of the SIGTERM: once reaped, the group is gone.
    await expect.poll(() => groupAlive(group), { timeout: 30_000 }).toBe(false);
    vi.advanceTimersByTime(defaults.killGraceMs);
    expect(kills.mock.calls.filter(([, signal]) => signal === 'SIGKILL')).toEqual([]);
  });

  it('a stop SIGKILLs after the grace what is left of the group when its leader has exited', async (ctx) => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const kills = vi.spyOn(process, 'kill');
    const member = path.join(dir, 'deaf-member.pid');
    ctx.onTestFinished(() => {
      vi.useRealTimers();
      kills.mockRestore();
      killPidIn(member, 'SIGKILL');
    });
    // The leader dies of the SIGTERM; a member that ignores it holds the output.
    const script = `sh -c 'trap "" TERM; echo $$ > ${member}; echo up; exec sleep 60' & wait`;
    const controller = new AbortController();
    const run = runCommand(['sh', '-c', script], {
      ...defaults,
      // Long: the run waits this long (a real timer) for the output to close before it gives up on it.
      killGraceMs: 60_000,
      signal: controller.signal,
      onOutput: (chunk) => chunk.includes('up') && controller.abort(),
    }).catch((e: unknown) => e);
    await expect
      .poll(() => kills.mock.calls.some(([, signal]) => signal === 'SIGTERM'), { timeout: 30_000 })
      .toBe(true);
    const term = kills.mock.calls.find(([, signal]) => signal === 'SIGTERM');
    const leader = -Number(term?.[0]);
    await expect.poll(() => alive(leader), { timeout: 30_000 }).toBe(false);
    expect(groupAlive(leader)).toBe(true);
    vi.advanceTimersByTime(60_000);
    const err = await run;
    expect((err as ToolRunError).code).toBe('TOOL_ABORTED');
    expect((err as ToolRunError).message).not.toContain('still held its output');
    // Killed: gone once reaped (by init, its parent since the leader exited).
    await expect.poll(() => groupAlive(leader), { timeout: 30_000 }).toBe(false);
  });

  it('says how to fix a program that is not installed', async () => {
    const err = await runCommand(['no-such-program-xyz', '--help'], defaults).catch((e: unknown) => e);
    expect((err as ToolRunError).code).toBe('TOOL_FAILED');
    expect((err as ToolRunError).message).toContain('not found');
    expect(sayError(err as ToolRunError, 'fr')).toBe(
      '« no-such-program-xyz » est introuvable ; installez-le ou ajoutez-le au PATH de brainstem.',
    );
  });

  it('says a missing working directory is missing, not the program', async () => {
    const missing = path.join(dir, 'no-such-dir');
    const err = await runCommand(['git', 'status'], { ...defaults, cwd: missing }).catch((e: unknown) => e);
    expect((err as ToolRunError).code).toBe('TOOL_FAILED');
    expect((err as ToolRunError).message).toBe(`The working directory ${missing} does not exist.`);
    expect(sayError(err as ToolRunError, 'fr')).toBe(`Le dossier de travail ${missing} n’existe pas.`);
  });

  it("never hands brainstem's own secrets to the commands it runs, its Claude and transcription keys and the llama upstream's password included", async () => {
    const secrets = {
      BRAINSTEM_API_TOKEN: 'bst_secret_token_value',
      LLAMA_BASE_URL: 'http://bob:llama-secret@127.0.0.1:8081/v1',
      BRAVE_API_KEY: 'brave-secret',
      ANTHROPIC_API_KEY: 'sk-ant-api-secret',
      ANTHROPIC_AUTH_TOKEN: 'sk-ant-auth-secret',
      CLAUDE_CODE_OAUTH_TOKEN: 'sk-ant-oat01-secret',
      STT_KEY: 'sk-transcription-secret',
    };
    Object.assign(process.env, secrets);
    try {
      const r = await runCommand([node, '-e', 'console.log(JSON.stringify(process.env))'], {
        ...defaults,
        env: { EXTRA: 'yes' },
        hiddenEnv: ['STT_KEY'],
      });
      const env = JSON.parse(r.output) as Record<string, string>;
      for (const name of Object.keys(secrets)) expect(env[name], name).toBeUndefined();
      expect(env.EXTRA).toBe('yes');
      expect(env.PATH).toBe(process.env.PATH);
    } finally {
      for (const name of Object.keys(secrets)) delete process.env[name];
    }
  });

  // A start after a crash tells by it what a run left running from another program's (leftover-groups.ts).
  it("adds one variable to a command's environment, a mark of its run (no secret), another at each run", async () => {
    const envOf = async () =>
      JSON.parse(
        (await runCommand([node, '-e', 'console.log(JSON.stringify(process.env))'], defaults)).output,
      ) as Record<string, string>;
    const [first, second] = [await envOf(), await envOf()];
    const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
    expect(first[MARK_VAR]).toMatch(uuid);
    expect(second[MARK_VAR]).toMatch(uuid);
    expect(second[MARK_VAR]).not.toBe(first[MARK_VAR]);
    expect(first[MARK_VAR]).not.toBe(process.env[MARK_VAR]);
    // Nothing else that brainstem's own environment lacks.
    expect(Object.keys(first).filter((k) => k !== MARK_VAR && !(k in process.env))).toEqual([]);
  });

  it('runs in the given working directory', async () => {
    writeFileSync(path.join(dir, 'marker.txt'), 'here');
    const r = await runCommand(
      [node, '-e', 'console.log(require("fs").readFileSync("marker.txt", "utf8"))'],
      {
        ...defaults,
        cwd: dir,
      },
    );
    expect(r.output.trim()).toBe('here');
  });
});

describe('OutputCap', () => {
  it('keeps everything under the cap', () => {
    const cap = new OutputCap(100);
    cap.push('a'.repeat(60));
    cap.push('b'.repeat(40));
    expect(cap.result()).toEqual({ text: 'a'.repeat(60) + 'b'.repeat(40), truncated: false });
  });

  it('keeps the head and the tail and counts what it dropped', () => {
    const cap = new OutputCap(100);
    for (let i = 0; i < 100; i++) cap.push(String(i % 10).repeat(10));
    const { text, truncated } = cap.result();
    expect(truncated).toBe(true);
    expect(text).toBe(
      '0'.repeat(10).concat('1'.repeat(10), '2'.repeat(10), '3'.repeat(10), '4'.repeat(10)) +
        omittedMarker(900) +
        '5'.repeat(10).concat('6'.repeat(10), '7'.repeat(10), '8'.repeat(10), '9'.repeat(10)),
    );
  });

  it('never keeps half an emoji, at the end of the head or the start of the tail, and keeps the order', () => {
    const cap = new OutputCap(10);
    // The head's 5th character would be the first half of 🚀: the head stops at 4, and takes no more.
    cap.push('abcd🚀e');
    cap.push('f');
    // The tail's 5 characters would start with the second half of 🎵: it keeps 4.
    cap.push('🎵wxyz');
    const { text, truncated } = cap.result();
    expect(text).toBe(`abcd${omittedMarker(6)}wxyz`);
    expect(truncated).toBe(true);
  });
});
