import type { APIError } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { limitLines } from '../handlers/telegram/views/limit.js';
import type { Notice } from '../src/notices.js';
import type { PartChoice } from '../src/service.js';
import { resultText } from '../src/tools/registry.js';
import { httpError, refuseWithLimit, text } from './fakes/anthropic.js';
import { type FakeLlama, startFakeLlama } from './fakes/llama.js';
import { claudeOnFake } from './helpers/claude-fake.js';
import { type McpToolAnswer, mcpToolCall } from './helpers/mcp-call.js';
import { CLAUDE_BIN, startTestService, type TestService } from './helpers/service.js';

/**
 * Claude's subscription limit at the OpenAI endpoint, with the real CLI on
 * subscription (OAuth) credentials. A reset an hour away holds the limit for
 * as long as a test looks at it; the switch back is tested with a reset due
 * seconds after the refusal, and waited for as the notice it sends.
 */
// Subscription credentials: only then does the CLI read the unified rate-limit headers.
const claude = claudeOnFake({ auth: 'oauth' });
let llama: FakeLlama;

beforeAll(async () => {
  llama = await startFakeLlama();
});
afterAll(async () => {
  await llama?.close();
});

/** A service of its own for each test: the limit and the fallback are persisted state. */
async function service(
  ctx: { onTestFinished(fn: () => Promise<void>): void },
  parts: PartChoice = {},
  more: Record<string, unknown> = {},
): Promise<TestService> {
  const svc = await startTestService({
    parts,
    config: {
      claude: { bin: CLAUDE_BIN, env: claude.cli.env, maxRetries: 0 },
      llama: { baseUrl: llama.baseUrl, pollIntervalMs: 50 },
      usageLimit: { fallbackMode: 'local' },
      ...more,
    },
  });
  ctx.onTestFinished(() => svc.close());
  return svc;
}

const ask = (svc: TestService, content: string, model = 'active') =>
  svc.client.chat.completions.create({ model, messages: [{ role: 'user', content }] });
const activeMode = (svc: TestService) => svc.service.core.switcher.active().id;
/** The first notice, recorded already or to come, whose text matches. */
function notice(svc: TestService, pattern: RegExp): Promise<Notice> {
  const { notifier } = svc.service.core;
  const seen = notifier.recent(100).find((n) => pattern.test(n.text));
  if (seen) return Promise.resolve(seen);
  return new Promise((resolve) => {
    const on = (n: Notice) => {
      if (!pattern.test(n.text)) return;
      notifier.off('notice', on);
      resolve(n);
    };
    notifier.on('notice', on);
  });
}
/** A one-shot claude_code task through /api, on the credentials of claude.env. */
const runTask = (svc: TestService) =>
  fetch(`${svc.url}/api/claude_code`, {
    method: 'POST',
    headers: { authorization: `Bearer ${svc.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ prompt: 'a task' }),
  });
const limitNotices = (svc: TestService) =>
  svc.service.core.notifier
    .recent(50)
    .filter((n) => n.kind === 'usage_limit' && n.text.includes('limit is reached'));

describe('Claude usage limit', () => {
  it('a 429 that is not the usage limit (the API throttling) is a 429 for the client: no limit, no fallback, no made-up Retry-After', async (ctx) => {
    const svc = await service(ctx);
    // No unified limit headers: the CLI says "Server is temporarily limiting requests (not your usage limit)".
    claude.fake.script(() => httpError(429, { headers: { 'retry-after': '30' }, shouldRetry: false }));
    const err = await ask(svc, 'throttled?', 'assistant').catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 429, type: 'rate_limit_error', code: 'brain_limit' });
    expect((err as Error).message).toMatch(/Claude's API is limiting requests right now/);
    // The CLI does not say when Claude takes requests again: a wait would be made up.
    expect((err as APIError).headers?.get('retry-after')).toBeNull();
    expect(svc.service.core.limits.state()).toBeUndefined();
    expect(limitNotices(svc)).toHaveLength(0);
    expect(activeMode(svc)).not.toBe('local');
  });

  it('notifies once with the reset time and falls back to local while it lasts', async (ctx) => {
    const svc = await service(ctx);
    const refused = refuseWithLimit(claude.fake, 3_600_000);
    const r = await ask(svc, 'hello');
    const resetsAt = await refused;
    expect(r.choices[0]?.message.content).toMatch(/⚙️ \[proxy\].*limit/);
    expect(r.choices[0]?.message.content).toMatch(/Mode local answers until then: send your message again/);
    await notice(svc, /Mode <b>local<\/b> is awake.*Switched from assistant/);
    expect(activeMode(svc)).toBe('local');
    expect(limitNotices(svc)).toHaveLength(1);
    expect(limitNotices(svc)[0]?.text).toContain(new Date(resetsAt).toISOString().slice(11, 16));
    expect(svc.service.core.limits.state()).toMatchObject({ mode: 'assistant', resetsAt });

    // A second turn hitting the same limit (on the Claude mode by name) adds no notice.
    const again = await ask(svc, 'again', 'assistant');
    expect(again.choices[0]?.message.content).toMatch(/limit/);
    // Asked by name, the Claude mode is what a message sent again reaches: no other mode is offered.
    expect(again.choices[0]?.message.content).not.toMatch(/send your message again/);
    expect(limitNotices(svc)).toHaveLength(1);
    expect(activeMode(svc)).toBe('local');
  });

  it('switches back at the reset, not before', async (ctx) => {
    const svc = await service(ctx);
    const refused = refuseWithLimit(claude.fake, 2_000);
    await ask(svc, 'hello');
    const resetsAt = await refused;
    claude.fake.script(() => text('back on the subscription'));

    const back = await notice(svc, /usage limit has reset: back to <b>assistant<\/b>/);
    expect(back.ts).toBeGreaterThanOrEqual(resetsAt);
    // The fallback came first (however late the refusal was read, it is never skipped).
    const fallback = await notice(svc, /Mode <b>local<\/b> is awake/);
    expect(fallback.id).toBeLessThan(back.id);
    await notice(svc, /Mode <b>assistant<\/b> is awake.*Switched from local/);
    expect(activeMode(svc)).toBe('assistant');
    expect(svc.service.core.limits.state()).toBeUndefined();
    expect((await ask(svc, 'still there?')).choices[0]?.message.content).toContain(
      'back on the subscription',
    );
  });

  it('a switch by hand during the fallback cancels the switch back', async (ctx) => {
    const svc = await service(ctx);
    const refused = refuseWithLimit(claude.fake, 3_600_000);
    await ask(svc, 'hello again');
    await refused;
    await notice(svc, /Mode <b>local<\/b> is awake/);
    const pending = () => svc.service.core.kv.get('usage_limit_fallback');
    expect(JSON.parse(pending() ?? '{}')).toMatchObject({ from: 'assistant', to: 'local' });

    expect((await ask(svc, 'switch to anklume')).choices[0]?.message.content).toMatch(/anklume/);
    expect(activeMode(svc)).toBe('anklume');
    // Nothing is left to switch back at the reset (a restart would find nothing to re-arm either).
    expect(pending()).toBe('');
  });

  it('a limit the claude_code tool meets names the tool, and the active Claude mode falls back at once', async (ctx) => {
    const svc = await service(ctx, { tools: true });
    // The task runs on the credentials of the active mode (assistant): the subscription is one.
    const refused = refuseWithLimit(claude.fake, 3_600_000);
    const res = await runTask(svc);
    const resetsAt = await refused;
    expect(res.status).toBe(429);
    const body = (await res.json()) as { error?: { message?: string } };
    expect(body.error?.message).toMatch(/Claude's subscription usage limit is reached/);
    // No mode called claude_code exists for the owner: the notice names the tool.
    expect(limitNotices(svc)).toHaveLength(1);
    expect(limitNotices(svc)[0]?.text).toContain('(the <b>claude_code</b> tool)');
    expect(limitNotices(svc)[0]?.text).not.toContain('mode <b>claude_code</b>');
    expect(svc.service.core.limits.state()).toMatchObject({
      mode: 'claude_code',
      tool: 'claude_code',
      resetsAt,
    });
    // So do /status and /usage.
    const [line] = limitLines(svc.service.core.limits.state(), 'local', 'en');
    expect(line).toMatch(/^⛔ Claude's usage limit is reached \(the <b>claude_code<\/b> tool, since /);

    // The limit is the account's: assistant's next message would be refused too, so it falls back now.
    await notice(svc, /Mode <b>local<\/b> is awake.*Switched from assistant/);
    expect((await ask(svc, 'still there?')).choices[0]?.message.content).not.toMatch(/limit/);
    // And back to assistant at the reset.
    expect(JSON.parse(svc.service.core.kv.get('usage_limit_fallback') ?? '{}')).toMatchObject({
      from: 'assistant',
      to: 'local',
      resetsAt,
    });
  });

  it('a claude_code task at a limit hours away tells a model when it resets, not to call again in 60 s', async (ctx) => {
    const svc = await service(ctx, { tools: true });
    const refused = refuseWithLimit(claude.fake, 3 * 3_600_000);
    const res = await mcpToolCall(svc.url, svc.token, 'claude_code', { prompt: 'a task' });
    const resetsAt = await refused;
    const reset = new Date(Math.ceil(resetsAt / 60_000) * 60_000)
      .toISOString()
      .slice(0, 16)
      .replace('T', ' ');
    const answer = (await res.json()) as McpToolAnswer;
    expect(answer.result.isError).toBe(true);
    const said = answer.result.content[0]?.text ?? '';
    // A model told "in 60 s" would start a Claude CLI every minute for three hours, each refused.
    expect(said).not.toMatch(/Try again in/);
    expect(said).toMatch(
      new RegExp(`Do not call it again before ${reset} UTC \\(in [23] h \\d\\d min\\)\\.$`),
    );

    // /api: Retry-After stays at its cap (SDKs ignore a longer one), the reset is in the result.
    const api = await runTask(svc);
    expect(api.status).toBe(429);
    expect(api.headers.get('retry-after')).toBe('60');
    const body = (await api.json()) as { result: { error: Record<string, unknown> } };
    expect(body.result.error).toMatchObject({ retryAfterS: 60, retryAt: new Date(resetsAt).toISOString() });
  });

  it('a reset within a minute is said as the next whole minute, never one a call is refused again at', () => {
    const at = Date.now() + 3 * 3_600_000;
    // 45 s past a minute: "before 14:37" would have a model call at 14:37, refused once more.
    const retryAt = new Date(Math.floor(at / 60_000) * 60_000 + 45_000);
    const next = new Date(Math.ceil(retryAt.getTime() / 60_000) * 60_000);
    const said = resultText({
      tool: 'claude_code',
      ok: false,
      durationMs: 1,
      truncated: false,
      error: {
        code: 'BRAIN_LIMIT',
        status: 429,
        type: 'rate_limit_error',
        message: "Claude's usage limit is reached",
        retryAt: retryAt.toISOString(),
      },
    });
    expect(said).toContain(
      `Do not call it again before ${next.toISOString().slice(0, 16).replace('T', ' ')} UTC`,
    );
  });

  it('a limit the claude_code tool meets leaves an active mode on other credentials where it is', async (ctx) => {
    // Billed on its own API key: the subscription's limit is not this mode's.
    const svc = await service(
      ctx,
      { tools: true },
      {
        defaultMode: 'keyed',
        modes: { keyed: { kind: 'claude', env: { ANTHROPIC_API_KEY: 'sk-test-keyed' } } },
      },
    );
    expect(activeMode(svc)).toBe('keyed');
    const refused = refuseWithLimit(claude.fake, 3_600_000);
    const res = await runTask(svc);
    await refused;
    expect(res.status).toBe(429);
    expect(limitNotices(svc)[0]?.text).toContain('(the <b>claude_code</b> tool)');
    // A switch would have begun as the task's failure was told, before the answer came back.
    expect(svc.service.core.switcher.isSwitching()).toBe(false);
    expect(activeMode(svc)).toBe('keyed');
  });
});
