import type OpenAI from 'openai';
import { APIError } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeLlama, startFakeLlama } from './fakes/llama.js';
import { type LogRecord, recordingLogger } from './helpers/logs.js';
import { startTestService, type TestService } from './helpers/service.js';

// What llama-server itself refuses: a conversation longer than its context, and tools whose
// JSON Schemas it cannot compile into its tool-call grammar (the fake refuses both as it does).

let llama: FakeLlama;
let svc: TestService;
let logs: LogRecord[];

beforeAll(async () => {
  llama = await startFakeLlama();
  const recording = recordingLogger('info');
  logs = recording.logs;
  svc = await startTestService({
    logger: recording.logger,
    config: {
      defaultMode: 'local',
      llama: { baseUrl: llama.baseUrl },
      modes: { local: { kind: 'llama' } },
    },
  });
});
afterAll(async () => {
  await svc?.close();
  await llama?.close();
});

describe('a conversation longer than the local model’s context', () => {
  const long: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'word '.repeat(400) }];
  const openclaw = { headers: { 'x-brainstem-client': 'openclaw' } };

  /** The error the SDK throws for this request, streamed or not. */
  const refusal = async (stream: boolean, options?: OpenAI.RequestOptions) => {
    try {
      const res = await svc.client.chat.completions.create(
        { model: 'local', messages: long, stream },
        options,
      );
      if (stream) for await (const _ of res as AsyncIterable<unknown>);
    } catch (e) {
      return e;
    }
    throw new Error('the request was answered');
  };

  it('is HTTP 400 context_length_exceeded in llama-server’s words, for every client, OpenClaw included', async () => {
    llama.setContext(100);
    try {
      for (const [stream, options] of [
        [false, undefined],
        [true, undefined],
        [false, openclaw],
        [true, openclaw],
      ] as const) {
        const e = await refusal(stream, options);
        expect(e).toBeInstanceOf(APIError);
        const err = e as APIError;
        // Not a 502: clients retry those, and this one fails the same way every time.
        expect(err.status).toBe(400);
        expect(err.code).toBe('context_length_exceeded');
        // OpenClaw compacts its history on this phrase (llama-server's own), then sends it again.
        expect(err.message).toMatch(
          /the conversation \(\d+ tokens\) exceeds the available context size of the local model at .* \(100 tokens\): start a new conversation, or give llama-server a larger --ctx-size/,
        );
      }
    } finally {
      llama.setContext(undefined);
    }
    // The same conversation once it fits.
    const ok = await svc.client.chat.completions.create({ model: 'local', messages: long });
    expect(ok.choices[0]?.message.content).toContain('echo: word');
  });
});

describe('tools whose JSON Schema llama-server cannot compile into its grammar', () => {
  // As OpenClaw's cron tool has it: a script of up to 65536 characters, deep in the arguments.
  const cron: OpenAI.ChatCompletionTool = {
    type: 'function',
    function: {
      name: 'cron',
      description: 'Schedules jobs.',
      parameters: {
        type: 'object',
        properties: {
          job: {
            type: 'object',
            properties: {
              declarationKey: { type: 'string', pattern: '\\S' },
              trigger: {
                type: 'object',
                properties: {
                  script: { type: 'string', description: 'The script.', maxLength: 65536 },
                  kind: { type: 'string', enum: ['at', 'every'], maxLength: 20 },
                },
                required: ['script'],
              },
              tags: { type: 'array', items: { type: 'string', maxLength: 5000 }, maxItems: 10 },
            },
          },
        },
        required: ['job'],
      },
    },
  };
  const ask = () =>
    svc.client.chat.completions.create({
      model: 'local',
      messages: [{ role: 'user', content: 'schedule it' }],
      tools: [cron],
    });

  it('reach the model with those limits said in the descriptions; everything else as sent', async () => {
    // What llama-server does with them as sent.
    const direct = await fetch(`${llama.baseUrl}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'x' }], tools: [cron] }),
    });
    expect(direct.status).toBe(400);
    expect(await direct.text()).toContain('failed to parse grammar');

    const answer = await ask();
    expect(answer.choices[0]?.message.content).toContain('echo: schedule it');
    const sent = (llama.requests.at(-1)?.body as { tools?: unknown[] } | undefined)?.tools;
    // Name, description, types, enums, required and small bounds as the client sent them.
    expect(sent).toEqual([
      {
        type: 'function',
        function: {
          name: 'cron',
          description: 'Schedules jobs.',
          parameters: {
            type: 'object',
            properties: {
              job: {
                type: 'object',
                properties: {
                  declarationKey: { type: 'string', description: '(matching the pattern \\S)' },
                  trigger: {
                    type: 'object',
                    properties: {
                      script: { type: 'string', description: 'The script. (at most 65536 characters)' },
                      // A small bound stays: llama-server compiles it.
                      kind: { type: 'string', enum: ['at', 'every'], maxLength: 20 },
                    },
                    required: ['script'],
                  },
                  tags: {
                    type: 'array',
                    items: { type: 'string', description: '(at most 5000 characters)' },
                    maxItems: 10,
                  },
                },
              },
            },
            required: ['job'],
          },
        },
      },
    ]);

    // Said in the log once, naming each limit, not on every turn.
    await ask();
    const said = logs.filter((l) =>
      String(l.msg).startsWith('tool schema limits llama-server cannot compile'),
    );
    expect(said).toHaveLength(1);
    expect(said[0]?.moved).toEqual([
      'cron: job.declarationKey pattern \\S',
      'cron: job.trigger.script maxLength 65536',
      'cron: job.tags[] maxLength 5000',
    ]);
  });
});
