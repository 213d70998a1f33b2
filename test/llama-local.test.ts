import { mkdtempSync } from 'node:fs';
import { mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { createServer as createHttpsServer } from 'node:https';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LlamaLocalBrain } from '../brains/llama-local/index.js';
import { filterModeSections, PersonaPrompt } from '../brains/llama-local/persona.js';
import { ThinkFilter } from '../brains/llama-local/think-filter.js';
import type { ChatMessage, ToolDefinition, TurnEvent, TurnRequest } from '../brains/types.js';
import { type Config, loadConfig, type ModeConfig } from '../src/config.js';
import { type FakeLlama, startFakeLlama } from './fakes/llama.js';
import { TEST_TLS_CERT, TEST_TLS_KEY } from './fakes/tls.js';
import { modeConfig } from './helpers/mode-config.js';

const logger = pino({ level: 'silent' });

/** The `llama` section's defaults, as a start with no config file has them. */
const llamaConfig: Config['llama'] = loadConfig(
  {},
  mkdtempSync(path.join(tmpdir(), 'llama-defaults-')),
).llama;

function mode(over: Partial<ModeConfig> = {}): ModeConfig {
  return modeConfig({ id: 'local', kind: 'llama', ...over });
}

function brainFor(baseUrl: string, over: Partial<ModeConfig> = {}, llama: Partial<Config['llama']> = {}) {
  return new LlamaLocalBrain({ mode: mode(over), baseUrl, llama: { ...llamaConfig, ...llama }, logger });
}

function turnReq(text: string, over: Partial<TurnRequest> = {}): TurnRequest {
  return {
    sessionKey: 'test',
    messages: [{ role: 'user', content: text }],
    freshSession: true,
    ...over,
  };
}

async function collect(events: AsyncIterable<TurnEvent>): Promise<TurnEvent[]> {
  const out: TurnEvent[] = [];
  for await (const e of events) out.push(e);
  return out;
}

/** A signal nobody aborts: a turn ends by itself or by the test's own abort, never by a clock. */
const running = () => new AbortController().signal;

const textOf = (events: TurnEvent[]) => events.map((e) => (e.type === 'text' ? e.text : '')).join('');
/** The tokens of the logprobs the events carry, joined: what they spell. */
const tokensOf = (events: TurnEvent[]) =>
  events
    .flatMap((e) => (e.type === 'logprobs' ? e.content : []))
    .map((l) => (l as { token: string }).token)
    .join('');

function deferred() {
  let resolve: () => void = () => undefined;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

type SentBody = { messages: ChatMessage[]; tools?: ToolDefinition[]; [k: string]: unknown };

let fake: FakeLlama;
beforeAll(async () => {
  fake = await startFakeLlama();
});
afterAll(async () => {
  await fake.close();
});
afterEach(() => {
  fake.setLoading(false);
  fake.script((body) => ({ chunks: [`echo ${body.messages?.length ?? 0}`] }));
});

const lastChat = () => {
  const r = fake.requests.filter((q) => q.path === '/v1/chat/completions').at(-1);
  if (!r) throw new Error('no chat request reached the fake');
  return r;
};

describe('ThinkFilter', () => {
  const cases: [string, string][] = [
    ['Hello <think>secret</think>world', 'Hello world'],
    ['<think>\nreasoning\n</think>\n\nThe answer', 'The answer'],
    ['x <think>a</think>y<think>b</think>z', 'x yz'],
    ['a < b and <thinking> is not a tag </th', 'a < b and <thinking> is not a tag </th'],
    ['ok <think>never closed', 'ok '],
    ['ends with <thi', 'ends with <thi'],
    ['no tags at all', 'no tags at all'],
  ];

  const run = (pieces: string[]) => {
    const f = new ThinkFilter();
    return pieces.map((p) => f.push(p)).join('') + f.flush();
  };

  it.each(cases)('strips %j at every split into two and three pieces', (input, expected) => {
    for (let i = 0; i <= input.length; i++) {
      expect(run([input.slice(0, i), input.slice(i)]), `split at ${i}`).toBe(expected);
      for (let j = i; j <= input.length; j++) {
        expect(run([input.slice(0, i), input.slice(i, j), input.slice(j)]), `split at ${i},${j}`).toBe(
          expected,
        );
      }
    }
    expect(run([...input]), 'one character at a time').toBe(expected);
  });

  // DeepSeek-R1, QwQ and Qwen3 Thinking templates end the prompt with `<think>\n`: with llama-server's
  // `--reasoning-format none` the content is `reasoning</think>answer`, its opening tag never sent.
  const opened = (pieces: string[]) => {
    const f = new ThinkFilter(true);
    return pieces.map((p) => f.push(p)).join('') + f.flush();
  };
  it.each([
    ['The user greets me. I should reply.</think>\n\nHello!', 'Hello!'],
    ['<think>the model opened it anyway</think>Hi', 'Hi'],
    ['plan</think>a <think>b</think>c', 'a c'],
    // No `</think>`: the setting does not fit the model, and the answer is not lost.
    ['just an answer', 'just an answer'],
  ])(
    'takes the text before the first </think> as reasoning when the template opened the block: %j',
    (input, expected) => {
      for (let i = 0; i <= input.length; i++) {
        expect(opened([input.slice(0, i), input.slice(i)]), `split at ${i}`).toBe(expected);
      }
      expect(opened([...input]), 'one character at a time').toBe(expected);
    },
  );

  it('shows nothing of a think block the template opened while it streams', () => {
    const f = new ThinkFilter(true);
    expect(f.push('The user greets me.')).toBe('');
    expect(f.push(' I should reply.</th')).toBe('');
    expect(f.push('ink>\n\nHel')).toBe('Hel');
    expect(f.push('lo!')).toBe('lo!');
    expect(f.flush()).toBe('');
  });

  it('never emits part of a tag before it is complete', () => {
    const f = new ThinkFilter();
    expect(f.push('Hi <th')).toBe('Hi ');
    expect(f.push('ink>plan</th')).toBe('');
    expect(f.push('ink> there')).toBe(' there');
  });
});

describe('LlamaLocalBrain streaming', () => {
  it('sends an OpenAI streaming request', async () => {
    fake.reply({ chunks: ['ok'] });
    await collect(
      brainFor(fake.baseUrl, { model: 'qwen3' }).turn(turnReq('hi', { maxTokens: 64 }), running()),
    );
    expect(lastChat().body).toMatchObject({
      model: 'qwen3',
      stream: true,
      stream_options: { include_usage: true },
      max_tokens: 64,
      messages: [{ role: 'user', content: 'hi' }],
    });
    await collect(brainFor(fake.baseUrl).turn(turnReq('hi'), running()));
    expect(lastChat().body).toMatchObject({ model: 'default' });
    expect(lastChat().body).not.toHaveProperty('max_tokens');
  });

  it('yields the first delta while the upstream is still holding the rest', async () => {
    const gate = deferred();
    fake.reply({
      chunks: ['Hel', { wait: gate.promise }, 'lo'],
      usage: { prompt_tokens: 12, completion_tokens: 3 },
    });
    const it = brainFor(fake.baseUrl).turn(turnReq('hi'), running())[Symbol.asyncIterator]();

    expect((await it.next()).value).toEqual({ type: 'text', text: 'Hel' });
    gate.resolve();
    const rest: TurnEvent[] = [];
    for (let r = await it.next(); !r.done; r = await it.next()) rest.push(r.value);
    expect(rest).toEqual([
      { type: 'text', text: 'lo' },
      {
        type: 'usage',
        usage: { costUsd: 0, inputTokens: 12, outputTokens: 3, cacheReadTokens: 0, cacheWriteTokens: 0 },
      },
      { type: 'done', finishReason: 'stop' },
    ]);
  });

  // Each chunk of the fake is one token: a split inside a tag makes a token that straddles the block's edge.
  it('removes think blocks split at every position across chunks, and the logprobs of what it removes', async () => {
    const input = '<think>plan it</think>\n\nAnswer <b>here</b>';
    const brain = brainFor(fake.baseUrl);
    for (let i = 1; i < input.length; i++) {
      fake.reply({ chunks: [input.slice(0, i), input.slice(i)] });
      const events = await collect(brain.turn(turnReq('hi', { options: { logprobs: true } }), running()));
      expect(textOf(events), `split at ${i}`).toBe('Answer <b>here</b>');
      expect(tokensOf(events), `split at ${i}`).toBe('Answer <b>here</b>');
      expect(events.at(-1)).toEqual({ type: 'done', finishReason: 'stop' });
    }
  });

  it('with templateOpensThink, hides the reasoning before a </think> split at every position across chunks, and its logprobs', async () => {
    const input = 'The user greets me. I should reply.</think>\n\nHello <b>there</b>';
    const brain = brainFor(fake.baseUrl, { templateOpensThink: true });
    const asked = turnReq('hi', { options: { logprobs: true } });
    for (let i = 1; i < input.length; i++) {
      fake.reply({ chunks: [input.slice(0, i), input.slice(i)] });
      const events = await collect(brain.turn(asked, running()));
      expect(textOf(events), `split at ${i}`).toBe('Hello <b>there</b>');
      expect(tokensOf(events), `split at ${i}`).toBe('Hello <b>there</b>');
      expect(events.at(-1)).toEqual({ type: 'done', finishReason: 'stop' });
    }
    // No </think> came: the text is shown at the end after all, and its logprobs with it.
    fake.reply({ chunks: ['just', ' an answer'] });
    const events = await collect(brain.turn(asked, running()));
    expect(events.filter((e) => e.type === 'text' || e.type === 'logprobs')).toMatchObject([
      { type: 'text', text: 'just an answer' },
      { type: 'logprobs', content: [{ token: 'just' }, { token: ' an answer' }] },
    ]);
  });

  it('ignores reasoning_content deltas', async () => {
    fake.reply({ chunks: [{ reasoning: 'let me think' }, 'Hi'] });
    const events = await collect(brainFor(fake.baseUrl).turn(turnReq('hi'), running()));
    expect(textOf(events)).toBe('Hi');
  });
});

describe('LlamaLocalBrain tools', () => {
  const tool = (name: string): ToolDefinition => ({
    type: 'function',
    function: { name, description: name, parameters: { type: 'object' } },
  });
  const tools = [tool('read'), tool('exec'), tool('web_search')];

  it('passes tool_call deltas through in OpenAI shape and finishes with tool_calls', async () => {
    fake.reply({
      chunks: [
        { toolCall: { index: 0, id: 'call_1', name: 'read', arguments: '' } },
        { toolCall: { index: 0, arguments: '{"path":' } },
        { toolCall: { index: 0, arguments: '"a.txt"}' } },
      ],
    });
    const events = await collect(
      brainFor(fake.baseUrl).turn(turnReq('read a.txt', { tools, toolChoice: 'auto' }), running()),
    );
    expect(events.filter((e) => e.type !== 'usage')).toEqual([
      { type: 'tool_call', index: 0, id: 'call_1', name: 'read' },
      { type: 'tool_call', index: 0, arguments: '{"path":' },
      { type: 'tool_call', index: 0, arguments: '"a.txt"}' },
      { type: 'done', finishReason: 'tool_calls' },
    ]);
  });

  // Which of the client's tools a mode keeps is the core's job (src/tool-filter.ts): the brain sends what it gets.
  it('sends the tools and tool_choice it is given, and neither when it gets no tools', async () => {
    await collect(brainFor(fake.baseUrl).turn(turnReq('hi', { tools, toolChoice: 'auto' }), running()));
    const body = lastChat().body as SentBody;
    expect(body.tools?.map((t) => t.function.name)).toEqual(['read', 'exec', 'web_search']);
    expect(body.tool_choice).toBe('auto');
    await collect(brainFor(fake.baseUrl).turn(turnReq('hi', { toolChoice: 'auto' }), running()));
    expect(lastChat().body).not.toHaveProperty('tools');
    expect(lastChat().body).not.toHaveProperty('tool_choice');
  });

  it('passes the sampling options on under their own names, and streams logprobs', async () => {
    fake.reply({ chunks: ['a', 'b'] });
    const events = await collect(
      brainFor(fake.baseUrl).turn(
        turnReq('hi', { options: { temperature: 0, seed: 3, stop: 'x', logprobs: true, top_logprobs: 1 } }),
        AbortSignal.timeout(5_000),
      ),
    );
    expect(lastChat().body).toMatchObject({
      temperature: 0,
      seed: 3,
      stop: 'x',
      logprobs: true,
      top_logprobs: 1,
    });
    const logprobs = events.flatMap((e) => (e.type === 'logprobs' ? e.content : []));
    expect(logprobs).toMatchObject([{ token: 'a', top_logprobs: [{ token: 'a' }] }, { token: 'b' }]);
  });
});

describe('persona and extra context', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'brainstem-persona-'));
    await writeFile(path.join(dir, 'SOUL.md'), '# Soul\nYou are Nyx, dry and kind.\n');
    await writeFile(
      path.join(dir, 'AGENTS.md'),
      [
        '# Agents',
        'Intro meant for the framework only.',
        '## Safety [ALL MODES]',
        'Never run rm -rf.',
        '### Project work [ANKLUME MODE]',
        'Use the anklume Makefile.',
        '### Tone',
        'Short answers.',
        '## Coding [ANKLUME MODE]',
        'Run make test before committing.',
        '```',
        '# [LOCAL MODE] not a heading inside a fence',
        '```',
        '## Chat [LOCAL MODE] [ASSISTANT MODE]',
        'You run on a small local model: keep it simple.',
        '## Other',
        'Untagged, dropped.',
      ].join('\n'),
    );
    await writeFile(path.join(dir, 'MEMORY.md'), 'The user lives in Lyon.\n');
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps the [ALL MODES] and own-mode sections of AGENTS.md', () => {
    const agents = [
      '# Agents',
      'intro',
      '## Safety [ALL MODES]',
      'safe',
      '### Deep [ANKLUME MODE]',
      'anklume only',
      '### Untagged child',
      'inherits keep',
      '## Coding [ANKLUME MODE]',
      '```md',
      '## [LOCAL MODE] fenced',
      '```',
      '## Chat [local mode]',
      'chat',
    ].join('\n');
    expect(filterModeSections(agents, 'local')).toBe(
      [
        '## Safety [ALL MODES]',
        'safe',
        '### Untagged child',
        'inherits keep',
        '## Chat [local mode]',
        'chat',
      ].join('\n'),
    );
    expect(filterModeSections(agents, 'anklume')).toContain('anklume only');
    expect(filterModeSections(agents, 'anklume')).toContain('## [LOCAL MODE] fenced');
  });

  it('replaces the incoming system and developer messages with the persona prompt', async () => {
    const huge = `OPENCLAW SYSTEM PROMPT ${'x'.repeat(50_000)}`;
    await collect(
      brainFor(fake.baseUrl, { personaDir: dir }).turn(
        turnReq('hello', {
          messages: [
            { role: 'system', content: huge },
            { role: 'developer', content: 'developer rules' },
            { role: 'user', content: 'hello' },
          ],
        }),
        running(),
      ),
    );
    const { messages } = lastChat().body as SentBody;
    expect(messages.map((m) => m.role)).toEqual(['system', 'user']);
    const prompt = String(messages[0]?.content);
    expect(prompt).toContain('You are Nyx');
    expect(prompt).toContain('Never run rm -rf.');
    expect(prompt).toContain('Short answers.');
    expect(prompt).toContain('keep it simple');
    expect(prompt).toContain('The user lives in Lyon.');
    expect(prompt).not.toContain('anklume');
    expect(prompt).not.toContain('Intro meant for the framework');
    expect(prompt).not.toContain('Untagged, dropped.');
    expect(prompt).not.toContain('OPENCLAW SYSTEM PROMPT');
    expect(prompt.length).toBeLessThan(1_000);
  });

  it('re-reads a persona file only when its mtime or size changes', async () => {
    const memory = path.join(dir, 'MEMORY.md');
    const persona = new PersonaPrompt(dir, 'local');
    // Whole seconds, so the mtime survives the round trip through utimes exactly.
    await utimes(memory, 1_700_000_000, 1_700_000_000);
    expect(await persona.build()).toContain('The user lives in Lyon.');
    // Same size, same mtime: the cached text is served (proof the file is not read again).
    await writeFile(memory, 'The user lives in Nice.\n');
    await utimes(memory, 1_700_000_000, 1_700_000_000);
    expect(await persona.build()).toContain('Lyon');
    await utimes(memory, 1_700_000_100, 1_700_000_100);
    expect(await persona.build()).toContain('The user lives in Nice.');
  });

  it('skips missing persona files', async () => {
    const only = await mkdtemp(path.join(tmpdir(), 'brainstem-persona-'));
    await writeFile(path.join(only, 'SOUL.md'), 'Just a soul.');
    expect(await new PersonaPrompt(only, 'local').build()).toBe('Just a soul.');
    expect(await new PersonaPrompt(path.join(only, 'missing'), 'local').build()).toBeUndefined();
    await rm(only, { recursive: true, force: true });
  });

  it('adds extraContext to the leading system message for that turn', async () => {
    const brain = brainFor(fake.baseUrl);
    await collect(
      brain.turn(
        turnReq('hi', {
          messages: [
            { role: 'system', content: 'client system' },
            { role: 'user', content: 'hi' },
          ],
          extraContext: 'Usage today: 3 turns.',
        }),
        running(),
      ),
    );
    expect((lastChat().body as SentBody).messages).toEqual([
      { role: 'system', content: 'client system\n\nUsage today: 3 turns.' },
      { role: 'user', content: 'hi' },
    ]);

    await collect(brain.turn(turnReq('hi', { extraContext: 'Usage today: 4 turns.' }), running()));
    expect((lastChat().body as SentBody).messages).toEqual([
      { role: 'system', content: 'Usage today: 4 turns.' },
      { role: 'user', content: 'hi' },
    ]);

    await collect(
      brainFor(fake.baseUrl, { personaDir: dir }).turn(
        turnReq('hi', { extraContext: 'Usage today: 5 turns.' }),
        running(),
      ),
    );
    const [system] = (lastChat().body as SentBody).messages;
    expect(String(system?.content)).toMatch(/You are Nyx[\s\S]*Usage today: 5 turns\.$/);
  });
});

describe('LlamaLocalBrain failures', () => {
  async function closedPort(): Promise<number> {
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as { port: number };
    await new Promise<void>((r) => server.close(() => r()));
    return port;
  }

  it('reports an unreachable upstream as upstream_down without waiting for a timeout, naming the URL and LLAMA_BASE_URL', async () => {
    const baseUrl = `http://127.0.0.1:${await closedPort()}/v1`;
    // A connect timeout far beyond the test's: the refused connection itself must end the turn.
    const brain = brainFor(baseUrl, {}, { connectTimeoutMs: 600_000 });
    const events = await collect(brain.turn(turnReq('hi'), running()));
    expect(events).toHaveLength(1);
    const [e] = events;
    expect(e?.type === 'error' && e.error.kind).toBe('upstream_down');
    expect(e?.type === 'error' && e.error.message).toContain(`${baseUrl}/chat/completions`);
    expect(e?.type === 'error' && e.error.message).toContain('from LLAMA_BASE_URL (llama.baseUrl).');
    expect(await brain.ready()).toEqual({
      ok: false,
      reason: {
        en: expect.stringContaining(`cannot reach the local model at ${baseUrl.replace(/\/v1$/, '')}/health`),
        fr: expect.stringContaining(
          `impossible de joindre le modèle local à ${baseUrl.replace(/\/v1$/, '')}/health`,
        ),
      },
      kind: 'unreachable',
      // Nothing listens there: a switch that starts nothing need not wait for it.
      down: true,
    });
  });

  it('names the mode’s own baseUrl as where an unreachable address comes from, when the mode sets one', async () => {
    const baseUrl = `http://127.0.0.1:${await closedPort()}/v1`;
    const ready = await brainFor(baseUrl, { baseUrl }).ready();
    expect(ready.ok || ready.reason).toEqual({
      en: expect.stringContaining('Its address comes from modes.local.baseUrl.'),
      fr: expect.stringContaining('Son adresse vient de modes.local.baseUrl.'),
    });
  });

  it('turns an HTTP 500 into upstream_error with the upstream message', async () => {
    fake.reply({ status: 500, error: 'boom: kv cache exhausted' });
    const events = await collect(brainFor(fake.baseUrl).turn(turnReq('hi'), running()));
    expect(events).toEqual([
      {
        type: 'error',
        error: {
          kind: 'upstream_error',
          status: 500,
          message: expect.stringContaining('boom: kv cache exhausted'),
          fr: expect.stringMatching(/a répondu HTTP 500 : .*boom: kv cache exhausted/),
        },
      },
    ]);
  });

  it('on a 404 from a base URL without /v1 (the address llama-server prints at start), says to add it, naming the setting', async () => {
    // Its /health answers at the root, so the mode showed ready; each turn then read only
    // "…/chat/completions answered HTTP 404: File Not Found".
    const events = await collect(brainFor(fake.url).turn(turnReq('hi'), running()));
    expect(events).toEqual([
      {
        type: 'error',
        error: {
          kind: 'bad_request',
          status: 404,
          message: `${fake.url}/chat/completions answered HTTP 404: File Not Found. The OpenAI API of llama-server and Ollama is under /v1: set LLAMA_BASE_URL (llama.baseUrl) to ${fake.url}/v1`,
          fr: `${fake.url}/chat/completions a répondu HTTP 404 : File Not Found. L'API OpenAI de llama-server et d'Ollama est sous /v1 : mettez LLAMA_BASE_URL (llama.baseUrl) à ${fake.url}/v1`,
        },
      },
    ]);
    const own = await collect(
      brainFor(`${fake.url}/`, { baseUrl: `${fake.url}/` }).turn(turnReq('hi'), running()),
    );
    expect(own[0]?.type === 'error' && own[0].error.message).toContain(
      `set modes.local.baseUrl to ${fake.url}/v1`,
    );
    // With /v1 already there, a 404 is something else: no advice to add it.
    fake.reply({ status: 404, error: 'model not found' });
    const other = await collect(brainFor(fake.baseUrl).turn(turnReq('hi'), running()));
    const said = other[0]?.type === 'error' ? other[0].error.message : '';
    expect(said.startsWith(`${fake.baseUrl}/chat/completions answered HTTP 404: model not found.`)).toBe(
      true,
    );
    expect(said).not.toContain('/v1:');
  });

  it('says the model is still loading on a 503', async () => {
    fake.setLoading(true);
    const events = await collect(brainFor(fake.baseUrl).turn(turnReq('hi'), running()));
    expect(events).toEqual([
      {
        type: 'error',
        error: {
          kind: 'unavailable',
          status: 503,
          retryAfterMs: 10_000,
          message: expect.stringMatching(/still loading \(HTTP 503: Loading model\)/),
          fr: expect.stringMatching(
            /encore en chargement \(HTTP 503 : Loading model\) ; réessayez dans un instant/,
          ),
        },
      },
    ]);
  });

  it('fails a stream that stops without a finish reason or [DONE]', async () => {
    fake.reply({ chunks: ['partial'], truncate: true });
    const events = await collect(brainFor(fake.baseUrl).turn(turnReq('hi'), running()));
    expect(textOf(events)).toBe('partial');
    expect(events.at(-1)).toMatchObject({
      type: 'error',
      error: { kind: 'upstream_error', message: expect.stringContaining('ended before') },
    });
  });

  it('ends a turn whose upstream goes silent mid-answer longer than llama.streamIdleMs', async () => {
    const never = new Promise<void>(() => undefined);
    fake.reply({ chunks: ['first', { wait: never }, 'never sent'] });
    // Only the idle timeout can end this turn; the signal is a safety net for a broken build.
    const brain = brainFor(fake.baseUrl, {}, { streamIdleMs: 300 });
    const events = await collect(brain.turn(turnReq('hi'), AbortSignal.timeout(60_000)));
    expect(events.at(-1)).toEqual({
      type: 'error',
      error: {
        kind: 'upstream_error',
        message: expect.stringMatching(
          /stopped sending mid-answer: nothing for 300 ms \(llama\.streamIdleMs\)/,
        ),
        fr: expect.stringMatching(/s’est tu en pleine réponse : rien pendant 300 ms \(llama\.streamIdleMs\)/),
      },
    });
    expect(await lastChat().ended).toBe('closed');
  });

  it('reports an error chunk sent mid-stream', async () => {
    fake.reply({
      chunks: ['a', { raw: 'data: {"error":{"code":500,"message":"context overflow"}}\n\n' }],
      truncate: true,
    });
    const events = await collect(brainFor(fake.baseUrl).turn(turnReq('hi'), running()));
    expect(events.at(-1)).toMatchObject({
      type: 'error',
      error: { kind: 'upstream_error', message: expect.stringContaining('context overflow') },
    });
  });

  // Many llama-server builds write a failure after the headers as a non-standard SSE field, not as data.
  it('reports the reason llama-server gives in an `error:` field mid-stream', async () => {
    fake.reply({
      chunks: [
        'a',
        {
          raw: 'error: {"code":500,"message":"Input prompt is too big compared to KV size","type":"server_error"}\n\n',
        },
      ],
      truncate: true,
    });
    const events = await collect(brainFor(fake.baseUrl).turn(turnReq('hi'), running()));
    expect(textOf(events)).toBe('a');
    expect(events.at(-1)).toEqual({
      type: 'error',
      error: {
        kind: 'upstream_error',
        message: 'the local model failed mid-answer: Input prompt is too big compared to KV size',
        fr: 'le modèle local a échoué en pleine réponse : Input prompt is too big compared to KV size',
      },
    });
  });

  it('quotes an upstream message of any length cut to 300 characters', async () => {
    const long = `${'x'.repeat(5000)} end`;
    fake.reply({
      chunks: ['a', { raw: `error: ${JSON.stringify({ code: 500, message: long })}\n\n` }],
      truncate: true,
    });
    const events = await collect(brainFor(fake.baseUrl).turn(turnReq('hi'), running()));
    const last = events.at(-1);
    const message = last?.type === 'error' ? last.error.message : '';
    expect(message).toBe(`the local model failed mid-answer: ${'x'.repeat(299)}…`);
  });

  it.each(['error: ', 'data: {"error":'])(
    'says a context overflow reported mid-stream (%s…) as context_overflow, as its HTTP 400',
    async (prefix) => {
      const said =
        '{"code":400,"message":"the request exceeds the available context size, try increasing it","type":"exceed_context_size_error","n_prompt_tokens":5000,"n_ctx":4096}';
      fake.reply({
        chunks: [{ raw: `${prefix}${said}${prefix.startsWith('data') ? '}' : ''}\n\n` }],
        truncate: true,
      });
      const events = await collect(brainFor(fake.baseUrl).turn(turnReq('hi'), running()));
      expect(events.at(-1)).toEqual({
        type: 'error',
        error: {
          kind: 'context_overflow',
          message: expect.stringMatching(
            /^the conversation \(5000 tokens\) exceeds the available context size of the local model at .* \(4096 tokens\)/,
          ),
          fr: expect.stringMatching(
            /^la conversation \(5000 jetons\) dépasse la taille de contexte du modèle local à .* \(4096 jetons\) : commencez/,
          ),
        },
      });
    },
  );

  it('rejects a chunk that is not JSON', async () => {
    fake.reply({ chunks: [{ raw: 'data: <html>oops</html>\n\n' }], truncate: true });
    const events = await collect(brainFor(fake.baseUrl).turn(turnReq('hi'), running()));
    expect(events.at(-1)).toMatchObject({ type: 'error', error: { kind: 'upstream_error' } });
  });

  it('aborts promptly, ends with aborted, and closes the upstream connection', async () => {
    const never = new Promise<void>(() => undefined);
    fake.reply({ chunks: ['first', { wait: never }, 'never sent'] });
    const ctrl = new AbortController();
    const it = brainFor(fake.baseUrl).turn(turnReq('hi'), ctrl.signal)[Symbol.asyncIterator]();
    expect((await it.next()).value).toEqual({ type: 'text', text: 'first' });

    // The upstream holds the rest forever: only the abort can end the turn.
    const pending = it.next();
    ctrl.abort();
    expect((await pending).value).toMatchObject({ type: 'error', error: { kind: 'aborted' } });
    expect((await it.next()).done).toBe(true);
    expect(await lastChat().ended).toBe('closed');
  });

  it('ends at once with aborted when the signal is already aborted', async () => {
    const before = fake.requests.length;
    const events = await collect(brainFor(fake.baseUrl).turn(turnReq('hi'), AbortSignal.abort()));
    expect(events).toEqual([
      { type: 'error', error: { kind: 'aborted', message: expect.any(String), fr: expect.any(String) } },
    ]);
    expect(fake.requests.length).toBe(before);
  });
});

describe('LlamaLocalBrain.ready', () => {
  it('probes /health at the server root, not /v1/models', async () => {
    const brain = brainFor(fake.baseUrl);
    fake.setLoading(true);
    const loading = await brain.ready();
    expect(loading).toEqual({
      ok: false,
      reason: {
        en: expect.stringMatching(/still loading.*Loading model/),
        fr: expect.stringMatching(/encore en chargement.*Loading model/),
      },
      kind: 'loading',
    });
    fake.setLoading(false);
    expect((await brain.ready()).ok).toBe(true);
    const probed = fake.requests.filter((r) => r.method === 'GET').map((r) => r.path);
    expect(probed.slice(-2)).toEqual(['/health', '/health']);
    expect(probed).not.toContain('/v1/models');
  });

  it('is bounded by a short timeout when the server accepts but never answers', async () => {
    const sockets: Socket[] = [];
    const silent = createServer((s) => sockets.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const { port } = silent.address() as { port: number };
    // The server never answers: only connectTimeoutMs can end the probe.
    const result = await brainFor(`http://127.0.0.1:${port}/v1`, {}, { connectTimeoutMs: 300 }).ready();
    expect(result).toEqual({
      ok: false,
      reason: {
        en: expect.stringContaining('did not answer within 300 ms'),
        fr: expect.stringContaining('n’a pas répondu en 300 ms'),
      },
      kind: 'unreachable',
    });
    await new Promise<void>((r) => {
      silent.close(() => r());
      for (const s of sockets) s.destroy();
    });
  });
});

describe('LlamaLocalBrain on Ollama', () => {
  let ollama: FakeLlama;
  beforeAll(async () => {
    ollama = await startFakeLlama({ ollama: { models: ['qwen2.5:7b', 'llama3.2'] } });
  });
  afterAll(async () => {
    await ollama.close();
  });

  it('is ready when Ollama (no /health) has pulled the mode’s model, a name without tag meaning :latest', async () => {
    for (const model of ['qwen2.5:7b', 'llama3.2', 'llama3.2:latest']) {
      expect(await brainFor(ollama.baseUrl, { model }).ready()).toEqual({
        ok: true,
        detail: { en: `Ollama at ${ollama.url} has ${model}`, fr: `Ollama à ${ollama.url} a ${model}` },
      });
    }
    // healthPath "/" (Ollama's "Ollama is running"): the model is checked all the same.
    const rooted = brainFor(ollama.baseUrl, { model: 'mistral:7b' }, { healthPath: '/' });
    expect(await rooted.ready()).toMatchObject({ ok: false, final: true });
  });

  it('says at once, and for good, to `ollama pull` a model Ollama has not pulled, and to name one when the mode names none', async () => {
    expect(await brainFor(ollama.baseUrl, { model: 'llama3.2-vision:11b' }).ready()).toEqual({
      ok: false,
      reason: {
        en: `Ollama at ${ollama.url} has no model llama3.2-vision:11b: run \`ollama pull llama3.2-vision:11b\` on it, or set modes.local.model to one it has (qwen2.5:7b, llama3.2:latest)`,
        fr: expect.stringContaining('`ollama pull llama3.2-vision:11b`'),
      },
      final: true,
    });
    expect(await brainFor(ollama.baseUrl).ready()).toEqual({
      ok: false,
      reason: {
        en: `Ollama at ${ollama.url} answers a model by its name, and modes.local.model is not set: set it to one it has (qwen2.5:7b, llama3.2:latest; \`ollama list\` names them)`,
        fr: expect.stringContaining('modes.local.model'),
      },
      final: true,
    });
  });

  it('says a /health that is not there (a server other than llama-server and Ollama) for good, naming llama.healthPath', async () => {
    const ready = await brainFor(fake.baseUrl, {}, { healthPath: '/nowhere' }).ready();
    expect(ready).toEqual({
      ok: false,
      reason: {
        en: `${fake.url}/nowhere answered HTTP 404: File Not Found: the server has no /nowhere. Check LLAMA_BASE_URL (llama.baseUrl), or set llama.healthPath to a path it answers 200 on once its model is loaded`,
        fr: expect.stringContaining('llama.healthPath'),
      },
      final: true,
    });
  });

  it('answers a turn with a model Ollama has not pulled by saying `ollama pull NAME`, and the setting when the mode names none', async () => {
    const events = await collect(
      brainFor(ollama.baseUrl, { model: 'llama3.2-vision:11b' }).turn(turnReq('hi'), running()),
    );
    expect(events).toEqual([
      {
        type: 'error',
        error: {
          kind: 'bad_request',
          status: 404,
          message: `${ollama.baseUrl}/chat/completions answered HTTP 404: model "llama3.2-vision:11b" not found, try pulling it first. Pull it on that server (Ollama: \`ollama pull llama3.2-vision:11b\`), or set modes.local.model to a model it has (\`ollama list\`)`,
          fr: expect.stringContaining('`ollama pull llama3.2-vision:11b`'),
        },
      },
    ]);
    const unnamed = await collect(brainFor(ollama.baseUrl).turn(turnReq('hi'), running()));
    expect(unnamed).toEqual([
      {
        type: 'error',
        error: expect.objectContaining({
          message: expect.stringContaining(
            'modes.local.model is not set, so the name sent was "default": set it to a model the server has (Ollama: `ollama list`)',
          ),
        }),
      },
    ]);
  });

  it('answers images a text model refuses (Ollama’s 500) as a request to change, naming modes.<id>.vision, not a server error clients retry', async () => {
    const withImage = turnReq('', {
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'what is this?' },
            { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } },
          ],
        },
      ],
    });
    const events = await collect(
      brainFor(ollama.baseUrl, { model: 'qwen2.5:7b', vision: true }).turn(withImage, running()),
    );
    expect(events).toEqual([
      {
        type: 'error',
        error: {
          kind: 'bad_request',
          status: 500,
          message: `${ollama.baseUrl}/chat/completions answered HTTP 500: this model is missing data required for image input. The model of mode local takes no images: set modes.local.vision to false (brainstem then says so before sending one), or serve a model that sees them (Ollama: a vision model such as llama3.2-vision; llama-server: its --mmproj)`,
          fr: expect.stringContaining('mettez modes.local.vision à false'),
        },
      },
    ]);
  });

  it('answers a mode that names a pulled model as Ollama takes it, in other capitals or with its registry and namespace written', async () => {
    for (const model of ['Qwen2.5:7B', 'registry.ollama.ai/library/qwen2.5:7b', 'LLAMA3.2']) {
      const brain = brainFor(ollama.baseUrl, { model });
      expect(await brain.ready()).toMatchObject({ ok: true });
      const events = await collect(brain.turn(turnReq('hi'), running()));
      expect(events.at(-1)).toEqual({ type: 'done', finishReason: 'stop' });
    }
    // In memory under the names Ollama lists them by, whatever name loaded them.
    expect([...ollama.loaded].sort()).toEqual(['llama3.2:latest', 'qwen2.5:7b']);
  });

  it('streams a turn of a pulled model whose name has a colon, sent as it is', async () => {
    const events = await collect(
      brainFor(ollama.baseUrl, { model: 'qwen2.5:7b' }).turn(turnReq('hi'), running()),
    );
    expect(events.at(-1)).toEqual({ type: 'done', finishReason: 'stop' });
    expect(ollama.requests.at(-1)?.body).toMatchObject({ model: 'qwen2.5:7b' });
  });
});

describe('LlamaLocalBrain.ready over https', () => {
  it('probes an https upstream over TLS and checks its certificate: a self-signed one is refused', async () => {
    let tlsRequests = 0;
    const server = createHttpsServer({ key: TEST_TLS_KEY, cert: TEST_TLS_CERT }, (_q, s) => {
      tlsRequests++;
      s.end('{"status":"ok"}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as { port: number };
    try {
      const result = await brainFor(`https://127.0.0.1:${port}/v1`).ready();
      // Something answers there (a server with the wrong certificate): not `down`.
      expect(result).toEqual({
        ok: false,
        reason: {
          en: expect.stringContaining('self-signed certificate'),
          fr: expect.stringContaining('self-signed certificate'),
        },
        kind: 'unreachable',
        down: false,
      });
      // The handshake ended there: no request was sent over the unchecked connection.
      expect(tlsRequests).toBe(0);
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});

describe('fake llama-server', () => {
  it('answers /v1/models even while loading, unlike /health', async () => {
    fake.setLoading(true);
    expect((await fetch(`${fake.baseUrl}/models`)).status).toBe(200);
    expect((await fetch(`${fake.url}/health`)).status).toBe(503);
  });

  it('answers a non-streaming completion with merged content and tool calls', async () => {
    fake.reply({
      chunks: [
        'a',
        'b',
        { toolCall: { index: 0, id: 'c1', name: 'read' } },
        { toolCall: { index: 0, arguments: '{}' } },
      ],
    });
    const res = await fetch(`${fake.baseUrl}/chat/completions`, {
      method: 'POST',
      body: JSON.stringify({ messages: [{ role: 'user', content: 'x' }] }),
    });
    expect(await res.json()).toMatchObject({
      object: 'chat.completion',
      choices: [
        {
          message: {
            role: 'assistant',
            content: 'ab',
            tool_calls: [{ id: 'c1', type: 'function', function: { name: 'read', arguments: '{}' } }],
          },
          finish_reason: 'tool_calls',
        },
      ],
      usage: { completion_tokens: 4 },
    });
  });

  it('echoes the last user message by default', async () => {
    const local = await startFakeLlama();
    const events = await collect(brainFor(local.baseUrl).turn(turnReq('hello there'), running()));
    expect(textOf(events)).toBe('echo: hello there');
    await local.close();
  });
});
