import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ClaudeTestEnv,
  claudeTestEnv,
  type FakeAnthropic,
  httpError,
  startFakeAnthropic,
  text,
  usageLimitHeaders,
} from './fakes/anthropic.js';
import { type FakeLlama, startFakeLlama } from './fakes/llama.js';
import { CLAUDE_BIN, startTestService, type TestService } from './helpers/service.js';

let fake: FakeAnthropic;
let llama: FakeLlama;
let env: ClaudeTestEnv;
let svc: TestService;

beforeAll(async () => {
  fake = await startFakeAnthropic();
  llama = await startFakeLlama();
  // Subscription credentials: only then does the CLI read the unified rate-limit headers.
  env = await claudeTestEnv(fake.url, { auth: 'oauth' });
  svc = await startTestService({
    config: {
      claude: { bin: CLAUDE_BIN, env: env.env, maxRetries: 0 },
      llama: { baseUrl: llama.baseUrl, pollIntervalMs: 50 },
      usageLimit: { fallbackMode: 'local' },
    },
  });
});
afterAll(async () => {
  await svc?.close();
  await fake?.close();
  await llama?.close();
  await env?.cleanup();
});

const activeMode = async () =>
  ((await (await fetch(`${svc.url}/health`)).json()) as { activeMode: string }).activeMode;
const ask = (content: string) =>
  svc.client.chat.completions.create({ model: 'active', messages: [{ role: 'user', content }] });

describe('Claude usage limit', () => {
  it('notifies once with the reset time, falls back to local, and switches back at the reset', async () => {
    const resetSec = Math.ceil(Date.now() / 1000) + 8;
    fake.script(() => httpError(429, { headers: usageLimitHeaders(resetSec), shouldRetry: false }));
    const r = await ask('hello');
    expect(r.choices[0]?.message.content).toMatch(/⚙️ \[proxy\].*limit/);
    await expect.poll(activeMode, { timeout: 10_000 }).toBe('local');
    const limitNotices = () =>
      svc.service.core.notifier
        .recent(50)
        .filter((n) => n.kind === 'usage_limit' && n.text.includes('limit is reached'));
    expect(limitNotices()).toHaveLength(1);
    expect(limitNotices()[0]?.text).toContain(new Date(resetSec * 1000).toISOString().slice(11, 16));
    expect(svc.service.core.limits.state()?.resetsAt).toBe(resetSec * 1000);

    // A second turn hitting the same limit (on the Claude mode by name) adds no notice.
    await svc.client.chat.completions.create({
      model: 'assistant',
      messages: [{ role: 'user', content: 'again' }],
    });
    expect(limitNotices()).toHaveLength(1);

    fake.script(() => text('back on the subscription'));
    await expect.poll(activeMode, { timeout: 15_000 }).toBe('assistant');
    const texts = svc.service.core.notifier.recent(50).map((n) => n.text);
    expect(texts.join('\n')).toMatch(/back to <b>assistant<\/b>/);
    expect(svc.service.core.limits.state()).toBeUndefined();
  });

  it('does not switch back when the user switched by hand meanwhile', async () => {
    const resetSec = Math.ceil(Date.now() / 1000) + 6;
    fake.script(() => httpError(429, { headers: usageLimitHeaders(resetSec), shouldRetry: false }));
    await ask('hello again');
    await expect.poll(activeMode, { timeout: 10_000 }).toBe('local');
    await ask('switch to anklume');
    expect(await activeMode()).toBe('anklume');
    await new Promise((r) => setTimeout(r, (resetSec + 1) * 1000 - Date.now()));
    expect(await activeMode()).toBe('anklume');
  });
});
