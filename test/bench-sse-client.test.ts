import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { timeStream } from '../bench/sse-client.js';
import { type FakeAnthropic, httpError, text } from './fakes/anthropic.js';
import { startClaudeService, type TestService } from './helpers/service.js';

let fake: FakeAnthropic;
let svc: TestService;
let close: () => Promise<void>;

beforeAll(async () => {
  ({ fake, svc, close } = await startClaudeService({
    config: { defaultMode: 'bench', modes: { bench: { kind: 'claude', spares: 0 } } },
  }));
});

afterAll(async () => {
  await close();
});

const ask = (key: string, answer: string) =>
  timeStream(
    `${svc.url}/v1/chat/completions`,
    { model: 'bench', messages: [{ role: 'user', content: `bench timing ${key}` }] },
    { authorization: `Bearer ${svc.token}`, 'x-session-key': key },
    { answer },
  );

// `npm run bench` times its streams with this client: what it times must be the answer the fake gave.
describe('the bench’s stream timer', () => {
  it('times the scripted answer', async () => {
    fake.script(() => text(['tok0 ', 'tok1 ']));
    const timing = await ask('bench-ok', 'tok0 tok1 ');
    expect(timing.text).toBe('tok0 tok1 ');
  });

  it('refuses an error brainstem tells as the answer’s text (Claude refused its credentials), instead of timing it', async () => {
    fake.script(() => httpError(401, { shouldRetry: false, message: 'invalid x-api-key' }));
    await expect(ask('bench-refused', 'tok0 tok1 ')).rejects.toThrow(
      /answered ".*Claude refused its credentials.*", not the scripted "tok0 tok1 "/,
    );
  });
});
