import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LlamaLocalBrain } from '../brains/llama-local/index.js';
import type { Readiness } from '../brains/types.js';
import { untranslated } from '../src/i18n.js';
import { swapLlamaModel } from '../src/llama-swap.js';
import { waitUntilReady } from '../src/readiness.js';
import { type FakeLlama, startFakeLlama } from './fakes/llama.js';
import { modeConfig } from './helpers/mode-config.js';

const logger = pino({ level: 'silent' });
const node = process.execPath;
/**
 * The wait of the tests that give up while the model loads: the reason they check is the last
 * probe's, so at least one must end before it, which a loaded machine may not manage in 0.4 s.
 */
const PROBE_ROOM_MS = 2_000;

let fake: FakeLlama;
let dir: string;
let probe: (signal: AbortSignal) => Promise<Readiness>;
const script = (name: string) => path.join(dir, name);

beforeAll(async () => {
  fake = await startFakeLlama();
  const brain = new LlamaLocalBrain({
    mode: modeConfig({ id: 'local', kind: 'llama' }),
    baseUrl: fake.baseUrl,
    llama: {
      baseUrl: fake.baseUrl,
      healthPath: '/health',
      readyTimeoutMs: 5_000,
      pollIntervalMs: 50,
      downGraceMs: 10_000,
      connectTimeoutMs: 1_000,
      streamIdleMs: 60_000,
      models: {},
    },
    logger,
  });
  probe = (signal) => brain.ready(signal);

  dir = await mkdtemp(path.join(tmpdir(), 'brainstem-swap-'));
  // Appends its arguments (after the log path) as one JSON line: proves what argv the command got.
  await writeFile(
    script('record.mjs'),
    "import { appendFileSync } from 'node:fs';\n" +
      'appendFileSync(process.argv[2], JSON.stringify(process.argv.slice(3)) + "\\n");\n',
  );
  // What a real start command does to llama-server: loading now, ready after some time.
  await writeFile(
    script('load.mjs'),
    'const [url, ms] = process.argv.slice(2);\n' +
      "await fetch(url + '/_fake/load', { method: 'POST', body: JSON.stringify({ ms: Number(ms) }) });\n",
  );
  await writeFile(
    script('fail.mjs'),
    "console.log('stopping llama-chat.service');\nconsole.error('Failed: unit not loaded');\nprocess.exit(3);\n",
  );
  await writeFile(script('hang.mjs'), 'setTimeout(() => {}, 60_000);\n');
});

afterAll(async () => {
  await fake.close();
  await rm(dir, { recursive: true, force: true });
});

afterEach(() => {
  fake.setLoading(false);
});

const healthProbes = () => fake.requests.filter((r) => r.path === '/health').length;

describe('waitUntilReady', () => {
  it('polls the probe until the model is loaded', async () => {
    fake.loadFor(800);
    const before = healthProbes();
    const result = await waitUntilReady(probe, { timeoutMs: 5_000, intervalMs: 50 });
    expect(result.ok).toBe(true);
    expect(result.waitedMs).toBeGreaterThanOrEqual(750);
    // It asked again until the model was loaded.
    expect(healthProbes() - before).toBeGreaterThan(1);
  });

  it('answers on the first probe when already ready', async () => {
    const before = healthProbes();
    const result = await waitUntilReady(probe, { timeoutMs: 5_000, intervalMs: 1_000 });
    expect(result).toEqual({ ok: true, waitedMs: expect.any(Number) });
    expect(healthProbes() - before).toBe(1);
  });

  it('gives up after timeoutMs with the last reason', async () => {
    fake.setLoading(true);
    // Time for one probe at least, even on a loaded machine: the reason is the last probe's.
    const result = await waitUntilReady(probe, { timeoutMs: PROBE_ROOM_MS, intervalMs: 50 });
    expect(result).toEqual({
      ok: false,
      reason: {
        en: expect.stringMatching(/not ready after 2\.0 s: .*still loading/),
        fr: expect.stringMatching(/pas prêt après 2\.0 s : .*encore en chargement/),
      },
      waitedMs: expect.any(Number),
    });
    // The time limit is a Node timer, which counts from the event loop's cached clock: that can
    // be a few milliseconds behind the Date.now() the wait is measured from (399 ms was seen on
    // a busy machine). A busy machine makes the wait longer, never shorter.
    expect(result.waitedMs).toBeGreaterThanOrEqual(395);
  });

  it('bounds a probe that hangs and ignores its signal', async () => {
    // The probe never settles: only the time limit can end the wait.
    const result = await waitUntilReady(() => new Promise<Readiness>(() => undefined), {
      timeoutMs: 300,
      intervalMs: 50,
    });
    expect(result).toMatchObject({
      ok: false,
      reason: { en: expect.stringMatching(/not ready after 0\.3 s/) },
    });
  });

  it('treats a throwing probe as not ready', async () => {
    const result = await waitUntilReady(() => Promise.reject(new Error('binary missing')), {
      timeoutMs: 200,
      intervalMs: 50,
    });
    expect(result).toMatchObject({ ok: false, reason: { en: expect.stringContaining('binary missing') } });
  });

  it('gives up once a probe has said "down" for downGraceMs without a break, with the reason', async () => {
    const down: Readiness = { ok: false, reason: untranslated('connection refused'), down: true };
    const result = await waitUntilReady(async () => down, {
      timeoutMs: 60_000,
      intervalMs: 20,
      downGraceMs: 200,
    });
    expect(result).toMatchObject({
      ok: false,
      reason: { en: 'nothing answered for 0.2 s and nothing is starting it: connection refused' },
    });
  });

  it('waits on while the answers say "loading" between the "down" ones: something is starting it', async () => {
    let n = 0;
    const result = await waitUntilReady(
      async (): Promise<Readiness> =>
        n++ % 2 === 0
          ? { ok: false, reason: untranslated('refused'), down: true }
          : { ok: false, reason: untranslated('loading') },
      { timeoutMs: 500, intervalMs: 20, downGraceMs: 0 },
    );
    expect(result).toMatchObject({
      ok: false,
      reason: { en: expect.stringMatching(/^not ready after 0\.5 s/) },
    });
  });

  it('stops when its signal aborts', async () => {
    fake.setLoading(true);
    const ctrl = new AbortController();
    const before = healthProbes();
    const waiting = waitUntilReady(probe, { timeoutMs: 60_000, intervalMs: 50, signal: ctrl.signal });
    // Aborted once it is polling; the model never loads, so only the signal can end the wait.
    await expect.poll(healthProbes, { timeout: 30_000 }).toBeGreaterThan(before);
    ctrl.abort();
    expect(await waiting).toMatchObject({ ok: false, reason: { en: expect.stringContaining('cancelled') } });
  });
});

describe('swapLlamaModel', () => {
  it('runs stop then start commands as argv and waits until the new model is ready', async () => {
    const log = path.join(dir, 'argv.log');
    const result = await swapLlamaModel({
      stop: [[node, script('record.mjs'), log, 'stop', 'two words', '$HOME', '; echo injected']],
      start: [
        [node, script('record.mjs'), log, 'start', '--model', 'qwen3-8b.gguf'],
        [node, script('load.mjs'), fake.url, '800'],
      ],
      probe,
      timeoutMs: 5_000,
      intervalMs: 50,
      logger,
    });
    expect(result.ok).toBe(true);
    expect(result.ms).toBeGreaterThanOrEqual(800);
    const lines = (await readFile(log, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines).toEqual([
      ['stop', 'two words', '$HOME', '; echo injected'],
      ['start', '--model', 'qwen3-8b.gguf'],
    ]);
  });

  it('stops at a failing command with its exit code and output in the reason', async () => {
    const log = path.join(dir, 'not-run.log');
    const result = await swapLlamaModel({
      stop: [[node, script('fail.mjs')]],
      start: [[node, script('record.mjs'), log, 'start']],
      probe,
      timeoutMs: 5_000,
      intervalMs: 50,
      logger,
    });
    expect(result).toMatchObject({ ok: false, reason: { en: expect.stringContaining('exit code 3') } });
    expect(!result.ok && result.reason.en).toContain('Failed: unit not loaded');
    expect(!result.ok && result.reason.en).toContain('fail.mjs');
    expect(existsSync(log)).toBe(false);
  });

  it('words a failing command in French too, around its own output: a French reader of the failed switch reads no English', async () => {
    const result = await swapLlamaModel({
      stop: [[node, script('fail.mjs')]],
      start: [],
      probe,
      timeoutMs: 5_000,
      intervalMs: 50,
      logger,
    });
    expect(result.ok).toBe(false);
    const fr = result.ok ? '' : result.reason.fr;
    expect(fr).toMatch(/fail\.mjs"\] a échoué avec le code de sortie 3 ; dernière sortie :\n/);
    expect(fr).toContain('Failed: unit not loaded');
    expect(fr).not.toMatch(/failed with|last output/);
    const missing = await swapLlamaModel({
      stop: [['/nonexistent/llama-stop', 'now']],
      start: [],
      probe,
      timeoutMs: 400,
      intervalMs: 50,
      logger,
    });
    expect(missing.ok ? '' : missing.reason.fr).toMatch(
      /n’a pas pu se lancer \(.*ENOENT.*\) ; vérifiez llama\.models dans la configuration$/,
    );
  });

  it('kills a command that runs past its timeout', async () => {
    // hang.mjs sleeps a minute: only the kill at commandTimeoutMs can end the swap first.
    const result = await swapLlamaModel({
      stop: [],
      start: [[node, script('hang.mjs')]],
      probe,
      timeoutMs: 5_000,
      intervalMs: 50,
      logger,
      commandTimeoutMs: 300,
    });
    expect(result).toMatchObject({
      ok: false,
      reason: { en: expect.stringContaining('did not finish within 0.3 s') },
    });
  });

  it('fails when the model never becomes ready', async () => {
    const result = await swapLlamaModel({
      stop: [],
      start: [[node, script('load.mjs'), fake.url, '60000']],
      probe,
      timeoutMs: PROBE_ROOM_MS,
      intervalMs: 50,
      logger,
    });
    expect(result).toMatchObject({
      ok: false,
      reason: {
        en: expect.stringMatching(/did not become ready: not ready after 2\.0 s: .*still loading/),
        fr: expect.stringMatching(/n’est pas devenu prêt : pas prêt après 2\.0 s : /),
      },
    });
  });

  it('names a command that cannot run', async () => {
    const result = await swapLlamaModel({
      stop: [['/nonexistent/llama-stop', 'now']],
      start: [],
      probe,
      timeoutMs: 400,
      intervalMs: 50,
      logger,
    });
    expect(result).toMatchObject({
      ok: false,
      reason: { en: expect.stringContaining('/nonexistent/llama-stop') },
    });
    expect(!result.ok && result.reason.en).toContain('ENOENT');
  });
});

describe('the environment of swap commands', () => {
  const secrets = {
    BRAINSTEM_API_TOKEN: 'bst_swapTestToken0123456789abcdef',
    TELEGRAM_BOT_TOKEN: '123456:AAswapTestBotToken0123456789abcdefghij',
    BRAVE_API_KEY: 'brave-swap-test',
    ANTHROPIC_API_KEY: 'sk-ant-swap-test',
    CLAUDE_CODE_OAUTH_TOKEN: 'sk-ant-oat-swap-test',
    SWAP_TEST_TRANSCRIBE_KEY: 'transcribe-swap-test',
  };
  const saved: Record<string, string | undefined> = {};

  beforeAll(() => {
    for (const [k, v] of Object.entries(secrets)) {
      saved[k] = process.env[k];
      process.env[k] = v;
    }
  });

  afterAll(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });

  it("is the tool commands' one: the host's variables, none of brainstem's secrets", async () => {
    const out = path.join(dir, 'swap-env.json');
    await writeFile(
      script('env.mjs'),
      "import { writeFileSync } from 'node:fs';\n" +
        'writeFileSync(process.argv[2], JSON.stringify(process.env));\n',
    );
    const result = await swapLlamaModel({
      stop: [],
      start: [[node, script('env.mjs'), out]],
      probe,
      timeoutMs: 5_000,
      intervalMs: 50,
      logger,
      hiddenEnv: ['SWAP_TEST_TRANSCRIBE_KEY'],
    });
    expect(result.ok).toBe(true);
    const env = JSON.parse(await readFile(out, 'utf8')) as Record<string, string>;
    for (const name of Object.keys(secrets)) expect(env[name], name).toBeUndefined();
    expect(env.PATH).toBe(process.env.PATH);
  });
});
