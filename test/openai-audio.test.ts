import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeLlama, startFakeLlama } from './fakes/llama.js';
import { startTestService, type TestService } from './helpers/service.js';

/**
 * Audio parts (`input_audio`) at the OpenAI endpoint, as OpenClaw sends a voice note, to local modes
 * whose model hears nothing: llama-server without an audio model's --mmproj, and Ollama, whose
 * OpenAI endpoint reads no audio part at all.
 */

/** A WAV file's first bytes ("RIFF"), as base64: what a client sends. */
const WAV = 'UklGRg==';
const audio = { type: 'input_audio', input_audio: { data: WAV, format: 'wav' } } as const;

let deaf: FakeLlama;
let ollama: FakeLlama;
let svc: TestService;

beforeAll(async () => {
  deaf = await startFakeLlama({ audio: false });
  ollama = await startFakeLlama({ ollama: { models: ['qwen2.5:7b'] } });
  svc = await startTestService({
    config: {
      defaultMode: 'deaf',
      llama: { baseUrl: deaf.baseUrl, connectTimeoutMs: 2000, pollIntervalMs: 50 },
      modes: {
        deaf: { kind: 'llama' },
        olla: { kind: 'llama', baseUrl: ollama.baseUrl, model: 'qwen2.5:7b' },
      },
    },
  });
});
afterAll(async () => {
  await svc?.close();
  await deaf?.close();
  await ollama?.close();
});

const chats = (fake: FakeLlama) => fake.requests.filter((r) => r.path === '/v1/chat/completions');
const sentMessages = (fake: FakeLlama) =>
  (chats(fake).at(-1)?.body as { messages?: { content: unknown }[] } | undefined)?.messages ?? [];

describe('audio in an earlier turn, to a local model that hears none', () => {
  // A voice note answered by a mode that hears it, then a switch (or another provider's history).
  const history = [
    { role: 'user', content: [{ type: 'text', text: 'Listen.' }, audio] },
    { role: 'assistant', content: 'It says hello.' },
  ];

  it.each([
    ['llama-server without an audio model', 'deaf', () => deaf],
    ['Ollama', 'olla', () => ollama],
  ])('%s: the conversation goes on, the audio told as a line', async (_, model, fake) => {
    const r = await svc.client.chat.completions.create({
      model,
      messages: [...history, { role: 'user', content: 'Thanks.' }],
    } as never);
    expect(r.choices[0]?.message.content).toMatch(/echo: Thanks\.$/);
    expect(sentMessages(fake()).at(-3)?.content).toEqual([
      { type: 'text', text: 'Listen.' },
      {
        type: 'text',
        text: '[an input_audio part (wav), not heard by the local model, which takes no audio]',
      },
    ]);
  });

  it.each([
    ['llama-server without an audio model', 'deaf', /audio input is not supported/],
    ['Ollama', 'olla', /invalid message format/],
  ])('%s: audio in the new turn is a 400 naming the part, in the server’s words', async (_, model, said) => {
    const err = await svc.client.chat.completions
      .create({
        model,
        messages: [...history, { role: 'user', content: [{ type: 'text', text: 'And this?' }, audio] }],
      } as never)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(err).toMatchObject({ status: 400, param: 'messages.2.content.1' });
    const message = (err as Error).message;
    expect(message).toMatch(/^400 messages\.2\.content\.1: /);
    expect(message).toMatch(said);
    expect(message).toContain(
      `The model of mode ${model} takes no audio (input_audio parts): send what was said as text`,
    );
  });
});
