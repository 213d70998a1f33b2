import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ClaudeTestEnv,
  claudeTestEnv,
  createGate,
  type FakeAnthropic,
  httpError,
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
});
