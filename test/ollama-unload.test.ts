import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TurnEvent } from '../brains/types.js';
import { type FakeLlama, type FakeRequest, loadingCommand, startFakeLlama } from './fakes/llama.js';
import { collect, textOf } from './helpers/claude-harness.js';
import { llamaServerLaunchCommand } from './helpers/llama-server-launch.js';
import { startOllamaBesideLlamaServer } from './helpers/ollama-beside-llama-server.js';
import { type Harness, nextLog, startHarness } from './telegram-harness.js';

/**
 * Local brains on one GPU: an owner with an Ollama mode and a llama-server mode. Ollama keeps a model
 * in memory for its keep_alive (5 minutes) after its last request; a switch to the llama-server mode
 * that left it there started a model short of the memory Ollama held (it fails to load, or loads on
 * the CPU). The switch unloads it first, once the answers streaming from it have ended.
 */
let h: Harness;
let ollama: FakeLlama;
let server: FakeLlama;
let close: (() => Promise<void>) | undefined;

const isUnload = (r: FakeRequest) =>
  r.path === '/api/generate' && (r.body as { keep_alive?: unknown }).keep_alive !== undefined;

beforeAll(async () => {
  const started = await startOllamaBesideLlamaServer({
    pulled: ['qwen2.5:7b', 'mistral:7b'],
    moreModes: (ollama) => ({
      mistral: {
        kind: 'llama',
        baseUrl: ollama.baseUrl,
        model: 'mistral:7b',
        description: 'Mistral on Ollama',
      },
      // The same Ollama written another way: `localhost` for 127.0.0.1, a trailing slash.
      mistral2: {
        kind: 'llama',
        baseUrl: `${ollama.baseUrl.replace('127.0.0.1', 'localhost')}/`,
        model: 'mistral:7b',
        description: 'Mistral on the same Ollama',
      },
    }),
  });
  ({ h, ollama, server, close } = started);
});
afterAll(async () => {
  await close?.();
});

const reply = (chatId: number, pattern: RegExp) =>
  h.tg.waitFor(() => h.tg.botMessages(chatId).find((m) => pattern.test(m.text)), { timeoutMs: 30_000 });

describe('a switch away from an Ollama mode', { timeout: 60_000 }, () => {
  it('unloads the Ollama model, and waits for it to leave memory, before it starts a llama-server model', async () => {
    await h.tg.waitFor(() => h.logs.find((l) => l.msg === 'brain ollama: its model is loaded'), {
      timeoutMs: 30_000,
    });
    expect([...ollama.loaded]).toEqual(['qwen2.5:7b']);
    let release = () => {};
    ollama.holdUnloads(new Promise<void>((resolve) => (release = resolve)));
    try {
      h.tg.user(112).says('/mode local');
      // Ollama's documented unload: the model named, keep_alive 0, no prompt.
      const unload = await h.tg.waitFor(() => ollama.requests.find(isUnload), { timeoutMs: 20_000 });
      expect(unload.body).toEqual({ model: 'qwen2.5:7b', keep_alive: 0 });
      // Ollama answered, but its runner still holds the memory: the switch watches /api/ps.
      const from = ollama.requests.indexOf(unload);
      await ollama.arrived((r) => ollama.requests.indexOf(r) > from && r.path === '/api/ps');
      expect(ollama.loaded.has('qwen2.5:7b')).toBe(true);
      expect(server.requests.some((r) => r.path === '/_fake/loading')).toBe(false);
      expect(h.service.core.switcher.active().id).toBe('ollama');
    } finally {
      ollama.holdUnloads(undefined);
      release();
    }
    await reply(112, /✅.*local/);
    expect(ollama.loaded.size).toBe(0);
    expect(server.requests.some((r) => r.path === '/_fake/loading')).toBe(true);
    expect(h.service.core.switcher.active().id).toBe('local');
    expect(ollama.unloads).toEqual(['qwen2.5:7b']);
  });

  it('lets an answer streaming from the Ollama model end before it unloads it', async () => {
    h.tg.user(113).says('/mode ollama');
    await reply(113, /✅.*ollama/);
    expect(ollama.loaded.has('qwen2.5:7b')).toBe(true);
    const unloadsBefore = ollama.unloads.length;
    let finish = () => {};
    const held = new Promise<void>((resolve) => (finish = resolve));
    ollama.reply({ chunks: ['a long ', { wait: held }, 'answer'] });
    try {
      h.tg.user(114).says('tell me a story');
      await ollama.arrived((r) => r.path === '/v1/chat/completions');
      const waiting = nextLog(
        h,
        (l) => l.msg === 'switch: waiting for the answers of the model it stops to end',
      );
      h.tg.user(115).says('/mode local');
      expect(await waiting()).toMatchObject({ model: 'qwen2.5:7b' });
      expect(ollama.unloads.length).toBe(unloadsBefore);
    } finally {
      finish();
      ollama.script();
    }
    await reply(114, /a long answer/);
    await reply(115, /✅.*local/);
    expect(ollama.unloads.slice(unloadsBefore)).toEqual(['qwen2.5:7b']);
    expect(ollama.loaded.size).toBe(0);
  });

  it('leaves a model to Ollama when the switch goes to another model on the same Ollama', async () => {
    h.tg.user(116).says('/mode ollama');
    await reply(116, /✅.*ollama/);
    const unloadsBefore = ollama.unloads.length;
    // Ollama's own scheduler evicts a model when the next one needs its memory, and keeps both when
    // both fit (a switch back is then at once).
    h.tg.user(117).says('/mode mistral');
    await reply(117, /✅.*mistral/);
    expect(ollama.unloads.length).toBe(unloadsBefore);
    expect([...ollama.loaded].sort()).toEqual(['mistral:7b', 'qwen2.5:7b']);
  });

  it('unloads as well the model of another mode of that Ollama that a switch between the two left in memory', async () => {
    const switcher = h.service.core.switcher;
    expect(await switcher.switchTo('ollama', { source: 'api' })).toMatchObject({ ok: true });
    expect(await switcher.switchTo('mistral', { source: 'api' })).toMatchObject({ ok: true });
    // Ollama kept both: qwen2.5 holds its memory until its keep_alive runs out.
    expect([...ollama.loaded].sort()).toEqual(['mistral:7b', 'qwen2.5:7b']);
    const unloadsBefore = ollama.unloads.length;
    expect(await switcher.switchTo('local', { source: 'api' })).toMatchObject({ ok: true, to: 'local' });
    expect(ollama.unloads.slice(unloadsBefore)).toEqual(['mistral:7b', 'qwen2.5:7b']);
    expect(ollama.loaded.size).toBe(0);
  });

  it('leaves a model to Ollama when the other mode names the same Ollama another way (localhost, a trailing slash)', async () => {
    h.tg.user(118).says('/mode ollama');
    await reply(118, /✅.*ollama/);
    const unloadsBefore = ollama.unloads.length;
    h.tg.user(119).says('/mode mistral2');
    await reply(119, /✅.*mistral2/);
    expect(ollama.unloads.slice(unloadsBefore)).toEqual([]);
    expect([...ollama.loaded].sort()).toEqual(['mistral:7b', 'qwen2.5:7b']);
  });
});

describe('a switch away from an Ollama mode whose model does not leave memory', { timeout: 60_000 }, () => {
  it('goes on once its wait is over, and tells the owner what still holds the memory', async () => {
    // The unload's wait is bounded by readyTimeoutMs too: the test waits it out, not a fixed sleep.
    const {
      h: started,
      ollama: stuck,
      close: closeAll,
    } = await startOllamaBesideLlamaServer({ readyTimeoutMs: 2_000 });
    // Its runner never frees the memory.
    stuck.holdUnloads(new Promise<void>(() => {}));
    try {
      await started.tg.waitFor(
        () => started.logs.find((l) => l.msg === 'brain ollama: its model is loaded'),
        {
          timeoutMs: 30_000,
        },
      );
      started.tg.user(118).says('/mode local');
      const told = await started.tg.waitFor(
        () => started.tg.botMessages(111).find((m) => /still holds/.test(m.text)),
        { timeoutMs: 30_000 },
      );
      expect(told.text).toContain(
        `Switching to local: Ollama at ${stuck.url} still holds qwen2.5:7b in memory (\`ollama ps\` shows it; \`ollama stop qwen2.5:7b\` unloads it). The model of local may lack the memory it holds.`,
      );
      await started.tg.waitFor(() => started.tg.botMessages(118).find((m) => /✅.*local/.test(m.text)), {
        timeoutMs: 30_000,
      });
      expect(
        started.logs.find(
          (l) =>
            l.msg === 'switch: the model it leaves is still in memory; the model it starts may lack memory',
        ),
      ).toMatchObject({ mode: 'ollama', to: 'local' });
      expect(stuck.unloads).toEqual(['qwen2.5:7b']);
    } finally {
      await closeAll();
    }
  });
});

/**
 * The other way round on the same GPU: a llama-server model (started and stopped by its mode's
 * commands) holds the memory an Ollama mode on another server needs, and a switch from an Ollama
 * mode that fails leaves Ollama's model unloaded.
 */
describe('a switch between a llama-server model and an Ollama mode on another server', {
  timeout: 60_000,
}, () => {
  let both: Harness;
  let ol: FakeLlama;
  let ls: FakeLlama;
  const loadingSet = (fake: FakeLlama, loading: boolean) =>
    fake.requests.filter(
      (r) => r.path === '/_fake/loading' && (r.body as { loading?: unknown }).loading === loading,
    ).length;
  const isLoad = (r: FakeRequest) =>
    r.path === '/api/generate' && (r.body as { keep_alive?: unknown }).keep_alive === undefined;

  beforeAll(async () => {
    ol = await startFakeLlama({ ollama: { models: ['qwen2.5:7b', 'llama3:70b'], tooBig: ['llama3:70b'] } });
    // llama-server's model is up at boot: the active mode's.
    ls = await startFakeLlama();
    both = await startHarness({
      llama: ls,
      config: {
        defaultMode: 'local',
        modes: {
          local: { kind: 'llama', llamaModel: 'qwen', description: 'Qwen on llama-server' },
          ollama: { kind: 'llama', baseUrl: ol.baseUrl, model: 'qwen2.5:7b', description: 'Qwen on Ollama' },
          big: { kind: 'llama', baseUrl: ol.baseUrl, model: 'llama3:70b', description: 'Llama on Ollama' },
          // Its second start command fails once the first has brought the server half up.
          broken: { kind: 'llama', llamaModel: 'broken', description: 'A model that does not start' },
        },
        llama: {
          readyTimeoutMs: 600_000,
          models: {
            qwen: { start: [loadingCommand(ls, false)], stop: [loadingCommand(ls, true)] },
            broken: {
              start: [loadingCommand(ls, false), [process.execPath, '-e', 'process.exit(1)']],
              stop: [loadingCommand(ls, true)],
            },
          },
        },
      },
    });
  });
  afterAll(async () => {
    await both?.close();
    await ol?.close();
    await ls?.close();
  });

  it("runs the llama-server model's stop commands before Ollama loads its own", async () => {
    let release = () => {};
    ol.holdLoads(new Promise<void>((resolve) => (release = resolve)));
    try {
      both.tg.user(119).says('/mode ollama');
      await ol.arrived(isLoad);
      // By the time Ollama loads, llama-server's model has left the GPU.
      expect(loadingSet(ls, true)).toBe(1);
    } finally {
      ol.holdLoads(undefined);
      release();
    }
    await both.tg.waitFor(() => both.tg.botMessages(119).find((m) => /✅.*ollama/.test(m.text)), {
      timeoutMs: 30_000,
    });
    expect(both.service.core.switcher.active().id).toBe('ollama');
    expect(both.service.core.switcher.loadedModel()).toBeUndefined();
    expect([...ol.loaded]).toEqual(['qwen2.5:7b']);
  });

  it('starts the llama-server model again when the Ollama model then cannot load', async () => {
    const switcher = both.service.core.switcher;
    expect(await switcher.switchTo('local', { source: 'api' })).toMatchObject({ ok: true, to: 'local' });
    const stops = loadingSet(ls, true);
    const starts = loadingSet(ls, false);
    const failed = await switcher.switchTo('big', { source: 'api' });
    expect(failed).toMatchObject({ ok: false, from: 'local', to: 'big' });
    expect(failed.ok ? '' : failed.reason).toMatch(
      /could not load llama3:70b .*; model qwen was started again$/s,
    );
    expect(loadingSet(ls, true)).toBe(stops + 1);
    expect(loadingSet(ls, false)).toBe(starts + 1);
    expect(switcher.active().id).toBe('local');
    expect(switcher.loadedModel()).toBe('qwen');
  });

  it('stops what the failed switch half started and loads the Ollama model back', async () => {
    const switcher = both.service.core.switcher;
    expect(await switcher.switchTo('ollama', { source: 'api' })).toMatchObject({ ok: true, to: 'ollama' });
    expect(ol.loaded.has('qwen2.5:7b')).toBe(true);
    const stops = loadingSet(ls, true);
    const loadedBack = nextLog(both, (l) => l.msg === 'brain ollama: its model is loaded');
    const failed = await switcher.switchTo('broken', { source: 'api' });
    expect(failed).toMatchObject({ ok: false, from: 'ollama', to: 'broken' });
    expect(failed.ok ? '' : failed.reason).toMatch(/failed with exit code 1.*; model broken was stopped$/s);
    // The half-started model's stop commands ran, then Ollama was asked for its model again.
    expect(loadingSet(ls, true)).toBe(stops + 1);
    expect(ol.unloads.at(-1)).toBe('qwen2.5:7b');
    await loadedBack();
    expect(ol.loaded.has('qwen2.5:7b')).toBe(true);
    expect(switcher.active().id).toBe('ollama');
    expect(switcher.loadedModel()).toBeUndefined();
  });
});

describe('a switch away from an Ollama mode whose answer ends late in its grace', { timeout: 60_000 }, () => {
  it('unloads the model once the answer ended, its own wait counted from then', async () => {
    const {
      h: started,
      ollama: ollama2,
      close: closeAll,
    } = await startOllamaBesideLlamaServer({
      // Long local answers: a switch lets them end for up to 30 s, as a restart does.
      server: { shutdownGraceMs: 30_000 },
      // The unload's wait (at most llama.readyTimeoutMs) is shorter than the answer's grace; long
      // enough that a loaded machine unloads (and starts the new model) well within it.
      readyTimeoutMs: 6_000,
    });
    let finish = () => {};
    const held = new Promise<void>((resolve) => (finish = resolve));
    try {
      await started.tg.waitFor(
        () => started.logs.find((l) => l.msg === 'brain ollama: its model is loaded'),
        {
          timeoutMs: 30_000,
        },
      );
      ollama2.reply({ chunks: ['a long ', { wait: held }, 'answer'] });
      started.tg.user(112).says('tell me a story');
      await ollama2.arrived((r) => r.path === '/v1/chat/completions');
      const waiting = nextLog(
        started,
        (l) => l.msg === 'switch: waiting for the answers of the model it stops to end',
      );
      started.tg.user(119).says('/mode local');
      await waiting();
      // The answer ends after the unload's whole wait (6 s) would have run out, were it counted from
      // the switch's start: this pause is the answer's length, not something the test hopes for.
      await new Promise((resolve) => setTimeout(resolve, 6_500));
      finish();
      await started.tg.waitFor(() => started.tg.botMessages(112).find((m) => /a long answer/.test(m.text)), {
        timeoutMs: 30_000,
      });
      await started.tg.waitFor(() => started.tg.botMessages(119).find((m) => /✅.*local/.test(m.text)), {
        timeoutMs: 30_000,
      });
      expect(ollama2.unloads).toEqual(['qwen2.5:7b']);
      expect(ollama2.loaded.size).toBe(0);
      expect(started.tg.botMessages(111).filter((m) => /still holds/.test(m.text))).toEqual([]);
    } finally {
      finish();
      await closeAll();
    }
  });
});

/**
 * Two modes on one Ollama model, named two ways (`qwen2.5` and `qwen2.5:latest`, one model to Ollama:
 * no tag means `:latest`), say two personas. A switch away from one unloads that model: an answer the
 * other mode streams from it (an API client naming that mode) must end first, as its own would.
 */
describe('a switch away from an Ollama mode whose model another mode names another way', {
  timeout: 60_000,
}, () => {
  it('lets the answer that other mode streams from the model end before it unloads it, and unloads it once', async () => {
    const {
      h: started,
      ollama: same,
      close: closeAll,
    } = await startOllamaBesideLlamaServer({
      pulled: ['qwen2.5'],
      model: 'qwen2.5',
      moreModes: (ollama) => ({
        terse: {
          kind: 'llama',
          baseUrl: ollama.baseUrl,
          model: 'qwen2.5:latest',
          description: 'The same Qwen, terse',
        },
      }),
    });
    let finish = () => {};
    const held = new Promise<void>((resolve) => (finish = resolve));
    try {
      await started.tg.waitFor(
        () => started.logs.find((l) => l.msg === 'brain ollama: its model is loaded'),
        { timeoutMs: 30_000 },
      );
      same.reply({ chunks: ['a long ', { wait: held }, 'answer'] });
      const answer = collect(
        started.service.core.chat.run(
          {
            model: 'terse',
            sessionKey: 'api:terse',
            messages: [{ role: 'user', content: 'tell me a story' }],
            source: 'openai',
          },
          new AbortController().signal,
        ),
      );
      await same.arrived((r) => r.path === '/v1/chat/completions');
      const waiting = nextLog(
        started,
        (l) => l.msg === 'switch: waiting for the answers of the model it stops to end',
      );
      const switched = started.service.core.switcher.switchTo('local', { source: 'api' });
      // Whichever comes first: the switch waiting for that answer, or Ollama told to unload under it.
      const first = await Promise.race([
        waiting().then(() => 'waits for the answer'),
        same.arrived(isUnload).then(() => 'unloads under the answer'),
      ]);
      expect(first).toBe('waits for the answer');
      expect(same.unloads).toEqual([]);
      finish();
      expect(textOf((await answer) as TurnEvent[])).toBe('a long answer');
      expect(await switched).toMatchObject({ ok: true, to: 'local' });
      // One model, unloaded once: not again as the other mode's.
      expect(same.unloads).toEqual(['qwen2.5']);
      expect(same.loaded.size).toBe(0);
    } finally {
      finish();
      same.script();
      await closeAll();
    }
  });
});

/**
 * A mode that starts no model (a second persona, say) on the very llama-server another mode's model
 * runs on, its URL written another way (`localhost` for 127.0.0.1, a trailing slash): that server
 * answers it with the model loaded, so a switch to it must not run that model's stop commands, as it
 * does for a mode on another server (vacating), which would leave it with no model to answer.
 */
describe('a switch from a llama-server model to a mode on that server written another way', {
  timeout: 60_000,
}, () => {
  it('leaves the model loaded: its stop commands do not run, the mode answers with it, and a switch back starts nothing', async () => {
    const ls = await startFakeLlama();
    // A raw llama-server launch: it fails on a port taken, as when the model is up already.
    const launch = llamaServerLaunchCommand(ls);
    const started = await startHarness({
      llama: ls,
      config: {
        defaultMode: 'local',
        modes: {
          local: { kind: 'llama', llamaModel: 'qwen', description: 'Qwen on llama-server' },
          persona: {
            kind: 'llama',
            baseUrl: `${ls.baseUrl.replace('127.0.0.1', 'localhost')}/`,
            description: 'The same server, another persona',
          },
        },
        llama: {
          readyTimeoutMs: 600_000,
          models: { qwen: { start: [launch], stop: [loadingCommand(ls, true)] } },
        },
      },
    });
    try {
      const switcher = started.service.core.switcher;
      expect(switcher.loadedModel()).toBe('qwen');
      expect(await switcher.switchTo('persona', { source: 'api' })).toMatchObject({
        ok: true,
        to: 'persona',
      });
      expect(ls.requests.filter((r) => r.path === '/_fake/loading')).toEqual([]);
      started.tg.user(113).says('still there?');
      await started.tg.waitFor(
        () => started.tg.botMessages(113).find((m) => /^echo: still there\?$/.test(m.text)),
        { timeoutMs: 30_000 },
      );
      // And back: the model was never stopped (on a fresh data dir, only the mode left named it), so
      // nothing is started either.
      const back = await switcher.switchTo('local', { source: 'api' });
      expect(back.ok ? '' : back.reason).toBe('');
      expect(back).toMatchObject({ ok: true, to: 'local' });
      expect(switcher.loadedModel()).toBe('qwen');
    } finally {
      await started.close();
      await ls.close();
    }
  });
});
