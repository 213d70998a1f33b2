import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeLlama, loadingCommand, startFakeLlama } from './fakes/llama.js';
import { type Harness, startHarness } from './telegram-harness.js';

/**
 * Model swaps with start/stop commands, through the Bot API emulator: the
 * commands are real processes that load and unload a fake llama-server, as
 * `systemctl start|stop` would a real one.
 */

/** A command that writes its environment to `file`. */
const recordEnv = (file: string) => [
  process.execPath,
  '-e',
  `require('node:fs').writeFileSync(${JSON.stringify(file)}, JSON.stringify(process.env))`,
];

let h: Harness;
let envFile: string;
/** qwen's server: unloaded until its start command runs. */
let qwen: FakeLlama;
/** coder's server: its start command never gets it loaded. */
let coder: FakeLlama;

beforeAll(async () => {
  qwen = await startFakeLlama({ loading: true });
  envFile = path.join(await mkdtemp(path.join(tmpdir(), 'bst-swap-env-')), 'env.json');
  // The transcription key is brainstem's secret too: no swap command may see it.
  process.env.BST_SWAP_TEST_TRANSCRIBE_KEY = 'sk-transcribe-secret';
  coder = await startFakeLlama({ loading: true });
  h = await startHarness({
    config: {
      modes: {
        qwen: { kind: 'llama', llamaModel: 'qwen', baseUrl: qwen.baseUrl, description: 'Qwen' },
        coder: { kind: 'llama', llamaModel: 'coder', baseUrl: coder.baseUrl, description: 'Coder' },
      },
      transcription: { url: 'http://127.0.0.1:9/v1', apiKeyEnv: 'BST_SWAP_TEST_TRANSCRIBE_KEY' },
      llama: {
        readyTimeoutMs: 3_000,
        models: {
          qwen: {
            start: [recordEnv(envFile), loadingCommand(qwen, false)],
            stop: [loadingCommand(qwen, true)],
          },
          // Its start command runs, but the model never loads.
          coder: { start: [loadingCommand(coder, true)], stop: [loadingCommand(coder, true)] },
        },
      },
    },
  });
});
afterAll(async () => {
  await h?.close();
  await qwen?.close();
  await coder?.close();
  delete process.env.BST_SWAP_TEST_TRANSCRIBE_KEY;
});

const reply = (chatId: number, pattern: RegExp, after = 0) =>
  h.tg.waitFor(
    () =>
      h.tg
        .botMessages(chatId)
        .slice(after)
        .find((m) => pattern.test(m.text)),
    { timeoutMs: 60_000 },
  );

describe('model swaps', { timeout: 120_000 }, () => {
  it('a failed swap starts the model it had stopped again, so the mode it is still on answers', async () => {
    const u = h.tg.user(112);
    u.says('/mode qwen');
    await reply(112, /✅ Mode qwen is ready/);
    const env = JSON.parse(await readFile(envFile, 'utf8')) as Record<string, string>;
    expect(env.PATH).toBeDefined();
    expect(env.BST_SWAP_TEST_TRANSCRIBE_KEY).toBeUndefined();

    const before = h.tg.botMessages(112).length;
    u.says('/mode coder');
    const failed = await reply(112, /❌ Switch to coder failed/, before);
    expect(failed.text).toMatch(/model qwen was started again\. Still on qwen\.$/);
    expect(h.service.core.switcher.active().id).toBe('qwen');
    u.says('are you there?');
    await reply(112, /^echo: are you there\?$/);
  });

  it('a failed swap is told to a reader in French in French, French typography included', async () => {
    expect(h.service.core.switcher.active().id).toBe('qwen');
    h.tg.user(118, { languageCode: 'fr' }).says('/mode coder');
    const failed = await reply(118, /❌ Échec de la bascule vers coder/);
    expect(failed.text).toMatch(
      /^⚙️ \[proxy\] ❌ Échec de la bascule vers coder : le modèle n’est pas devenu prêt : .+ ; le modèle qwen a été relancé\. Toujours en qwen\.$/s,
    );
    expect(failed.text).not.toMatch(/\S; /);
  });

  it('asking for the active mode starts its model again when it went down behind brainstem', async () => {
    expect(h.service.core.switcher.active().id).toBe('qwen');
    // A reboot or an OOM kill: the model is gone, brainstem still has it as loaded.
    qwen.setLoading(true);
    const before = h.tg.botMessages(113).length;
    const u = h.tg.user(113);
    u.says('/mode qwen');
    await reply(113, /✅ Mode qwen is ready/, before);
    u.says('back?');
    await reply(113, /^echo: back\?$/);
  });

  it('a swap lets the answers streaming from the model it stops end first', async () => {
    expect(h.service.core.switcher.active().id).toBe('qwen');
    let open = () => {};
    const held = new Promise<void>((resolve) => {
      open = resolve;
    });
    qwen.reply({ chunks: ['first ', { wait: held }, 'last'] });
    h.tg.user(114).says('question');
    await reply(114, /^first/);
    h.tg.user(115).says('/mode coder');
    const waiting = () =>
      h.logs.some((l) => l.msg === 'switch: waiting for the answers of the model it stops to end');
    await expect.poll(waiting, { timeout: 30_000 }).toBe(true);
    open();
    await reply(114, /^first last$/);
    await reply(115, /❌ Switch to coder failed/);
    expect(h.tg.botMessages(114).map((m) => m.text)).toEqual(['first last']);
  });

  it('an answer still streaming when the grace is over is ended saying the switch cut it, before its model is stopped', async () => {
    const slowQwen = await startFakeLlama({ loading: true });
    const fastCoder = await startFakeLlama({ loading: true });
    const r = await startHarness({
      config: {
        server: { shutdownGraceMs: 300 },
        modes: {
          qwen: { kind: 'llama', llamaModel: 'qwen', baseUrl: slowQwen.baseUrl, description: 'Qwen' },
          coder: { kind: 'llama', llamaModel: 'coder', baseUrl: fastCoder.baseUrl, description: 'Coder' },
        },
        llama: {
          models: {
            qwen: { start: [loadingCommand(slowQwen, false)], stop: [loadingCommand(slowQwen, true)] },
            coder: { start: [loadingCommand(fastCoder, false)], stop: [loadingCommand(fastCoder, true)] },
          },
        },
      },
    });
    const said = (chatId: number, pattern: RegExp) =>
      r.tg.waitFor(() => r.tg.botMessages(chatId).find((m) => pattern.test(m.text)), { timeoutMs: 60_000 });
    try {
      r.tg.user(116).says('/mode qwen');
      await said(116, /✅ Mode qwen is ready/);
      // An answer that would go on past the grace.
      slowQwen.reply({ chunks: ['first ', { wait: new Promise(() => {}) }, 'last'] });
      r.tg.user(117).says('a long question');
      await said(117, /^first/);
      r.tg.user(116).says('/mode coder');
      const cut = await said(117, /⚠️/);
      expect(cut.text).toBe(
        'first\n\n⚙️ [proxy] ⚠️ the switch to mode coder stopped model qwen before this answer ended (answers get 300 ms, server.shutdownGraceMs, to end first); send your message again to have it answered',
      );
      await said(116, /✅ Mode coder is ready \(from qwen/);
      // Its connection to the model being stopped is let go, not left streaming from it.
      const asked = slowQwen.requests.filter((q) => q.path === '/v1/chat/completions');
      expect(await asked.at(-1)?.ended).toBe('closed');
    } finally {
      await r.close();
      await slowQwen.close();
      await fastCoder.close();
    }
  });
});
