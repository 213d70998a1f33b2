import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NOTICE_LANG_KEY } from '../src/i18n.js';
import { recordingLogger } from './helpers/logs.js';
import { startTestService, type TestService } from './helpers/service.js';
import { createUpgradeRemote, git, pushUpstream as pushFiles } from './helpers/upgrade-remote.js';

// biome-ignore lint/suspicious/noExplicitAny: answers are read by path; a wrong path fails the assertion.
type Answer = Record<string, any>;

const base = mkdtempSync(path.join(tmpdir(), 'bst-upgrade-'));
const { work, other } = createUpgradeRemote(base);
const stepsLog = path.join(base, 'steps.log');
const reloadLog = path.join(base, 'reload.log');
const serviceDir = path.join(base, 'service');
let svc: TestService;

/** Another developer pushes a commit: the checkout brainstem runs from is now behind. */
function pushUpstream(subject: string): string {
  writeFileSync(path.join(other, `${subject.replace(/\W+/g, '-')}.txt`), `${subject}\n`);
  git(other, 'add', '.');
  git(other, 'commit', '-q', '-m', subject);
  git(other, 'push', '-q', 'origin', 'main');
  return git(other, 'rev-parse', '--short', 'HEAD');
}

process.env.BST_UPGRADE_TEST_KEY = 'sk-transcription';

function config(overrides: Record<string, unknown> = {}) {
  const step = path.join(base, 'step.cjs');
  return {
    claude: { bin: 'true' },
    transcription: { url: 'http://127.0.0.1:9/v1', apiKeyEnv: 'BST_UPGRADE_TEST_KEY' },
    tools: {
      selfUpgrade: {
        repo: work,
        steps: [
          [process.execPath, step, stepsLog, 'install'],
          [process.execPath, step, stepsLog, 'build'],
        ],
        reload: [process.execPath, path.join(base, 'reload.cjs'), reloadLog],
        framework: { openclaw: [[process.execPath, '-e', 'console.log("openclaw upgraded")']] },
        ...overrides,
      },
    },
  };
}

async function api(s: TestService, body: unknown) {
  const res = await fetch(`${s.url}/api/self_upgrade`, {
    method: 'POST',
    headers: { authorization: `Bearer ${s.token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Answer };
}

const lines = (file: string) =>
  existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').filter(Boolean) : [];

/** Bounds a wait on the reload command or the next start, so that only a failing test ends on it. */
const POLL = { timeout: 30_000 };

const { logger, logs } = recordingLogger('info');
/** The reloads started, each logged right before its command runs. */
const reloads = () => logs.filter((l) => l.msg === 'self-upgrade: reloading').length;

/**
 * Resolves once `s` has run what waits for its last answer to leave (the reload, in afterDelivery):
 * that runs as the answer's connection closes, and a later request is read only after that.
 */
async function answerLeft(s: TestService): Promise<void> {
  await (await fetch(`${s.url}/health`)).text();
}

beforeAll(async () => {
  writeFileSync(
    path.join(base, 'step.cjs'),
    `require('node:fs').appendFileSync(process.argv[2], process.argv[3] + '\\n'); console.log(process.argv[3] + ' done');`,
  );
  writeFileSync(
    path.join(base, 'reload.cjs'),
    // Also what it was given of brainstem's secrets: the transcription key the config names. Written
    // before the line the test waits for, so the test never reads it before it exists.
    `require('node:fs').writeFileSync(process.argv[2] + '.env', String(process.env.BST_UPGRADE_TEST_KEY)); require('node:fs').appendFileSync(process.argv[2], Date.now() + '\\n');`,
  );
  mkdirSync(serviceDir);
  svc = await startTestService({ parts: { tools: true }, config: config(), dir: serviceDir, logger });
});

afterAll(async () => {
  await svc?.close();
  rmSync(base, { recursive: true, force: true });
  delete process.env.BST_UPGRADE_TEST_KEY;
});

describe('self_upgrade against a real git remote one commit ahead', () => {
  let target = '';

  it('check lists the new commits without changing anything', async () => {
    target = pushUpstream('feat: new relay');
    const { status, body } = await api(svc, { action: 'check' });
    expect(status).toBe(200);
    expect(body.data).toMatchObject({
      upstream: 'origin/main',
      target: git(other, 'rev-parse', 'HEAD'),
      behind: 1,
      ahead: 0,
      local: [],
      dirty: [],
    });
    expect(body.data.commits).toEqual([{ hash: target, subject: 'feat: new relay' }]);
    expect(body.output).toContain(`1 new commit(s) on origin/main:\n- ${target} feat: new relay`);
    expect(git(work, 'rev-parse', '--short', 'HEAD')).not.toBe(target);
  });

  it('apply refuses a dirty working tree', async () => {
    writeFileSync(path.join(work, 'README.md'), 'local edit\n');
    try {
      const { status, body } = await api(svc, { action: 'apply' });
      expect(status).toBe(409);
      expect(body.error.message).toContain('uncommitted changes (M README.md)');
      expect(lines(stepsLog)).toEqual([]);
    } finally {
      git(work, 'checkout', '--', 'README.md');
    }
  });

  it('apply pulls, installs, builds, and reloads only once the answer is delivered', async () => {
    // That the reload waits for the answer to leave is afterDelivery's (test/http-after-delivery.test.ts).
    const { status, body } = await api(svc, { action: 'apply' });
    expect(status).toBe(200);
    expect(body.ok).toBe(true);
    expect(body.data).toMatchObject({ upgraded: true, to: target });
    expect(body.output).toContain(`$ git merge --ff-only ${git(work, 'rev-parse', 'HEAD')}`);
    expect(body.output).toMatch(/install done[\s\S]*build done/);
    expect(git(work, 'rev-parse', '--short', 'HEAD')).toBe(target);
    expect(lines(stepsLog)).toEqual(['install', 'build']);
    await expect.poll(() => lines(reloadLog), POLL).toHaveLength(1);
    expect(readFileSync(`${reloadLog}.env`, 'utf8')).toBe('undefined');
  });

  it('is up to date afterwards, and apply then does nothing', async () => {
    const check = await api(svc, {});
    expect(check.body.data.behind).toBe(0);
    expect(check.body.output).toBe('brainstem is up to date with origin/main.');
    const before = reloads();
    const apply = await api(svc, { action: 'apply' });
    expect(apply.body.output).toBe('Already up to date with origin/main.');
    await answerLeft(svc);
    expect(reloads()).toBe(before);
  });

  it('reports the outcome after brainstem comes back from the reload', async () => {
    await svc.close();
    svc = await startTestService({ parts: { tools: true }, config: config(), dir: serviceDir });
    await expect
      .poll(() => svc.service.core.notifier.pending().find((n) => n.kind === 'upgrade')?.text, POLL)
      .toMatch(new RegExp(`restarted after its upgrade \\w+ → ${target}`));
  });

  it('runs a configured framework upgrade, and refuses an unknown one', async () => {
    const ok = await api(svc, { action: 'framework', name: 'openclaw' });
    expect(ok.body.ok).toBe(true);
    expect(ok.body.output).toContain('openclaw upgraded');
    // Names every object has (`constructor`) are no configured upgrade either.
    for (const name of ['kernel', 'constructor', '__proto__', 'toString']) {
      const unknown = await api(svc, { action: 'framework', name });
      expect([name, unknown.status, unknown.body.error.param]).toEqual([name, 403, 'name']);
    }
  });
});

describe('self_upgrade failures', () => {
  it('stops at a failing step, rolls back, and does not reload', async () => {
    pushUpstream('fix: broken build');
    const broken = await startTestService({
      parts: { tools: true },
      logger,
      config: config({
        steps: [[process.execPath, '-e', 'console.error("compile error"); process.exit(4)']],
      }),
    });
    try {
      const before = reloads();
      const { status, body } = await api(broken, { action: 'apply' });
      expect(status).toBe(200);
      expect(body).toMatchObject({ ok: false, exitCode: 4 });
      expect(body.data.upgraded).toBe(false);
      expect(body.output).toContain('compile error');
      expect(body.output).toContain('exited with 4');
      // The step fails on the old commit too: the answer says the rollback did not finish.
      expect(body.output).toContain('its install or build in');
      await answerLeft(broken);
      expect(reloads()).toBe(before);
    } finally {
      await broken.close();
    }
  });

  it('shows the commands it runs with the secrets they carry redacted: steps, rollback note, framework upgrade', async () => {
    const secret = 'hunter2-secret-value';
    pushUpstream('fix: needs a key');
    const keyed = await startTestService({
      parts: { tools: true },
      config: config({
        // `--` hands what follows to the script, not to node.
        steps: [[process.execPath, '-e', 'process.exit(4)', '--', '--api-key', secret]],
        framework: {
          keyed: [[process.execPath, '-e', 'console.log("keyed done")', '--', '--token', secret]],
        },
      }),
    });
    try {
      const failed = await api(keyed, { action: 'apply' });
      expect(failed.body).toMatchObject({ ok: false, exitCode: 4 });
      expect(failed.body.output).toContain('--api-key [redacted]');
      // The note on what is left to do names the steps, and later checks repeat it.
      expect(failed.body.output).toContain('its install or build in');
      const checked = await api(keyed, { action: 'check' });
      expect(checked.body.output).toContain('its install or build in');
      const framework = await api(keyed, { action: 'framework', name: 'keyed' });
      expect(framework.body.output).toContain('keyed done');
      expect(framework.body.output).toContain('--token [redacted]');
      for (const answer of [failed, checked, framework])
        expect(JSON.stringify(answer.body)).not.toContain(secret);
    } finally {
      await keyed.close();
    }
  });

  it('says so at once when the reload command fails', async () => {
    pushUpstream('feat: another');
    const noPm2 = await startTestService({
      parts: { tools: true },
      config: config({ reload: ['no-such-pm2-binary', 'reload', 'brainstem'] }),
    });
    try {
      const { body } = await api(noPm2, { action: 'apply' });
      expect(body.ok).toBe(true);
      await expect
        .poll(() => noPm2.service.core.notifier.pending().find((n) => n.kind === 'upgrade')?.text, POLL)
        .toContain('the reload (no-such-pm2-binary reload brainstem) failed');
      // In French, as every other notice: "vous", never "tu".
      noPm2.service.core.kv.set(NOTICE_LANG_KEY, 'fr');
      pushUpstream('feat: encore une');
      expect((await api(noPm2, { action: 'apply' })).body.ok).toBe(true);
      await expect
        .poll(
          () => noPm2.service.core.notifier.pending().find((n) => /rechargement/.test(n.text))?.text,
          POLL,
        )
        .toContain(
          'le rechargement (no-such-pm2-binary reload brainstem) a échoué : « no-such-pm2-binary » est introuvable. Redémarrez-le à la main.',
        );
    } finally {
      await noPm2.close();
    }
  });
});

describe('self_upgrade with its default steps, under pm2 (NODE_ENV=production, ecosystem.config.cjs)', () => {
  it('installs the development dependencies the build needs, so the build runs and the upgrade applies', async () => {
    // A project like brainstem: `npm run build` needs a development dependency (tsx, esbuild).
    const project = path.join(base, 'npm-project');
    const projectReloads = path.join(project, 'reload.log');
    mkdirSync(project);
    const remote = createUpgradeRemote(project);
    const builder = path.join(project, 'builder');
    mkdirSync(builder);
    writeFileSync(path.join(builder, 'package.json'), '{ "name": "builder", "version": "1.0.0" }\n');
    const manifest = {
      name: 'npm-project',
      version: '1.0.0',
      private: true,
      scripts: { build: `node -e "require('builder/package.json'); console.log('built')"` },
      devDependencies: { builder: 'file:../builder' },
    };
    writeFileSync(path.join(remote.other, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    execFileSync('npm', ['install', '--package-lock-only', '--offline', '--no-audit', '--no-fund'], {
      cwd: remote.other,
      stdio: 'ignore',
    });
    const target = pushFiles(remote.other, 'build: with a dev dependency', {
      'package.json': readFileSync(path.join(remote.other, 'package.json'), 'utf8'),
      'package-lock.json': readFileSync(path.join(remote.other, 'package-lock.json'), 'utf8'),
    });
    const nodeEnv = process.env.NODE_ENV;
    process.env.NODE_ENV = 'production';
    const pm2ed = await startTestService({
      parts: { tools: true },
      config: {
        claude: { bin: 'true' },
        tools: {
          selfUpgrade: {
            repo: remote.work,
            reload: [process.execPath, path.join(base, 'reload.cjs'), projectReloads],
          },
        },
      },
    });
    try {
      const { body } = await api(pm2ed, { action: 'apply' });
      expect(body.output).toMatch(/^built$/m);
      expect(body).toMatchObject({ ok: true, exitCode: 0, data: { upgraded: true, to: target } });
      // The reload writes into the project's folder: done before the folder goes.
      await expect.poll(() => lines(projectReloads).length, POLL).toBe(1);
    } finally {
      await pm2ed.close();
      if (nodeEnv === undefined) delete process.env.NODE_ENV;
      else process.env.NODE_ENV = nodeEnv;
    }
  });
});
