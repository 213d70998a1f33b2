import { once } from 'node:events';
import OpenAI, { APIError, APIUserAbortError } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGate, httpError, type RecordedRequest, text, toolUse } from './fakes/anthropic.js';
import { CLAUDE_CLI } from './helpers/claude-bin.js';
import { claudeOnFake } from './helpers/claude-fake.js';
import { dataUrlPart, randomPng } from './helpers/images.js';
import { processesIn } from './helpers/procs.js';
import { CLAUDE_BIN, startTestService, type TestService } from './helpers/service.js';

const claude = claudeOnFake();
let svc: TestService;
/** The same service without warm processes: every turn is a new CLI process, a follow-up `--resume`s. */
let cold: TestService;

beforeAll(async () => {
  const config = (warm: boolean) => ({
    claude: { bin: CLAUDE_BIN, env: claude.cli.env, maxRetries: 0, warm: { enabled: warm } },
    // A stream's headers wait for the brain's first event however long a loaded machine takes to start the CLI.
    server: { modeTag: false, streamHeadersWaitMs: 600_000 },
  });
  svc = await startTestService({ config: config(true) });
  cold = await startTestService({ config: config(false) });
});
afterAll(async () => {
  await svc?.close();
  await cold?.close();
});

const user = (content: string) => ({ role: 'user' as const, content });
const assistant = (content: string) => ({ role: 'assistant' as const, content });

/** The assistant texts the CLI sent in a Messages API request: what its session holds. */
const assistantTexts = (r: RecordedRequest | undefined) =>
  (r?.body?.messages ?? [])
    .filter((m) => m.role === 'assistant')
    .flatMap((m) =>
      typeof m.content === 'string'
        ? [m.content]
        : (m.content as { type: string; text?: string }[]).flatMap((b) =>
            b.type === 'text' && b.text ? [b.text] : [],
          ),
    );

describe('OpenAI endpoint over the real claude CLI', () => {
  it('streams: the client has the first words while the upstream still holds the rest', async () => {
    const g = createGate();
    claude.fake.script(() => text(['First words', ' and the rest'], { gate: g.promise, gateAfter: 1 }));
    const stream = await svc.client.chat.completions.create({
      model: 'assistant',
      messages: [user('stream please')],
      stream: true,
      stream_options: { include_usage: true },
    });
    let got = '';
    let usage: { prompt_tokens: number; completion_tokens: number } | undefined;
    for await (const chunk of stream) {
      got += chunk.choices[0]?.delta.content ?? '';
      if (chunk.usage) usage = chunk.usage;
      if (got === 'First words') g.open();
    }
    expect(got).toBe('First words and the rest');
    expect(usage?.completion_tokens).toBeGreaterThan(0);
  });

  it('reports the turn’s cost as `cost` (OpenRouter’s, which OpenClaw reads) and its cache writes on their own', async () => {
    claude.fake.script(() =>
      text('cached', {
        usage: {
          input_tokens: 1000,
          output_tokens: 20,
          cache_read_input_tokens: 300,
          cache_creation_input_tokens: 40,
        },
      }),
    );
    const stream = await svc.client.chat.completions.create({
      model: 'assistant',
      messages: [user('what does it cost?')],
      stream: true,
      stream_options: { include_usage: true },
    });
    type Usage = OpenAI.CompletionUsage & {
      cost?: number;
      cost_usd?: number;
      prompt_tokens_details?: { cache_write_tokens?: number };
    };
    let usage: Usage | undefined;
    for await (const chunk of stream) if (chunk.usage) usage = chunk.usage as Usage;
    expect(usage?.prompt_tokens).toBe(1340);
    expect(usage?.prompt_tokens_details).toEqual({ cached_tokens: 300, cache_write_tokens: 40 });
    expect(usage?.cost).toBeGreaterThan(0);
    expect(usage?.cost).toBe(usage?.cost_usd);
  });

  for (const path of ['on its warm process', 'with --resume on a new process'] as const) {
    it(`continues a Claude conversation ${path}, sending only the new turn`, async () => {
      const warm = path === 'on its warm process';
      const s = warm ? svc : cold;
      // The answer depends on the first exchange reaching the API again: lost history, wrong answer.
      claude.fake.script((r) => {
        if (!r.lastUserText.includes('second')) return text('noted');
        const earlier = JSON.stringify(r.body?.messages);
        return text(
          earlier.includes('remember kiwi') && earlier.includes('noted') ? 'you said kiwi' : 'no memory',
        );
      });
      const sessionKey = `continue-${warm ? 'warm' : 'cold'}`;
      const key = { headers: { 'x-session-key': sessionKey } };
      const first = [user('first: remember kiwi')];
      const before = new Set(processesIn(s.dir));
      const a = await s.client.chat.completions.create({ model: 'assistant', messages: first }, key);
      expect(a.choices[0]?.message.content).toBe('noted');
      const newProcesses = () => processesIn(s.dir).filter((pid) => !before.has(pid));
      // With the pool, the turn's process stays for the next one; without it, it is gone.
      if (warm) expect(newProcesses().length).toBeGreaterThan(0);
      else await expect.poll(newProcesses, { timeout: 30_000 }).toEqual([]);
      const held = newProcesses();

      const b = await s.client.chat.completions.create(
        {
          model: 'assistant',
          messages: [...first, { role: 'assistant', content: 'noted' }, user('second: what did I say?')],
        },
        key,
      );
      expect(b.choices[0]?.message.content).toBe('you said kiwi');
      // Warm: the same process answered (a new one would have replaced it in the pool).
      if (warm) expect(newProcesses()).toEqual(held);
      const last = claude.fake.mainRequests().at(-1);
      // The CLI rebuilt the history from its own session: the earlier turn is there, once.
      expect(last?.userTexts.filter((t) => t.includes('remember kiwi'))).toHaveLength(1);
      expect(last?.lastUserText).toContain('second: what did I say?');
      expect(s.service.core.sessions.get(sessionKey, 'assistant')?.brainSessionId).toMatch(/^[0-9a-f-]{36}$/);
    });
  }

  it('tells Claude the tool results after the last assistant message, in a new session and in a resumed one', async () => {
    // A local mode's call answered after a switch to a Claude mode (or with model `active`).
    const call = (id: string, city: string) => ({
      role: 'assistant' as const,
      content: null,
      tool_calls: [
        {
          id,
          type: 'function' as const,
          function: { name: 'get_weather', arguments: JSON.stringify({ city }) },
        },
      ],
    });
    const result = (id: string, content: string) => ({ role: 'tool' as const, tool_call_id: id, content });
    // The answer depends on the result, and the call it answers, reaching the API: a result
    // dropped, or a call Claude's session never saw told without its arguments, a wrong answer.
    claude.fake.script((r) => {
      if (r.lastUserText.endsWith('tool result (call_1, get_weather({"city":"Paris"})): SUNNY_21C'))
        return text('sunny in Paris');
      if (
        r.lastUserText ===
        '<history source="client">\nassistant called get_weather({"city":"Lyon"})\n</history>\n\ntool result (call_2, get_weather({"city":"Lyon"})): RAINY_12C'
      )
        return text('rainy in Lyon');
      return text('no result');
    });
    const key = { headers: { 'x-session-key': 'tool-results' } };
    const first = [user('Weather in Paris?'), call('call_1', 'Paris'), result('call_1', 'SUNNY_21C')];
    const a = await svc.client.chat.completions.create({ model: 'assistant', messages: first }, key);
    expect(a.choices[0]?.message.content).toBe('sunny in Paris');
    // A new session: the call is in the replayed history, its result is the turn.
    expect(claude.fake.mainRequests().at(-1)?.lastUserText).toContain(
      'assistant called get_weather({"city":"Paris"})',
    );

    const b = await svc.client.chat.completions.create(
      {
        model: 'assistant',
        messages: [
          ...first,
          assistant('sunny in Paris'),
          call('call_2', 'Lyon'),
          result('call_2', 'RAINY_12C'),
        ],
      },
      key,
    );
    // Resumed: the result is the new turn (it used to be refused as no message at all), with the
    // call it answers, which only the local mode saw, told as what came after Claude's own answer.
    expect(b.choices[0]?.message.content).toBe('rainy in Lyon');
    expect(
      claude.fake
        .mainRequests()
        .at(-1)
        ?.userTexts.filter((t) => t.includes('Weather in Paris?')),
    ).toHaveLength(1);
  });

  it('tells Claude who said what when messages carry a name, in a new turn, a resumed one and a replayed history', async () => {
    const said = (name: string, content: string) => ({ role: 'user' as const, name, content });
    // The answer depends on the names reaching the API: without them, nobody knows who likes tea.
    claude.fake.script((r) => {
      if (!r.lastUserText.endsWith('carol: Who likes tea?')) return text('noted');
      return text(
        JSON.stringify(r.body?.messages).includes('alice: I like tea.') ? 'alice does' : 'who knows',
      );
    });
    const key = { headers: { 'x-session-key': 'names' } };
    const first = [said('alice', 'I like tea.'), said('bob', 'I like coffee.')];
    await svc.client.chat.completions.create({ model: 'assistant', messages: first }, key);
    expect(claude.fake.mainRequests().at(-1)?.lastUserText).toBe('alice: I like tea.\n\nbob: I like coffee.');

    const history = [...first, assistant('noted'), said('carol', 'Who likes tea?')];
    const resumed = await svc.client.chat.completions.create({ model: 'assistant', messages: history }, key);
    expect(resumed.choices[0]?.message.content).toBe('alice does');
    expect(claude.fake.mainRequests().at(-1)?.lastUserText).toBe('carol: Who likes tea?');

    // The same history in a conversation of its own: a new session, the earlier turns replayed.
    const replayed = await svc.client.chat.completions.create(
      { model: 'assistant', messages: history },
      { headers: { 'x-session-key': 'names-replayed' } },
    );
    expect(replayed.choices[0]?.message.content).toBe('alice does');
    expect(claude.fake.mainRequests().at(-1)?.lastUserText).toContain('user: bob: I like coffee.');
  });

  it('replays a refusal of the history as what the assistant said, given as a part or as the message’s refusal', async () => {
    claude.fake.script(() => text('understood'));
    const forms = [
      {
        role: 'assistant' as const,
        content: [{ type: 'refusal' as const, refusal: 'I cannot share the code.' }],
      },
      { role: 'assistant' as const, content: null, refusal: 'I cannot share the code.' },
    ];
    for (const [i, refused] of forms.entries()) {
      const r = await svc.client.chat.completions.create(
        { model: 'assistant', messages: [user('Tell me the code.'), refused, user('Why not?')] },
        { headers: { 'x-session-key': `refusal-replayed-${i}` } },
      );
      expect(r.choices[0]?.message.content).toBe('understood');
      expect(claude.fake.mainRequests().at(-1)?.lastUserText).toBe(
        '<history source="client">\nuser: Tell me the code.\n\nassistant: I cannot share the code.\n</history>\n\nWhy not?',
      );
    }
  });

  it('tells Claude of an earlier turn’s audio part in a replayed history as a line, with its article: an input_audio part', async () => {
    claude.fake.script(() => text('heard of it'));
    const r = await svc.client.chat.completions.create(
      {
        model: 'assistant',
        messages: [
          {
            role: 'user',
            content: [
              { type: 'text', text: 'Listen.' },
              { type: 'input_audio', input_audio: { data: 'UklGRg==', format: 'wav' } },
            ],
          },
          { role: 'assistant', content: 'It says hello.' },
          user('Thanks.'),
        ],
      },
      { headers: { 'x-session-key': 'audio-replayed' } },
    );
    expect(r.choices[0]?.message.content).toBe('heard of it');
    expect(claude.fake.mainRequests().at(-1)?.lastUserText).toBe(
      '<history source="client">\nuser: Listen.\n[an input_audio part, not shown to Claude Code]\n\nassistant: It says hello.\n</history>\n\nThanks.',
    );
  });

  it('tells Claude the name of a named system or developer message too: few-shot examples keep who says what', async () => {
    // OpenAI's few-shot pattern: examples as system messages named example_user / example_assistant.
    // Without the names, the CLI is told "What is 2+2?" and "4" as two more instructions.
    claude.fake.script((r) =>
      text(
        JSON.stringify(r.body?.messages).includes('example_user: What is 2+2?\\n\\nexample_assistant: 4')
          ? 'named'
          : 'unnamed',
      ),
    );
    const r = await svc.client.chat.completions.create(
      {
        model: 'assistant',
        messages: [
          { role: 'developer', content: 'Answer with a digit.' },
          { role: 'system', name: 'example_user', content: 'What is 2+2?' },
          { role: 'system', name: 'example_assistant', content: '4' },
          user('What is 3+3?'),
        ],
      },
      { headers: { 'x-session-key': 'few-shot-names' } },
    );
    expect(r.choices[0]?.message.content).toBe('named');
  });

  it('turns an auth failure into a renewal message and a notice, without retrying', async () => {
    claude.fake.script(() => httpError(401, { message: 'invalid x-api-key', shouldRetry: false }));
    const before = claude.fake.mainRequests().length;
    const r = await svc.client.chat.completions.create({ model: 'assistant', messages: [user('hello?')] });
    // Quickly: one request, not the CLI's retries (which take minutes on a 401).
    expect(claude.fake.mainRequests().length - before).toBe(1);
    const content = r.choices[0]?.message.content ?? '';
    expect(content).toMatch(/^⚙️ \[proxy\]/);
    expect(content).toMatch(/login|setup-token/);
    expect(svc.service.core.notifier.recent().some((n) => n.kind === 'auth')).toBe(true);
  });

  it('streams an auth failure as the answer’s text from its first character, as without streaming', async () => {
    claude.fake.script(() => httpError(401, { message: 'invalid x-api-key', shouldRetry: false }));
    const stream = await svc.client.chat.completions.create(
      { model: 'assistant', messages: [user('hello, streamed?')], stream: true },
      { headers: { 'x-session-key': 'auth-streamed' } },
    );
    let got = '';
    for await (const chunk of stream) got += chunk.choices[0]?.delta.content ?? '';
    // No blank lines in front of it: nothing came before it to set it apart from.
    expect(got).toMatch(/^⚙️ \[proxy\] Claude refused its credentials/);
  });

  it('gives a stream that fails before its first word the failure’s HTTP status, as without streaming', async () => {
    claude.fake.script(() => httpError(529, { message: 'Overloaded', shouldRetry: false }));
    const failure = await svc.client.chat.completions
      .create({ model: 'assistant', messages: [user('busy?')], stream: true })
      .then(async (s) => {
        for await (const _ of s) {
          // Read to the end: an error in the stream would throw here.
        }
        return undefined;
      })
      .catch((e: unknown) => e as { status?: number; type?: string });
    expect(failure).toMatchObject({ status: 502, type: 'server_error' });
  });

  for (const path of ['on its warm process', 'with --resume on a new process'] as const) {
    it(`answers a prompt too long for Claude as context_length_exceeded, and the conversation goes on in a new session (${path})`, async () => {
      const s = path === 'on its warm process' ? svc : cold;
      const key = { headers: { 'x-session-key': `too-long-${s === svc}`, 'x-brainstem-client': 'openclaw' } };
      // Like the API: a request holding the oversized message is refused, each time it is sent.
      let refuseAll = false;
      claude.fake.script((r) => {
        const sent = JSON.stringify(r.body?.messages);
        if (refuseAll || sent.includes('HUGE'))
          return httpError(400, { message: 'prompt is too long: 210000 tokens > 200000 maximum' });
        return text(sent.includes('remember plum') ? 'you said plum' : 'noted');
      });
      const first = [user('first: remember plum')];
      const a = await s.client.chat.completions.create({ model: 'assistant', messages: first }, key);
      expect(a.choices[0]?.message.content).toBe('you said plum');
      const firstSession = s.service.core.sessions.get(`too-long-${s === svc}`, 'assistant')?.brainSessionId;
      const history = [...first, assistant('you said plum')];

      // The current CLI retries with a truncated history of its own first: refused too.
      refuseAll = true;
      const refused = await s.client.chat.completions
        .create({ model: 'assistant', messages: [...history, user('HUGE paste')] }, key)
        .then(() => undefined)
        .catch((e: unknown) => e as { status?: number; code?: string; message?: string });
      refuseAll = false;
      // An error even for OpenClaw, which reads it as an overflow (the words are the API's) and compacts.
      expect(refused).toMatchObject({ status: 400, code: 'context_length_exceeded' });
      expect(refused?.message).toMatch(/^400 ⚙️ \[proxy\] Prompt is too long for Claude's context/);
      expect(refused?.message).toContain('the next message starts a new session');
      expect(s.service.core.sessions.get(`too-long-${s === svc}`, 'assistant')).toBeUndefined();

      // The CLI kept the refused turn in that session: resuming it would be refused again.
      const before = claude.fake.mainRequests().length;
      const c = await s.client.chat.completions.create(
        { model: 'assistant', messages: [...history, user('third: what fruit?')] },
        key,
      );
      expect(c.choices[0]?.message.content).toBe('you said plum');
      const sent = claude.fake.mainRequests().slice(before);
      expect(sent).toHaveLength(1);
      // A new session, with the earlier turns replayed from the history the client sent.
      expect(sent[0]?.userTexts[0]).toContain('user: first: remember plum');
      const now = s.service.core.sessions.get(`too-long-${s === svc}`, 'assistant')?.brainSessionId;
      expect(now).toMatch(/^[0-9a-f-]{36}$/);
      expect(now).not.toBe(firstSession);
    });
  }

  it('answers a reply stopped at Claude’s context window as context_length_exceeded, and closes the session', async () => {
    const key = { headers: { 'x-session-key': 'context-window', 'x-brainstem-client': 'openclaw' } };
    claude.fake.script(() => text('noted'));
    const first = [user('first')];
    await svc.client.chat.completions.create({ model: 'assistant', messages: first }, key);
    expect(svc.service.core.sessions.get('context-window', 'assistant')).toBeDefined();

    // The CLI asks the model to go on, three times, then gives up: "The model has reached its context window limit."
    claude.fake.script(() => text(['Partial'], { stopReason: 'model_context_window_exceeded' }));
    const refused = await svc.client.chat.completions
      .create({ model: 'assistant', messages: [...first, assistant('noted'), user('a long task')] }, key)
      .then(() => undefined)
      .catch((e: unknown) => e as { status?: number; code?: string; message?: string });
    // In words OpenClaw reads as an overflow, so it compacts instead of taking it for an answer.
    expect(refused).toMatchObject({ status: 400, code: 'context_length_exceeded' });
    expect(refused?.message).toMatch(
      /^400 ⚙️ \[proxy\] Prompt is too long for Claude's context \(API Error: The model has reached its context window limit\)\. /,
    );
    expect(svc.service.core.sessions.get('context-window', 'assistant')).toBeUndefined();
  });

  it('answers a reply that keeps reaching Claude’s output-token limit with the text so far and finish_reason "length"', async () => {
    // The CLI asks the model to go on three times, then gives up with an error: the client still gets the answer.
    claude.fake.script(() => text(['Long, '], { stopReason: 'max_tokens' }));
    const r = await svc.client.chat.completions.create(
      { model: 'assistant', messages: [user('write a long essay')] },
      { headers: { 'x-session-key': 'output-limit' } },
    );
    expect(r.choices[0]).toMatchObject({
      message: { content: 'Long, Long, Long, Long, ' },
      finish_reason: 'length',
    });

    // Streamed, as the next turn of the same conversation: on its warm process, no second CLI start.
    const stream = await svc.client.chat.completions.create(
      {
        model: 'assistant',
        messages: [user('write a long essay'), assistant('Long, Long, Long, Long, '), user('go on')],
        stream: true,
      },
      { headers: { 'x-session-key': 'output-limit' } },
    );
    let got = '';
    const finishes: (string | null | undefined)[] = [];
    for await (const chunk of stream) {
      got += chunk.choices[0]?.delta.content ?? '';
      finishes.push(chunk.choices[0]?.finish_reason);
    }
    expect(got).toBe('Long, Long, Long, Long, ');
    expect(finishes.filter(Boolean)).toEqual(['length']);
  });

  it('answers a reply Claude’s safety classifier stopped with the text so far and finish_reason "content_filter", not a 502 the SDK sends again', async () => {
    claude.fake.script(() => text(['I can', 'not'], { stopReason: 'refusal' }));
    const r = await svc.client.chat.completions.create(
      { model: 'assistant', messages: [user('something against the policy')] },
      { headers: { 'x-session-key': 'refusal' } },
    );
    // The current CLI goes on once after a refusal, refused again here: the client has the words once.
    expect(r.choices[0]?.message.content).toBe('I cannot');
    expect(r.choices[0]?.finish_reason).toBe('content_filter');
  });

  it('answers with what the current CLI’s retry after a refusal says when the retry is not refused', async () => {
    const before = claude.fake.mainRequests().length;
    claude.fake.script(() =>
      claude.fake.mainRequests().length === before + 1
        ? text(['I can', 'not'], { stopReason: 'refusal' })
        : text('Here is what I can say'),
    );
    const r = await svc.client.chat.completions.create(
      { model: 'assistant', messages: [user('something half against the policy')] },
      { headers: { 'x-session-key': 'refusal-retried' } },
    );
    // 2.1.197 does not go on after a refusal.
    const retried = CLAUDE_CLI === 'current';
    expect(r.choices[0]?.message.content).toBe(retried ? 'I cannot\n\nHere is what I can say' : 'I cannot');
    expect(r.choices[0]?.finish_reason).toBe(retried ? 'stop' : 'content_filter');
  });

  it('kills the claude child when the client goes away', async () => {
    // Warm processes of the earlier conversations live on; the child of this turn must not.
    const earlier = new Set(processesIn(svc.dir));
    const g = createGate();
    claude.fake.script(() => text(['held', ' forever'], { gate: g.promise, gateAfter: 1 }));
    const controller = new AbortController();
    const stream = await svc.client.chat.completions.create(
      { model: 'assistant', messages: [user('abort me')], stream: true },
      { signal: controller.signal },
    );
    let child: number[] = [];
    try {
      for await (const chunk of stream) {
        if (chunk.choices[0]?.delta.content?.includes('held')) {
          child = processesIn(svc.dir).filter((pid) => !earlier.has(pid));
          controller.abort();
        }
      }
    } catch (err) {
      // The SDK ends the loop with its abort error; anything else is a failure.
      if (!(err instanceof APIUserAbortError)) throw err;
    }
    // The turn had a child of its own while it streamed…
    expect(child.length).toBeGreaterThan(0);
    // …and it is gone once the client is.
    await expect
      .poll(() => processesIn(svc.dir).filter((pid) => !earlier.has(pid)), { timeout: 30_000 })
      .toEqual([]);
    g.open();
  });

  for (const keyed of [false, true]) {
    it(`a stopped answer sent again (${keyed ? 'with' : 'without'} a session key): Claude hears the question once, without the cut answer`, async () => {
      const headers: Record<string, string> = keyed ? { 'x-session-key': 'stopped-resent' } : {};
      const g = createGate();
      let held = false;
      claude.fake.script((r) => {
        if (r.main && r.lastUserTurn.includes('which fig?') && !held) {
          held = true;
          return text(['cut answer', ' never seen'], { gate: g.promise, gateAfter: 1 });
        }
        return text(r.lastUserTurn.includes('which fig?') ? 'the black one' : `fig noted ${keyed}`);
      });
      const first = [user('remember the black fig')];
      const a = await svc.client.chat.completions.create(
        { model: 'assistant', messages: first },
        { headers },
      );
      const history = [...first, assistant(a.choices[0]?.message.content ?? ''), user('which fig?')];
      // The stopped turn is over, whatever it left in its session, once its cost is in the ledger.
      const stoppedTurnOver = once(svc.service.core.chat, 'turn');
      const controller = new AbortController();
      const stream = await svc.client.chat.completions.create(
        { model: 'assistant', messages: history, stream: true },
        { signal: controller.signal, headers },
      );
      try {
        for await (const chunk of stream)
          if (chunk.choices[0]?.delta.content?.includes('cut')) controller.abort();
      } catch (err) {
        if (!(err instanceof APIUserAbortError)) throw err;
      }
      await stoppedTurnOver;
      g.open();
      // And the conversation's head is free again (its claim ends after that): else the request
      // below would start a conversation of its own whatever the stopped turn left.
      const claimed = (svc.service.core.conversations as unknown as { claimed: Set<string> }).claimed;
      await expect.poll(() => claimed.size, { timeout: 30_000 }).toBe(0);

      const before = claude.fake.mainRequests().length;
      const again = await svc.client.chat.completions.create(
        { model: 'assistant', messages: history },
        { headers },
      );
      expect(again.choices[0]?.message.content).toBe('the black one');
      const sent = claude.fake.mainRequests().slice(before);
      expect(sent.length).toBeGreaterThan(0);
      for (const r of sent) {
        // Once, and the earlier turn too (replayed from the client's history); the cut answer never.
        expect(r.userTexts.join('\n').split('which fig?')).toHaveLength(2);
        expect(r.userTexts.join('\n').split('remember the black fig')).toHaveLength(2);
        expect(JSON.stringify(r.body?.messages)).not.toContain('cut answer');
      }
    });
  }

  it('runs two conversations in parallel', async () => {
    const g = createGate();
    claude.fake.script((r) =>
      text([`answer to ${r.lastUserText.slice(-1)}`, ' done'], { gate: g.promise, gateAfter: 1 }),
    );
    const firstWords = new Set<string>();
    const run = async (n: string) => {
      const stream = await svc.client.chat.completions.create(
        { model: 'assistant', messages: [user(`parallel ${n}`)], stream: true },
        { headers: { 'x-session-key': `par-${n}` } },
      );
      let got = '';
      for await (const chunk of stream) {
        got += chunk.choices[0]?.delta.content ?? '';
        if (got.startsWith('answer')) firstWords.add(n);
        // Both have started streaming while the upstream holds both: they overlap in time.
        if (firstWords.size === 2) g.open();
      }
      return got;
    };
    expect(await Promise.all([run('A'), run('B')])).toEqual(['answer to A done', 'answer to B done']);
  });

  it('names the keys OpenAI does not define in a message or a part, which a Claude mode drops, with the top-level ones, and answers', async () => {
    claude.fake.script(() => text('noted, uncached'));
    const messages = [
      { role: 'system', content: 'Be brief.', x_trace: 's1' },
      user('first'),
      // As the openai SDK gives a message back: `refusal` is OpenAI's, so not named.
      { role: 'assistant', content: 'ok', refusal: null },
      { role: 'user', content: [{ type: 'text', text: 'again', cache_control: { type: 'ephemeral' } }] },
    ];
    const { data, response } = await svc.client.chat.completions
      .create({ model: 'assistant', messages, top_k: 40 } as never)
      .withResponse();
    expect(response.headers.get('x-brainstem-ignored-fields')).toBe(
      'top_k, messages[].x_trace, messages[].content[].cache_control',
    );
    expect((data as OpenAI.ChatCompletion).choices[0]?.message.content).toBe('noted, uncached');
    expect(claude.fake.mainRequests().at(-1)?.lastUserText).toContain('again');
  });

  it('names a key OpenAI does not define in an image_url, which Claude Code never gets, and answers about the image', async () => {
    claude.fake.script(() => text('a picture'));
    const image = dataUrlPart(randomPng(8, 8));
    const { data, response } = await svc.client.chat.completions
      .create({
        model: 'assistant',
        messages: [
          {
            role: 'user',
            content: [
              { type: 'text', text: 'what is this?' },
              { type: 'image_url', image_url: { ...image.image_url, detail: 'low', crop: [0, 0, 4, 4] } },
            ],
          },
        ],
      } as never)
      .withResponse();
    // `detail` is OpenAI's (Claude sizes images itself, as the README says); `crop` is nobody's.
    expect(response.headers.get('x-brainstem-ignored-fields')).toBe('messages[].content[].image_url.crop');
    expect((data as OpenAI.ChatCompletion).choices[0]?.message.content).toBe('a picture');
  });

  it('names a key OpenAI does not define in an input_audio, which Claude Code never gets (an earlier turn’s audio is a line), and answers', async () => {
    claude.fake.script(() => text('noted'));
    const { data, response } = await svc.client.chat.completions
      .create(
        {
          model: 'assistant',
          messages: [
            {
              role: 'user',
              content: [
                {
                  type: 'input_audio',
                  input_audio: { data: 'UklGRg==', format: 'wav', transcript: 'hello' },
                },
              ],
            },
            { role: 'assistant', content: 'It says hello.' },
            user('Thanks.'),
          ],
        } as never,
        { headers: { 'x-session-key': 'audio-key-named' } },
      )
      .withResponse();
    expect(response.headers.get('x-brainstem-ignored-fields')).toBe(
      'messages[].content[].input_audio.transcript',
    );
    expect((data as OpenAI.ChatCompletion).choices[0]?.message.content).toBe('noted');
  });

  it('names a caption sent as `text` on an image part, which Claude Code never gets, and answers about the image', async () => {
    claude.fake.script(() => text('a cat'));
    const image = dataUrlPart(randomPng(8, 8));
    const { data, response } = await svc.client.chat.completions
      .create({
        model: 'assistant',
        messages: [
          {
            role: 'user',
            content: [
              { type: 'image_url', image_url: image.image_url, text: 'my cat, asleep' },
              // Null, as clients that write every field of their model send it: nothing lost, not named.
              { type: 'text', text: 'what is this?', image_url: null },
            ],
          },
        ],
      } as never)
      .withResponse();
    expect(response.headers.get('x-brainstem-ignored-fields')).toBe('messages[].content[].text');
    expect((data as OpenAI.ChatCompletion).choices[0]?.message.content).toBe('a cat');
    expect(claude.fake.mainRequests().at(-1)?.lastUserText).not.toContain('asleep');
  });

  it('names a key OpenAI does not define in a response_format it accepts (type text), which Claude Code never gets', async () => {
    claude.fake.script(() => text('plain words'));
    const { data, response } = await svc.client.chat.completions
      .create({
        model: 'assistant',
        messages: [user('answer in plain words')],
        response_format: { type: 'text', strict: true },
      } as never)
      .withResponse();
    expect(response.headers.get('x-brainstem-ignored-fields')).toBe('response_format.strict');
    expect((data as OpenAI.ChatCompletion).choices[0]?.message.content).toBe('plain words');
  });

  it('accepts sampling fields at the values Claude uses anyway, and a max_tokens it leaves to Claude Code', async () => {
    claude.fake.script(() => text('sampled'));
    const r = await svc.client.chat.completions.create(
      {
        model: 'assistant',
        messages: [user('defaults please')],
        temperature: 1,
        top_p: 1,
        presence_penalty: 0,
        n: 1,
        max_completion_tokens: 512,
      },
      { headers: { 'x-session-key': 'defaults' } },
    );
    expect(r.choices[0]?.message.content).toBe('sampled');
  });
});

describe('conversations without a session key are told apart by what they said', () => {
  it('two conversations with the same first message never share a session, and their first turns overlap', async () => {
    let arrivals = 0;
    const second = createGate();
    claude.fake.script(async (r) => {
      if (r.lastUserText === 'hello twin') {
        const n = ++arrivals;
        if (n === 2) second.open();
        // The first is answered only once the second has reached the API: they run at the same time.
        await second.promise;
        return text(`twin answer ${n}`);
      }
      return text(`this session said: ${assistantTexts(r).join(' | ')}`);
    });
    const ask = (messages: { role: 'user' | 'assistant'; content: string }[]) =>
      svc.client.chat.completions.create({ model: 'assistant', messages });
    const firsts = await Promise.all([ask([user('hello twin')]), ask([user('hello twin')])]);
    const answers = firsts.map((r) => r.choices[0]?.message.content ?? '');
    expect([...answers].sort()).toEqual(['twin answer 1', 'twin answer 2']);

    const before = claude.fake.mainRequests().length;
    const followUps = await Promise.all(
      answers.map((a) => ask([user('hello twin'), assistant(a), user('what did you say?')])),
    );
    // Each follow-up resumed its own session: the CLI sent its own earlier answer, and only that one.
    followUps.forEach((r, i) => {
      expect(r.choices[0]?.message.content).toBe(`this session said: ${answers[i]}`);
    });
    for (const req of claude.fake.mainRequests().slice(before)) {
      expect(req.userTexts).toEqual(['hello twin', 'what did you say?']);
    }
  });

  it('an edited or regenerated history starts a session of its own, with the earlier turns replayed', async () => {
    claude.fake.script((r) => text(r.lastUserText.includes('<history') ? 'replayed' : 'first'));
    const opening = await svc.client.chat.completions.create({
      model: 'assistant',
      messages: [user('remember plum')],
    });
    expect(opening.choices[0]?.message.content).toBe('first');
    const history = [user('remember plum'), assistant('first'), user('which fruit?')];
    await svc.client.chat.completions.create({ model: 'assistant', messages: history });
    // The same history again (a regenerate): the first session has moved on, so it is not resumed.
    const again = await svc.client.chat.completions.create({ model: 'assistant', messages: history });
    expect(again.choices[0]?.message.content).toBe('replayed');
    const sent = claude.fake.mainRequests().at(-1);
    expect(sent?.userTexts).toHaveLength(1);
    expect(sent?.lastUserText).toContain('user: remember plum');
    expect(sent?.lastUserText).toContain('assistant: first');
    expect(sent?.lastUserText).toMatch(/which fruit\?$/);
  });
});

describe('a Claude turn Claude’s API fails', () => {
  // A 5xx of the API after a tool ran: the openai SDK sent the 502 again twice, so the tool ran
  // three times and each answered call was billed three times, before the client heard of it.
  it('after a call of it was answered, is answered once with x-should-retry: false; before, the SDK may send it again', async () => {
    claude.fake.script((r) =>
      r.lastUserText.includes('glob, then fail')
        ? toolUse('Glob', { pattern: '*.json' }, httpError(500, { message: 'Internal server error' }))
        : httpError(500, { message: 'Internal server error' }),
    );
    let sent = 0;
    const client = new OpenAI({
      baseURL: `${svc.url}/v1`,
      apiKey: svc.token,
      fetch: (url, init) => {
        sent++;
        return fetch(url, init);
      },
    });
    const failure = (content: string, c: OpenAI) =>
      c.chat.completions.create({ model: 'assistant', messages: [user(content)] }).then(
        () => undefined,
        (e: unknown) => e as InstanceType<typeof APIError>,
      );
    const err = await failure('glob, then fail', client);
    expect(err).toBeInstanceOf(APIError);
    expect(err?.status).toBe(502);
    expect(err?.headers?.get('x-should-retry')).toBe('false');
    expect(sent).toBe(1);
    // Nothing answered yet: the same request sent again does nothing twice.
    const first = await failure('fail at once', svc.client);
    expect(first?.status).toBe(502);
    expect(first?.headers?.get('x-should-retry')).toBeNull();
  });
});

describe('a Claude turn stopped at claude.turnTimeoutMs', () => {
  let limited: TestService;
  beforeAll(async () => {
    limited = await startTestService({
      config: {
        claude: { bin: CLAUDE_BIN, env: claude.cli.env, maxRetries: 0, turnTimeoutMs: 2_500 },
        server: { modeTag: false },
      },
    });
  });
  afterAll(async () => {
    await limited?.close();
  });

  // The openai SDKs send a 5xx again twice by default: the turn ran to its limit three times, its
  // tools too, before the client heard that it was stopped.
  it('is answered once, with x-should-retry: false, so that an SDK with its default retries does not run it again', async () => {
    claude.fake.script((r) =>
      r.lastUserText.includes('a task longer than the limit')
        ? text(['begun', ' never'], { gate: new Promise(() => {}) })
        : text('other'),
    );
    // What the SDK sends, counted where it sends it: under load the CLI may not reach the API
    // before the limit, so the API's count says nothing of the retries.
    let sent = 0;
    const client = new OpenAI({
      baseURL: `${limited.url}/v1`,
      apiKey: limited.token,
      fetch: (url, init) => {
        sent++;
        return fetch(url, init);
      },
    });
    const err = await client.chat.completions
      .create({ model: 'assistant', messages: [user('a task longer than the limit')] })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(APIError);
    const e = err as InstanceType<typeof APIError>;
    expect(e.status).toBe(502);
    expect(e.message).toMatch(/stopped after 3 s \(the turn time limit, claude\.turnTimeoutMs\)/);
    expect(sent).toBe(1);
    expect(e.headers?.get('x-should-retry')).toBe('false');
  });
});
