import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeLlama, type FakeRequest, startFakeLlama } from './fakes/llama.js';
import { type Harness, nextLog, startHarness } from './telegram-harness.js';

/**
 * An owner who points LLAMA_BASE_URL at Ollama, as the README says they may: Ollama has no
 * /health, names its models with a tag (`qwen2.5:7b`) and loads one on the first request naming it.
 * A switch must neither wait `llama.readyTimeoutMs` for a /health that never comes nor fail to say
 * which model to pull.
 */
let h: Harness;
let ollama: FakeLlama;

beforeAll(async () => {
  ollama = await startFakeLlama({
    ollama: { models: ['qwen2.5:7b', 'llama3.2', 'mistral:7b', 'llama3.3:70b'], tooBig: ['llama3.3:70b'] },
  });
  h = await startHarness({
    llama: ollama,
    config: {
      modes: {
        local: { kind: 'llama', model: 'qwen2.5:7b', description: 'Qwen on Ollama' },
        small: { kind: 'llama', model: 'llama3.2', description: 'Llama on Ollama' },
        seeing: { kind: 'llama', model: 'llama3.2-vision:11b', vision: true, description: 'Not pulled' },
        mid: { kind: 'llama', model: 'mistral:7b', description: 'Mistral on Ollama' },
        huge: { kind: 'llama', model: 'llama3.3:70b', description: 'Too big for its memory' },
      },
      // Far longer than the test: a switch that waited it out would time the test out, not pass it.
      llama: { readyTimeoutMs: 600_000 },
    },
  });
});
afterAll(async () => {
  await h?.close();
  await ollama?.close();
});

const reply = (chatId: number, pattern: RegExp) =>
  h.tg.waitFor(() => h.tg.botMessages(chatId).find((m) => pattern.test(m.text)), { timeoutMs: 30_000 });

describe('the local brain on Ollama, from Telegram', { timeout: 60_000 }, () => {
  it('loads the active mode’s model at start-up, as a switch to it would', async () => {
    // Ollama loads a model on the first request naming it: without this the first message would
    // wait the whole load, while the start-up log said the mode was ready.
    const said = await h.tg.waitFor(() => h.logs.find((l) => l.msg === 'brain local: its model is loaded'), {
      timeoutMs: 30_000,
    });
    expect(said).toMatchObject({ mode: 'local', detail: `Ollama at ${ollama.url} loaded qwen2.5:7b` });
    const loads = ollama.requests.filter((r) => r.path === '/api/generate');
    expect(loads[0]?.body).toEqual({ model: 'qwen2.5:7b' });
  });

  it('answers with the mode’s model, its name with a colon sent as it is', async () => {
    h.tg.user(112).says('hello there');
    await reply(112, /^echo: hello there$/);
    const asked = ollama.requests.filter((r) => r.path === '/v1/chat/completions').at(-1);
    expect(asked?.body).toMatchObject({ model: 'qwen2.5:7b' });
  });

  it('fails a switch to a model Ollama has not pulled at once, saying to `ollama pull` it', async () => {
    h.tg.user(113).says('/mode seeing');
    const failed = await reply(113, /❌ Switch to seeing failed/);
    expect(failed.text).toContain(
      `Ollama at ${ollama.url} has no model llama3.2-vision:11b: run \`ollama pull llama3.2-vision:11b\` on it`,
    );
    expect(failed.text).toMatch(/Still on local\.$/);
    expect(h.service.core.switcher.active().id).toBe('local');
  });

  it('switches to a mode whose model Ollama has, and says it is awake', async () => {
    h.tg.user(114).says('/mode small');
    await reply(114, /✅.*small/);
    expect(h.service.core.switcher.active().id).toBe('small');
    expect(ollama.loaded.has('llama3.2:latest')).toBe(true);
    h.tg.user(114).says('still there?');
    await reply(114, /^echo: still there\?$/);
    const asked = ollama.requests.filter((r) => r.path === '/v1/chat/completions').at(-1);
    expect(asked?.body).toMatchObject({ model: 'llama3.2' });
  });

  it('says a mode on Ollama is awake only once Ollama answers that it loaded the model', async () => {
    let release = () => {};
    ollama.holdLoads(new Promise<void>((resolve) => (release = resolve)));
    let load: Awaited<ReturnType<FakeLlama['arrived']>>;
    try {
      h.tg.user(115).says('/mode mid');
      // Ollama's documented load: the model named, no prompt; its answer comes once it is in memory.
      load = await ollama.arrived(
        (r) => r.path === '/api/generate' && (r.body as { model?: unknown }).model === 'mistral:7b',
      );
      expect(load.body).toEqual({ model: 'mistral:7b' });
      // The switch waits on that answer (held): nobody was told the mode is ready.
      expect(h.tg.botMessages(115).some((m) => /✅|ready|awake/.test(m.text))).toBe(false);
      expect(h.service.core.switcher.active().id).not.toBe('mid');
      expect(ollama.loaded.has('mistral:7b')).toBe(false);
    } finally {
      ollama.holdLoads(undefined);
      release();
    }
    const ready = await reply(115, /✅.*mid/);
    expect(await load.ended).toBe('completed');
    expect(ollama.loaded.has('mistral:7b')).toBe(true);
    expect(ready.text).toMatch(/Mode mid is ready/);
    expect(h.service.core.switcher.active().id).toBe('mid');
  });

  it('fails a switch to a model Ollama cannot load with its words and what to do', async () => {
    h.tg.user(116).says('/mode huge');
    const failed = await reply(116, /❌ Switch to huge failed/);
    expect(failed.text).toContain(
      `Ollama at ${ollama.url} could not load llama3.3:70b (HTTP 500: model requires more system memory (41.2 GiB) than is available (15.3 GiB)): free memory there`,
    );
    expect(failed.text).toContain('set modes.huge.model to a smaller model');
    expect(failed.text).toMatch(/Still on mid\.$/);
    expect(h.tg.botMessages(116).some((m) => /✅|ready|awake/.test(m.text))).toBe(false);
    expect(h.service.core.switcher.active().id).toBe('mid');
  });

  it('leaves out of /usage the tokens of a turn its Ollama did not count, saying so', async () => {
    // An Ollama that ignores stream_options.include_usage: the answer comes with no usage chunk.
    ollama.reply({ chunks: ['uncounted ', 'answer'], usage: false });
    try {
      h.tg.user(117).says('count this');
      await reply(117, /uncounted answer/);
    } finally {
      ollama.script();
    }
    h.tg.user(117).says('/usage');
    const usage = await reply(117, /not counting/);
    expect(usage.text).toContain('not counting 1 turn whose server counted no tokens');
  });

  it('loads the active mode’s model again when its mode is asked for after Ollama unloaded it', async () => {
    expect(h.service.core.switcher.active().id).toBe('mid');
    // Its keep_alive ran out: Ollama unloaded it, and the first message would wait the whole load.
    ollama.loaded.delete('mistral:7b');
    const loadsBefore = ollama.requests.filter((r) => r.path === '/api/generate').length;
    h.tg.user(118).says('/mode mid');
    const ready = await reply(118, /✅.*mid/);
    expect(ready.text).toMatch(/Mode mid is ready: its model was started again/);
    const load = ollama.requests.filter((r) => r.path === '/api/generate').slice(loadsBefore);
    expect(load.map((r) => r.body)).toEqual([{ model: 'mistral:7b' }]);
    expect(ollama.loaded.has('mistral:7b')).toBe(true);
  });

  it('answers that the active mode is already on when Ollama has its model in memory', async () => {
    // In memory (as the test before left it, or a message would): nothing to load.
    ollama.loaded.add('mistral:7b');
    const loadsBefore = ollama.requests.filter((r) => r.path === '/api/generate').length;
    h.tg.user(119).says('/mode mid');
    await reply(119, /Already in mode/);
    expect(ollama.requests.filter((r) => r.path === '/api/generate').length).toBe(loadsBefore);
  });
});

describe('the start-up load of the active Ollama mode’s model, when a switch comes first', {
  timeout: 60_000,
}, () => {
  it('is cut by a switch to another mode, which loads only the model asked for', async () => {
    // Ollama loads the models asked for one after another, and drops a load whose request is
    // cancelled: left running, the start-up load held the switch behind a model nobody wanted.
    const slow = await startFakeLlama({ ollama: { models: ['qwen2.5:7b', 'llama3.2'] } });
    let release = () => {};
    slow.holdLoads(new Promise<void>((resolve) => (release = resolve)));
    const started = await startHarness({
      llama: slow,
      config: {
        defaultMode: 'local',
        modes: {
          local: { kind: 'llama', model: 'qwen2.5:7b', description: 'Qwen on Ollama' },
          small: { kind: 'llama', model: 'llama3.2', description: 'Llama on Ollama' },
        },
        llama: { readyTimeoutMs: 600_000 },
      },
    });
    const isLoad = (model: string) => (r: { path: string; body: unknown }) =>
      r.path === '/api/generate' && (r.body as { model?: string }).model === model;
    try {
      const atStart = await slow.arrived(isLoad('qwen2.5:7b'));
      started.tg.user(111).says('/mode small');
      await slow.arrived(isLoad('llama3.2'));
      // Cut as the switch began, before Ollama answered it.
      expect(await atStart.ended).toBe('closed');
      release();
      await started.tg.waitFor(() => started.tg.botMessages(111).find((m) => /✅.*small/.test(m.text)), {
        timeoutMs: 30_000,
      });
      expect(started.service.core.switcher.active().id).toBe('small');
      expect([...slow.loaded]).toEqual(['llama3.2:latest']);
      expect(started.logs.some((l) => l.msg === 'brain local: its model is loaded')).toBe(false);
    } finally {
      release();
      await started.close();
      await slow.close();
    }
  });
});

/**
 * brainstem on Ollama with its brain monitor as given, once its start-up load of qwen2.5:7b is done:
 * `loadsAfter(n)` matches a load of that model among Ollama's requests from the n-th on, `loaded`
 * waits for the log of the next load (the start-up one already seen).
 */
async function onRestartingOllama(brainMonitor: { intervalMs: number; failuresBeforeDown: number }) {
  const restarting = await startFakeLlama({ ollama: { models: ['qwen2.5:7b'] } });
  const started = await startHarness({
    llama: restarting,
    parts: { bot: true, brainMonitor },
    config: {
      defaultMode: 'local',
      modes: { local: { kind: 'llama', model: 'qwen2.5:7b', description: 'Qwen on Ollama' } },
      llama: { readyTimeoutMs: 600_000 },
    },
  });
  const loadsAfter = (from: number) => (r: FakeRequest) =>
    restarting.requests.indexOf(r) >= from &&
    r.path === '/api/generate' &&
    (r.body as { model?: string }).model === 'qwen2.5:7b';
  const loaded = nextLog(started, (l) => l.msg === 'brain local: its model is loaded');
  return { restarting, started, loadsAfter, loaded };
}

describe('the active Ollama mode’s model after Ollama restarts', { timeout: 60_000 }, () => {
  it('is loaded again once the brain monitor sees Ollama back, before any message needs it', async () => {
    // A restarted Ollama has no model in memory: without a load the first message waits the whole
    // load, while the "answers again" notice said the mode was back.
    const { restarting, started, loadsAfter, loaded } = await onRestartingOllama({
      intervalMs: 100,
      failuresBeforeDown: 2,
    });
    try {
      // The start-up load first: the one after the restart is told apart from it.
      expect(await (await restarting.arrived(loadsAfter(0))).ended).toBe('completed');
      await loaded();
      const down = nextLog(started, (l) => l.msg === 'brain down');
      await restarting.down();
      await down();
      const back = nextLog(started, (l) => l.msg === 'brain back up');
      const from = restarting.requests.length;
      await restarting.up();
      expect(restarting.loaded.size).toBe(0);
      await back();
      const again = await started.tg.waitFor(() => restarting.requests.find(loadsAfter(from)), {
        timeoutMs: 20_000,
      });
      expect(again.body).toEqual({ model: 'qwen2.5:7b' });
      expect(await again.ended).toBe('completed');
      expect(await loaded(2)).toMatchObject({
        mode: 'local',
        detail: `Ollama at ${restarting.url} loaded qwen2.5:7b`,
      });
      expect([...restarting.loaded]).toEqual(['qwen2.5:7b']);
      // Loaded ahead: no message was needed for it.
      expect(restarting.requests.some((r) => r.path === '/v1/chat/completions')).toBe(false);
    } finally {
      await started.close();
      await restarting.close();
    }
  });
});

describe('the active Ollama mode’s model after Ollama restarts between two probes', {
  timeout: 60_000,
}, () => {
  it('is loaded again when a probe failed and the next one finds Ollama back, with no outage called', async () => {
    // A quick restart (systemctl restart ollama, an upgrade) fails fewer probes than make an outage:
    // no "answers again" notice, so nothing loaded the model, and the first message waited the whole load.
    const { restarting, started, loadsAfter, loaded } = await onRestartingOllama({
      intervalMs: 100,
      failuresBeforeDown: 1000,
    });
    try {
      expect(await (await restarting.arrived(loadsAfter(0))).ended).toBe('completed');
      await loaded();
      await restarting.down();
      // Checks never overlap: the second one after the stop began after it, and failed.
      await nextLog(started, (l) => l.msg === 'brain monitor checked')(2);
      const from = restarting.requests.length;
      await restarting.up();
      expect(restarting.loaded.size).toBe(0);
      const again = await started.tg.waitFor(() => restarting.requests.find(loadsAfter(from)), {
        timeoutMs: 20_000,
      });
      expect(again.body).toEqual({ model: 'qwen2.5:7b' });
      expect(await loaded(2)).toMatchObject({ mode: 'local' });
      expect([...restarting.loaded]).toEqual(['qwen2.5:7b']);
      expect(started.logs.some((l) => l.msg === 'brain down')).toBe(false);
    } finally {
      await started.close();
      await restarting.close();
    }
  });
});
