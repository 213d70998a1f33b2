import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NOT_LOGGED_IN } from '../brains/claude-code/readiness.js';
import { type FakeClaudeCli, startFakeClaudeCli } from './fakes/claude-cli.js';
import { type FakeLlama, type FakeRequest, startFakeLlama } from './fakes/llama.js';
import { CLAUDE_BIN, startTestService, type TestService } from './helpers/service.js';
import { type Harness, nextLog, OWNER, startHarness } from './telegram-harness.js';

interface Health {
  activeMode: string;
  activeReady: boolean;
  brains: Record<string, { ready: boolean; detail: string; checking: boolean; checkedAt: string | null }>;
}

/** Without `token`, what anyone on the network reads: a word per brain, never the upstream's own text. */
const health = async (url: string, token?: string) =>
  (await (
    await fetch(`${url}/health`, token ? { headers: { authorization: `Bearer ${token}` } } : {})
  ).json()) as Health;

/** A data dir whose HOME holds a credentials file, as after `claude /login`; its path. */
async function loggedInHome(): Promise<{ dir: string; credentials: string }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'bst-readiness-'));
  const credentials = path.join(dir, '.claude', '.credentials.json');
  await mkdir(path.dirname(credentials), { recursive: true });
  await writeFile(credentials, '{}');
  return { dir, credentials };
}

describe('/health answers from the last known readiness', { timeout: 180_000 }, () => {
  let cli: FakeClaudeCli;
  let llama: FakeLlama;
  let svc: TestService;
  let home: Awaited<ReturnType<typeof loggedInHome>>;
  let releaseLlama: () => void;

  beforeAll(async () => {
    home = await loggedInHome();
    cli = await startFakeClaudeCli({ loggedIn: true });
    llama = await startFakeLlama();
    // Both probes hang from the first one on: a llama-server whose /health takes its time, a slow CLI.
    cli.hold();
    llama.holdHealth(
      new Promise<void>((resolve) => {
        releaseLlama = resolve;
      }),
    );
    svc = await startTestService({
      dir: home.dir,
      config: {
        defaultMode: 'local',
        claude: { bin: cli.bin },
        // Long enough that the held probe never times out while the test looks at it.
        llama: { baseUrl: llama.baseUrl, connectTimeoutMs: 120_000 },
        server: { readinessRefreshMs: 1_000 },
      },
    });
  });
  afterAll(async () => {
    releaseLlama?.();
    await svc?.close();
    await cli?.close();
    await llama?.close();
    await rm(home.dir, { recursive: true, force: true });
  });

  const llamaProbes = () => llama.requests.filter((r) => r.path === '/health');

  it('answers while both probes are still running, and never runs a probe twice at once', async () => {
    await cli.waitForRun();
    await expect.poll(() => llamaProbes().length, { timeout: 30_000 }).toBe(1);
    const [held] = llamaProbes() as [FakeRequest];
    let llamaAnswered = false;
    void held.ended.then(() => {
      llamaAnswered = true;
    });

    for (let i = 0; i < 5; i++) {
      const body = await health(svc.url);
      expect(body.brains.local).toEqual({
        kind: 'llama',
        active: true,
        ready: false,
        detail: 'checking…',
        checking: true,
        checkedAt: null,
      });
      expect(body.brains.assistant).toMatchObject({ ready: false, checking: true });
      expect(body.activeReady).toBe(false);
    }
    // Every answer above came while the probes were held: neither has finished.
    expect(llamaAnswered).toBe(false);
    expect(cli.waiting).toBe(1);

    // More callers (a /status, the brain monitor, a background round) join the running probes.
    const core = svc.service.core;
    const local = core.readiness.probe('local');
    expect(core.readiness.probe('local')).toBe(local);
    const assistant = core.readiness.probe('assistant');
    expect(core.readiness.probe('assistant')).toBe(assistant);
    void core.chat.statusLines(10);
    // Counted the moment each probe ends, before a later background round can start another.
    const llamaSeen = local.then(() => llamaProbes().length);
    const cliSeen = assistant.then(() => [...cli.runs]);

    cli.release();
    releaseLlama();
    expect(await llamaSeen).toBe(1);
    // One `claude auth status` serves both Claude modes.
    expect(await cliSeen).toEqual([['auth', 'status', '--json']]);
    await expect
      .poll(
        async () => {
          const b = await health(svc.url, svc.token);
          return [b.brains.local?.ready, b.brains.assistant?.detail, b.brains.anklume?.ready];
        },
        { timeout: 60_000 },
      )
      .toEqual([true, 'logged in (API key)', true]);
    expect((await health(svc.url)).brains.assistant?.detail).toBe('ready');
    const after = await health(svc.url);
    expect(after.activeReady).toBe(true);
    expect(Date.parse(after.brains.local?.checkedAt ?? '')).not.toBeNaN();
  });

  it('refreshes in the background: a logout shows without anyone asking for a probe', async () => {
    // `claude /logout` removes the credentials file, `claude /login` writes it.
    cli.setLoggedIn(false);
    await rm(home.credentials);
    await expect
      .poll(async () => (await health(svc.url)).brains.assistant?.detail, { timeout: 60_000 })
      .toBe('not signed in');
    expect((await health(svc.url, svc.token)).brains.assistant?.detail).toBe(NOT_LOGGED_IN.en);
    cli.setLoggedIn(true);
    await writeFile(home.credentials, '{}');
    await expect
      .poll(async () => (await health(svc.url)).brains.assistant?.ready, { timeout: 60_000 })
      .toBe(true);
  });
});

describe('a logged-in answer', { timeout: 180_000 }, () => {
  let cli: FakeClaudeCli;
  let svc: TestService;
  let home: Awaited<ReturnType<typeof loggedInHome>>;

  beforeAll(async () => {
    home = await loggedInHome();
    cli = await startFakeClaudeCli({ loggedIn: true });
    svc = await startTestService({
      dir: home.dir,
      config: { defaultMode: 'assistant', claude: { bin: cli.bin }, server: { readinessRefreshMs: 1_000 } },
    });
  });
  afterAll(async () => {
    await svc?.close();
    await cli?.close();
    await rm(home.dir, { recursive: true, force: true });
  });

  const checkedAt = async () => (await health(svc.url)).brains.assistant?.checkedAt;

  it('is kept while the CLI and its credentials file stay as they were, and asked again once either changes', async () => {
    await expect.poll(async () => (await health(svc.url)).activeReady, { timeout: 60_000 }).toBe(true);
    expect(cli.runs).toHaveLength(1);
    // Two background rounds (one a second here) answer from the kept result.
    for (let round = 0; round < 2; round++) {
      const before = await checkedAt();
      await expect.poll(checkedAt, { timeout: 30_000 }).not.toBe(before);
    }
    expect(cli.runs).toHaveLength(1);
    // A token refresh rewrites the credentials file: the next round runs the CLI again.
    await writeFile(home.credentials, '{"refreshed":true}');
    await expect.poll(() => cli.runs.length, { timeout: 30_000 }).toBe(2);
  });
});

/** The real CLI with an empty HOME and no key: what a fresh install looks like. */
async function noCredentials() {
  const home = await mkdtemp(path.join(tmpdir(), 'no-creds-'));
  return {
    home,
    env: {
      HOME: home,
      CLAUDE_CONFIG_DIR: path.join(home, '.claude'),
      ANTHROPIC_API_KEY: '',
      CLAUDE_CODE_OAUTH_TOKEN: '',
    },
    cleanup: () => rm(home, { recursive: true, force: true }),
  };
}

describe('a Claude mode with no credentials and no API key', { timeout: 180_000 }, () => {
  let creds: Awaited<ReturnType<typeof noCredentials>>;
  let svc: TestService;
  let llama: FakeLlama;

  beforeAll(async () => {
    creds = await noCredentials();
    llama = await startFakeLlama();
    svc = await startTestService({
      config: {
        defaultMode: 'local',
        claude: { bin: CLAUDE_BIN, env: creds.env },
        llama: { baseUrl: llama.baseUrl },
      },
    });
  });
  afterAll(async () => {
    await svc?.close();
    await llama?.close();
    await creds?.cleanup();
  });

  it('is "not signed in" in /health, and a switch to it fails at once saying it is not logged in', async () => {
    await expect
      .poll(
        async () => {
          const b = await health(svc.url);
          return [b.brains.assistant, b.brains.anklume].map((x) => [x?.ready, x?.detail]);
        },
        { timeout: 60_000 },
      )
      .toEqual([
        [false, 'not signed in'],
        [false, 'not signed in'],
      ]);
    const r = await svc.client.chat.completions.create(
      { model: 'active', messages: [{ role: 'user', content: 'switch to assistant' }] },
      // One `claude auth status`, however slow a busy machine makes it.
      { timeout: 90_000 },
    );
    // A login cannot come from waiting: the switch gives up on the first answer instead of polling.
    expect(r.choices[0]?.message.content).toContain(NOT_LOGGED_IN.en);
    expect((await health(svc.url)).activeMode).toBe('local');
  });
});

describe('the same, seen from Telegram and the start-up log', { timeout: 180_000 }, () => {
  let creds: Awaited<ReturnType<typeof noCredentials>>;
  let h: Harness;

  beforeAll(async () => {
    creds = await noCredentials();
    h = await startHarness({ env: { CLAUDE_BIN }, config: { claude: { env: creds.env } } });
    // Every test reads the probes' answers: `/status` before them says "checking…".
    await Promise.all(['assistant', 'anklume'].map((id) => h.service.core.readiness.probe(id)));
  });
  afterAll(async () => {
    await h?.close();
    await creds?.cleanup();
  });

  const reply = (pattern: RegExp) =>
    h.tg.waitFor(() => h.tg.botMessages(OWNER).find((m) => pattern.test(m.text)), { timeoutMs: 60_000 });

  it('/status, /mode and the log say "not logged in: run `claude /login`"', async () => {
    await expect
      .poll(() => h.logs.map((l) => l.msg), { timeout: 60_000 })
      .toContain(`brain assistant: not ready: ${NOT_LOGGED_IN.en}`);
    h.tg.user(OWNER).says('/status');
    const status = await reply(/Status/);
    expect(status.text).toContain(`❌ assistant (claude): ${NOT_LOGGED_IN.en}`);
    expect(status.text).toContain(`❌ anklume (claude): ${NOT_LOGGED_IN.en}`);
    expect(status.text).toMatch(/✅ local ← \(llama\)/);
    h.tg.user(OWNER).says('/mode');
    const menu = await reply(/Modes/);
    expect(menu.text).toMatch(
      new RegExp(`💤 assistant .*\\(${NOT_LOGGED_IN.en.replace(/[()`/]/g, '\\$&')}\\)`),
    );
  });

  it('says it in French to a French user: /status, and a switch that fails on it', async () => {
    const fr = h.tg.user(112, { languageCode: 'fr' });
    fr.says('/status');
    const said = (pattern: RegExp) =>
      h.tg.waitFor(() => h.tg.botMessages(112).find((m) => pattern.test(m.text)), { timeoutMs: 60_000 });
    const status = await said(/Statut/);
    expect(status.text).toContain(`❌ assistant (claude) : ${NOT_LOGGED_IN.fr}`);
    const failedLog = nextLog(h, (l) => l.msg === 'switch failed');
    fr.says('/mode assistant');
    const failed = await said(/Échec de la bascule/);
    expect(failed.text).toContain(
      `Échec de la bascule vers assistant : ${NOT_LOGGED_IN.fr}. Toujours en local.`,
    );
    // The log is the operator's: English, whatever the language of the chat that asked.
    expect(await failedLog()).toMatchObject({ to: 'assistant', reason: NOT_LOGGED_IN.en });
  });
});
