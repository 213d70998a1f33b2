import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ClaudeTestEnv,
  claudeTestEnv,
  createGate,
  type FakeAnthropic,
  httpError,
  type RecordedRequest,
  startFakeAnthropic,
  text,
} from './fakes/anthropic.js';
import { processesIn } from './helpers/procs.js';
import { CLAUDE_BIN, startTestService, type TestService } from './helpers/service.js';

let fake: FakeAnthropic;
let env: ClaudeTestEnv;
let svc: TestService;

beforeAll(async () => {
  fake = await startFakeAnthropic();
  env = await claudeTestEnv(fake.url);
  svc = await startTestService({
    config: { claude: { bin: CLAUDE_BIN, env: env.env, maxRetries: 0 }, server: { modeTag: false } },
  });
});
afterAll(async () => {
  await svc?.close();
  await fake?.close();
  await env?.cleanup();
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
    fake.script(() => text(['First words', ' and the rest'], { gate: g.promise, gateAfter: 1 }));
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

  it('resumes the Claude session on the next turn and sends only the new turn', async () => {
    fake.script((r) => text(r.lastUserText.includes('second') ? 'you said kiwi' : 'noted'));
    const key = { headers: { 'x-session-key': 'resume-test' } };
    const first = [user('first: remember kiwi')];
    const a = await svc.client.chat.completions.create({ model: 'assistant', messages: first }, key);
    expect(a.choices[0]?.message.content).toBe('noted');
    const b = await svc.client.chat.completions.create(
      {
        model: 'assistant',
        messages: [...first, { role: 'assistant', content: 'noted' }, user('second: what did I say?')],
      },
      key,
    );
    expect(b.choices[0]?.message.content).toBe('you said kiwi');
    const last = fake.mainRequests().at(-1);
    // The CLI rebuilt the history from its own session file: the earlier turn is there, once.
    expect(last?.userTexts.filter((t) => t.includes('remember kiwi'))).toHaveLength(1);
    expect(last?.lastUserText).toContain('second: what did I say?');
    expect(svc.service.core.sessions.get('resume-test', 'assistant')?.brainSessionId).toMatch(
      /^[0-9a-f-]{36}$/,
    );
  });

  it('turns an auth failure into a renewal message and a notice, quickly', async () => {
    fake.script(() => httpError(401, { message: 'invalid x-api-key', shouldRetry: false }));
    const started = Date.now();
    const r = await svc.client.chat.completions.create({ model: 'assistant', messages: [user('hello?')] });
    expect(Date.now() - started).toBeLessThan(20_000);
    const content = r.choices[0]?.message.content ?? '';
    expect(content).toMatch(/^⚙️ \[proxy\]/);
    expect(content).toMatch(/login|setup-token/);
    expect(svc.service.core.notifier.recent().some((n) => n.kind === 'auth')).toBe(true);
  });

  it('kills the claude child when the client goes away', async () => {
    // Warm processes of the earlier conversations live on; the child of this turn must not.
    const earlier = new Set(processesIn(svc.dir));
    const g = createGate();
    fake.script(() => text(['held', ' forever'], { gate: g.promise, gateAfter: 1 }));
    const controller = new AbortController();
    const stream = await svc.client.chat.completions.create(
      { model: 'assistant', messages: [user('abort me')], stream: true },
      { signal: controller.signal },
    );
    let seen = false;
    try {
      for await (const chunk of stream) {
        if (chunk.choices[0]?.delta.content?.includes('held')) {
          seen = true;
          expect(processesIn(svc.dir).length).toBeGreaterThan(0);
          controller.abort();
        }
      }
    } catch {
      // the SDK may end the loop or throw on abort: either way the client is gone
    }
    expect(seen).toBe(true);
    await expect
      .poll(() => processesIn(svc.dir).filter((pid) => !earlier.has(pid)), { timeout: 10_000 })
      .toEqual([]);
    g.open();
  });

  it('runs two conversations in parallel', async () => {
    const g = createGate();
    fake.script((r) =>
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

  it('accepts sampling fields at the values Claude uses anyway, and a max_tokens it leaves to Claude Code', async () => {
    fake.script(() => text('sampled'));
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
    fake.script(async (r) => {
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

    const before = fake.mainRequests().length;
    const followUps = await Promise.all(
      answers.map((a) => ask([user('hello twin'), assistant(a), user('what did you say?')])),
    );
    // Each follow-up resumed its own session: the CLI sent its own earlier answer, and only that one.
    followUps.forEach((r, i) => {
      expect(r.choices[0]?.message.content).toBe(`this session said: ${answers[i]}`);
    });
    for (const req of fake.mainRequests().slice(before)) {
      expect(req.userTexts).toEqual(['hello twin', 'what did you say?']);
    }
  });

  it('an edited or regenerated history starts a session of its own, with the earlier turns replayed', async () => {
    fake.script((r) => text(r.lastUserText.includes('<history') ? 'replayed' : 'first'));
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
    const sent = fake.mainRequests().at(-1);
    expect(sent?.userTexts).toHaveLength(1);
    expect(sent?.lastUserText).toContain('user: remember plum');
    expect(sent?.lastUserText).toContain('assistant: first');
    expect(sent?.lastUserText).toMatch(/which fruit\?$/);
  });
});
