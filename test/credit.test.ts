/**
 * The Agent SDK credit and the modes' budgets through the OpenAI endpoint,
 * with the real `claude` CLI on subscription (OAuth) credentials against the
 * fake Anthropic API: API-key turns counted apart, a per-turn cap that stops
 * a long answer, a daily cap that stops and then refuses, the meter in
 * GET /api/usage and in the brain's usage summary, and a credit Claude says
 * is spent.
 */
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGate, creditSpent, type FakeAnthropic, text, toolUse } from './fakes/anthropic.js';
import { type FakeLlama, startFakeLlama } from './fakes/llama.js';
import { PRICED_MODEL } from './helpers/claude-bin.js';
import { clockFromNoonYesterday } from './helpers/clock.js';
import { startClaudeService, type TestService } from './helpers/service.js';

let fake: FakeAnthropic;
let llama: FakeLlama;
let closeClaude: (() => Promise<void>) | undefined;
let svc: TestService;
const DAY_MS = 86_400_000;
const renewal = Date.now() + 10 * DAY_MS;

beforeAll(async () => {
  llama = await startFakeLlama();
  ({
    fake,
    svc,
    close: closeClaude,
  } = await startClaudeService({
    auth: 'oauth',
    env: PRICED_MODEL,
    config: {
      claude: { credit: { monthlyUsd: 0.5, resetDay: new Date(renewal).toISOString() } },
      // The default: answers carry their mode's tag.
      server: { modeTag: true },
      llama: { baseUrl: llama.baseUrl, pollIntervalMs: 50 },
      usageLimit: { fallbackMode: 'local' },
      modes: {
        capped: { kind: 'claude', allowedTools: ['Bash'], budget: { turnUsd: 0.01 } },
        daily: { kind: 'claude', budget: { dayUsd: 0.004 } },
        shared: { kind: 'claude', budget: { dayUsd: 1 } },
        keyed: { kind: 'claude', env: { ANTHROPIC_API_KEY: 'sk-test-keyed' } },
      },
    },
    parts: { tools: true },
  }));
});
afterAll(async () => {
  await closeClaude?.();
  await llama?.close();
});

const ask = async (model: string, content: string) =>
  (await svc.client.chat.completions.create({ model, messages: [{ role: 'user', content }] })).choices[0]
    ?.message.content ?? '';
const meter = () => svc.service.core.meter.reading();
const lastRow = () =>
  svc.service.core.db
    .prepare<[], { mode: string; billing: string | null; error: string | null; cost: number }>(
      'SELECT mode, billing, error, cost_usd AS cost FROM usage ORDER BY id DESC LIMIT 1',
    )
    .get();

describe('the Agent SDK credit and the budgets', { timeout: 120_000 }, () => {
  it('counts API-key turns apart: they never touch the credit', async () => {
    // About $0.012 (PRICED_MODEL: $3 per million input tokens).
    fake.script(() => text('on the key', { usage: { input_tokens: 4000 } }));
    expect(await ask('keyed', 'hello')).toBe('**[keyed]** on the key');
    expect(fake.mainRequests().at(-1)?.headers['x-api-key']).toBe('sk-test-keyed');
    expect(lastRow()).toMatchObject({ mode: 'keyed', billing: 'api_key' });
    expect(meter().spent).toBe(0);
    expect(meter().apiSpent).toBeGreaterThan(0.01);

    fake.script(() => text('on the plan'));
    expect(await ask('assistant', 'hello')).toBe('**[assistant]** on the plan');
    expect(lastRow()).toMatchObject({ mode: 'assistant', billing: 'subscription' });
    expect(meter().spent).toBeCloseTo(lastRow()?.cost ?? -1, 10);
  });

  it('stops a long answer at the per-turn budget, says which budget, and records it', async () => {
    const before = fake.mainRequests().length;
    fake.script(() =>
      toolUse('Bash', { command: 'echo more' }, text('never reached'), {
        preamble: 'Working on it.',
        usage: { output_tokens: 4000 },
      }),
    );
    const answer = await ask('capped', 'a long task');
    expect(answer).toContain('Working on it.');
    expect(answer).toContain(
      '⚙️ [proxy] This answer was stopped: it reached the per-turn budget of mode capped ($0.010). The budget is per message, so your next message starts afresh',
    );
    expect(fake.mainRequests().length - before).toBe(1);
    const row = lastRow();
    expect(row?.error).toMatch(/^usage_limit:turn_budget: /);
    expect(row?.cost).toBeGreaterThan(0.01);
  });

  it('stops a turn at what is left of the daily budget, then refuses the next one until 00:00 UTC', async (ctx) => {
    // The two turns must fall on one UTC day: a run that crossed 00:00 UTC between them had the
    // second rightly admitted on a new day's budget (brainstem runs in this process, on this clock).
    clockFromNoonYesterday(ctx);
    // About $0.009 a turn (PRICED_MODEL) against a $0.004 day.
    fake.script(() => text('a costly answer', { usage: { input_tokens: 3000 } }));
    const first = await ask('daily', 'first');
    expect(first).toContain(
      '⚙️ [proxy] This answer was stopped: mode daily reached its daily budget ($0.004).',
    );
    expect(first).toMatch(/The budget resets at 00:00 UTC, in \d/);
    expect(lastRow()?.error).toMatch(/^usage_limit:day_budget: /);

    const before = fake.mainRequests().length;
    const second = await ask('daily', 'second');
    expect(second).toMatch(
      /^⚙️ \[proxy\] Mode daily has spent its daily budget \(\$0\.004; \$0\.0\d+ today\), so this message was not sent to Claude\. The budget resets at 00:00 UTC/,
    );
    expect(fake.mainRequests().length).toBe(before);
    expect(lastRow()).toMatchObject({ mode: 'daily', cost: 0 });
    expect(lastRow()?.error).toMatch(/^usage_limit:day_budget: .*not sent to Claude/);
  });

  it('lets answers running at once share what is left of the day, never pass it together', async () => {
    const gate = createGate();
    fake.script(() => text(['held ', 'answer'], { gate: gate.promise }));
    const started = fake.mainRequests().length;
    const first = ask('shared', 'first');
    // The first answer holds the whole day's budget (its cap) until its spend is recorded.
    await expect.poll(() => fake.mainRequests().length, { timeout: 60_000 }).toBeGreaterThan(started);
    const second = await ask('shared', 'second');
    expect(second).toMatch(
      /^⚙️ \[proxy\] What is left of mode shared's daily budget \(\$1\.00 of \$1\.00\) is held by the answers running now/,
    );
    gate.open();
    expect(await first).toBe('**[shared]** held answer');
    fake.script(() => text('after'));
    expect(await ask('shared', 'third')).toBe('**[shared]** after');
  });

  it('GET /api/usage and the brain’s usage summary show the meter', async () => {
    const r = await fetch(`${svc.url}/api/usage`, { headers: { authorization: `Bearer ${svc.token}` } });
    const body = (await r.json()) as {
      data: { credit: Record<string, unknown> & { credit: { usd: number; from: string } } };
      output: string;
    };
    const credit = body.data.credit;
    expect(credit.credit).toEqual({ usd: 0.5, from: 'config' });
    expect(credit.spent).toBeCloseTo(meter().spent, 10);
    expect(credit.share).toBeCloseTo(meter().spent / 0.5, 10);
    expect(credit.left).toBeCloseTo(0.5 - meter().spent, 10);
    expect(credit.pacePerDay).toBeGreaterThan(0);
    expect(credit.runOutAt).toBeGreaterThan(Date.now());
    expect((credit.cycle as { end: number }).end).toBe(new Date(new Date(renewal).toISOString()).getTime());
    expect(credit.apiSpent).toBeGreaterThan(0.01);
    expect(body.output).toMatch(/Claude's monthly Agent SDK credit: \$0\.\d+ of \$0\.50 spent this cycle/);

    fake.script(() => text('you spent little'));
    await ask('assistant', 'how much did I spend this month?');
    const prompt = fake.mainRequests().at(-1)?.userTexts.join('\n') ?? '';
    expect(prompt).toMatch(
      /Claude's monthly Agent SDK credit: \$0\.\d+ of \$0\.50 spent this cycle \(\d+ %\), \$0\.\d+ left; at the 7-day pace of \$\d+\.\d+\/day it runs out on \d{4}-\d\d-\d\d, before the reset on/,
    );
    expect(prompt).toMatch(/API-key turns cost \$0\.\d+ this cycle, outside the credit\./);
  });

  it('knows the credit is spent when Claude says so: the notice, then the fallback mode', async () => {
    const resetSec = Math.floor(renewal / 1000);
    fake.script(() => creditSpent(resetSec));
    const switched = once(svc.service.core.switcher, 'switched');
    const answer = await ask('active', 'one more');
    expect(answer).toContain("⚙️ [proxy] Claude's monthly Agent SDK credit is spent; it resets at");
    const [outcome] = await switched;
    expect(outcome).toMatchObject({ ok: true, from: 'assistant', to: 'local' });
    expect(meter()).toMatchObject({ exhausted: true, left: 0 });
    expect(meter().spentReported?.resetsAt).toBe(resetSec * 1000);
    const notices = svc.service.core.notifier.recent(50).map((n) => n.text);
    const spent = notices.find((n) => n.includes('Claude says its Agent SDK credit is spent'));
    expect(spent).toMatch(/Switching to <b>local<\/b> until the renewal; \/mode assistant goes back/);
    expect(notices.join('\n')).toContain('Mode <b>local</b> is awake');
    // The subscription's own limit is another matter: no "usage limit is reached" notice.
    expect(notices.join('\n')).not.toContain('usage limit is reached');
    expect(svc.service.core.limits.state()).toBeUndefined();
  });

  it('brings the engaged fallback back at an earlier reset Claude gives later, not at the one it had', async () => {
    const wayBack = () =>
      (JSON.parse(svc.service.core.kv.get('credit_fallback') || '{}') as { resetsAt?: number }).resetsAt;
    // Engaged above for the renewal Claude gave then.
    expect(svc.service.core.switcher.active().id).toBe('local');
    expect(wayBack()).toBe(Math.floor(renewal / 1000) * 1000);
    // A turn that names the Claude mode hears of a reset an hour from now.
    const earlier = Math.floor(Date.now() / 1000) + 3600;
    fake.script(() => creditSpent(earlier));
    expect(await ask('assistant', 'still there?')).toContain('credit is spent');
    expect(wayBack()).toBe(earlier * 1000);
  });

  it('hears Claude say the credit is spent through the claude_code tool too, as through a chat turn', async () => {
    // A local model (the fallback above) hands a task to Claude Code: its answer is what the meter learns.
    const later = Math.floor(Date.now() / 1000) + 7200;
    fake.script(() => creditSpent(later));
    const res = await fetch(`${svc.url}/api/claude_code`, {
      method: 'POST',
      headers: { authorization: `Bearer ${svc.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'a task' }),
    });
    const body = (await res.json()) as { error?: { message?: string } };
    expect(body.error?.message).toContain('credit is spent');
    // It kept the reset of the chat turn above: /usage and /status told the wrong date.
    expect(meter().spentReported?.resetsAt).toBe(later * 1000);
  });
});
