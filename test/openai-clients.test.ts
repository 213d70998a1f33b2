import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { ChatOpenAI } from '@langchain/openai';
import { generateText, stepCountIs, streamText, tool } from 'ai';
import type OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type FakeLlama, startFakeLlama } from './fakes/llama.js';
import { recordingLogger } from './helpers/logs.js';
import { startTestService, type TestService } from './helpers/service.js';

/**
 * Real OpenAI clients nobody here wrote, against brainstem on its default
 * configuration (only the llama-server address set): each gets a tool call
 * for a tool of its own through the default `local` mode.
 */

let llama: FakeLlama;
let svc: TestService;

const weatherTool = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'The weather in a city',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string' } },
      required: ['city'],
      additionalProperties: false,
    },
  },
} satisfies OpenAI.ChatCompletionTool;

interface SentBody {
  tools?: { function: { name: string } }[];
  messages: { role: string; content?: unknown }[];
}

beforeAll(async () => {
  llama = await startFakeLlama();
  // A small model that calls get_weather when it has it, and answers from the tool's result.
  llama.script((body) => {
    const last = body.messages?.at(-1);
    if (last?.role === 'tool') return { chunks: [`It is ${String(last.content)} in Paris.`] };
    // A model that follows a prompt (or an injection in it) naming tools it was not given.
    if (last?.content === 'run it through tool_call') {
      return {
        chunks: [
          'On it.',
          { toolCall: { index: 0, id: 'call_x', name: 'tool_call', arguments: '{"id":"exec","args":{}}' } },
          { toolCall: { index: 1, id: 'call_w2', name: 'get_weather', arguments: '{"city":"Paris"}' } },
        ],
      };
    }
    // Ollama's OpenAI endpoint in some versions ends a turn of tool calls with finish_reason "stop".
    if (last?.content === 'weather, as Ollama ends it') {
      return {
        chunks: [{ toolCall: { index: 0, id: 'call_o', name: 'get_weather', arguments: '{"city":"Oslo"}' } }],
        finishReason: 'stop',
      };
    }
    // An upstream that leaves `arguments` out of a call of a tool without parameters.
    if (last?.content === 'what time is it?') {
      return { chunks: [{ toolCall: { index: 0, id: 'call_t', name: 'get_time' } }] };
    }
    if (last?.content === 'run exec') {
      return {
        chunks: [{ toolCall: { index: 0, id: 'call_e', name: 'exec', arguments: '{"command":"id"}' } }],
      };
    }
    const offered = ((body as SentBody).tools ?? []).some((t) => t.function.name === 'get_weather');
    if (!offered) return { chunks: ['no weather tool'] };
    return {
      chunks: [
        { toolCall: { index: 0, id: 'call_w1', name: 'get_weather', arguments: '{"city":' } },
        { toolCall: { index: 0, arguments: '"Paris"}' } },
      ],
    };
  });
  svc = await startTestService({ env: { LLAMA_BASE_URL: llama.baseUrl } });
});
afterAll(async () => {
  await svc?.close();
  await llama?.close();
});

const lastSent = () => llama.requests.at(-1)?.body as SentBody;

describe('client tools on the default config', () => {
  it('the openai SDK gets the tool call, then the answer from its result', async () => {
    const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'Weather in Paris?' }];
    const first = await svc.client.chat.completions.create({
      model: 'local',
      messages,
      tools: [weatherTool],
    });
    const call = first.choices[0]?.message.tool_calls?.[0];
    expect(call?.type === 'function' && call.function).toEqual({
      name: 'get_weather',
      arguments: '{"city":"Paris"}',
    });
    expect(first.choices[0]?.message.content).toBeNull();
    const second = await svc.client.chat.completions.create({
      model: 'local',
      tools: [weatherTool],
      messages: [
        ...messages,
        first.choices[0]?.message as OpenAI.ChatCompletionMessageParam,
        { role: 'tool', tool_call_id: call?.id ?? '', content: 'sunny' },
      ],
    });
    expect(second.choices[0]?.message.content).toBe('**[local]** It is sunny in Paris.');
  });

  it('OpenClaw’s tools that write or run things are filtered and named; the others pass', async () => {
    // As openclaw 2026.9.6 sends them with its Tool Search on: `tool_call` would run any catalogued tool.
    const names = [
      'read',
      'write',
      'exec',
      'web_fetch',
      'tool_search',
      'tool_describe',
      'tool_call',
      'computer',
    ];
    const openclaw = names.map((name) => ({
      type: 'function' as const,
      function: { name, parameters: { type: 'object' } },
    }));
    const { response } = await svc.client.chat.completions
      .create({
        model: 'local',
        messages: [{ role: 'user', content: 'hi' }],
        tools: [...openclaw, weatherTool],
      })
      .withResponse();
    expect(response.headers.get('x-brainstem-filtered-tools')).toBe(
      'write, exec, tool_search, tool_describe, tool_call, computer',
    );
    expect(lastSent().tools?.map((t) => t.function.name)).toEqual(['read', 'web_fetch', 'get_weather']);
  });

  it('a call of a tool the mode kept back never reaches the client: held back and said, the others pass', async () => {
    const tools = ['read', 'exec', 'tool_call'].map((name) => ({
      type: 'function' as const,
      function: { name, parameters: { type: 'object' } },
    }));
    const mixed = await svc.client.chat.completions.create({
      model: 'local',
      messages: [{ role: 'user', content: 'run it through tool_call' }],
      tools: [...tools, weatherTool],
    });
    const choice = mixed.choices[0];
    expect(choice?.finish_reason).toBe('tool_calls');
    expect(
      choice?.message.tool_calls?.map((c) => (c.type === 'function' ? c.function.name : c.type)),
    ).toEqual(['get_weather']);
    expect(choice?.message.content).toMatch(
      /On it\.\n\n⚙️ \[proxy\] The model called tool_call, which mode local does not give it \(modes\.local\.toolFilter\): not run\.$/,
    );

    // Streamed, with nothing else called: the answer ends as words, not as calls the client would wait on.
    const stream = await svc.client.chat.completions.create({
      model: 'local',
      messages: [{ role: 'user', content: 'run exec' }],
      tools,
      stream: true,
    });
    let content = '';
    const finishes: (string | null | undefined)[] = [];
    for await (const chunk of stream) {
      const c = chunk.choices[0];
      expect(c?.delta.tool_calls).toBeUndefined();
      content += c?.delta.content ?? '';
      if (c?.finish_reason) finishes.push(c.finish_reason);
    }
    expect(finishes).toEqual(['stop']);
    expect(content).toMatch(/The model called exec, which mode local does not give it/);

    // A tool no one offered (with no tools at all, or others only) is said so, not blamed on the filter.
    for (const offered of [undefined, tools.slice(0, 1)]) {
      const unoffered = await svc.client.chat.completions.create({
        model: 'local',
        messages: [{ role: 'user', content: 'run exec' }],
        ...(offered ? { tools: offered } : {}),
      });
      expect(unoffered.choices[0]?.message.tool_calls).toBeUndefined();
      expect(unoffered.choices[0]?.message.content).toBe(
        '**[local]** ⚙️ [proxy] The model called exec, which the request did not offer it: not run.',
      );
    }
  });

  it('the calls that pass a held-back one are numbered from 0, as the openai SDK’s stream helper gathers them', async () => {
    const tools = ['read', 'exec', 'tool_call'].map((name) => ({
      type: 'function' as const,
      function: { name, parameters: { type: 'object' } },
    }));
    // The model calls tool_call (index 0, held back), then get_weather (index 1).
    const runner = svc.client.chat.completions.stream({
      model: 'local',
      messages: [{ role: 'user', content: 'run it through tool_call' }],
      tools: [...tools, weatherTool],
    });
    const indexes: number[] = [];
    runner.on('chunk', (c) => {
      for (const t of c.choices[0]?.delta.tool_calls ?? []) indexes.push(t.index);
    });
    // With a hole at 0 the helper throws a TypeError here.
    const final = await runner.finalChatCompletion();
    expect(indexes).toEqual([0]);
    expect(final.choices[0]?.finish_reason).toBe('tool_calls');
    expect(final.choices[0]?.message.tool_calls).toEqual([
      {
        id: 'call_w2',
        type: 'function',
        function: { name: 'get_weather', arguments: '{"city":"Paris"}' },
      },
    ]);
  });

  it('calls an upstream ends with "stop" reach the client as "tool_calls", streamed or not', async () => {
    const asked = {
      model: 'local',
      messages: [{ role: 'user' as const, content: 'weather, as Ollama ends it' }],
    };
    const whole = await svc.client.chat.completions.create({ ...asked, tools: [weatherTool] });
    expect(whole.choices[0]?.message.tool_calls).toHaveLength(1);
    expect(whole.choices[0]?.finish_reason).toBe('tool_calls');
    const runner = svc.client.chat.completions.stream({ ...asked, tools: [weatherTool] });
    const final = await runner.finalChatCompletion();
    expect(
      final.choices[0]?.message.tool_calls?.map((c) => c.type === 'function' && c.function.name),
    ).toEqual(['get_weather']);
    expect(final.choices[0]?.finish_reason).toBe('tool_calls');
    // A call held back is not the client's: the answer stays "stop".
    const exec = { type: 'function' as const, function: { name: 'exec', parameters: { type: 'object' } } };
    const held = await svc.client.chat.completions.create({
      model: 'local',
      messages: [{ role: 'user', content: 'run exec' }],
      tools: [exec],
    });
    expect(held.choices[0]?.finish_reason).toBe('stop');
  });

  it('a call the upstream sent without arguments reaches each client with {}, as OpenAI sends it', async () => {
    const getTime = {
      type: 'function' as const,
      function: { name: 'get_time', parameters: { type: 'object', properties: {} } },
    };
    const asked = { model: 'local', messages: [{ role: 'user' as const, content: 'what time is it?' }] };
    const whole = await svc.client.chat.completions.create({ ...asked, tools: [getTime] });
    const call = whole.choices[0]?.message.tool_calls?.[0];
    expect(call?.type === 'function' && call.function).toEqual({ name: 'get_time', arguments: '{}' });
    const final = await svc.client.chat.completions
      .stream({ ...asked, tools: [getTime] })
      .finalChatCompletion();
    const streamed = final.choices[0]?.message.tool_calls?.[0];
    expect(streamed?.type === 'function' && streamed.function).toEqual({ name: 'get_time', arguments: '{}' });
    // LangChain parses the arguments as JSON: an empty string made the call an invalid_tool_call.
    const model = new ChatOpenAI({
      model: 'local',
      apiKey: svc.token,
      maxRetries: 0,
      configuration: { baseURL: `${svc.url}/v1` },
    });
    const answer = await model.bindTools([getTime]).invoke('what time is it?');
    expect(answer.invalid_tool_calls).toEqual([]);
    expect(answer.tool_calls?.map((c) => [c.name, c.args])).toEqual([['get_time', {}]]);
  });

  it('the Vercel AI SDK (openai-compatible) gets the tool call with generateText and streamText', async () => {
    const brainstem = createOpenAICompatible({
      name: 'brainstem',
      baseURL: `${svc.url}/v1`,
      apiKey: svc.token,
    });
    const getWeather = tool({
      description: 'The weather in a city',
      inputSchema: z.object({ city: z.string() }),
      execute: async ({ city }) => `sunny (${city})`,
    });
    const result = await generateText({
      model: brainstem('local'),
      prompt: 'Weather in Paris?',
      tools: { get_weather: getWeather },
      stopWhen: stepCountIs(2),
      maxRetries: 0,
    });
    expect(result.steps[0]?.toolCalls.map((c) => [c.toolName, c.input])).toEqual([
      ['get_weather', { city: 'Paris' }],
    ]);
    expect(result.text).toBe('**[local]** It is sunny (Paris) in Paris.');

    const stream = streamText({
      model: brainstem('local'),
      prompt: 'Weather in Paris?',
      tools: { get_weather: tool({ inputSchema: z.object({ city: z.string() }) }) },
      maxRetries: 0,
    });
    const calls: { toolName: string; input: unknown }[] = [];
    for await (const part of stream.fullStream) {
      if (part.type === 'tool-call') calls.push({ toolName: part.toolName, input: part.input });
      if (part.type === 'error') throw part.error;
    }
    expect(calls).toEqual([{ toolName: 'get_weather', input: { city: 'Paris' } }]);
  });

  it('LangChain’s ChatOpenAI gets the tool call through bindTools', async () => {
    const model = new ChatOpenAI({
      model: 'local',
      apiKey: svc.token,
      maxRetries: 0,
      configuration: { baseURL: `${svc.url}/v1` },
    });
    const answer = await model.bindTools([weatherTool]).invoke('Weather in Paris?');
    expect(answer.tool_calls?.map((c) => [c.name, c.args])).toEqual([['get_weather', { city: 'Paris' }]]);
    let streamed = '';
    for await (const chunk of await model.bindTools([weatherTool]).stream('Weather in Paris?')) {
      for (const c of chunk.tool_call_chunks ?? []) streamed += c.args ?? '';
    }
    expect(JSON.parse(streamed)).toEqual({ city: 'Paris' });
  });
});

describe('an OpenAI API brainstem does not serve', () => {
  // The Vercel AI SDK's own OpenAI provider (@ai-sdk/openai) sends `openai('local')` to the Responses
  // API, as the openai SDK's `responses.create` does: its user read "No route POST /v1/responses."
  // and had to guess that brainstem speaks Chat Completions, and how to make the SDK use it.
  it('the Responses API is answered with what to send instead, and how to ask the SDKs for it', async () => {
    const err = await svc.client.responses.create({ model: 'local', input: 'hi' }).then(
      () => undefined,
      (e: unknown) => e as { status?: number; message?: string },
    );
    expect(err?.status).toBe(404);
    expect(err?.message).toContain('No route POST /v1/responses.');
    expect(err?.message).toContain('POST /v1/chat/completions');
    expect(err?.message).toContain("openai.chat('<mode>')");
    expect(err?.message).toContain('useResponsesApi: false');
  });

  it('another path under /v1 names the routes that are served', async () => {
    const r = await fetch(`${svc.url}/v1/embeddings`, {
      method: 'POST',
      headers: { authorization: `Bearer ${svc.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'local', input: 'hi' }),
    });
    expect(r.status).toBe(404);
    const { error } = (await r.json()) as { error: { message: string; code: string } };
    expect(error.code).toBe('not_found');
    expect(error.message).toBe(
      'No route POST /v1/embeddings. brainstem’s OpenAI-compatible endpoint serves POST /v1/chat/completions, GET /v1/models and GET /v1/models/{id}.',
    );
  });
});

describe('OpenClaw on a provider block from an older brainstem', () => {
  it('is told, once, to run openclaw-config again', async () => {
    const { logger, logs } = recordingLogger('info');
    const old = await startTestService({ env: { LLAMA_BASE_URL: llama.baseUrl }, logger });
    try {
      // What OpenClaw sends each turn: its internal context in the last user message.
      const turn = (headers: Record<string, string>) =>
        old.client.chat.completions.create(
          {
            model: 'local',
            messages: [
              { role: 'system', content: 'You are the assistant.' },
              { role: 'user', content: 'hello' },
              // As OpenClaw sends its internal context: a text part of the last user message.
              {
                role: 'user',
                content: [
                  {
                    type: 'text',
                    text: '<<<BEGIN_OPENCLAW_INTERNAL_CONTEXT>>>\nx\n<<<END_OPENCLAW_INTERNAL_CONTEXT>>>',
                  },
                ],
              },
            ],
          },
          { headers },
        );
      const told = () => logs.filter((l) => /from an older brainstem/.test(String(l.msg)));
      await turn({ 'x-brainstem-client': 'openclaw' });
      expect(told()).toHaveLength(0);
      await turn({});
      await turn({});
      expect(told()).toHaveLength(1);
      expect(told()[0]?.msg).toMatch(/npm run openclaw-config -- --apply/);
    } finally {
      await old.close();
    }
  });
});
