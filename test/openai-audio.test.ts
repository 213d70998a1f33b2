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
let hears: FakeLlama;
let ollama: FakeLlama;
/** Down at start, up once the test has its mode's probe find nothing (see 'before any probe found its server'). */
let lateOllama: FakeLlama;
let lateLlama: FakeLlama;
let lateOllama2: FakeLlama;
/** Models without audio, one per test of what the service remembers of them (see 'remembered'). */
let muteA: FakeLlama;
let muteB: FakeLlama;
let muteC: FakeLlama;
let svc: TestService;

beforeAll(async () => {
  deaf = await startFakeLlama({ audio: false });
  hears = await startFakeLlama();
  ollama = await startFakeLlama({ ollama: { models: ['qwen2.5:7b'] } });
  lateOllama = await startFakeLlama({ ollama: { models: ['qwen2.5:7b'] } });
  lateLlama = await startFakeLlama();
  lateOllama2 = await startFakeLlama({ ollama: { models: ['qwen2.5:7b'] } });
  await Promise.all([lateOllama.down(), lateLlama.down(), lateOllama2.down()]);
  muteA = await startFakeLlama({ audio: false });
  muteB = await startFakeLlama({ audio: false });
  muteC = await startFakeLlama({ audio: false });
  svc = await startTestService({
    config: {
      defaultMode: 'deaf',
      // No background probe during the file: the late modes' brains learn their servers only as tested.
      server: { readinessRefreshMs: 3_600_000 },
      llama: { baseUrl: deaf.baseUrl, connectTimeoutMs: 2000, pollIntervalMs: 50 },
      modes: {
        deaf: { kind: 'llama' },
        hears: { kind: 'llama', baseUrl: hears.baseUrl },
        olla: { kind: 'llama', baseUrl: ollama.baseUrl, model: 'qwen2.5:7b' },
        'late-olla': { kind: 'llama', baseUrl: lateOllama.baseUrl, model: 'qwen2.5:7b' },
        'late-olla-2': { kind: 'llama', baseUrl: lateOllama2.baseUrl, model: 'qwen2.5:7b' },
        'late-llama': { kind: 'llama', baseUrl: lateLlama.baseUrl },
        'mute-a': { kind: 'llama', baseUrl: muteA.baseUrl },
        // The same server written another way.
        'mute-a-too': { kind: 'llama', baseUrl: `${muteA.baseUrl.replace('127.0.0.1', 'localhost')}/` },
        'mute-b': { kind: 'llama', baseUrl: muteB.baseUrl },
        'mute-c': { kind: 'llama', baseUrl: muteC.baseUrl },
      },
    },
  });
  // The brains have met their servers (each learns there whether it is on Ollama).
  await Promise.all(
    ['deaf', 'hears', 'olla'].map((m) => svc.service.core.readiness.probe(m, { fresh: true })),
  );
});
afterAll(async () => {
  await svc?.close();
  await deaf?.close();
  await hears?.close();
  await ollama?.close();
  await lateOllama?.close();
  await lateLlama?.close();
  await lateOllama2?.close();
  await Promise.all([muteA, muteB, muteC].map((f) => f?.close()));
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

  it('llama-server without an audio model: audio in the new turn is a 400 naming the part, in the server’s words', async () => {
    const err = await svc.client.chat.completions
      .create({
        model: 'deaf',
        messages: [...history, { role: 'user', content: [{ type: 'text', text: 'And this?' }, audio] }],
      } as never)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(err).toMatchObject({ status: 400, param: 'messages.2.content.1' });
    const message = (err as Error).message;
    expect(message).toMatch(
      /^400 messages\.2\.content\.1: .*answered HTTP 500: audio input is not supported/,
    );
    expect(message).toContain(
      'The model of mode deaf takes no audio (input_audio parts): send what was said as text',
    );
  });

  it.each([
    ['wav', audio],
    ['ogg', { type: 'input_audio', input_audio: { data: 'T2dnUw==', format: 'ogg' } }],
  ])(
    'Ollama: audio in the new turn (%s) is a 400 naming the part, saying it reads none: not to convert it',
    async (_, part) => {
      const before = chats(ollama).length;
      const err = await svc.client.chat.completions
        .create({
          model: 'olla',
          messages: [...history, { role: 'user', content: [{ type: 'text', text: 'And this?' }, part] }],
        } as never)
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OpenAI.BadRequestError);
      expect(err).toMatchObject({ status: 400, param: 'messages.2.content.1' });
      expect((err as Error).message).toMatch(
        /^400 messages\.2\.content\.1: Ollama’s OpenAI endpoint reads no audio \(input_audio parts\), in any format: send what was said as text/,
      );
      expect(chats(ollama).length).toBe(before);
    },
  );

  it('Ollama: an earlier turn’s audio goes as a line at once, in any format, without a request Ollama refuses first', async () => {
    const before = chats(ollama).length;
    const ogg = { type: 'input_audio', input_audio: { data: 'T2dnUw==', format: 'ogg' } };
    await svc.client.chat.completions.create({
      model: 'olla',
      messages: [{ role: 'user', content: [ogg] }, ...history.slice(1), { role: 'user', content: 'Thanks.' }],
    } as never);
    expect(chats(ollama).length).toBe(before + 1);
    expect(sentMessages(ollama).at(-3)?.content).toEqual([
      {
        type: 'text',
        text: '[an input_audio part (ogg), not heard by the local model, which takes no audio]',
      },
    ]);
  });
});

describe('audio to a local mode before any probe found its server (down at start, up since)', () => {
  /** The mode's probe finds nothing (its server is down), then its server comes up: the brain does not know what it is. */
  const unknownServer = async (mode: string, fake: FakeLlama) => {
    const r = await svc.service.core.readiness.probe(mode, { fresh: true });
    expect(r).toMatchObject({ ok: false, kind: 'unreachable' });
    await fake.up();
  };
  const ogg = { type: 'input_audio', input_audio: { data: 'T2dnUw==', format: 'ogg' } };

  it.each([
    [
      'Ollama: a 400 saying it reads no audio, not to convert it',
      'late-olla',
      () => lateOllama,
      /^400 messages\.0\.content\.1: Ollama’s OpenAI endpoint reads no audio \(input_audio parts\), in any format: send what was said as text/,
    ],
    [
      'llama-server: a 400 saying to convert it to wav or mp3',
      'late-llama',
      () => lateLlama,
      /^400 messages\.0\.content\.1: input_audio format "ogg" is not one llama-server takes: send the audio as wav or mp3/,
    ],
  ])('the new turn’s audio in ogg, %s', async (_, model, fake, said) => {
    await unknownServer(model, fake());
    const err = await svc.client.chat.completions
      .create({
        model,
        messages: [{ role: 'user', content: [{ type: 'text', text: 'What is said?' }, ogg] }],
      } as never)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(err).toMatchObject({ status: 400, param: 'messages.0.content.1' });
    expect((err as Error).message).toMatch(said);
    expect(chats(fake())).toEqual([]);
  });

  it('Ollama: an earlier turn’s audio goes as a line from the first request, without one Ollama refuses first', async () => {
    await unknownServer('late-olla-2', lateOllama2);
    const r = await svc.client.chat.completions.create({
      model: 'late-olla-2',
      messages: [
        { role: 'user', content: [audio] },
        { role: 'assistant', content: 'It says hello.' },
        { role: 'user', content: 'Thanks.' },
      ],
    } as never);
    expect(r.choices[0]?.message.content).toMatch(/echo: Thanks\.$/);
    expect(chats(lateOllama2).length).toBe(1);
    expect(sentMessages(lateOllama2).at(-3)?.content).toEqual([
      {
        type: 'text',
        text: '[an input_audio part (wav), not heard by the local model, which takes no audio]',
      },
    ]);
  });
});

describe('a model whose server refused audio, remembered', () => {
  const withHeardAudio = (model: string) =>
    svc.client.chat.completions.create({
      model,
      messages: [
        { role: 'user', content: [audio] },
        { role: 'assistant', content: 'It says hello.' },
        { role: 'user', content: 'Thanks.' },
      ],
    } as never);
  const line = {
    type: 'text',
    text: '[an input_audio part (wav), not heard by the local model, which takes no audio]',
  };

  it('a later turn with audio in its history goes with lines from the first request, on any mode of that server', async () => {
    await withHeardAudio('mute-a');
    // The first: refused, then sent again with the audio as a line.
    expect(chats(muteA).length).toBe(2);
    const r = await withHeardAudio('mute-a-too');
    expect(r.choices[0]?.message.content).toMatch(/echo: Thanks\.$/);
    expect(chats(muteA).length).toBe(3);
    expect(sentMessages(muteA).at(-3)?.content).toEqual([line]);
  });

  it('a voice note still goes to the server: restarted with an audio model (no probe saw it), it is heard, and so is the history’s audio', async () => {
    await withHeardAudio('mute-b');
    await muteB.down();
    await muteB.up({ audio: true });
    const r = await svc.client.chat.completions.create({
      model: 'mute-b',
      messages: [{ role: 'user', content: [{ type: 'text', text: 'And this?' }, audio] }],
    } as never);
    expect(r.choices[0]?.message.content).toMatch(/echo: And this\?$/);
    await withHeardAudio('mute-b');
    expect(sentMessages(muteB).at(-3)?.content).toEqual([audio]);
  });

  it('forgotten once a probe finds the server down: restarted with an audio model, the history’s audio is heard', async () => {
    await withHeardAudio('mute-c');
    await withHeardAudio('mute-c');
    expect(chats(muteC).length).toBe(3);
    await muteC.down();
    expect(await svc.service.core.readiness.probe('mute-c', { fresh: true })).toMatchObject({
      ok: false,
      kind: 'unreachable',
    });
    await muteC.up({ audio: true });
    const r = await withHeardAudio('mute-c');
    expect(r.choices[0]?.message.content).toMatch(/echo: Thanks\.$/);
    expect(chats(muteC).length).toBe(4);
    expect(sentMessages(muteC).at(-3)?.content).toEqual([audio]);
  });
});

describe('an audio part that holds no playable audio', () => {
  const bad: [string, unknown, RegExp][] = [
    [
      'no data',
      { format: 'wav' },
      /input_audio\.data is missing: put the audio file’s bytes there, as base64/,
    ],
    ['empty data', { data: '', format: 'wav' }, /input_audio\.data is missing/],
    [
      'data that is not base64',
      { data: 'not base64!', format: 'mp3' },
      /input_audio\.data is not valid base64/,
    ],
    [
      'a data: URL for data',
      { data: `data:audio/wav;base64,${WAV}`, format: 'wav' },
      /input_audio\.data is a data: URL: send the base64 after its comma alone/,
    ],
    ['no format', { data: WAV }, /input_audio\.format is missing: say the audio’s format \("wav" or "mp3"\)/],
    ['no input_audio object', 'UklGRg==', /an audio part holds input_audio: \{ data: /],
  ];

  it.each(bad)('%s: a 400 naming the part, before any brain is asked', async (_, inputAudio, said) => {
    for (const model of ['hears', 'olla', 'assistant']) {
      const before = chats(hears).length + chats(ollama).length;
      const err = await svc.client.chat.completions
        .create({
          model,
          messages: [
            {
              role: 'user',
              content: [
                { type: 'text', text: 'What is said?' },
                { type: 'input_audio', input_audio: inputAudio },
              ],
            },
          ],
        } as never)
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OpenAI.BadRequestError);
      expect(err).toMatchObject({ status: 400, param: 'messages.0.content.1' });
      expect((err as Error).message).toMatch(/^400 messages\.0\.content\.1: /);
      expect((err as Error).message).toMatch(said);
      expect(chats(hears).length + chats(ollama).length).toBe(before);
    }
  });

  it('in an earlier turn, a local model is told one was there: the conversation goes on', async () => {
    const r = await svc.client.chat.completions.create({
      model: 'hears',
      messages: [
        { role: 'user', content: [{ type: 'input_audio', input_audio: { data: '', format: 'wav' } }] },
        { role: 'assistant', content: 'I hear nothing.' },
        { role: 'user', content: 'Never mind.' },
      ],
    } as never);
    expect(r.choices[0]?.message.content).toMatch(/echo: Never mind\.$/);
    expect(sentMessages(hears).at(-3)?.content).toEqual([
      { type: 'text', text: '[an input_audio part (wav) without its audio, not shown to the local model]' },
    ]);
  });
});

describe('keys OpenAI does not define in an input_audio part', () => {
  it('a local mode passes them on with the part, unnamed (a Claude mode names them: openai-claude.test.ts)', async () => {
    const part = { type: 'input_audio', input_audio: { data: WAV, format: 'wav', transcript: 'hello' } };
    const { data, response } = await svc.client.chat.completions
      .create({ model: 'hears', messages: [{ role: 'user', content: [part] }] } as never)
      .withResponse();
    expect(response.headers.get('x-brainstem-ignored-fields')).toBeNull();
    expect((data as OpenAI.ChatCompletion).choices[0]?.message.content).toBeTruthy();
    expect(sentMessages(hears).at(-1)?.content).toEqual([part]);
  });
});
