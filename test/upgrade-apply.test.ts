import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, type TestService } from './helpers/service.js';
import { commitLocally, createUpgradeRemote, git, pushUpstream } from './helpers/upgrade-remote.js';

// biome-ignore lint/suspicious/noExplicitAny: answers are read by path; a wrong path fails the assertion.
type Answer = Record<string, any>;

/** self_upgrade apply against a real remote when things go wrong: a moving upstream, a diverged checkout, failing steps. */

const base = mkdtempSync(path.join(tmpdir(), 'bst-upgrade-apply-'));
const { work, other } = createUpgradeRemote(base);
const stepsLog = path.join(base, 'steps.log');
/** While it exists, the build fails on any commit (so the rollback's build fails too). */
const alwaysFail = path.join(base, 'ALWAYS_FAIL');
/** While it exists, the install waits for it to be removed: an upgrade caught running. */
const hold = path.join(base, 'HOLD');
let svc: TestService;

const head = () => git(work, 'rev-parse', '--short', 'HEAD');
const lines = (file: string) =>
  existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').filter(Boolean) : [];

async function api(body: unknown) {
  const res = await fetch(`${svc.url}/api/self_upgrade`, {
    method: 'POST',
    headers: { authorization: `Bearer ${svc.token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Answer };
}

beforeAll(async () => {
  // The build fails on a commit holding BREAK; on one holding LOCK it also leaves git's index locked, as a crash can.
  writeFileSync(
    path.join(base, 'step.cjs'),
    `const fs = require('node:fs');
const [log, name, always, hold] = process.argv.slice(2);
fs.appendFileSync(log, name + '\\n');
console.log(name + ' started');
if (name === 'install' && fs.existsSync(hold)) {
  const wait = setInterval(() => fs.existsSync(hold) || clearInterval(wait), 20);
}
if (name === 'build' && fs.existsSync('LOCK')) fs.writeFileSync('.git/index.lock', '');
if (name === 'build' && (fs.existsSync('BREAK') || fs.existsSync('LOCK') || fs.existsSync(always))) {
  console.error('src/index.ts(1,7): error TS2322: the build is broken');
  process.exit(3);
}`,
  );
  const step = path.join(base, 'step.cjs');
  const dir = path.join(base, 'service');
  mkdirSync(dir);
  svc = await startTestService({
    parts: { tools: true },
    dir,
    config: {
      claude: { bin: 'true' },
      tools: {
        selfUpgrade: {
          repo: work,
          steps: [
            [process.execPath, step, stepsLog, 'install', alwaysFail, hold],
            [process.execPath, step, stepsLog, 'build', alwaysFail, hold],
          ],
          reload: [process.execPath, '-e', '0'],
          framework: { openclaw: [[process.execPath, '-e', '0']] },
        },
      },
    },
  });
});

afterAll(async () => {
  await svc?.close();
  rmSync(base, { recursive: true, force: true });
});

describe('self_upgrade apply', () => {
  it('moves to exactly the commit a check saw; when the upstream has moved since, applies nothing and says what came', async () => {
    pushUpstream(other, 'feat: seen');
    const seen = await api({ action: 'check' });
    expect(seen.body.data.target).toBe(git(other, 'rev-parse', 'HEAD'));
    const unseen = pushUpstream(other, 'chore: pushed after the check');
    const before = head();

    const moved = await api({ action: 'apply', to: seen.body.data.target });
    expect(moved.status).toBe(409);
    expect(moved.body.error.message).toContain('origin/main has moved since the check');
    expect(moved.body.error.message).toContain(
      `it now has 2 new commit(s) (${unseen} chore: pushed after the check`,
    );
    expect(head()).toBe(before);
    expect(lines(stepsLog)).toEqual([]);

    const again = await api({ action: 'check' });
    const applied = await api({ action: 'apply', to: again.body.data.target });
    expect(applied.body.data).toMatchObject({ upgraded: true, to: unseen });
    expect(applied.body.output).toContain(`$ git merge --ff-only ${again.body.data.target}`);
    expect(head()).toBe(unseen);
  });

  it('on a diverged checkout, check lists the local commits and apply refuses, saying what to do', async () => {
    const local = commitLocally(work, 'local: only here');
    pushUpstream(other, 'feat: upstream only');

    const check = await api({ action: 'check' });
    expect(check.body.data).toMatchObject({
      behind: 1,
      ahead: 1,
      local: [{ hash: local, subject: 'local: only here' }],
    });
    expect(check.body.output).toContain(
      `The checkout has 1 local commit(s) that origin/main does not have (${local} local: only here), so it cannot fast-forward: rebase them onto origin/main (git pull --rebase) or drop them (git reset --hard origin/main)`,
    );
    const apply = await api({ action: 'apply' });
    expect(apply.status).toBe(409);
    expect(apply.body.error.message).toContain('so it cannot fast-forward');
    expect(head()).toBe(local);
    expect(lines(stepsLog)).toEqual(['install', 'build']);
    git(work, 'reset', '-q', '--hard', 'origin/main');
  });

  it('names at most 20 uncommitted files, then how many more', async () => {
    const many = Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`gen/file-${i}.ts`, `${i}\n`]));
    pushUpstream(other, 'feat: thirty files', many);
    git(work, 'pull', '-q');
    for (const name of Object.keys(many)) writeFileSync(path.join(work, name), 'local edit\n');
    pushUpstream(other, 'fix: one');
    try {
      const check = await api({ action: 'check' });
      expect(check.body.data.dirty).toHaveLength(30);
      expect(check.body.output).toMatch(
        /uncommitted changes: M gen\/file-\d+\.ts(, M gen\/file-\d+\.ts){19}, … and 10 more\.$/,
      );
      const apply = await api({ action: 'apply' });
      expect(apply.status).toBe(409);
      expect(apply.body.error.message).toContain(', … and 10 more); commit or stash them');
    } finally {
      git(work, 'checkout', '--', '.');
    }
  });

  it('a failing step puts the checkout back, runs its steps there again, and says so; the next check lists the commit again', async () => {
    const before = head();
    const broken = pushUpstream(other, 'feat: breaks the build', { BREAK: 'x\n' });
    rmSync(stepsLog, { force: true });

    const { body } = await api({ action: 'apply' });
    expect(body).toMatchObject({ ok: false, exitCode: 3 });
    expect(body.data).toMatchObject({ upgraded: false, rolledBack: true });
    expect(head()).toBe(before);
    expect(lines(stepsLog)).toEqual(['install', 'build', 'install', 'build']);
    expect(body.output).toContain(`$ git reset --hard ${git(work, 'rev-parse', 'HEAD')}`);
    expect(body.output).toMatch(
      new RegExp(
        `Upgrade ${before} → ${broken} failed: ".* build .*" exited with 3\\.\\nIts last lines:\\nbuild started\\nsrc/index\\.ts\\(1,7\\): error TS2322: the build is broken\\nRolled back to ${before} and ran its steps again: brainstem keeps running ${before}\\.`,
      ),
    );

    const check = await api({ action: 'check' });
    // Listed again, with the commit the last test left unapplied.
    expect(check.body.data).toMatchObject({
      behind: 2,
      commits: [{ hash: broken }, { subject: 'fix: one' }],
    });
    expect(check.body.data.unfinished).toBeUndefined();
    pushUpstream(other, 'fix: the build', { BREAK: null });
  });

  it('when the old commit does not build again either, the answer and the next checks say the install is incomplete', async () => {
    const before = head();
    writeFileSync(alwaysFail, '');
    try {
      const { body } = await api({ action: 'apply' });
      expect(body.data.rolledBack).toBe(false);
      expect(head()).toBe(before);
      const note = `the checkout was put back at ${before}, but "`;
      expect(body.output).toContain(note);
      expect(body.output).toContain('its install or build in');
      const check = await api({ action: 'check' });
      expect(check.body.data.behind).toBe(3);
      expect(check.body.output).toContain(note);
    } finally {
      rmSync(alwaysFail);
    }
    const retried = await api({ action: 'apply' });
    expect(retried.body.data.upgraded).toBe(true);
    expect((await api({ action: 'check' })).body.output).toBe('brainstem is up to date with origin/main.');
  });

  it('when the rollback itself fails, it says where the checkout is and what to do, and checks say so instead of "up to date"', async () => {
    const before = head();
    const locked = pushUpstream(other, 'feat: crashes git', { LOCK: 'x\n' });
    const { body } = await api({ action: 'apply' });
    expect(body.data.rolledBack).toBe(false);
    expect(head()).toBe(locked);
    expect(body.output).toContain(`failed at "`);
    expect(body.output).toContain(`and its rollback failed too ("git reset --hard`);
    expect(body.output).toContain(`before it restarts, run "git reset --hard ${before}" and then`);

    rmSync(path.join(work, '.git', 'index.lock'));
    const check = await api({ action: 'check' });
    expect(check.body.data.behind).toBe(0);
    expect(check.body.output).toContain(`The last upgrade ${before} → ${locked} failed at "`);
    expect(check.body.output).not.toContain('up to date');

    // Put back by hand: the note no longer applies.
    git(work, 'reset', '-q', '--hard', before);
    const after = await api({ action: 'check' });
    expect(after.body.data).toMatchObject({ behind: 1 });
    expect(after.body.data.unfinished).toBeUndefined();
  });

  it('runs one call at a time: while an apply runs, another apply, a check and a framework upgrade are refused', async () => {
    pushUpstream(other, 'fix: no more lock', { LOCK: null });
    const target = (await api({ action: 'check' })).body.data.target as string;
    rmSync(stepsLog, { force: true });
    writeFileSync(hold, '');
    const first = api({ action: 'apply', to: target });
    await expect.poll(() => lines(stepsLog), { timeout: 30_000 }).toEqual(['install']);
    try {
      for (const call of [
        { action: 'apply', to: target },
        { action: 'check' },
        { action: 'framework', name: 'openclaw' },
      ]) {
        const { status, body } = await api(call);
        expect(status, call.action).toBe(409);
        expect(body.error.message).toMatch(
          /^An upgrade is already running \(self_upgrade apply, started .+ ago\): wait for its answer, then try again\.$/,
        );
      }
    } finally {
      rmSync(hold);
    }
    const applied = await first;
    expect(applied.body.data).toMatchObject({ upgraded: true });
    expect(lines(stepsLog)).toEqual(['install', 'build']);
    // Released once it ended.
    expect((await api({ action: 'check' })).body.output).toBe('brainstem is up to date with origin/main.');
  });

  it('a stopped upgrade puts the checkout back and runs its steps there to the end, the stop notwithstanding', async () => {
    const before = head();
    pushUpstream(other, 'feat: stopped midway');
    rmSync(stepsLog, { force: true });
    writeFileSync(hold, '');
    const stop = new AbortController();
    const call = svc.service.tools?.registry.call(
      'self_upgrade',
      { action: 'apply' },
      { caller: 'test', signal: stop.signal },
    );
    try {
      await expect.poll(() => lines(stepsLog), { timeout: 30_000 }).toEqual(['install']);
      stop.abort();
      // The rollback's install, held like the first one: the stop did not cut it.
      await expect.poll(() => lines(stepsLog), { timeout: 30_000 }).toEqual(['install', 'install']);
      // Should brainstem exit now (its children die with it), the next start's checks still say so.
      expect(svc.service.core.kv.get('self_upgrade_unfinished')).toContain(
        `the checkout was put back at ${before}, but its steps were cut short`,
      );
    } finally {
      rmSync(hold, { force: true });
    }
    const r = await call;
    expect(r?.error?.code).toBe('TOOL_ABORTED');
    expect(r?.output).toContain(`Rolled back to ${before} and ran its steps again`);
    expect(head()).toBe(before);
    expect(lines(stepsLog)).toEqual(['install', 'install', 'build']);
    const check = await api({ action: 'check' });
    expect(check.body.data).toMatchObject({ behind: 1 });
    expect(check.body.data.unfinished).toBeUndefined();
  });
});
