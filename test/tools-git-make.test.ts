import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, type TestService } from './helpers/service.js';

// biome-ignore lint/suspicious/noExplicitAny: answers are read by path; a wrong path fails the assertion.
type Answer = Record<string, any>;

let svc: TestService;
let repo: string;

const MAKEFILE = `hello:
\t@echo "hello from make"
fail:
\t@echo "about to fail"; exit 2
deploy:
\t@echo "deploying"
noisy:
\t@for i in $$(seq 1 2000); do echo "noisy line $$i"; done
`;

async function api(tool: string, body: unknown = {}, to: TestService = svc) {
  const res = await fetch(`${to.url}/api/${tool}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${to.token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Answer };
}

const git = (...args: string[]) => execFileSync('git', args, { cwd: repo, encoding: 'utf8' });

beforeAll(async () => {
  repo = mkdtempSync(path.join(tmpdir(), 'bst-repo-'));
  git('init', '-q', '-b', 'main');
  git('config', 'user.email', 'test@example.com');
  git('config', 'user.name', 'Test');
  writeFileSync(path.join(repo, 'Makefile'), MAKEFILE);
  writeFileSync(path.join(repo, 'a.txt'), 'alpha\n');
  writeFileSync(path.join(repo, 'b.txt'), 'beta\n');
  git('add', '.');
  git('commit', '-q', '-m', 'first commit');
  writeFileSync(path.join(repo, 'a.txt'), 'alpha\nmore alpha\n');
  git('commit', '-q', '-am', 'second commit');
  writeFileSync(path.join(repo, 'b.txt'), 'beta changed\n');
  writeFileSync(path.join(repo, 'c.txt'), 'gamma\n');
  git('add', 'c.txt');
  svc = await startTestService({
    parts: { tools: true },
    config: {
      claude: { bin: 'true' },
      tools: {
        git: { repo, maxLogEntries: 10 },
        make: { targets: ['hello', 'fail', 'noisy'] },
        maxOutputChars: 1_000,
        tests: { argv: ['make', 'hello'] },
        lint: { argv: ['make', 'fail'] },
      },
    },
  });
});

afterAll(async () => {
  await svc?.close();
});

describe('git tools in the configured repository', () => {
  it('git_status shows the branch and the changed files', async () => {
    const { status, body } = await api('git_status');
    expect(status).toBe(200);
    expect(body.ok).toBe(true);
    expect(body.output).toContain('## main');
    expect(body.output).toContain(' M b.txt');
    expect(body.output).toContain('A  c.txt');
  });

  it('git_log returns at most `max` commits, and refuses more than the configured cap', async () => {
    const { body } = await api('git_log', { max: 1 });
    expect(body.output.trim().split('\n')).toHaveLength(1);
    expect(body.output).toContain('second commit');
    const all = await api('git_log', {});
    expect(all.body.output).toContain('first commit');
    const tooMany = await api('git_log', { max: 500 });
    expect(tooMany.status).toBe(400);
    expect(tooMany.body.error.param).toBe('max');
  });

  it('git_log without `max` returns no more than tools.git.maxLogEntries, when that is below the default 20', async () => {
    // Commits of the same tree, made without the index: its staged c.txt stays staged for the other tests.
    for (let i = 1; i <= 12; i++) {
      const commit = git('commit-tree', 'HEAD^{tree}', '-p', 'HEAD', '-m', `empty commit ${i}`).trim();
      git('update-ref', 'HEAD', commit);
    }
    const { body } = await api('git_log', {});
    expect(body.output.trim().split('\n')).toHaveLength(10);
    expect(body.output).toContain('empty commit 12');
    expect(body.output).not.toContain('empty commit 2\n');
  });

  it('git_diff shows unstaged or staged changes, optionally for one path', async () => {
    const unstaged = await api('git_diff', {});
    expect(unstaged.body.output).toContain('+beta changed');
    expect(unstaged.body.output).not.toContain('gamma');
    const staged = await api('git_diff', { staged: true });
    expect(staged.body.output).toContain('+gamma');
    const onePath = await api('git_diff', { path: 'a.txt' });
    expect(onePath.body.output).toBe('');
    const stat = await api('git_diff', { stat: true });
    expect(stat.body.output).toContain('b.txt');
  });

  it('keeps a path that looks like an option a path', async () => {
    const out = path.join(repo, 'injected.txt');
    const { body } = await api('git_diff', { path: `--output=${out}` });
    expect(body.output).toBe('');
    expect(existsSync(out)).toBe(false);
  });

  it('refuses a path holding a NUL character as a bad request, saying why, not as an internal failure', async () => {
    const { status, body } = await api('git_diff', { path: 'a.txt\u0000b.txt' });
    expect(status).toBe(400);
    expect(body.error.code).toBe('invalid_request');
    expect(body.error.message).toBe(
      'An argument holds a NUL character (shown as \\0), which no program can take: "a.txt\\0b.txt".',
    );
    expect(body.result.error.fr).toBe(
      'Un argument contient un caractère NUL (montré comme \\0), qu’aucun programme ne peut recevoir : « a.txt\\0b.txt ».',
    );
  });

  it('shows a file name that is not UTF-8 with its bytes escaped as git does, in status and diff', async () => {
    // `bad-` then 0xFF 0xFE, not UTF-8: each came out as U+FFFD, a name no file has.
    const name = Buffer.concat([Buffer.from('bad-'), Buffer.from([0xff, 0xfe]), Buffer.from('.txt')]);
    const file = Buffer.concat([Buffer.from(`${repo}/`), name]);
    writeFileSync(file, 'latin\n');
    git('add', '--', 'bad-*.txt');
    try {
      const status = await api('git_status');
      const diff = await api('git_diff', { staged: true });
      const stat = await api('git_diff', { staged: true, stat: true });
      expect(status.body.output).toContain('A  bad-\\377\\376.txt\n');
      expect(diff.body.output).toContain('diff --git a/bad-\\377\\376.txt b/bad-\\377\\376.txt\n');
      expect(stat.body.output).toContain(' bad-\\377\\376.txt | 1 +');
      for (const r of [status, diff, stat]) expect(r.body.output).not.toContain('\ufffd');
      // The names and lines around it are as they are.
      expect(status.body.output).toContain('A  c.txt\n');
      expect(diff.body.output).toContain('+gamma');
    } finally {
      git('rm', '-q', '--cached', '--', 'bad-*.txt');
      rmSync(file);
    }
  });

  it('shows a file name holding a bidi control with it escaped, not the name it would show reordered', async () => {
    // U+202E (right-to-left override): the line read ` M evilexe.txt`, a name no file has.
    const name = 'evil\u202etxt.exe';
    writeFileSync(path.join(repo, name), 'x\n');
    git('add', '--', name);
    try {
      const status = await api('git_status');
      const stat = await api('git_diff', { staged: true, stat: true });
      expect(status.body.output).toContain('A  evil\\342\\200\\256txt.exe\n');
      expect(stat.body.output).toContain(' evil\\342\\200\\256txt.exe | 1 +');
      for (const r of [status, stat]) expect(r.body.output).not.toContain('\u202e');
    } finally {
      git('rm', '-q', '--cached', '--', name);
      rmSync(path.join(repo, name));
    }
  });

  it('never colours its output, even where the repository’s config asks for colour always', async () => {
    const set = [
      ['color.ui', 'always'],
      ['color.diff', 'always'],
      ['color.status', 'always'],
    ];
    for (const [key, value] of set) git('config', key as string, value as string);
    try {
      const status = await api('git_status');
      const diff = await api('git_diff', {});
      const stat = await api('git_diff', { stat: true });
      expect(status.body.output).toContain('## main');
      expect(diff.body.output).toContain('+beta changed');
      expect(stat.body.output).toContain('b.txt');
      for (const r of [status, diff, stat]) expect(r.body.output).not.toContain('\u001b');
    } finally {
      for (const [key] of set) git('config', '--unset', key as string);
    }
  });

  it('runs no program the repository’s config names (fsmonitor, external diff, textconv, signature check, hooks, filter drivers)', async () => {
    // Whoever can write .git/config (an approved command) must not get commands run by the read-only tools.
    const marker = path.join(repo, '..', `${path.basename(repo)}-ran`);
    const script = path.join(repo, '..', `${path.basename(repo)}-hook.sh`);
    writeFileSync(script, `#!/bin/sh\necho "$0 $*" >> ${marker}\ncat "$@" 2>/dev/null\n`, { mode: 0o755 });
    // A repository inside (a submodule) with a filter driver and an external diff of its own, and a
    // commit the index does not have yet: what `diff.submodule=diff` would diff under its config.
    const sub = path.join(repo, 'sub');
    const subGit = (...args: string[]) => execFileSync('git', args, { cwd: sub, encoding: 'utf8' });
    const subCommit = (text: string) => {
      writeFileSync(path.join(sub, 's.txt'), text);
      subGit('add', '.');
      subGit('-c', 'user.email=t@example.com', '-c', 'user.name=T', 'commit', '-q', '-m', text);
    };
    mkdirSync(sub);
    subGit('init', '-q');
    subCommit('sub\n');
    git('add', 'sub');
    subCommit('sub 2\n');
    subGit('config', 'filter.subf.clean', script);
    subGit('config', 'diff.external', script);
    writeFileSync(path.join(sub, '.git', 'info', 'attributes'), '* filter=subf\n');
    // Set once the test's own git commands are done: they would run them.
    const set = [
      ['core.fsmonitor', script],
      ['diff.external', script],
      ['diff.conv.textconv', script],
      ['diff.conv.command', script],
      ['log.showSignature', 'true'],
      ['gpg.program', script],
      ['filter.clean.clean', script],
      ['filter.clean.required', 'true'],
      ['filter.proc.process', script],
      ['filter.a=b.clean', script],
      ['diff.submodule', 'diff'],
    ];
    for (const [key, value] of set) git('config', key as string, value as string);
    // Status and diff run a clean filter when a file's stat no longer matches the index, as after a touch.
    const attributes = path.join(repo, '.git', 'info', 'attributes');
    writeFileSync(
      attributes,
      '*.txt diff=conv\na.txt filter=clean\nMakefile filter=proc\nc.txt filter=a=b\n',
    );
    const hook = path.join(repo, '.git', 'hooks', 'post-index-change');
    writeFileSync(hook, `#!/bin/sh\n${script}\n`, { mode: 0o755 });
    try {
      let when = 1_000_000_000;
      for (const [tool, input] of [
        ['git_status', {}],
        ['git_diff', {}],
        ['git_log', { max: 2 }],
      ] as const) {
        when += 1;
        for (const file of ['a.txt', 'Makefile', 'c.txt', 'sub/s.txt'])
          utimesSync(path.join(repo, file), when, when);
        const { status, body } = await api(tool, input);
        expect(status, tool).toBe(200);
        expect(body.ok, tool).toBe(true);
        if (tool === 'git_status') expect(body.output).toBe('## main\n M b.txt\nA  c.txt\nAM sub\n');
      }
      expect(existsSync(marker) ? readFileSync(marker, 'utf8') : '').toBe('');
    } finally {
      for (const [key] of set) git('config', '--unset', key as string);
      writeFileSync(attributes, '');
      rmSync(hook);
      git('rm', '-q', '--cached', '-f', 'sub');
      rmSync(sub, { recursive: true });
    }
  });
});

describe('make_target, run_tests, lint', () => {
  it('runs an allowed target and returns its output and exit code', async () => {
    const { status, body } = await api('make_target', { target: 'hello' });
    expect(status).toBe(200);
    expect(body).toMatchObject({ ok: true, exitCode: 0, output: 'hello from make\n' });
  });

  it('reports a failing target as not ok with its exit code and output', async () => {
    const { status, body } = await api('make_target', { target: 'fail' });
    expect(status).toBe(200);
    expect(body.ok).toBe(false);
    expect(body.exitCode).toBe(2);
    expect(body.output).toContain('about to fail');
  });

  it('refuses a target that is not in the allow-list, and says which are', async () => {
    for (const target of ['deploy', 'hello; rm -rf /', '-f/etc/passwd']) {
      const { status, body } = await api('make_target', { target });
      expect(status).toBe(403);
      expect(body.error.param).toBe('target');
      expect(body.error.message).toContain('Allowed: hello, fail, noisy');
    }
    const audit = svc.service.core.db
      .prepare(
        "SELECT COUNT(*) AS n FROM audit WHERE tool = 'make_target' AND ok = 0 AND error LIKE 'TOOL_FORBIDDEN%'",
      )
      .get() as { n: number };
    expect(audit.n).toBe(3);
  });

  it('caps an oversize output to its head and tail, and says so', async () => {
    const { body } = await api('make_target', { target: 'noisy' });
    expect(body).toMatchObject({ ok: true, truncated: true });
    expect(body.output).toMatch(/^noisy line 1\nnoisy line 2\n/);
    expect(body.output).toMatch(/\[… \d+ characters omitted …\]/);
    expect(body.output).toMatch(/noisy line 2000\n$/);
    expect(body.output.length).toBeLessThan(1_100);
  });

  it('run_tests and lint run their configured argv in the repository', async () => {
    const tests = await api('run_tests');
    expect(tests.body).toMatchObject({ ok: true, output: 'hello from make\n' });
    const lint = await api('lint');
    expect(lint.body).toMatchObject({ ok: false, exitCode: 2 });
  });
});

describe('a configured directory that does not exist', () => {
  it('is named with the setting that points there, not taken for a missing program', async () => {
    const missing = path.join(repo, 'no-such-dir');
    const file = path.join(repo, 'a.txt');
    const broken = await startTestService({
      parts: { tools: true },
      config: {
        claude: { bin: 'true' },
        tools: {
          git: { repo: missing },
          make: { dir: file, targets: ['hello'] },
          tests: { argv: ['make', 'hello'], cwd: missing },
          lint: { argv: ['make', 'hello'] },
          selfUpgrade: { repo: missing },
        },
      },
    });
    try {
      const cases: [string, unknown, string][] = [
        ['git_status', {}, `tools.git.repo is ${missing}, which does not exist`],
        ['make_target', { target: 'hello' }, `tools.make.dir is ${file}, which is not a directory`],
        ['run_tests', {}, `tools.tests.cwd is ${missing}, which does not exist`],
        ['lint', {}, `tools.git.repo is ${missing}, which does not exist`],
        ['self_upgrade', { action: 'check' }, `tools.selfUpgrade.repo is ${missing}, which does not exist`],
      ];
      for (const [tool, body, message] of cases) {
        const res = await api(tool, body, broken);
        expect(res.status, tool).toBe(501);
        expect(res.body.error).toMatchObject({
          code: 'tool_not_configured',
          message: `${message}; fix it in brainstem.json.`,
        });
      }
    } finally {
      await broken.close();
    }
  });

  it('a command stopped at its time limit names the setting that set it: its own, else tools.timeoutMs', async () => {
    const slow = await startTestService({
      parts: { tools: true },
      config: {
        claude: { bin: 'true' },
        tools: {
          git: { repo },
          timeoutMs: 300,
          tests: { argv: ['sleep', '30'], timeoutMs: 200 },
          lint: { argv: ['sleep', '30'] },
        },
      },
    });
    try {
      const tests = await api('run_tests', {}, slow);
      expect(tests.body.error.code).toBe('tool_timeout');
      expect(tests.body.error.message).toBe(
        '"sleep 30" was stopped after 200 ms (its time limit); raise tools.tests.timeoutMs if it needs longer.',
      );
      expect(tests.body.result.error.fr).toContain('augmentez tools.tests.timeoutMs si');
      const lint = await api('lint', {}, slow);
      expect(lint.body.error.message).toBe(
        '"sleep 30" was stopped after 300 ms (its time limit); raise tools.timeoutMs if it needs longer.',
      );
    } finally {
      await slow.close();
    }
  });

  it('run_tests and lint with no command say which setting to add, with an example of its own each', async () => {
    const bare = await startTestService({ parts: { tools: true }, config: { claude: { bin: 'true' } } });
    try {
      for (const [tool, message] of [
        [
          'run_tests',
          'run_tests has no command: set tools.tests.argv in brainstem.json (e.g. ["npm", "test"]).',
        ],
        ['lint', 'lint has no command: set tools.lint.argv in brainstem.json (e.g. ["npm", "run", "lint"]).'],
      ] as const) {
        const res = await api(tool, {}, bare);
        expect(res.body.error, tool).toMatchObject({ code: 'tool_not_configured', message });
      }
    } finally {
      await bare.close();
    }
  });
});
