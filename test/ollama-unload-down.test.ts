import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FakeLlama } from './fakes/llama.js';
import { startOllamaBesideLlamaServer } from './helpers/ollama-beside-llama-server.js';
import type { Harness } from './telegram-harness.js';

/**
 * An owner whose Ollama stopped (it crashed, or they stopped it to free the GPU) switches to their
 * llama-server mode. Nothing listens at Ollama's address, so nothing of it holds memory: the switch
 * has nothing to unload, and no warning that the new model may lack the memory Ollama holds.
 */
let h: Harness;
let ollama: FakeLlama;
let close: (() => Promise<void>) | undefined;

beforeAll(async () => {
  ({ h, ollama, close } = await startOllamaBesideLlamaServer());
});
afterAll(async () => {
  await close?.();
});

describe('a switch away from an Ollama mode whose Ollama is not running', { timeout: 60_000 }, () => {
  it('has nothing to unload, and warns of no memory held', async () => {
    await h.tg.waitFor(() => h.logs.find((l) => l.msg === 'brain ollama: its model is loaded'), {
      timeoutMs: 30_000,
    });
    await ollama.down();
    h.tg.user(113).says('/mode local');
    await h.tg.waitFor(() => h.tg.botMessages(113).find((m) => /✅.*local/.test(m.text)), {
      timeoutMs: 30_000,
    });
    // Told (or not) before the switch went on to start the new model.
    expect(
      h.logs.filter(
        (l) =>
          l.msg === 'switch: the model it leaves is still in memory; the model it starts may lack memory',
      ),
    ).toEqual([]);
    expect(h.service.core.notifier.recent().filter((n) => /may lack the memory/.test(n.text))).toEqual([]);
    expect(h.logs.find((l) => l.msg === 'switch: the model it leaves is unloaded')).toMatchObject({
      mode: 'ollama',
      detail: expect.stringMatching(
        /^nothing answers at Ollama's address .* \(connection refused\): no model of it holds memory$/,
      ),
    });
  });
});
