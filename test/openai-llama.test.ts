import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import OpenAI, { APIError } from 'openai';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { timeStream } from '../bench/sse-client.js';
import { unknownNestedKeys } from '../handlers/http/openai-schema.js';
import { type FakeLlama, loadingCommand, startFakeLlama } from './fakes/llama.js';
import { dataUrlPart, randomPng } from './helpers/images.js';
import { CLAUDE_BIN, startTestService, type TestService } from './helpers/service.js';

/** A promise the test opens by hand, to hold a fake's stream mid-way. */
function gate() {
  let open!: () => void;
  const promise = new Promise<void>((r) => {
    open = r;
  });
  return { promise, open };
}

/** The text of the last user message a fake received: which request it is answering. */
function lastUser(body: { messages?: { role: string; content?: unknown }[] }): string {
  return String(body.messages?.filter((m) => m.role === 'user').at(-1)?.content ?? '');
}

/**
 * Two models on servers of their own: qwen holds its answer to "first" until `held` opens (a turn
 * running while another is queued behind it), and each says its name before any other message.
 */
async function qwenAndCoder(opts: Parameters<typeof startFakeLlama>[0] = {}) {
  const qwen = await startFakeLlama(opts);
  const coder = await startFakeLlama(opts);
  const held = gate();
  onTestFinished(held.open);
  qwen.script((body) =>
    lastUser(body) === 'first'
      ? { chunks: ['one', { wait: held.promise }, ' done'] }
      : { chunks: [`qwen: ${lastUser(body)}`] },
  );
  coder.script((body) => ({ chunks: [`coder: ${lastUser(body)}`] }));
  return { qwen, coder, held };
}

let llama: FakeLlama;
let svc: TestService;

beforeAll(async () => {
  llama = await startFakeLlama({ chunkDelayMs: 1 });
  svc = await startTestService({
    config: {
      defaultMode: 'local',
      // Heartbeats at the shortest period allowed, so a test waits for one a second, not 15.
      server: { bodyLimitBytes: 64 * 1024, streamHeartbeatMs: 1_000 },
      // Logged in (a key it never uses here), so a switch to a Claude mode finds it ready.
      claude: { bin: CLAUDE_BIN, env: { ANTHROPIC_API_KEY: 'sk-test-unused' } },
      llama: { baseUrl: llama.baseUrl, connectTimeoutMs: 2000, pollIntervalMs: 50 },
      modes: { local: { kind: 'llama', aliases: ['lical'], toolFilter: { allow: ['read'] } } },
    },
  });
});
afterAll(async () => {
  await svc?.close();
  await llama?.close();
});

describe('OpenAI endpoint over the local brain', () => {
  it('serves /health without auth and /v1/models with it', async () => {
    const health = async () => {
      const res = await fetch(`${svc.url}/health`);
      expect(res.status).toBe(200);
      return (await res.json()) as { activeMode: string; brains: Record<string, { ready: boolean }> };
    };
    expect((await health()).activeMode).toBe('local');
    // /health shows the last probe's answer (a busy machine may have timed out the first one at start).
    await svc.service.core.readiness.probe('local', { fresh: true });
    expect((await health()).brains.local?.ready).toBe(true);
    const models = await svc.client.models.list();
    expect(models.data.map((m) => m.id)).toEqual(['active', 'anklume', 'assistant', 'local']);
  });

  it('retrieves one model, by id, alias or with a provider prefix, as the chat route resolves it', async () => {
    for (const id of ['local', 'lical', 'brainstem/local']) {
      expect(await svc.client.models.retrieve(id)).toMatchObject({ id: 'local', object: 'model' });
    }
    const active = await svc.client.models.retrieve('brainstem/active');
    expect(active).toMatchObject({ id: 'active', description: 'the active mode (now local)' });
    await expect(svc.client.models.retrieve('gpt-9')).rejects.toMatchObject({
      status: 404,
      error: { type: 'invalid_request_error', param: 'model' },
    });
    const plain = await fetch(`${svc.url}/v1/models/brainstem/lical`, {
      headers: { authorization: `Bearer ${svc.token}` },
    });
    expect(((await plain.json()) as { id: string }).id).toBe('local');
    expect((await fetch(`${svc.url}/v1/models/local`)).status).toBe(401);
    const slashed = await fetch(`${svc.url}/v1/models/`, {
      headers: { authorization: `Bearer ${svc.token}` },
    });
    expect(((await slashed.json()) as { object: string }).object).toBe('list');
  });

  it('refuses a missing or wrong token in OpenAI error shape', async () => {
    const none = await fetch(`${svc.url}/v1/models`);
    expect(none.status).toBe(401);
    expect(((await none.json()) as { error: { type: string } }).error.type).toBe('authentication_error');
    const wrong = new OpenAI({ baseURL: `${svc.url}/v1`, apiKey: 'nope', maxRetries: 0 });
    await expect(wrong.models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
  });

  it('streams: the client has the first words before the rest exists', async () => {
    const g = gate();
    llama.reply({ chunks: ['Hello', ' world', { wait: g.promise }, ' and', ' more'] });
    const stream = await svc.client.chat.completions.create({
      model: 'local',
      messages: [{ role: 'user', content: 'hi' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let opened = false;
    let usage: OpenAI.CompletionUsage | undefined | null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      if (chunk.usage) usage = chunk.usage;
      if (!opened && text.includes('world')) {
        // The upstream is held: these words can only have come through streaming.
        expect(text).toBe('**[local]** Hello world');
        opened = true;
        g.open();
      }
    }
    expect(opened).toBe(true);
    expect(text).toBe('**[local]** Hello world and more');
    expect(usage?.completion_tokens).toBeGreaterThan(0);
  });

  it('answers without streaming, with provider prefixes and aliases', async () => {
    llama.reply({ chunks: ['plain ', 'answer'] });
    for (const model of ['brainstem/local', 'claude-code/lical', 'active']) {
      const r = await svc.client.chat.completions.create({
        model,
        messages: [{ role: 'user', content: 'q' }],
      });
      expect(r.choices[0]?.message.content).toBe('**[local]** plain answer');
      expect(r.choices[0]?.finish_reason).toBe('stop');
    }
  });

  it('shows no token counts an upstream did not give (an Ollama that ignores include_usage), streamed or not', async () => {
    llama.reply({ chunks: ['not ', 'counted'], usage: false });
    try {
      const stream = await svc.client.chat.completions.create({
        model: 'local',
        messages: [{ role: 'user', content: 'count?' }],
        stream: true,
        stream_options: { include_usage: true },
      });
      let text = '';
      const usages: unknown[] = [];
      for await (const chunk of stream) {
        text += chunk.choices[0]?.delta?.content ?? '';
        if (chunk.usage) usages.push(chunk.usage);
      }
      expect(text).toBe('**[local]** not counted');
      // Not `prompt_tokens: 0`: a client adding it up would count a real turn as free of tokens.
      expect(usages).toEqual([]);

      const r = await fetch(`${svc.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${svc.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'local', messages: [{ role: 'user', content: 'count?' }] }),
      });
      expect(r.status).toBe(200);
      const body = (await r.json()) as { choices: { message: { content: string } }[]; usage?: unknown };
      expect(body.choices[0]?.message.content).toBe('**[local]** not counted');
      expect(body.usage).toBeUndefined();
    } finally {
      llama.script();
    }
  });

  it('gives the model its earlier answers without brainstem’s mode tag, as the client sends them back', async () => {
    llama.reply({ chunks: ['Rome'] });
    // A history as a client keeps it: each answer with the tag of the mode that wrote it.
    const r = await svc.client.chat.completions.create({
      model: 'local',
      messages: [
        { role: 'user', content: 'capital of France?' },
        { role: 'assistant', content: '**[local]** Paris.' },
        { role: 'user', content: 'and Spain?' },
        { role: 'assistant', content: [{ type: 'text', text: '**[assistant]** Madrid.' }] },
        { role: 'user', content: 'quote the tags' },
        // Not brainstem's tag (no such mode, or not written as brainstem writes it): the model's own words.
        { role: 'assistant', content: '**[gpt]** one, **[local]**two, [local] three' },
        { role: 'user', content: 'and Italy?' },
      ],
    });
    expect(r.choices[0]?.message.content).toBe('**[local]** Rome');
    const sent = llama.requests.at(-1)?.body as { messages: { role: string; content: unknown }[] };
    expect(sent.messages.filter((m) => m.role === 'assistant').map((m) => m.content)).toEqual([
      'Paris.',
      [{ type: 'text', text: 'Madrid.' }],
      '**[gpt]** one, **[local]**two, [local] three',
    ]);
  });

  it('gives the model a refusal of the history as the assistant’s words, as a part or as the message’s refusal', async () => {
    llama.reply({ chunks: ['Fine'] });
    const r = await svc.client.chat.completions.create({
      model: 'local',
      messages: [
        { role: 'user', content: 'the admin password?' },
        { role: 'assistant', content: [{ type: 'refusal', refusal: 'I cannot share passwords.' }] },
        { role: 'user', content: 'the root one?' },
        { role: 'assistant', content: null, refusal: 'I cannot share that one either.' },
        { role: 'user', content: 'ok, the weather?' },
      ],
    });
    expect(r.choices[0]?.message.content).toBe('**[local]** Fine');
    const sent = llama.requests.at(-1)?.body as { messages: Record<string, unknown>[] };
    // llama-server reads text parts only in an assistant message: a refusal part would be its 400.
    expect(sent.messages.filter((m) => m.role === 'assistant')).toEqual([
      { role: 'assistant', content: [{ type: 'text', text: 'I cannot share passwords.' }] },
      { role: 'assistant', content: 'I cannot share that one either.' },
    ]);
  });

  it('the bench’s stream timer stops on an error sent after the first words, instead of timing a cut answer', async () => {
    llama.reply({ chunks: ['half an '], truncate: true });
    const timing = timeStream(
      `${svc.url}/v1/chat/completions`,
      { model: 'local', messages: [{ role: 'user', content: 'a long answer' }] },
      { authorization: `Bearer ${svc.token}` },
      { answer: 'half an answer' },
    );
    await expect(timing).rejects.toThrow(/^error mid-stream: \{"error":/);
  });

  it('strips <think> split across chunks', async () => {
    llama.reply({ chunks: ['<thi', 'nk>secret plan</th', 'ink>Vis', 'ible'] });
    const r = await svc.client.chat.completions.create({
      model: 'local',
      messages: [{ role: 'user', content: 'x' }],
    });
    expect(r.choices[0]?.message.content).toBe('**[local]** Visible');
  });

  it('streams tool calls as deltas; the tool the mode filters is named in a header, not sent', async () => {
    llama.reply({
      chunks: [
        { toolCall: { index: 0, id: 'call_1', name: 'read', arguments: '{"pa' } },
        { toolCall: { index: 0, arguments: 'th":"a.txt"}' } },
      ],
    });
    const tools: OpenAI.ChatCompletionTool[] = ['read', 'exec'].map((name) => ({
      type: 'function',
      function: { name, parameters: { type: 'object', properties: {} } },
    }));
    const { data: stream, response } = await svc.client.chat.completions
      .create({
        model: 'local',
        messages: [{ role: 'user', content: 'read a.txt' }],
        tools,
        stream: true,
      })
      .withResponse();
    expect(response.headers.get('x-brainstem-filtered-tools')).toBe('exec');
    let args = '';
    let name = '';
    let finish: string | null | undefined;
    for await (const chunk of stream) {
      for (const tc of chunk.choices[0]?.delta.tool_calls ?? []) {
        name += tc.function?.name ?? '';
        args += tc.function?.arguments ?? '';
      }
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(name).toBe('read');
    expect(JSON.parse(args)).toEqual({ path: 'a.txt' });
    expect(finish).toBe('tool_calls');
    const sent = llama.requests.at(-1)?.body as { tools?: { function: { name: string } }[] };
    expect(sent.tools?.map((t) => t.function.name)).toEqual(['read']);
  });

  it('answers a tool call without streaming with content null beside tool_calls', async () => {
    llama.reply({
      chunks: [{ toolCall: { index: 0, id: 'call_9', name: 'read', arguments: '{"path":"b"}' } }],
    });
    const r = await svc.client.chat.completions.create({
      model: 'local',
      messages: [{ role: 'user', content: 'read b' }],
      tools: [{ type: 'function', function: { name: 'read', parameters: { type: 'object' } } }],
    });
    expect(r.choices[0]?.message).toMatchObject({
      role: 'assistant',
      content: null,
      tool_calls: [{ id: 'call_9', type: 'function', function: { name: 'read', arguments: '{"path":"b"}' } }],
    });
    expect(r.choices[0]?.finish_reason).toBe('tool_calls');
  });

  it('refuses a tool_choice that names a tool the mode filters, instead of dropping it', async () => {
    await expect(
      svc.client.chat.completions.create({
        model: 'local',
        messages: [{ role: 'user', content: 'run ls' }],
        tools: [{ type: 'function', function: { name: 'exec', parameters: { type: 'object' } } }],
        tool_choice: { type: 'function', function: { name: 'exec' } },
      }),
    ).rejects.toMatchObject({ status: 400, error: { param: 'tool_choice' } });
  });

  it('answers a switch request itself, without a brain call, and keeps the mode', async () => {
    const before = llama.requests.length;
    const r = await svc.client.chat.completions.create({
      model: 'active',
      messages: [{ role: 'user', content: '[Tue 2026-11-24 04:10 UTC] mode lical' }],
    });
    expect(r.choices[0]?.message.content).toMatch(/Already in mode \*\*local\*\*|Déjà en mode/);
    const help = await svc.client.chat.completions.create({
      model: 'active',
      messages: [{ role: 'user', content: 'help' }],
    });
    expect(help.choices[0]?.message.content).toContain('⚙️ [proxy]');
    expect(llama.requests.length).toBe(before);
  });

  it('leaves the words of a client that asked for JSON or logprobs to the model: brainstem’s own answers are neither', async () => {
    llama.reply({ chunks: ['{"intent": "help"}'] });
    const json = await svc.client.chat.completions.create({
      model: 'active',
      messages: [{ role: 'user', content: 'help' }],
      response_format: { type: 'json_object' },
    });
    expect(JSON.parse(json.choices[0]?.message.content ?? '')).toEqual({ intent: 'help' });
    llama.reply({ chunks: ['all', ' fine'] });
    const withLogprobs = await svc.client.chat.completions.create({
      model: 'active',
      messages: [{ role: 'user', content: 'switch to assistant' }],
      logprobs: true,
    });
    expect(withLogprobs.choices[0]?.message.content).toBe('all fine');
    // Not a switch either: the words were the model's to read.
    expect(svc.service.core.switcher.active().id).toBe('local');
    const asked = llama.requests.filter((r) => r.path === '/v1/chat/completions').slice(-2);
    expect(
      asked.map((r) => (r.body as { messages: { content: unknown }[] }).messages.at(-1)?.content),
    ).toEqual(['help', 'switch to assistant']);
  });

  it('gives the brain a usage summary when the user asks about consumption', async () => {
    llama.reply({ chunks: ['You spent little.'] });
    await svc.client.chat.completions.create({
      model: 'local',
      messages: [{ role: 'user', content: "combien j'ai consommé ce mois-ci ?" }],
    });
    const sent = JSON.stringify(llama.requests.at(-1)?.body);
    expect(sent).toContain('brainstem usage ledger');
    expect(sent).toMatch(/this month: \$\d+\.\d\d, \d+ turns?/);
  });

  it('strips a [SWITCH:x] marker split across chunks and switches', async () => {
    llama.reply({ chunks: ['Going to the big brain', ' [SWI', 'TCH:assis', 'tant] now.'] });
    const r = await svc.client.chat.completions.create({
      model: 'local',
      messages: [{ role: 'user', content: 'x' }],
    });
    expect(r.choices[0]?.message.content).toBe('**[local]** Going to the big brain  now.');
    // The switch runs after the answer; the active mode changes once Claude's readiness probe passes.
    await expect
      .poll(
        async () => ((await (await fetch(`${svc.url}/health`)).json()) as { activeMode: string }).activeMode,
        {
          timeout: 15_000,
        },
      )
      .toBe('assistant');
    const back = await svc.client.chat.completions.create({
      model: 'active',
      messages: [{ role: 'user', content: 'switch to local' }],
    });
    expect(back.choices[0]?.message.content).toMatch(/Switched to \*\*local\*\*/);
  });

  it('shows a marker quoted in code or a quotation as it is, and does not switch', async () => {
    const quoted = [
      'To switch, a model writes `[SWITCH:assistant]` on its own.',
      '```\n[SWITCH:assistant]\n```',
      '> you said: [SWITCH:assistant]',
      'The marker is "[SWITCH:assistant]".',
    ].join('\n');
    // Cut where a marker or a code fence could still be beginning.
    const cuts = [quoted.indexOf('TCH'), quoted.indexOf('`\n[')];
    llama.reply({
      chunks: [quoted.slice(0, cuts[0]), quoted.slice(cuts[0], cuts[1]), quoted.slice(cuts[1])],
    });
    const r = await svc.client.chat.completions.create({
      model: 'local',
      messages: [{ role: 'user', content: 'how do you switch?' }],
    });
    expect(r.choices[0]?.message.content).toBe(`**[local]** ${quoted}`);
    // A switch a marker asked for starts as the answer ends: none is running, and the mode is the same.
    expect(svc.service.core.switcher.isSwitching()).toBe(false);
    expect(svc.service.core.switcher.active().id).toBe('local');
  });
});

describe('every Chat Completions field is passed, mapped or refused', () => {
  const post = (body: Record<string, unknown>) =>
    fetch(`${svc.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${svc.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'x' }], ...body }),
    });
  const errorOf = async (r: Response) =>
    ((await r.json()) as { error: { message: string; type: string; param: string } }).error;

  const sampling = {
    temperature: 0.3,
    top_p: 0.9,
    stop: ['\n\nUser:', 'END'],
    seed: 42,
    presence_penalty: 0.5,
    frequency_penalty: -0.25,
    logit_bias: { '15043': -100, '50256': 5 },
    logprobs: true,
    top_logprobs: 3,
    response_format: {
      type: 'json_schema',
      json_schema: {
        name: 'weather',
        strict: true,
        schema: {
          type: 'object',
          properties: { city: { type: 'string' } },
          required: ['city'],
          additionalProperties: false,
        },
      },
    },
    reasoning_effort: 'low',
  };

  it('each sampling and output field reaches the local model unchanged', async () => {
    llama.reply({ chunks: ['{"city":', '"Paris"}'] });
    const r = await svc.client.chat.completions.create({
      model: 'local',
      messages: [{ role: 'user', content: 'weather as JSON' }],
      max_completion_tokens: 77,
      ...(sampling as object),
    } as OpenAI.ChatCompletionCreateParamsNonStreaming);
    const sent = llama.requests.at(-1)?.body as Record<string, unknown>;
    for (const [field, value] of Object.entries(sampling)) expect(sent[field], field).toEqual(value);
    expect(sent.max_tokens).toBe(77);
    // Asked-for JSON comes back as JSON: no mode tag in front of it.
    expect(JSON.parse(r.choices[0]?.message.content ?? '')).toEqual({ city: 'Paris' });
    // logprobs come back too, one per token, with the alternatives asked for.
    const logprobs = r.choices[0]?.logprobs?.content ?? [];
    expect(logprobs.map((l) => l.token)).toEqual(['{"city":', '"Paris"}']);
    expect(logprobs[0]?.top_logprobs).toHaveLength(3);
  });

  it('a single stop string, parallel_tool_calls with tools, and logprobs in a stream', async () => {
    llama.reply({ chunks: ['one', ' two'] });
    const stream = await svc.client.chat.completions.create({
      model: 'local',
      messages: [{ role: 'user', content: 'count' }],
      stop: 'three',
      logprobs: true,
      parallel_tool_calls: false,
      tools: [{ type: 'function', function: { name: 'read', parameters: { type: 'object' } } }],
      stream: true,
    });
    const tokens: string[] = [];
    for await (const chunk of stream)
      tokens.push(...(chunk.choices[0]?.logprobs?.content ?? []).map((l) => l.token));
    expect(tokens).toEqual(['one', ' two']);
    const sent = llama.requests.at(-1)?.body as Record<string, unknown>;
    expect(sent).toMatchObject({ stop: 'three', logprobs: true, parallel_tool_calls: false });
  });

  it.each([
    [{ n: 2 }, 'n'],
    [{ temperature: 'hot' }, 'temperature'],
    [{ temperature: 2.5 }, 'temperature'],
    [{ top_p: -1 }, 'top_p'],
    [{ top_logprobs: 3 }, 'top_logprobs'],
    [{ response_format: { type: 'xml' } }, 'response_format.type'],
    [{ functions: [{ name: 'f' }] }, 'functions'],
    [{ audio: { voice: 'alloy', format: 'mp3' } }, 'audio'],
    [{ store: true }, 'store'],
  ])('%j → 400 naming %s, and no brain call', async (field, param) => {
    const before = llama.requests.length;
    const r = await post({ model: 'local', ...field });
    expect(r.status).toBe(400);
    const e = await errorOf(r);
    expect(e.param).toBe(param);
    expect(e.message).toContain(param.split('.')[0]);
    expect(llama.requests.length).toBe(before);
  });

  it.each([
    [
      { content: null, function_call: { name: 'get_weather', arguments: '{}' } },
      'function_call',
      /tool_calls/,
    ],
    [{ content: '', audio: { id: 'audio_abc' } }, 'audio', /content/],
    [{ content: [{ type: 'refusal' }] }, 'content.0.refusal', /as a string/],
  ])(
    'an assistant message of the history holding %j → 400 naming it, and no brain call',
    async (assistant, key, help) => {
      const before = llama.requests.length;
      const r = await post({
        model: 'local',
        messages: [
          { role: 'user', content: 'weather?' },
          { role: 'assistant', ...assistant },
          { role: 'user', content: 'and now?' },
        ],
      });
      expect(r.status).toBe(400);
      const e = await errorOf(r);
      expect(e.param).toBe(`messages.1.${key}`);
      expect(e.message).toMatch(help);
      expect(llama.requests.length).toBe(before);
    },
  );

  it('an assistant message replayed as the openai SDK gives it (refusal, audio, function_call: null) is answered', async () => {
    const r = await post({
      model: 'local',
      messages: [
        { role: 'user', content: 'hi' },
        { role: 'assistant', content: 'hello', refusal: null, audio: null, function_call: null },
        { role: 'user', content: 'again' },
      ],
    });
    expect(r.status).toBe(200);
    expect(r.headers.get('x-brainstem-ignored-fields')).toBeNull();
  });

  it('a Claude mode refuses a sampling field it cannot honour, before starting the CLI', async () => {
    for (const [field, value] of [
      ['temperature', 0.2],
      ['seed', 7],
      ['stop', ['END']],
      ['response_format', { type: 'json_object' }],
    ] as const) {
      const r = await post({ model: 'assistant', [field]: value });
      expect(r.status).toBe(400);
      const e = await errorOf(r);
      expect(e.param).toBe(field);
      expect(e.message).toMatch(/not supported by Claude modes/);
    }
    const forced = await post({
      model: 'assistant',
      tools: [{ type: 'function', function: { name: 'get_weather' } }],
      tool_choice: 'required',
    });
    expect((await errorOf(forced)).param).toBe('tool_choice');
  });

  it('a Claude mode refuses a part of the new turn it cannot read, naming it, instead of leaving it out', async () => {
    const file = {
      type: 'file',
      file: { filename: 'contract.pdf', file_data: 'data:application/pdf;base64,JVBERi0=' },
    };
    const r = await post({
      model: 'assistant',
      messages: [
        { role: 'user', content: [{ type: 'text', text: 'Summarise the attached contract.' }, file] },
      ],
    });
    expect(r.status).toBe(400);
    const e = await errorOf(r);
    expect(e.param).toBe('messages.0.content.1');
    expect(e.message).toMatch(/^file parts are not supported by Claude modes/);
    // No local mode reads a file part either: its text is the way, not a switch.
    expect(e.message).toContain('send the file’s text as a text part (local modes read no file part either)');
    const audio = await post({
      model: 'assistant',
      messages: [
        { role: 'user', content: [{ type: 'input_audio', input_audio: { data: 'AAAA', format: 'wav' } }] },
      ],
    });
    // A local mode takes audio only as wav or mp3 (llama-server): an ogg voice note would fail there too.
    expect((await errorOf(audio)).message).toMatch(
      /^input_audio parts are not supported by Claude modes: .*or use a local mode whose model hears audio, as wav or mp3/,
    );
  });

  it('names a field whatever its characters (percent-encoded), and answers, streamed or not', async () => {
    for (const stream of [false, true]) {
      llama.reply({ chunks: ['fine'] });
      const r = await post({ model: 'local', stream, 温度: 0.5, 'a\r\nb': 1 });
      expect(r.status).toBe(200);
      expect(r.headers.get('x-brainstem-ignored-fields')).toBe('%E6%B8%A9%E5%BA%A6, a%0D%0Ab');
      expect(await r.text()).toContain('fine');
    }
  });

  it('keeps the mode tag out of an answer with logprobs, so the tokens spell the content', async () => {
    llama.reply({ chunks: ['Hello', ' world'] });
    const r = await svc.client.chat.completions.create({
      model: 'local',
      messages: [{ role: 'user', content: 'greet' }],
      logprobs: true,
    });
    const tokens = (r.choices[0]?.logprobs?.content ?? []).map((l) => l.token).join('');
    expect(r.choices[0]?.message.content).toBe(tokens);
  });

  it('leaves the tokens of a <think> block out of the logprobs, as out of the text, streamed or not', async () => {
    // The fake sends each chunk as one token: the tag split across two, and one token across the block's end.
    llama.reply({ chunks: ['<thi', 'nk>', 'secret plan', '</think>ans', 'wer'] });
    const ask = { model: 'local', messages: [{ role: 'user' as const, content: 'plan' }], logprobs: true };
    const r = await svc.client.chat.completions.create(ask);
    const logprobs = r.choices[0]?.logprobs?.content ?? [];
    expect(r.choices[0]?.message.content).toBe('answer');
    expect(logprobs.map((l) => l.token)).toEqual(['ans', 'wer']);
    // The token cut to its shown part keeps its own logprob, with the bytes of what is shown.
    expect(logprobs[0]).toMatchObject({ logprob: -0.5, bytes: [...Buffer.from('ans')] });

    const stream = await svc.client.chat.completions.create({ ...ask, stream: true });
    let content = '';
    const tokens: string[] = [];
    for await (const chunk of stream) {
      content += chunk.choices[0]?.delta.content ?? '';
      tokens.push(...(chunk.choices[0]?.logprobs?.content ?? []).map((l) => l.token));
    }
    expect(content).toBe('answer');
    expect(tokens).toEqual(['ans', 'wer']);
  });

  it('sends a stream’s headers, and heartbeats, while the first word is long in coming', async () => {
    const held = gate();
    llama.reply({ chunks: [{ wait: held.promise }, 'late'] });
    const res = await fetch(`${svc.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${svc.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'local', stream: true, messages: [{ role: 'user', content: 'slow' }] }),
    });
    // The headers came (server.streamHeadersWaitMs), the first word has not.
    expect(res.status).toBe(200);
    held.open();
    expect(await res.text()).toContain('late');
  });

  it('passes the upstream’s content_filter on as the finish reason', async () => {
    llama.reply({ chunks: ['partly'], finishReason: 'content_filter' });
    const r = await svc.client.chat.completions.create({
      model: 'local',
      messages: [{ role: 'user', content: 'x' }],
    });
    expect(r.choices[0]?.finish_reason).toBe('content_filter');
  });

  it('keeps apart tool calls an upstream sends at one index with ids of their own (Ollama)', async () => {
    const calls = [
      { toolCall: { index: 0, id: 'call_a', name: 'read', arguments: '{"path":"hello.py"}' } },
      { toolCall: { index: 0, id: 'call_b', name: 'read', arguments: '{"path":"world.py"}' } },
    ];
    const tools = [{ type: 'function' as const, function: { name: 'read', parameters: { type: 'object' } } }];
    for (const stream of [false, true]) {
      llama.reply({ chunks: calls });
      const req = { model: 'local', messages: [{ role: 'user' as const, content: 'read both' }], tools };
      const got: { id?: string; name: string; arguments: string }[] = [];
      if (stream) {
        const parts = await svc.client.chat.completions.create({ ...req, stream: true });
        for await (const c of parts) {
          for (const t of c.choices[0]?.delta.tool_calls ?? []) {
            got[t.index] ??= { name: '', arguments: '' };
            const slot = got[t.index] as { id?: string; name: string; arguments: string };
            if (t.id) slot.id = t.id;
            slot.name += t.function?.name ?? '';
            slot.arguments += t.function?.arguments ?? '';
          }
        }
      } else {
        const r = await svc.client.chat.completions.create(req);
        for (const t of r.choices[0]?.message.tool_calls ?? []) {
          if (t.type === 'function')
            got.push({ id: t.id, name: t.function.name, arguments: t.function.arguments });
        }
      }
      expect(got).toEqual([
        { id: 'call_a', name: 'read', arguments: '{"path":"hello.py"}' },
        { id: 'call_b', name: 'read', arguments: '{"path":"world.py"}' },
      ]);
    }
  });

  it('takes a call whose id comes after a first delta without one as one call', async () => {
    llama.reply({
      chunks: [
        { toolCall: { index: 0, name: 'read', arguments: '' } },
        { toolCall: { index: 0, id: 'call_late', arguments: '{"path":"a"}' } },
      ],
    });
    const r = await svc.client.chat.completions.create({
      model: 'local',
      messages: [{ role: 'user', content: 'read a' }],
      tools: [{ type: 'function', function: { name: 'read', parameters: { type: 'object' } } }],
    });
    expect(r.choices[0]?.message.tool_calls).toEqual([
      { id: 'call_late', type: 'function', function: { name: 'read', arguments: '{"path":"a"}' } },
    ]);
  });

  it('takes tool calls an upstream sends without an index (Gemini’s OpenAI endpoint, Ollama before 0.4.7): a new id is a new call, a delta without one goes on with the last', async () => {
    // The fake's tool-call chunks always carry an index: these are written as such an upstream sends them.
    const delta = (call: Record<string, unknown>) => ({
      raw: `data: ${JSON.stringify({
        object: 'chat.completion.chunk',
        choices: [{ index: 0, delta: { tool_calls: [call] }, finish_reason: null }],
      })}\n\n`,
    });
    llama.reply({
      chunks: [
        delta({ id: 'call_a', type: 'function', function: { name: 'read', arguments: '{"path":' } }),
        delta({ function: { arguments: '"a"}' } }),
        delta({ id: 'call_b', type: 'function', function: { name: 'read', arguments: '{"path":"b"}' } }),
      ],
      finishReason: 'tool_calls',
    });
    const r = await svc.client.chat.completions.create({
      model: 'local',
      messages: [{ role: 'user', content: 'read a and b' }],
      tools: [{ type: 'function', function: { name: 'read', parameters: { type: 'object' } } }],
    });
    expect(r.choices[0]?.finish_reason).toBe('tool_calls');
    expect(r.choices[0]?.message.tool_calls).toEqual([
      { id: 'call_a', type: 'function', function: { name: 'read', arguments: '{"path":"a"}' } },
      { id: 'call_b', type: 'function', function: { name: 'read', arguments: '{"path":"b"}' } },
    ]);
  });

  it('gives a call the upstream sent without an id the same id and type streamed as not (the SDK’s stream helper needs both)', async () => {
    const tools = [{ type: 'function' as const, function: { name: 'read', parameters: { type: 'object' } } }];
    const req = { model: 'local', messages: [{ role: 'user' as const, content: 'read it' }], tools };
    const chunks = [
      { toolCall: { index: 0, name: 'read', arguments: '{"path"' } },
      { toolCall: { index: 0, arguments: ':"a"}' } },
    ];
    const expected = [
      { id: 'call_0', type: 'function', function: { name: 'read', arguments: '{"path":"a"}' } },
    ];
    llama.reply({ chunks });
    const streamed = await svc.client.chat.completions.stream(req).finalChatCompletion();
    expect(streamed.choices[0]?.message.tool_calls).toEqual(expected);
    llama.reply({ chunks });
    const buffered = await svc.client.chat.completions.create(req);
    expect(buffered.choices[0]?.message.tool_calls).toEqual(expected);
  });

  it('takes tool results as OpenClaw sends them: ids again from turn to turn, a result after a later message, and tools: [] beside them', async () => {
    const call = (id: string) => ({
      role: 'assistant',
      content: null,
      tool_calls: [{ id, type: 'function', function: { name: 'read', arguments: '{}' } }],
    });
    const result = (id: string) => ({ role: 'tool', tool_call_id: id, content: 'A' });
    llama.reply({ chunks: ['fine'] });
    const r = await post({
      model: 'local',
      stream: true,
      stream_options: { include_usage: true },
      // OpenClaw sends tools: [] when a history holds calls and the turn has no tools for the model.
      tools: [],
      messages: [
        { role: 'user', content: 'read a and b' },
        call('call_0'),
        result('call_0'),
        call('call_0'),
        result('call_0'),
        // A background (async) call, and the result OpenClaw makes up for it at the end when it never
        // ended (openclaw 2026.9.6: @openclaw/ai's transformMessages).
        call('bg_1'),
        { role: 'user', content: 'and now?' },
        result('bg_1'),
      ],
    });
    expect(r.status).toBe(200);
    expect(await r.text()).toContain('fine');
  });

  it('answers 404 to a model id that ends in a slash: it names no mode', async () => {
    const models = await fetch(`${svc.url}/v1/models/nope/`, {
      headers: { authorization: `Bearer ${svc.token}` },
    });
    expect(models.status).toBe(404);
    const r = await post({ model: 'no-such-model/' });
    expect(r.status).toBe(404);
  });

  it('accepts n = 1 and names the fields it does not know in a header', async () => {
    llama.reply({ chunks: ['fine'] });
    const r = await post({ model: 'local', n: 1, metadata: { app: 'test' }, top_k: 40, mirostat: 2 });
    expect(r.status).toBe(200);
    expect(r.headers.get('x-brainstem-ignored-fields')).toBe('top_k, mirostat');
    expect(llama.requests.at(-1)?.body).not.toHaveProperty('top_k');
  });

  it('names a stream_options key it does not know, which no brain gets, in the same header', async () => {
    llama.reply({ chunks: ['fine'] });
    const r = await post({
      model: 'local',
      stream: true,
      stream_options: { include_usage: true, include_obfuscation: false, chunk_size: 4 },
    });
    expect(r.status).toBe(200);
    await r.text();
    expect(r.headers.get('x-brainstem-ignored-fields')).toBe('stream_options.chunk_size');
  });

  it('passes a key OpenAI does not define in a message, a part or a tool’s function on to a local model, unnamed; names a tool call’s and a tool’s, which the schema drops', async () => {
    const messages = [
      { role: 'user', content: 'read a', x_trace: 'u1' },
      {
        role: 'assistant',
        content: null,
        tool_calls: [
          { index: 0, id: 'c1', type: 'function', function: { name: 'read', arguments: '{}', strict: true } },
        ],
      },
      { role: 'tool', tool_call_id: 'c1', content: 'A' },
      { role: 'user', content: [{ type: 'text', text: 'and?', cache_control: { type: 'ephemeral' } }] },
    ];
    const tools = [
      {
        type: 'function',
        cache_control: { type: 'ephemeral' },
        function: { name: 'read', parameters: { type: 'object' }, strict: true, x_hint: 'fast' },
      },
    ];
    // `active` is local here: known when the request comes, and again when the turn starts.
    for (const [model, stream] of [
      ['local', false],
      ['active', true],
    ] as const) {
      llama.reply({ chunks: ['fine'] });
      const r = await post({ model, stream, top_k: 40, messages, tools });
      expect(r.status).toBe(200);
      expect(r.headers.get('x-brainstem-ignored-fields')).toBe(
        'top_k, messages[].tool_calls[].index, messages[].tool_calls[].function.strict, tools[].cache_control',
      );
      expect(await r.text()).toContain('fine');
      const sent = llama.requests.at(-1)?.body as { messages: Record<string, unknown>[] };
      expect(sent.messages[0]).toMatchObject({ x_trace: 'u1' });
      expect(sent.messages.at(-1)?.content).toEqual([
        { type: 'text', text: 'and?', cache_control: { type: 'ephemeral' } },
      ]);
      expect(sent.messages[1]?.tool_calls).toEqual([
        { id: 'c1', type: 'function', function: { name: 'read', arguments: '{}' } },
      ]);
      expect((sent as unknown as { tools: unknown[] }).tools).toEqual([
        { type: 'function', function: { ...tools[0]?.function } },
      ]);
    }
    // A Claude mode gets no tool's function as it came: the key there is named for it.
    expect(unknownNestedKeys({ messages, tools })?.get('tools[].function.x_hint')).toBe(true);
  });

  it('names a key OpenAI defines for another type of part (a caption as `text` on an image or audio part), which llama-server reads on no such part', async () => {
    llama.reply({ chunks: ['heard'] });
    const messages = [
      // An earlier image, told of as a line to this mode without vision: its caption goes with it.
      { role: 'user', content: [{ ...dataUrlPart(randomPng(4, 4)), text: 'my cat' }] },
      { role: 'assistant', content: 'a cat' },
      {
        role: 'user',
        content: [
          // llama-server turns an audio part into its media marker, over any `text` beside it.
          { type: 'input_audio', input_audio: { data: 'UklGRg==', format: 'wav' }, text: 'a voice note' },
          { type: 'text', text: 'and this?', input_audio: null },
        ],
      },
    ];
    const r = await post({ model: 'local', messages });
    expect(r.status).toBe(200);
    expect(r.headers.get('x-brainstem-ignored-fields')).toBe('messages[].content[].text');
    expect(await r.text()).toContain('heard');
  });

  it('answers an audio part a model that hears nothing refuses (llama-server’s 500) as a 400 saying so, not a server error clients send again', async () => {
    const audio = { type: 'input_audio', input_audio: { data: 'UklGRg==', format: 'wav' } };
    llama.reply({
      status: 500,
      error: 'audio input is not supported - hint: if this is unexpected, you may need to provide the mmproj',
    });
    const r = await post({
      model: 'local',
      messages: [{ role: 'user', content: [audio] }],
    });
    expect(r.status).toBe(400);
    expect((await errorOf(r)).message).toContain(
      'answered HTTP 500: audio input is not supported - hint: if this is unexpected, you may need to provide the mmproj. The model of mode local takes no audio (input_audio parts): send what was said as text',
    );
    // The refusal is remembered for earlier turns' audio (openai-audio.test.ts), but a voice note still
    // goes to the server, and once the model hears (an audio --mmproj since), it is heard, which ends it.
    llama.reply({ chunks: ['heard'] });
    const heard = await post({ model: 'local', messages: [{ role: 'user', content: [audio] }] });
    expect(heard.status).toBe(200);
    const sent = llama.requests.at(-1)?.body as { messages: { content: unknown }[] };
    expect(sent.messages.at(-1)?.content).toEqual([audio]);
  });

  it('refuses an audio part of the new turn in a format llama-server does not take with a 400 naming the part and wav and mp3, not its nameless words; an earlier turn’s is told as a line', async () => {
    const ogg = { type: 'input_audio', input_audio: { data: 'T2dnUw==', format: 'ogg' } };
    const chatCalls = () => llama.requests.filter((r) => r.path === '/v1/chat/completions').length;
    const before = chatCalls();
    const err = await svc.client.chat.completions
      .create({
        model: 'local',
        messages: [
          { role: 'user', content: 'Listen to this.' },
          { role: 'user', content: [{ type: 'text', text: 'What is said?' }, ogg] },
        ],
      } as never)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(err).toMatchObject({ status: 400, param: 'messages.1.content.1' });
    expect((err as Error).message).toMatch(
      /^400 messages\.1\.content\.1: input_audio format "ogg" is not one llama-server takes: send the audio as wav or mp3 \(input_audio\.format "wav" or "mp3"\)/,
    );
    // Refused before the brain was asked.
    expect(chatCalls()).toBe(before);
    // In an earlier turn (another provider's history), it is told as a line: sent as it came, every
    // later message of the conversation would fail on it.
    llama.reply({ chunks: ['heard'] });
    const r = await svc.client.chat.completions.create({
      model: 'local',
      messages: [
        { role: 'user', content: [{ type: 'text', text: 'Listen.' }, ogg] },
        { role: 'assistant', content: 'It says hello.' },
        { role: 'user', content: 'Thanks.' },
      ],
    } as never);
    expect(r.choices[0]?.message.content).toMatch(/heard$/);
    const sent = llama.requests.at(-1)?.body as { messages: { content: unknown }[] };
    expect(sent.messages.at(-3)?.content).toEqual([
      { type: 'text', text: 'Listen.' },
      {
        type: 'text',
        text: '[an input_audio part (ogg), not shown to the local model, which takes wav or mp3]',
      },
    ]);
  });

  it('refuses a file part of the new turn with a 400 naming it and what to send, not llama-server’s nameless "unsupported content[].type"; an earlier turn’s is told as a line', async () => {
    const file = {
      type: 'file',
      file: { filename: 'notes.txt', file_data: 'data:text/plain;base64,aGk=' },
    } as unknown as OpenAI.ChatCompletionContentPart;
    const chatCalls = () => llama.requests.filter((r) => r.path === '/v1/chat/completions').length;
    const before = chatCalls();
    const err = await svc.client.chat.completions
      .create({
        model: 'local',
        messages: [{ role: 'user', content: [{ type: 'text', text: 'Summarise my notes.' }, file] }],
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(err).toMatchObject({ status: 400, param: 'messages.0.content.1' });
    expect((err as Error).message).toMatch(
      /^400 file parts are not supported by local modes: llama-server reads text, images \(image_url\) and audio \(input_audio\); send the file’s text as a text part \(Claude modes read no file part either\)/,
    );
    // Refused before the brain was asked.
    expect(chatCalls()).toBe(before);
    // In an earlier turn (a user's, an assistant's as another provider's history holds it), it is told
    // as a line, as a Claude mode tells it: the conversation goes on instead of failing at each message.
    llama.reply({ chunks: ['noted'] });
    const r = await svc.client.chat.completions.create({
      model: 'local',
      messages: [
        { role: 'user', content: [{ type: 'text', text: 'Keep my notes.' }, file] },
        {
          role: 'assistant',
          content: [
            { type: 'text', text: 'Here they are.' },
            file,
          ] as unknown as OpenAI.ChatCompletionContentPartText[],
        },
        { role: 'user', content: 'Thanks.' },
      ],
    });
    expect(r.choices[0]?.message.content).toMatch(/noted$/);
    const sent = llama.requests.at(-1)?.body as { messages: { content: unknown }[] };
    const line = { type: 'text', text: '[a file part, not shown to the local model]' };
    expect(sent.messages.slice(-3).map((m) => m.content)).toEqual([
      [{ type: 'text', text: 'Keep my notes.' }, line],
      [{ type: 'text', text: 'Here they are.' }, line],
      'Thanks.',
    ]);
  });

  it('passes a key OpenAI does not define in response_format or a tool_choice on to a local model (llama-server’s json_object schema), unnamed', async () => {
    const schema = { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] };
    const asks = [
      // llama-server constrains a json_object answer to the schema beside it: without it, any JSON.
      { type: 'json_object', schema },
      { type: 'json_schema', json_schema: { name: 'place', schema }, strict: true },
    ];
    for (const response_format of asks) {
      llama.reply({ chunks: ['{"city":"Paris"}'] });
      const { response } = await svc.client.chat.completions
        .create({
          model: 'local',
          messages: [{ role: 'user', content: 'where?' }],
          response_format,
          tools: [{ type: 'function', function: { name: 'read' } }],
          tool_choice: { type: 'function', function: { name: 'read', x_hint: 1 }, x_trace: 't' },
        } as never)
        .withResponse();
      expect(response.headers.get('x-brainstem-ignored-fields')).toBeNull();
      const sent = llama.requests.at(-1)?.body as Record<string, unknown>;
      expect(sent.response_format).toEqual(response_format);
      expect(sent.tool_choice).toEqual({
        type: 'function',
        function: { name: 'read', x_hint: 1 },
        x_trace: 't',
      });
    }
    // A Claude mode answers in text: a key beside `type: "text"` is named for it.
    expect(
      unknownNestedKeys({ messages: [], response_format: { type: 'text', strict: true } })?.get(
        'response_format.strict',
      ),
    ).toBe(true);
  });
});

describe('conversations at the endpoint', () => {
  const user = (content: string) => ({ role: 'user' as const, content });

  it('runs the turns of one conversation in order, other conversations meanwhile', async () => {
    const held = gate();
    let firstEnded = false;
    /** For each message: whether the first turn's answer had ended when it reached the upstream. */
    const reachedAfterFirst = new Map<string, boolean>();
    llama.script((body) => {
      const words = lastUser(body);
      reachedAfterFirst.set(words, firstEnded);
      if (words === 'turn one') return { chunks: ['one', { wait: held.promise }, ' done'] };
      return { chunks: [`echo: ${words}`] };
    });
    const key = { headers: { 'x-session-key': 'ordered' } };
    const one = await svc.client.chat.completions.create(
      { model: 'local', messages: [user('turn one')], stream: true },
      key,
    );
    const reader = one[Symbol.asyncIterator]();
    let text = '';
    while (!text.includes('one')) text += (await reader.next()).value?.choices[0]?.delta.content ?? '';
    void llama.requests.at(-1)?.ended.then(() => {
      firstEnded = true;
    });

    const two = svc.client.chat.completions.create(
      {
        model: 'local',
        messages: [user('turn one'), { role: 'assistant', content: 'one done' }, user('turn two')],
      },
      key,
    );
    // Another conversation is answered while the first one's turn is held…
    const other = await svc.client.chat.completions.create(
      { model: 'local', messages: [user('elsewhere')] },
      { headers: { 'x-session-key': 'other' } },
    );
    expect(other.choices[0]?.message.content).toBe('**[local]** echo: elsewhere');
    // …but the second turn of the held one has not reached the brain.
    expect(reachedAfterFirst.has('turn two')).toBe(false);

    held.open();
    for (let r = await reader.next(); !r.done; r = await reader.next())
      text += r.value.choices[0]?.delta.content ?? '';
    expect(text).toBe('**[local]** one done');
    expect((await two).choices[0]?.message.content).toBe('**[local]** echo: turn two');
    expect(reachedAfterFirst.get('turn two')).toBe(true);
  });

  it('a stream queued behind its conversation’s held turn gets its headers and heartbeats meanwhile', async () => {
    const held = gate();
    // Without them, the test waits for them until its timeout: the held turn is let go then, so the rest can run.
    onTestFinished(held.open);
    llama.script((body) =>
      lastUser(body) === 'first' ? { chunks: ['one', { wait: held.promise }, ' done'] } : { chunks: ['two'] },
    );
    const post = async (content: string, tools?: OpenAI.ChatCompletionTool[]) => {
      const res = await fetch(`${svc.url}/v1/chat/completions`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${svc.token}`,
          'content-type': 'application/json',
          'x-session-key': 'queued-stream',
        },
        body: JSON.stringify({ model: 'local', stream: true, messages: [user(content)], tools }),
      });
      if (!res.body) throw new Error(`no body (HTTP ${res.status})`);
      return { res, reader: res.body.getReader(), decoder: new TextDecoder() };
    };
    /** The stream's text read on until it holds `until`, or to its end. */
    const read = async ({ reader, decoder }: Awaited<ReturnType<typeof post>>, until?: string) => {
      let text = '';
      for (let r = await reader.read(); !r.done; r = await reader.read()) {
        text += decoder.decode(r.value, { stream: true });
        if (until !== undefined && text.includes(until)) break;
      }
      return text;
    };
    const first = await post('first');
    let firstText = await read(first, 'one');
    const tools: OpenAI.ChatCompletionTool[] = ['read', 'exec'].map((name) => ({
      type: 'function',
      function: { name, parameters: { type: 'object' } },
    }));
    // The first turn is held until this one has its headers (server.streamHeadersWaitMs) and a heartbeat.
    const second = await post('second', tools);
    expect(second.res.status).toBe(200);
    // The mode is known while the turn waits: the header names the tool kept back.
    expect(second.res.headers.get('x-brainstem-filtered-tools')).toBe('exec');
    let secondText = await read(second, ': keep-alive');
    expect(secondText).toContain(': keep-alive');
    expect(secondText).not.toContain('two');
    held.open();
    secondText += await read(second);
    firstText += await read(first);
    expect(firstText).toContain(' done');
    expect(secondText).toContain('two');
  });

  it('a turn queued behind its conversation’s running one when a shutdown begins is refused, not started as brainstem closes', async () => {
    const held = gate();
    onTestFinished(held.open);
    llama.script((body) =>
      lastUser(body) === 'first' ? { chunks: ['one', { wait: held.promise }, ' done'] } : { chunks: ['two'] },
    );
    // Headers at once: a stream's headers come once its turn waits in its conversation's queue.
    const s = await startTestService({
      config: { defaultMode: 'local', server: { streamHeadersWaitMs: 1 }, llama: { baseUrl: llama.baseUrl } },
    });
    onTestFinished(s.close);
    const post = (content: string) =>
      fetch(`${s.url}/v1/chat/completions`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${s.token}`,
          'content-type': 'application/json',
          'x-session-key': 'shutdown',
          // Nothing left open for the server's close to wait for.
          connection: 'close',
        },
        body: JSON.stringify({ model: 'local', stream: true, messages: [user(content)] }),
      });
    const first = await post('first');
    const reader = first.body?.pipeThrough(new TextDecoderStream()).getReader();
    let firstText = '';
    while (!firstText.includes('one')) firstText += (await reader?.read())?.value ?? '';
    const second = await post('second');
    const before = llama.requests.length;
    // The running turn ends within the grace; the one queued behind it must not start then.
    const stopped = s.service.stop(30_000);
    held.open();
    for (let r = await reader?.read(); r && !r.done; r = await reader?.read()) firstText += r.value;
    expect(firstText).toContain(' done');
    expect(await second.text()).toContain('"code":"shutting_down"');
    await stopped;
    expect(llama.requests.slice(before).filter((r) => r.path === '/v1/chat/completions')).toEqual([]);
  });

  it('a turn a stop cuts before its first word is a 503 in OpenAI’s shape saying when to send it again', async () => {
    const held = gate();
    onTestFinished(held.open);
    llama.script((body) =>
      lastUser(body) === 'cut' ? { chunks: [{ wait: held.promise }, 'late'] } : { chunks: ['ok'] },
    );
    const s = await startTestService({
      config: { defaultMode: 'local', llama: { baseUrl: llama.baseUrl } },
    });
    onTestFinished(s.close);
    const arrived = llama.requests.length;
    const answer = fetch(`${s.url}/v1/chat/completions`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${s.token}`,
        'content-type': 'application/json',
        connection: 'close',
      },
      body: JSON.stringify({ model: 'local', messages: [user('cut')] }),
    });
    // The turn's own request: a readiness probe reaching the fake first let the stop refuse the
    // request before its turn began, which is another answer (the refusal's).
    const asked = () => llama.requests.slice(arrived).some((r) => r.path === '/v1/chat/completions');
    while (!asked()) await new Promise((r) => setImmediate(r));
    // No grace: the turn is cut at once, and only the restart is left to wait for (5 s), not the
    // 0.5 s and 1 s of the SDKs' own backoff, which end before anything listens again.
    const stopped = s.service.stop(0);
    const res = await answer;
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('5');
    const body = (await res.json()) as { error: { message: string } };
    expect(body).toMatchObject({ error: { code: 'shutting_down', type: 'server_error' } });
    // Its words tell the wait Retry-After gives: they said "in a minute".
    expect(body.error.message).toContain('Send your message again in about 5 seconds.');
    held.open();
    await stopped;
  });

  it('a request on a connection still open while the server closes gets an OpenAI-shaped 503 with Retry-After', async () => {
    const held = gate();
    onTestFinished(held.open);
    llama.script((body) =>
      lastUser(body) === 'first' ? { chunks: ['one', { wait: held.promise }, ' done'] } : { chunks: ['ok'] },
    );
    const s = await startTestService({
      config: {
        defaultMode: 'local',
        server: { shutdownGraceMs: 20_000 },
        llama: { baseUrl: llama.baseUrl },
      },
    });
    onTestFinished(s.close);
    const chat = s.service.core.chat;
    const refusal = chat.shutdownRefusal.bind(chat);
    const refused = gate();
    chat.shutdownRefusal = () => {
      refused.open();
      return refusal();
    };
    const { port, host } = new URL(s.url);
    const socket = connect(Number(port), '127.0.0.1');
    await once(socket, 'connect');
    let received = '';
    socket.setEncoding('utf8').on('data', (d: string) => {
      received += d;
    });
    const ended = once(socket, 'close');
    const body = JSON.stringify({ model: 'local', messages: [user('first')] });
    const head = (method: string, url: string, length: number) =>
      `${method} ${url} HTTP/1.1\r\nhost: ${host}\r\nauthorization: Bearer ${s.token}\r\ncontent-type: application/json\r\ncontent-length: ${length}\r\n\r\n`;
    const arrived = llama.requests.length;
    socket.write(head('POST', '/v1/chat/completions', Buffer.byteLength(body)) + body);
    while (llama.requests.length === arrived) await new Promise((r) => setImmediate(r));
    const stopped = s.service.stop(20_000);
    // The next request on the same connection (pipelined: its first answer is under way) comes as it closes.
    socket.write(head('GET', '/v1/models', 0));
    await refused.promise;
    held.open();
    await ended;
    await stopped;
    const second = received.slice(received.indexOf('HTTP/1.1', 1));
    expect(received.startsWith('HTTP/1.1 200')).toBe(true);
    expect(second).toMatch(/^HTTP\/1\.1 503/);
    expect(second).toMatch(/\r\nretry-after: \d+\r\n/i);
    expect(second).toMatch(/\r\nconnection: close\r\n/i);
    expect(JSON.parse(second.slice(second.indexOf('\r\n\r\n') + 4))).toMatchObject({
      error: { code: 'shutting_down', type: 'server_error' },
    });
  });

  it('keys a conversation by x-session-key, else by what it has said among its `user`’s', async () => {
    llama.reply({ chunks: ['ok'] });
    const keyOf = async (
      body: { messages: OpenAI.ChatCompletionMessageParam[]; user?: string },
      headers = {},
    ) => {
      await svc.client.chat.completions.create({ model: 'local', ...body }, { headers });
      const row = svc.service.core.db
        .prepare('SELECT session_key AS key FROM usage ORDER BY id DESC LIMIT 1')
        .get();
      return (row as { key: string }).key;
    };
    expect(await keyOf({ messages: [user('hello')], user: 'alice' }, { 'x-session-key': 'chat-7' })).toBe(
      'chat-7',
    );
    // `user` names who asks, not which chat: each of Alice's chats is its own conversation, under
    // her name, and Bob's chat with the very same history is not hers.
    const alice = [
      await keyOf({ messages: [user('hello')], user: 'alice' }),
      await keyOf({ messages: [user('about cats')], user: 'alice' }),
    ];
    for (const key of alice) expect(key).toMatch(/^user:alice:[0-9a-f-]{36}$/);
    expect(alice[0]).not.toBe(alice[1]);
    const aliceLater = [user('hello'), { role: 'assistant' as const, content: 'ok' }, user('and then')];
    expect(await keyOf({ messages: aliceLater, user: 'alice' })).toBe(alice[0]);
    expect(await keyOf({ messages: aliceLater, user: 'bob' })).toMatch(/^user:bob:/);
    const first = await keyOf({ messages: [user('start of a chat')] });
    expect(first).toMatch(/^conv:[0-9a-f-]{36}$/);
    // The same conversation later on keeps its key; another conversation has its own.
    const later = [user('start of a chat'), { role: 'assistant' as const, content: 'ok' }, user('and more')];
    expect(await keyOf({ messages: later })).toBe(first);
    expect(await keyOf({ messages: [user('another chat')] })).not.toBe(first);
  });

  it('keys a conversation by x-session-affinity (OpenClaw’s), whatever the histories say', async () => {
    llama.reply({ chunks: ['ok'] });
    const keyOf = async (messages: OpenAI.ChatCompletionMessageParam[], headers: Record<string, string>) => {
      await svc.client.chat.completions.create({ model: 'local', messages }, { headers });
      const row = svc.service.core.db
        .prepare('SELECT session_key AS key FROM usage ORDER BY id DESC LIMIT 1')
        .get();
      return (row as { key: string }).key;
    };
    // As OpenClaw sends them with sendSessionAffinityHeaders: the same session, two unrelated histories
    // (after a failed turn or a compaction the history no longer continues the recorded one).
    const affinity = { 'x-session-affinity': '00613e03-5b1c-4d2e-9f70-1a2b3c4d5e6f:0', session_id: 'x' };
    const one = await keyOf([user('first topic')], affinity);
    const two = await keyOf(
      [user('something else'), { role: 'assistant', content: 'not what was answered' }, user('go on')],
      affinity,
    );
    expect(one).toBe('00613e03-5b1c-4d2e-9f70-1a2b3c4d5e6f:0');
    expect(two).toBe(one);
    // A session key the client names itself comes first.
    expect(await keyOf([user('keyed')], { ...affinity, 'x-session-key': 'chat-8' })).toBe('chat-8');
  });
});

describe('a stream whose mode a switch changes after its headers went', () => {
  /** Back to the file's active mode, whatever the test left. */
  const restore = async () => {
    llama.setLoading(false);
    await svc.service.core.switcher.switchTo('local', { source: 'api' });
  };
  /** Reads a stream to its end: the text, or the error the SDK threw. */
  const drain = async (stream: AsyncIterable<OpenAI.ChatCompletionChunk>) => {
    let text = '';
    try {
      for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    } catch (err) {
      return { text, err };
    }
    return { text, err: undefined };
  };

  it('waiting for a switch: the mode it makes active refuses the request with an error in the stream', async () => {
    onTestFinished(restore);
    const { switcher } = svc.service.core;
    expect(await switcher.switchTo('assistant', { source: 'api' })).toMatchObject({ ok: true });
    // The switch back waits until llama-server has loaded its model.
    llama.setLoading(true);
    const swap = switcher.switchTo('local', { source: 'api' });
    const before = llama.requests.length;
    // An image, which the Claude mode active when it was sent takes and text-only local does not.
    const stream = await svc.client.chat.completions.create({
      model: 'active',
      stream: true,
      messages: [
        { role: 'user', content: [{ type: 'text', text: 'what is this?' }, dataUrlPart(randomPng(4, 4))] },
      ],
    });
    // Its headers went during the switch (server.streamHeadersWaitMs): a refusal now is an error in the stream.
    llama.setLoading(false);
    expect(await swap).toMatchObject({ ok: true, to: 'local' });
    const { text, err } = await drain(stream);
    expect(err).toBeInstanceOf(APIError);
    expect((err as APIError).code).toBe('images_not_taken');
    expect((err as APIError).message).toMatch(/mode "local" takes no images/);
    expect(text).toBe('');
    expect(llama.requests.slice(before).filter((r) => r.path === '/v1/chat/completions')).toEqual([]);
  });

  it('sent during a switch away from a mode that would refuse it: the mode the switch ends on answers it', async () => {
    onTestFinished(restore);
    const { switcher } = svc.service.core;
    expect(await switcher.switchTo('assistant', { source: 'api' })).toMatchObject({ ok: true });
    llama.setLoading(true);
    const swap = switcher.switchTo('local', { source: 'api' });
    // A temperature the Claude mode it leaves refuses and local takes: its headers go while it waits.
    const stream = await svc.client.chat.completions.create({
      model: 'active',
      stream: true,
      temperature: 0.5,
      messages: [{ role: 'user', content: 'warm enough?' }],
    });
    llama.setLoading(false);
    expect(await swap).toMatchObject({ ok: true, to: 'local' });
    const { text, err } = await drain(stream);
    expect(err).toBeUndefined();
    expect(text).toMatch(/^\*\*\[local\]\*\* /);
    const asked = llama.requests.filter((r) => r.path === '/v1/chat/completions').at(-1)?.body;
    expect(asked).toMatchObject({ temperature: 0.5, messages: [{ role: 'user', content: 'warm enough?' }] });
  });

  it('queued behind its conversation’s running turn: a switch over meanwhile sends it to the new mode, which refuses it in the stream', async () => {
    onTestFinished(restore);
    const held = gate();
    onTestFinished(held.open);
    llama.script(() => ({ chunks: ['one', { wait: held.promise }, ' done'] }));
    const key = { headers: { 'x-session-key': 'queued-refused' } };
    const first = await svc.client.chat.completions.create(
      { model: 'active', messages: [{ role: 'user', content: 'first' }], stream: true },
      key,
    );
    const reader = first[Symbol.asyncIterator]();
    let firstText = '';
    while (!firstText.includes('one'))
      firstText += (await reader.next()).value?.choices[0]?.delta.content ?? '';
    const before = llama.requests.length;
    // A temperature local takes and the Claude modes refuse; its headers go while it waits its turn.
    const second = await svc.client.chat.completions.create(
      { model: 'active', messages: [{ role: 'user', content: 'second' }], temperature: 0.5, stream: true },
      key,
    );
    expect(await svc.service.core.switcher.switchTo('assistant', { source: 'api' })).toMatchObject({
      ok: true,
    });
    held.open();
    for (let r = await reader.next(); !r.done; r = await reader.next())
      firstText += r.value.choices[0]?.delta.content ?? '';
    expect(firstText).toBe('**[local]** one done');
    const { text, err } = await drain(second);
    expect(err).toBeInstanceOf(APIError);
    expect((err as APIError).message).toMatch(
      /^temperature is not supported by Claude modes: .*\(model: assistant\)$/,
    );
    expect(text).toBe('');
    expect(llama.requests.slice(before).filter((r) => r.path === '/v1/chat/completions')).toEqual([]);
  });

  it('for active, queued behind its conversation’s running turn: its filtered-tools header is never the mode it was queued for, a switch may change that', async () => {
    const { qwen, coder, held } = await qwenAndCoder();
    const s = await startTestService({
      config: {
        defaultMode: 'qwen',
        // The queued stream's headers go at once: once they have, its turn waits in the queue.
        server: { modeTag: false, streamHeadersWaitMs: 1 },
        llama: { pollIntervalMs: 50 },
        modes: {
          qwen: { kind: 'llama', baseUrl: qwen.baseUrl, toolFilter: { allow: ['read'] } },
          coder: { kind: 'llama', baseUrl: coder.baseUrl, toolFilter: { deny: ['read'] } },
        },
      },
    });
    try {
      const tools: OpenAI.ChatCompletionTool[] = ['read', 'exec'].map((name) => ({
        type: 'function',
        function: { name, parameters: { type: 'object' } },
      }));
      const ask = (content: string) =>
        s.client.chat.completions
          .create(
            { model: 'active', messages: [{ role: 'user', content }], tools, stream: true },
            { headers: { 'x-session-key': 'queued-header' } },
          )
          .withResponse();
      const first = await ask('first');
      // Before any wait, the mode that answers is the one active now.
      expect(first.response.headers.get('x-brainstem-filtered-tools')).toBe('exec');
      const reader = first.data[Symbol.asyncIterator]();
      let firstText = '';
      while (!firstText.includes('one'))
        firstText += (await reader.next()).value?.choices[0]?.delta.content ?? '';
      const second = await ask('second');
      // Queued while qwen answers: which mode answers it is not known yet, so no header names qwen's.
      expect(second.response.headers.get('x-brainstem-filtered-tools')).toBeNull();
      expect(await s.service.core.switcher.switchTo('coder', { source: 'api' })).toMatchObject({ ok: true });
      held.open();
      for (let r = await reader.next(); !r.done; r = await reader.next())
        firstText += r.value.choices[0]?.delta.content ?? '';
      expect(firstText).toBe('one done');
      let secondText = '';
      for await (const chunk of second.data) secondText += chunk.choices[0]?.delta.content ?? '';
      expect(secondText).toBe('coder: second');
      const asked = coder.requests.filter((r) => r.path === '/v1/chat/completions');
      expect(asked.map((r) => (r.body as { tools?: unknown }).tools)).toEqual([[tools[1]]]);
      // Not queued, the next turn's header names what coder, which answered it, kept back.
      const third = await ask('third');
      expect(third.response.headers.get('x-brainstem-filtered-tools')).toBe('read');
      let thirdText = '';
      for await (const chunk of third.data) thirdText += chunk.choices[0]?.delta.content ?? '';
      expect(thirdText).toBe('coder: third');
    } finally {
      await s.close();
      await qwen.close();
      await coder.close();
    }
  });
});

describe('bad input gets a clear error and changes nothing', () => {
  /** What a request that reached a brain would change: an upstream call, a usage row. */
  const trace = () => ({
    upstreamCalls: llama.requests.filter((r) => r.path === '/v1/chat/completions').length,
    usageRows: (svc.service.core.db.prepare('SELECT COUNT(*) AS n FROM usage').get() as { n: number }).n,
    activeMode: svc.service.core.switcher.active().id,
  });
  let before: ReturnType<typeof trace>;
  beforeAll(() => {
    before = trace();
  });

  const post = (body: string, headers: Record<string, string> = {}) =>
    fetch(`${svc.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${svc.token}`, 'content-type': 'application/json', ...headers },
      body,
    });
  const errorOf = async (r: Response) =>
    ((await r.json()) as { error: { message: string; type: string; param: string } }).error;

  it('malformed JSON, with the parser’s reason; a key JSON allows but brainstem refuses, named', async () => {
    const r = await post('{"model": "local", "messages": [');
    expect(r.status).toBe(400);
    const e = (await r.json()) as { error: { message: string; code: string } };
    expect(e.error.code).toBe('bad_json');
    expect(e.error.message).toMatch(/^The request body is not valid JSON: .*JSON/);
    const proto = await post('{"__proto__": {"x": 1}, "model": "local", "messages": []}');
    expect(proto.status).toBe(400);
    expect((await errorOf(proto)).message).toMatch(/holds a "__proto__" or "constructor.prototype" key/);
  });

  it('a route that does not exist is said so, whatever its body: never read as JSON first', async () => {
    const auth = { authorization: `Bearer ${svc.token}`, 'content-type': 'application/json' };
    // A typo in the path: the body's fault was said instead of the path's.
    const typo = await fetch(`${svc.url}/v1/chat/completion`, {
      method: 'POST',
      headers: auth,
      body: '{bad',
    });
    expect(typo.status).toBe(404);
    expect(await errorOf(typo)).toMatchObject({
      message: expect.stringMatching(
        /^No route POST \/v1\/chat\/completion\. brainstem’s OpenAI-compatible endpoint serves POST \/v1\/chat\/completions/,
      ),
    });
    // A method the route does not take, with a JSON type and no body (a CORS-like probe).
    const options = await fetch(`${svc.url}/v1/chat/completions`, { method: 'OPTIONS', headers: auth });
    expect(options.status).toBe(404);
    expect(await errorOf(options)).toMatchObject({
      message: expect.stringMatching(
        /^No route OPTIONS \/v1\/chat\/completions\. brainstem’s OpenAI-compatible endpoint serves POST \/v1\/chat\/completions/,
      ),
    });
  });

  it('half of a character (a lone surrogate escape), named where it is: llama-server would answer 500, which a client retries', async () => {
    const body = (content: string) =>
      `{"model": "local", "messages": [{"role": "user", "content": "${content}"}]}`;
    const half = await post(body('cut \\ud83d'));
    expect(half.status).toBe(400);
    expect((await errorOf(half)).message).toMatch(
      /^The request body holds half of a character at messages\[0\]\.content: a lone UTF-16 surrogate/,
    );
    const key = await post('{"model": "local", "messages": [], "\\ud83d": 1}');
    expect((await errorOf(key)).message).toMatch(/half of a character at a key of the top level:/);
    // A whole emoji written as its two escapes, and an escaped backslash before "u", pass the
    // parser (the role then stops the request: nothing may reach the brain in this block).
    const whole = await post(
      '{"model": "local", "messages": [{"role": "robot", "content": "whole \\ud83d\\ude00 and \\\\ud83d"}]}',
    );
    expect(whole.status).toBe(400);
    expect((await errorOf(whole)).message).not.toMatch(/half of a character/);
  });

  it('bytes that are not UTF-8 (a character cut in two, a surrogate in CESU-8, Latin-1), named by offset instead of read as U+FFFD', async () => {
    const bytes = (content: number[]) =>
      Buffer.concat([
        Buffer.from('{"model": "local", "messages": [{"role": "user", "content": "half '),
        Buffer.from(content),
        Buffer.from(' end"}]}'),
      ]);
    const at = Buffer.byteLength('{"model": "local", "messages": [{"role": "user", "content": "half ');
    for (const [content, shown] of [
      [[0xf0, 0x9f, 0x20], 'f0 9f 20 20'],
      [[0xed, 0xa0, 0xbd], 'ed a0 bd 20'],
      [[0xe9], 'e9 20 65 6e'],
    ] as const) {
      const r = await fetch(`${svc.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${svc.token}`, 'content-type': 'application/json' },
        body: bytes([...content]),
      });
      expect(r.status).toBe(400);
      const e = (await r.json()) as { error: { message: string; code: string } };
      expect(e.error.code).toBe('bad_json');
      expect(e.error.message).toBe(
        `The request body is not valid UTF-8: the bytes at offset ${at} (${shown}) are not a whole character (a character cut in two, or text in another encoding such as Latin-1). Send the JSON as UTF-8.`,
      );
    }
  });

  it('a body declared in another charset, or compressed, gets a 415 saying what to send; UTF-8 declared passes', async () => {
    const body = JSON.stringify({ model: 'local', messages: [{ role: 'robot', content: 'x' }] });
    const latin = await post(body, { 'content-type': 'application/json; charset=iso-8859-1' });
    expect(latin.status).toBe(415);
    expect(await errorOf(latin)).toMatchObject({
      code: 'unsupported_media_type',
      message:
        'The request body is declared as charset=iso-8859-1; JSON is read as UTF-8 only: send it in UTF-8 (charset=utf-8, or no charset).',
    });
    const zipped = await fetch(`${svc.url}/v1/chat/completions`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${svc.token}`,
        'content-type': 'application/json',
        'content-encoding': 'gzip',
      },
      body: gzipSync(body),
    });
    expect(zipped.status).toBe(415);
    expect((await errorOf(zipped)).message).toBe(
      'The request body is sent with Content-Encoding: gzip, which brainstem does not decode; send it uncompressed, without that header.',
    );
    // Declared UTF-8, in any of its spellings, is read: the role then stops the request.
    for (const type of [
      'application/json; charset=utf-8',
      'application/json;charset="UTF-8"',
      'application/json; charset=utf8',
    ]) {
      const r = await post(body, { 'content-type': type, 'content-encoding': 'identity' });
      expect(r.status).toBe(400);
      expect((await errorOf(r)).param).toBe('messages.0.role');
    }
  });

  it('a body sent as text/plain, asked for as JSON', async () => {
    const r = await post(JSON.stringify({ model: 'local', messages: [{ role: 'user', content: 'x' }] }), {
      'content-type': 'text/plain',
    });
    expect(r.status).toBe(400);
    expect((await errorOf(r)).message).toBe('Send the body as application/json.');
  });

  it('a text part whose text is not a string, naming it', async () => {
    const r = await post(
      JSON.stringify({
        model: 'local',
        messages: [{ role: 'user', content: [{ type: 'text', text: { v: 1 } }] }],
      }),
    );
    expect(r.status).toBe(400);
    expect(await errorOf(r)).toMatchObject({
      param: 'messages.0.content.0.text',
      message: expect.stringContaining('a text part holds its text as a string'),
    });
  });

  it('wrong field types, naming the field', async () => {
    const r = await post(JSON.stringify({ model: 'local', messages: 'hello' }));
    expect(r.status).toBe(400);
    const e = await errorOf(r);
    expect(e.param).toBe('messages');
    const r2 = await post(JSON.stringify({ model: 'local', messages: [{ role: 'wizard', content: 'x' }] }));
    expect((await errorOf(r2)).message).toMatch(/messages\.0\.role/);
    // A field of several shapes says what is wrong in the shape of the value's type, or which types it takes.
    const said = async (fields: Record<string, unknown>) =>
      errorOf(
        await post(JSON.stringify({ model: 'local', messages: [{ role: 'user', content: 'x' }], ...fields })),
      );
    expect(await said({ stop: ['a', 'b', 'c', 'd', 'e'] })).toMatchObject({
      param: 'stop',
      message: 'Invalid request: stop: at most 4 stop sequences',
    });
    expect(
      await said({ tool_choice: { type: 'allowed_tools', allowed_tools: { mode: 'auto', tools: [] } } }),
    ).toMatchObject({ param: 'tool_choice.type', message: expect.stringContaining('expected "function"') });
    expect(await said({ messages: [{ role: 'user', content: 5 }] })).toMatchObject({
      param: 'messages.0.content',
      message: 'Invalid request: messages.0.content: expected string, array or null',
    });
  });

  it('empty messages and no user message', async () => {
    expect((await post(JSON.stringify({ model: 'local', messages: [] }))).status).toBe(400);
    const r = await post(
      JSON.stringify({ model: 'local', messages: [{ role: 'system', content: 'be nice' }] }),
    );
    expect(r.status).toBe(400);
    expect((await errorOf(r)).message).toMatch(/no user message/);
    // An assistant message last is a prefill to be continued, said as such rather than as no user message.
    const prefill = await post(
      JSON.stringify({
        model: 'local',
        messages: [
          { role: 'user', content: 'name a colour' },
          { role: 'assistant', content: 'Sure, ' },
        ],
      }),
    );
    expect(prefill.status).toBe(400);
    expect(await errorOf(prefill)).toMatchObject({
      param: 'messages.1',
      message:
        "messages.1: the last message is the assistant's, to be continued (a prefill), which brainstem's brains do not do; end with a user message or a tool result.",
    });
  });

  it('unknown model, listing the valid ids', async () => {
    await expect(
      svc.client.chat.completions.create({ model: 'gpt-9', messages: [{ role: 'user', content: 'x' }] }),
    ).rejects.toMatchObject({
      status: 404,
      message: expect.stringContaining('active, anklume, assistant, local'),
    });
  });

  it('oversized body', async () => {
    const r = await post(
      JSON.stringify({ model: 'local', messages: [{ role: 'user', content: 'x'.repeat(100_000) }] }),
    );
    expect(r.status).toBe(413);
    expect((await errorOf(r)).message).toMatch(/too large: over the limit of 65536 bytes/);
  });

  /** A request OpenAI refuses, through the openai SDK: its status and error body. */
  const refused = (body: Omit<OpenAI.ChatCompletionCreateParamsNonStreaming, 'model'>) =>
    svc.client.chat.completions.create({ model: 'local', ...body }).then(
      () => expect.unreachable('answered'),
      (e: APIError) => ({
        status: e.status,
        ...(e.error as { param: string; type: string; message: string }),
      }),
    );
  const ask = [{ role: 'user' as const, content: 'read a' }];
  const call = (id: string) => ({
    role: 'assistant' as const,
    content: null,
    tool_calls: [{ id, type: 'function' as const, function: { name: 'read', arguments: '{}' } }],
  });
  const result = (id: string) => ({ role: 'tool' as const, tool_call_id: id, content: 'A' });

  it('stream_options without stream: true, as OpenAI does, instead of an answer the client waits to see streamed', async () => {
    expect(await refused({ messages: ask, stream_options: { include_usage: true } })).toMatchObject({
      status: 400,
      type: 'invalid_request_error',
      param: 'stream_options',
      message:
        'Invalid request: stream_options: stream_options is only for a stream: send stream: true with it, or leave it out',
    });
    expect(
      await refused({ messages: ask, stream: false, stream_options: { include_usage: true } }),
    ).toMatchObject({ param: 'stream_options' });
  });

  it('a tool message without tool_call_id, as OpenAI does: its result would answer no call in particular', async () => {
    // The SDK's types ask for the id; a client in another language may leave it out.
    const bare = { role: 'tool', content: 'A' } as unknown as OpenAI.ChatCompletionToolMessageParam;
    expect(await refused({ messages: [...ask, call('c1'), bare] })).toMatchObject({
      status: 400,
      type: 'invalid_request_error',
      param: 'messages.2.tool_call_id',
      message: expect.stringContaining('a tool message names the call it answers in tool_call_id'),
    });
  });

  it('a message other than an assistant’s without its content, as OpenAI does: a result would reach the brain as an empty one, an earlier turn as none', async () => {
    // The SDK's types want it; a client in another language may leave it out, or send it under another key.
    const empty = (m: object) => m as unknown as OpenAI.ChatCompletionMessageParam;
    expect(
      await refused({ messages: [...ask, call('c1'), empty({ role: 'tool', tool_call_id: 'c1' })] }),
    ).toMatchObject({
      status: 400,
      type: 'invalid_request_error',
      param: 'messages.2.content',
      message:
        'Invalid request: messages.2.content: a tool message needs its content: a string or an array of parts',
    });
    expect(
      await refused({
        messages: [empty({ role: 'user', text: 'a' }), { role: 'assistant', content: 'b' }, ...ask],
      }),
    ).toMatchObject({
      param: 'messages.0.content',
      message: expect.stringContaining('a user message needs its content'),
    });
  });

  it('a tool result tied to no call, and a call left without its result, as OpenAI does', async () => {
    expect(await refused({ messages: [...ask, call('c1'), result('c2')] })).toMatchObject({
      status: 400,
      type: 'invalid_request_error',
      param: 'messages.2.tool_call_id',
      message:
        'Invalid request: messages.2.tool_call_id: tool_call_id "c2" answers no call: no earlier assistant message has a tool call of this id; messages.1.tool_calls.0.id: the call "c1" has no result: send a tool message with tool_call_id "c1" after it',
    });
    expect(await refused({ messages: [...ask, result('c1')] })).toMatchObject({
      param: 'messages.1.tool_call_id',
    });
    expect(
      await refused({ messages: [...ask, call('c1'), { role: 'user', content: 'never mind' }] }),
    ).toMatchObject({
      param: 'messages.1.tool_calls.0.id',
      message: expect.stringContaining('"c1" has no result'),
    });
    // An id an upstream gives again in a later turn (call_0 each time) is a call of its own.
    expect(
      await refused({ messages: [...ask, call('call_0'), result('call_0'), call('call_0')] }),
    ).toMatchObject({ param: 'messages.3.tool_calls.0.id' });
  });

  it('none of them reached a brain, the usage ledger or the active mode', () => {
    expect(trace()).toEqual(before);
  });
});

describe('a dead or failing upstream', () => {
  it('answers 502 in OpenAI shape when the upstream errors', async () => {
    llama.reply({ status: 500, error: 'kaboom' });
    const r = await fetch(`${svc.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${svc.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'local', messages: [{ role: 'user', content: 'x' }], stream: true }),
    });
    expect(r.status).toBe(502);
    expect(r.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await r.json()).toEqual({
      error: {
        message: expect.stringContaining('kaboom'),
        type: 'server_error',
        param: null,
        code: 'brain_error',
      },
    });
    // The SDK reads it as what it is: a server error carrying the upstream's message.
    const sdk = await svc.client.chat.completions
      .create({ model: 'local', messages: [{ role: 'user', content: 'x' }] })
      .catch((e: unknown) => e);
    expect(sdk).toBeInstanceOf(OpenAI.InternalServerError);
    expect((sdk as Error).message).toContain('kaboom');
  });

  it('a buffered answer the brain fails after its first words keeps its 502, with the words so far in the error', async () => {
    llama.reply({ chunks: ['half an ', 'answer'], truncate: true });
    const err = await svc.client.chat.completions
      .create({ model: 'local', messages: [{ role: 'user', content: 'a long answer' }] })
      .catch((e: unknown) => e);
    // As a stream ends with its error object after the words: an error still, not a whole answer.
    expect(err).toBeInstanceOf(OpenAI.InternalServerError);
    expect(err).toMatchObject({ status: 502, code: 'brain_error' });
    expect((err as APIError).error).toMatchObject({ partial_content: '**[local]** half an answer' });
    expect((err as Error).message).toMatch(/its first 26 characters are in error\.partial_content/);
  });

  it('answers 400 in llama-server’s words when it refuses the request as invalid: not a 502 the SDK retries', async () => {
    // What llama-server says of an input_audio part (passed unchanged) to a model without audio.
    llama.reply({
      status: 400,
      error: 'audio input is not supported - hint: you may need to provide the mmproj',
    });
    const chatCalls = () => llama.requests.filter((r) => r.path === '/v1/chat/completions').length;
    const before = chatCalls();
    // The SDK with its default retries, as clients use it.
    const retrying = new OpenAI({ baseURL: `${svc.url}/v1`, apiKey: svc.token });
    const err = await retrying.chat.completions
      .create({
        model: 'local',
        messages: [
          {
            role: 'user',
            content: [
              { type: 'text', text: 'what is said?' },
              { type: 'input_audio', input_audio: { data: 'UklGRg==', format: 'wav' } },
            ],
          },
        ],
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(err).toMatchObject({ status: 400, type: 'invalid_request_error', code: 'invalid_request' });
    expect((err as Error).message).toMatch(/answered HTTP 400: audio input is not supported/);
    expect(chatCalls() - before).toBe(1);
  });

  it('passes a turn of audio alone, without text, to a local model: content too', async () => {
    for (const part of [{ type: 'input_audio', input_audio: { data: 'UklGRg==', format: 'wav' } }]) {
      llama.reply({ chunks: ['heard'] });
      const r = await svc.client.chat.completions.create({
        model: 'local',
        messages: [{ role: 'user', content: [part] as never }],
      });
      expect(r.choices[0]?.message.content).toMatch(/heard$/);
      const sent = llama.requests.at(-1)?.body as { messages: { content: unknown }[] };
      expect(sent.messages.at(-1)?.content).toEqual([part]);
    }
  });

  it('answers 503 with Retry-After while llama-server loads its model: not a 502 the SDK gives up on in 1.5 s', async () => {
    llama.setLoading(true);
    onTestFinished(() => llama.setLoading(false));
    const ask = (stream: boolean) =>
      fetch(`${svc.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${svc.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          model: 'local',
          stream,
          messages: [{ role: 'user', content: 'loaded yet?' }],
        }),
      });
    // Streamed or not: llama-server's 503 comes before the stream's headers go.
    for (const stream of [false, true]) {
      const r = await ask(stream);
      expect(r.status).toBe(503);
      expect(r.headers.get('retry-after')).toBe('10');
      expect(await r.json()).toEqual({
        error: {
          message: expect.stringMatching(
            /^the local model at \S+ is still loading \(HTTP 503: Loading model\); try again in a moment$/,
          ),
          type: 'server_error',
          param: null,
          code: 'brain_unavailable',
        },
      });
    }
    // The SDK reads it as a server error whose wait it honours (its retries sleep the Retry-After).
    const err = await svc.client.chat.completions
      .create({ model: 'local', messages: [{ role: 'user', content: 'loaded yet?' }] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.InternalServerError);
    expect((err as APIError).status).toBe(503);
    expect((err as APIError).headers?.get('retry-after')).toBe('10');
  });

  it('passes on the Retry-After of an upstream’s 429, at most 60 s', async () => {
    for (const [sent, told] of [
      ['7', '7'],
      ['3600', '60'],
    ]) {
      llama.reply({ status: 429, error: 'too many requests', headers: { 'retry-after': sent as string } });
      const err = await svc.client.chat.completions
        .create({ model: 'local', messages: [{ role: 'user', content: 'x' }] })
        .catch((e: unknown) => e);
      expect(err).toMatchObject({ status: 429, type: 'rate_limit_error' });
      expect((err as APIError).headers?.get('retry-after')).toBe(told);
    }
    // An upstream that says nothing of when gets none: no wait is made up.
    llama.reply({ status: 429, error: 'too many requests' });
    const err = await svc.client.chat.completions
      .create({ model: 'local', messages: [{ role: 'user', content: 'x' }] })
      .catch((e: unknown) => e);
    expect((err as APIError).headers?.get('retry-after')).toBeNull();
  });

  it('answers 429 when the upstream says too many requests', async () => {
    llama.reply({ status: 429, error: 'too many requests' });
    await expect(
      svc.client.chat.completions.create({ model: 'local', messages: [{ role: 'user', content: 'x' }] }),
    ).rejects.toMatchObject({
      status: 429,
      type: 'rate_limit_error',
      message: expect.stringContaining('too many'),
    });
  });

  it('answers 503 naming LLAMA_BASE_URL when the upstream is down', async () => {
    const dead = await startTestService({
      config: { defaultMode: 'local', llama: { baseUrl: 'http://127.0.0.1:9/v1', connectTimeoutMs: 60_000 } },
    });
    try {
      // A refused connection is an answer: the 60 s connect timeout never comes into play.
      await expect(
        dead.client.chat.completions.create({ model: 'local', messages: [{ role: 'user', content: 'x' }] }),
      ).rejects.toMatchObject({ status: 503, message: expect.stringMatching(/LLAMA_BASE_URL/) });
    } finally {
      await dead.close();
    }
  });
});

describe('a client that reads errors as answers (x-brainstem-client: openclaw)', () => {
  const openclaw = { headers: { 'x-brainstem-client': 'openclaw' } };
  const photo = (): OpenAI.ChatCompletionMessageParam[] => [
    { role: 'user', content: [{ type: 'text', text: 'what is this?' }, dataUrlPart(randomPng(4, 4))] },
  ];
  /** A stream read to its end with the SDK, which throws on an error object in it. */
  const readStream = async (stream: AsyncIterable<OpenAI.ChatCompletionChunk>) => {
    let text = '';
    let finish: string | null | undefined;
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
      if (chunk.usage) usage = chunk.usage;
    }
    return { text, finish, usage };
  };
  /** What the request's HTTP error body says, asked without the header. */
  const errorBodyOf = async (body: Record<string, unknown>) => {
    const r = await fetch(`${svc.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${svc.token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    expect(r.status).toBeGreaterThanOrEqual(400);
    return ((await r.json()) as { error: { message: string; code: string } }).error;
  };

  it('a request refused before its turn began is answered 200 with the error’s message, streamed or not', async () => {
    // Chat requests only: a readiness probe may reach /health meanwhile.
    const chats = () => llama.requests.filter((r) => r.path === '/v1/chat/completions').length;
    const upstreamCalls = chats();
    const messages = photo();
    const refused = await errorBodyOf({ model: 'local', messages });
    expect(refused.code).toBe('images_not_taken');

    const { data: plain, response } = await svc.client.chat.completions
      .create({ model: 'local', messages }, openclaw)
      .withResponse();
    expect(response.status).toBe(200);
    expect(response.headers.get('x-brainstem-error')).toBe('images_not_taken');
    expect(plain.object).toBe('chat.completion');
    expect(plain.choices[0]?.message).toMatchObject({ role: 'assistant', content: refused.message });
    expect(plain.choices[0]?.finish_reason).toBe('stop');

    const { data: stream, response: streamed } = await svc.client.chat.completions
      .create({ model: 'local', messages, stream: true, stream_options: { include_usage: true } }, openclaw)
      .withResponse();
    expect(streamed.status).toBe(200);
    expect(streamed.headers.get('x-brainstem-error')).toBe('images_not_taken');
    const read = await readStream(stream);
    expect(read).toMatchObject({ text: refused.message, finish: 'stop' });
    expect(read.usage?.total_tokens).toBe(0);
    // On the wire: a role chunk, the message, the finish, the usage, [DONE].
    const raw = await fetch(`${svc.url}/v1/chat/completions`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${svc.token}`,
        'content-type': 'application/json',
        ...openclaw.headers,
      },
      body: JSON.stringify({
        model: 'local',
        messages,
        stream: true,
        stream_options: { include_usage: true },
      }),
    });
    const events = (await raw.text())
      .split('\n\n')
      .filter((e) => e.startsWith('data: '))
      .map((e) => e.slice(6));
    expect(events.at(-1)).toBe('[DONE]');
    expect(events.slice(0, -1).map((e) => JSON.parse(e))).toEqual([
      expect.objectContaining({
        choices: [expect.objectContaining({ delta: { role: 'assistant', content: '' } })],
      }),
      expect.objectContaining({
        choices: [expect.objectContaining({ delta: { content: refused.message } })],
      }),
      expect.objectContaining({ choices: [expect.objectContaining({ delta: {}, finish_reason: 'stop' })] }),
      expect.objectContaining({ choices: [], usage: expect.objectContaining({ total_tokens: 0 }) }),
    ]);
    // Nothing reached the model.
    expect(chats()).toBe(upstreamCalls);

    // An unknown model too, listing the valid ones.
    const unknown = await readStream(
      await svc.client.chat.completions.create(
        { model: 'gpt-9', messages: [{ role: 'user', content: 'x' }], stream: true },
        openclaw,
      ),
    );
    expect(unknown).toEqual({
      text: expect.stringMatching(/^Unknown model "gpt-9"\. Valid models: active, anklume, assistant, local/),
      finish: 'stop',
      usage: undefined,
    });
  });

  it('a brain that fails before its first word: its message as the answer, not a 502', async () => {
    llama.reply({ status: 500, error: 'kaboom' });
    const refused = await errorBodyOf({ model: 'local', messages: [{ role: 'user', content: 'x' }] });
    const { data, response } = await svc.client.chat.completions
      .create({ model: 'local', messages: [{ role: 'user', content: 'x' }] }, openclaw)
      .withResponse();
    expect(response.headers.get('x-brainstem-error')).toBe('brain_error');
    expect(data.choices[0]?.message.content).toBe(refused.message);
    expect(data.choices[0]?.message.content).toContain('kaboom');
  });

  const brokenMidway = () =>
    llama.reply({
      chunks: ['partial', { raw: 'data: {"error":{"code":500,"message":"context overflow"}}\n\n' }],
      truncate: true,
    });

  it('a stream that fails midway ends with the message as text and finish_reason stop, no error object', async () => {
    brokenMidway();
    const read = await readStream(
      await svc.client.chat.completions.create(
        {
          model: 'local',
          messages: [{ role: 'user', content: 'x' }],
          stream: true,
          stream_options: { include_usage: true },
        },
        openclaw,
      ),
    );
    expect(read.text).toMatch(/^\*\*\[local\]\*\* partial\n\n.*context overflow/s);
    expect(read.finish).toBe('stop');
    expect(read.usage).toBeDefined();
    // Not streamed: the words said, then the message.
    brokenMidway();
    const plain = await svc.client.chat.completions.create(
      { model: 'local', messages: [{ role: 'user', content: 'x' }] },
      openclaw,
    );
    expect(plain.choices[0]?.message.content).toBe(read.text);
    expect(plain.choices[0]?.finish_reason).toBe('stop');
  });

  it('an answer a content filter stopped ends with words saying so and finish_reason stop: OpenClaw’s pi-ai takes content_filter for a failure', async () => {
    llama.reply({ chunks: ['partly'], finishReason: 'content_filter' });
    const read = await readStream(
      await svc.client.chat.completions.create(
        { model: 'local', messages: [{ role: 'user', content: 'x' }], stream: true },
        openclaw,
      ),
    );
    expect(read.text).toMatch(
      /^\*\*\[local\]\*\* partly\n\n⚙️ \[proxy\] A content filter stopped this answer/,
    );
    expect(read.finish).toBe('stop');
    // Not streamed: the same words, and the code in a header, as for an error told as text.
    const r = await svc.client.chat.completions
      .create({ model: 'local', messages: [{ role: 'user', content: 'x' }] }, openclaw)
      .withResponse();
    expect(r.data.choices[0]?.message.content).toBe(read.text);
    expect(r.data.choices[0]?.finish_reason).toBe('stop');
    expect(r.response.headers.get('x-brainstem-error')).toBe('content_filter');
  });

  it('a tool call a failure cuts off never reaches it, streamed or not: the answer says it was not run', async () => {
    const read = {
      type: 'function',
      function: { name: 'read', parameters: { type: 'object', properties: { path: { type: 'string' } } } },
    } satisfies OpenAI.ChatCompletionTool;
    const cutMidCall = () =>
      llama.reply({
        chunks: [
          'Reading.',
          { toolCall: { index: 0, id: 'call_r', name: 'read', arguments: '{"path":"/tmp/build' } },
        ],
        truncate: true,
      });
    const request = { model: 'local', tools: [read], messages: [{ role: 'user' as const, content: 'x' }] };
    cutMidCall();
    const streamed = await svc.client.chat.completions.stream(request, openclaw).finalChatCompletion();
    cutMidCall();
    const plain = await svc.client.chat.completions.create(request, openclaw);
    for (const choice of [streamed.choices[0], plain.choices[0]]) {
      expect(choice?.finish_reason).toBe('stop');
      expect(choice?.message.tool_calls ?? []).toEqual([]);
      expect(choice?.message.content).toMatch(
        /^\*\*\[local\]\*\* Reading\.\n\nthe stream from .* ended before the model finished its answer\n\n⚙️ \[proxy\] The model's call of read was cut off by this failure: not run\.$/,
      );
    }
    // A call the answer completes still goes, once its answer is done.
    llama.reply({
      chunks: [{ toolCall: { index: 0, id: 'call_r', name: 'read', arguments: '{"path":"/a"}' } }],
    });
    const whole = await svc.client.chat.completions.stream(request, openclaw).finalChatCompletion();
    expect(whole.choices[0]?.finish_reason).toBe('tool_calls');
    expect(whole.choices[0]?.message.tool_calls).toEqual([
      { id: 'call_r', type: 'function', function: { name: 'read', arguments: '{"path":"/a"}' } },
    ]);
  });

  it('without the header, the same stream ends in an error object the SDK throws', async () => {
    brokenMidway();
    const stream = await svc.client.chat.completions.create({
      model: 'local',
      messages: [{ role: 'user', content: 'x' }],
      stream: true,
    });
    let text = '';
    const failure = await (async () => {
      for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    })().catch((e: unknown) => e);
    expect(text).toBe('**[local]** partial');
    expect(failure).toBeInstanceOf(APIError);
    expect(failure).toMatchObject({ error: { type: 'server_error', code: 'brain_error' } });
    expect((failure as Error).message).toContain('context overflow');
  });

  it('a missing token and a body over the limit stay HTTP errors (401, 413)', async () => {
    const post = (body: string, auth: boolean) =>
      fetch(`${svc.url}/v1/chat/completions`, {
        method: 'POST',
        headers: {
          ...(auth ? { authorization: `Bearer ${svc.token}` } : {}),
          'content-type': 'application/json',
          ...openclaw.headers,
        },
        body,
      });
    const small = JSON.stringify({ model: 'local', messages: [{ role: 'user', content: 'x' }] });
    expect((await post(small, false)).status).toBe(401);
    const big = JSON.stringify({
      model: 'local',
      messages: [{ role: 'user', content: 'x'.repeat(100_000) }],
    });
    expect((await post(big, true)).status).toBe(413);
  });
});

describe('a switch that swaps the llama model', () => {
  it('a turn queued behind its conversation’s running one when a swap begins waits for it, and runs on the mode it made active', async () => {
    // Each model on a server of its own, loaded and unloaded by its start and stop commands.
    const { qwen, coder, held } = await qwenAndCoder({ loading: true });
    const model = (fake: FakeLlama) => ({
      start: [loadingCommand(fake, false)],
      stop: [loadingCommand(fake, true)],
    });
    const s = await startTestService({
      config: {
        defaultMode: 'qwen',
        // The queued stream's headers go at once: once they have, its turn waits in the queue.
        server: { modeTag: false, streamHeadersWaitMs: 1 },
        llama: { pollIntervalMs: 50, models: { qwen: model(qwen), coder: model(coder) } },
        modes: {
          qwen: { kind: 'llama', llamaModel: 'qwen', baseUrl: qwen.baseUrl },
          coder: { kind: 'llama', llamaModel: 'coder', baseUrl: coder.baseUrl },
        },
      },
    });
    try {
      const { switcher } = s.service.core;
      expect(await switcher.switchTo('qwen', { source: 'api' })).toMatchObject({ ok: true });
      const key = { headers: { 'x-session-key': 'queued-swap' } };
      const first = await s.client.chat.completions.create(
        { model: 'active', messages: [{ role: 'user', content: 'first' }], stream: true },
        key,
      );
      const reader = first[Symbol.asyncIterator]();
      let firstText = '';
      while (!firstText.includes('one'))
        firstText += (await reader.next()).value?.choices[0]?.delta.content ?? '';
      const second = await s.client.chat.completions.create(
        { model: 'active', messages: [{ role: 'user', content: 'second' }], stream: true },
        key,
      );
      const swap = switcher.switchTo('coder', { source: 'api' });
      held.open();
      for (let r = await reader.next(); !r.done; r = await reader.next())
        firstText += r.value.choices[0]?.delta.content ?? '';
      let secondText = '';
      for await (const chunk of second) secondText += chunk.choices[0]?.delta.content ?? '';
      expect(await swap).toMatchObject({ ok: true, to: 'coder' });
      expect(firstText).toBe('one done');
      // `active` is the mode once the switch is over; the model being stopped never gets the turn.
      expect(secondText).toBe('coder: second');
      expect(qwen.requests.filter((q) => q.body && lastUser(q.body) === 'second')).toEqual([]);
    } finally {
      await s.close();
      await qwen.close();
      await coder.close();
    }
  });

  it('the first swap away from a model brainstem did not start (up at boot) stops it, and starts it again when the swap fails', async () => {
    const qwen = await startFakeLlama();
    const coder = await startFakeLlama({ loading: true });
    const s = await startTestService({
      config: {
        defaultMode: 'qwen',
        llama: {
          pollIntervalMs: 50,
          models: {
            qwen: { start: [loadingCommand(qwen, false)], stop: [loadingCommand(qwen, true)] },
            coder: {
              start: [[process.execPath, '-e', 'process.exit(5)']],
              stop: [loadingCommand(coder, true)],
            },
          },
        },
        modes: {
          qwen: { kind: 'llama', llamaModel: 'qwen', baseUrl: qwen.baseUrl },
          coder: { kind: 'llama', llamaModel: 'coder', baseUrl: coder.baseUrl },
        },
      },
    });
    try {
      // A fresh data dir: no swap of brainstem's says which model is loaded, yet qwen is up.
      expect(s.service.core.kv.get('llama_loaded_model')).toBeUndefined();
      const outcome = await s.service.core.switcher.switchTo('coder', { source: 'api' });
      expect(outcome).toMatchObject({ ok: false, from: 'qwen', to: 'coder' });
      expect(!outcome.ok && outcome.reason).toMatch(/exit code 5; model qwen was started again$/);
      // qwen's stop ran before coder's start, and its start once coder's had failed.
      const commands = qwen.requests.filter((r) => r.path === '/_fake/loading').map((r) => r.body);
      expect(commands).toEqual([{ loading: true }, { loading: false }]);
      expect((await fetch(`${qwen.url}/health`)).status).toBe(200);
      expect(s.service.core.switcher.active().id).toBe('qwen');
    } finally {
      await s.close();
      await qwen.close();
      await coder.close();
    }
  });

  it('a mode named whose model is not the one loaded on the shared upstream is refused, and reported not ready, saying how to fix it', async () => {
    // One llama-server (LLAMA_BASE_URL) for both: whichever model is loaded there answers.
    const shared = await startFakeLlama();
    const model = { start: [loadingCommand(shared, false)], stop: [loadingCommand(shared, true)] };
    const s = await startTestService({
      config: {
        defaultMode: 'local',
        llama: { baseUrl: shared.baseUrl, pollIntervalMs: 50, models: { qwen: model, coder: model } },
        modes: {
          local: { kind: 'llama', llamaModel: 'qwen' },
          coder: { kind: 'llama', llamaModel: 'coder' },
        },
      },
    });
    const ask = (m: string) =>
      s.client.chat.completions.create({ model: m, messages: [{ role: 'user', content: 'hi' }] });
    /** With the token, the owner's view: the whole reason, not only the word anyone may read. */
    const health = async (token?: string) =>
      (
        (await (
          await fetch(`${s.url}/health`, token ? { headers: { authorization: `Bearer ${token}` } } : {})
        ).json()) as {
          brains: Record<string, { ready: boolean; detail: string }>;
        }
      ).brains;
    try {
      // At first the active mode's model is the one up (no swap yet): coder's is not.
      await expect(ask('coder')).rejects.toMatchObject({ status: 400, code: 'model_not_loaded' });
      expect((await health()).coder).toMatchObject({ ready: false, detail: 'not loaded' });
      expect((await health(s.token)).coder).toMatchObject({
        ready: false,
        detail: expect.stringMatching(/^Mode coder cannot answer/),
      });
      expect((await ask('local')).choices[0]?.message.content).toBe('**[local]** echo: hi');

      const { switcher } = s.service.core;
      expect(await switcher.switchTo('coder', { source: 'api' })).toMatchObject({ ok: true });
      const err = await ask('local').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(APIError);
      expect(err).toMatchObject({ status: 400, code: 'model_not_loaded', param: 'model' });
      expect((err as APIError).message).toBe(
        '400 Mode local cannot answer: its model qwen is not loaded, model coder is. Send /mode local (or POST /api/mode {"mode":"local"}) to load it, or ask for model "active".',
      );
      // The mode that loaded it, named or followed, answers as before.
      expect((await ask('coder')).choices[0]?.message.content).toBe('**[coder]** echo: hi');
      expect((await ask('active')).choices[0]?.message.content).toBe('**[coder]** echo: hi');
      expect((await health(s.token)).local).toEqual({
        ready: false,
        detail: expect.stringContaining('its model qwen is not loaded, model coder is'),
        kind: 'llama',
        active: false,
        checkedAt: expect.any(String),
        checking: expect.any(Boolean),
      });
    } finally {
      await s.close();
      await shared.close();
    }
  });

  it('a streamed message asking for a switch gets its headers while the model loads, not once it is ready', async () => {
    const one = await startFakeLlama();
    const two = await startFakeLlama({ loading: true });
    const s = await startTestService({
      config: {
        defaultMode: 'one',
        server: { streamHeadersWaitMs: 1 },
        llama: { pollIntervalMs: 50 },
        modes: { one: { kind: 'llama', baseUrl: one.baseUrl }, two: { kind: 'llama', baseUrl: two.baseUrl } },
      },
    });
    try {
      const res = await fetch(`${s.url}/v1/chat/completions`, {
        method: 'POST',
        // Nothing left open for the server's close to wait for.
        headers: {
          authorization: `Bearer ${s.token}`,
          'content-type': 'application/json',
          connection: 'close',
        },
        body: JSON.stringify({ stream: true, messages: [{ role: 'user', content: 'switch to two' }] }),
      });
      // The headers came while the switch waits for the model (server.streamHeadersWaitMs).
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
      expect(s.service.core.switcher.isSwitching()).toBe(true);
      two.setLoading(false);
      const wire = await res.text();
      expect(wire).toMatch(/Switched to \*\*two\*\*/);
      expect(wire.trimEnd().endsWith('data: [DONE]')).toBe(true);
    } finally {
      await s.close();
      await one.close();
      await two.close();
    }
  });

  it('waits until a slow upstream is really ready, then announces it', async () => {
    const slow = await startFakeLlama();
    const svc2Dir = svc.dir;
    const script = path.join(svc2Dir, 'start-model.mjs');
    // The "start" command of a model: tells the fake to load for 800 ms, like llama-server reading weights.
    writeFileSync(
      script,
      `await fetch(process.argv[2] + '/_fake/load', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"ms":800}' });\n`,
    );
    const s = await startTestService({
      config: {
        defaultMode: 'assistant',
        claude: { bin: CLAUDE_BIN },
        llama: {
          baseUrl: slow.baseUrl,
          pollIntervalMs: 50,
          models: { qwen: { start: [[process.execPath, script, slow.url]] } },
        },
        modes: { local: { kind: 'llama', llamaModel: 'qwen' } },
      },
    });
    try {
      const started = Date.now();
      const r = await s.client.chat.completions.create({
        model: 'active',
        messages: [{ role: 'user', content: 'passe en mode local' }],
      });
      const took = Date.now() - started;
      expect(r.choices[0]?.message.content).toMatch(/Mode \*\*local\*\* activé/);
      expect(took).toBeGreaterThanOrEqual(800);
      const health = await fetch(`${slow.url}/health`);
      expect(health.status).toBe(200);
      const notices = s.service.core.notifier.pending();
      expect(notices.at(-1)?.text).toMatch(/⚙️ \[proxy\] Mode <b>local<\/b> prêt/);
    } finally {
      await s.close();
      await slow.close();
    }
  });
});
