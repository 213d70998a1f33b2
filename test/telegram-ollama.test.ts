import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeLlama, startFakeLlama } from './fakes/llama.js';
import { type Harness, startHarness } from './telegram-harness.js';

/**
 * An owner who points LLAMA_BASE_URL at Ollama, as the README says they may: Ollama has no
 * /health, names its models with a tag (`qwen2.5:7b`) and loads one on the first request naming it.
 * A switch must neither wait `llama.readyTimeoutMs` for a /health that never comes nor fail to say
 * which model to pull.
 */
let h: Harness;
let ollama: FakeLlama;

beforeAll(async () => {
  ollama = await startFakeLlama({ ollama: { models: ['qwen2.5:7b', 'llama3.2'] } });
  h = await startHarness({
    llama: ollama,
    config: {
      modes: {
        local: { kind: 'llama', model: 'qwen2.5:7b', description: 'Qwen on Ollama' },
        small: { kind: 'llama', model: 'llama3.2', description: 'Llama on Ollama' },
        seeing: { kind: 'llama', model: 'llama3.2-vision:11b', vision: true, description: 'Not pulled' },
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
    h.tg.user(114).says('still there?');
    await reply(114, /^echo: still there\?$/);
    const asked = ollama.requests.filter((r) => r.path === '/v1/chat/completions').at(-1);
    expect(asked?.body).toMatchObject({ model: 'llama3.2' });
  });
});
