/**
 * What the real `claude` CLI says about spending, as ClaudeCodeBrain reports
 * it: the per-turn cap (`--max-budget-usd`), a spent Agent SDK credit, a
 * mode billed to an API key of its own, and the cost of a turn whose CLI died
 * before saying it.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it, type TestContext } from 'vitest';
import type { TurnEvent } from '../brains/types.js';
import { createGate, creditSpent, type FakeUsage, httpError, text, toolUse } from './fakes/anthropic.js';
import { CLAUDE_BIN, CLAUDE_CLI, PRICED_MODEL } from './helpers/claude-bin.js';
import { collect, harness, textOf, userTurn } from './helpers/claude-harness.js';

const errorOf = (events: TurnEvent[]) => {
  const last = events.at(-1);
  if (last?.type !== 'error') throw new Error(`expected an error, got ${JSON.stringify(last)}`);
  return last.error;
};
const usageOf = (events: TurnEvent[]) => events.find((e) => e.type === 'usage')?.usage;

/**
 * A `claude` that dies at its result: it passes the real CLI's lines on but the `result`, which it
 * keeps, and kills the CLI there. The brain then estimates the turn from the calls its stream
 * showed, and `cost()` is what the CLI itself made of the same calls (`total_cost_usd`).
 */
async function diesAtResult(ctx: TestContext): Promise<{ bin: string; cost(): Promise<number> }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'claude-no-result-'));
  ctx.onTestFinished(() => rm(dir, { recursive: true, force: true }));
  const bin = path.join(dir, 'claude');
  const kept = path.join(dir, 'result.json');
  await writeFile(
    bin,
    `#!${process.execPath}
const cli = require('node:child_process').spawn(${JSON.stringify(CLAUDE_BIN)}, process.argv.slice(2), {
  stdio: ['inherit', 'pipe', 'inherit'],
});
require('node:readline').createInterface({ input: cli.stdout }).on('line', (line) => {
  if (!line.startsWith('{') || JSON.parse(line).type !== 'result') return process.stdout.write(line + '\\n');
  require('node:fs').writeFileSync(${JSON.stringify(kept)}, line);
  cli.kill('SIGKILL');
  process.exit(0);
});
cli.on('close', (code) => process.exit(code ?? 1));
`,
    { mode: 0o755 },
  );
  return {
    bin,
    cost: async () => (JSON.parse(await readFile(kept, 'utf8')) as { total_cost_usd: number }).total_cost_usd,
  };
}

/** A call with cache read, and written for 5 minutes and for 1 hour. */
const CACHED: Partial<FakeUsage> = {
  output_tokens: 500,
  cache_read_input_tokens: 200,
  cache_creation_input_tokens: 300,
  cache_creation: { ephemeral_5m_input_tokens: 100, ephemeral_1h_input_tokens: 200 },
};

/**
 * The estimated cost of a turn of two calls on `model` (the first asks for a tool, the second
 * answers; by default with 2000 tokens of input and 20 of output), next to the CLI's own.
 */
async function estimateBesideCli(
  ctx: TestContext,
  model: string,
  first: Partial<FakeUsage>,
  second: Partial<FakeUsage> = { input_tokens: 2000 },
) {
  const cli = await diesAtResult(ctx);
  const h = await harness(ctx, {
    mode: { allowedTools: ['Bash'] },
    claude: { bin: cli.bin, env: { ANTHROPIC_MODEL: model } },
  });
  h.fake.script(() =>
    toolUse('Bash', { command: 'echo step-two' }, text('done', { usage: second }), { usage: first }),
  );
  const events = await collect(h.brain.turn(userTurn('look'), new AbortController().signal));
  ctx.expect(events.at(-1)?.type).toBe('error');
  return { estimate: usageOf(events), cliCost: await cli.cost() };
}

describe.concurrent('Claude spending signals with the real CLI', { timeout: 90_000 }, () => {
  it('stops a long answer at the per-turn cap, before its tool runs, and still reports the cost', async (ctx) => {
    const { expect } = ctx;
    const h = await harness(ctx, { mode: { allowedTools: ['Bash'] } });
    h.fake.script(() =>
      toolUse('Bash', { command: 'echo step-two' }, text('the rest of a long answer'), {
        preamble: 'Let me look.',
        usage: { output_tokens: 4000 },
      }),
    );
    const events = await collect(
      h.brain.turn({ ...userTurn('a long task'), maxBudgetUsd: 0.01 }, new AbortController().signal),
    );
    const error = errorOf(events);
    expect(error).toMatchObject({ kind: 'usage_limit', limit: 'turn_budget' });
    expect(error.message).toMatch(/^⚙️ \[proxy\] This turn reached its spending cap \(Reached maximum budget/);
    expect(textOf(events)).toBe('Let me look.');
    // The tool never ran: no request came back with its result.
    expect(h.fake.mainRequests()).toHaveLength(1);
    const usage = usageOf(events);
    expect(usage?.costUsd).toBeGreaterThan(0.01);
    // The CLI zeroes `usage` on this stop; the tokens come from its per-model counts.
    expect(usage?.outputTokens).toBe(4000);
    expect(h.warm?.size).toBe(0);
  });

  it('gives each capped turn a process of its own, and counts its cost once: neither the cap nor the cost is the running total', async (ctx) => {
    const { expect } = ctx;
    const h = await harness(ctx);
    // About $0.0055 a turn: two turns on one process would pass a $0.01 cap.
    h.fake.script(() => text('fine', { usage: { input_tokens: 1000 } }));
    const first = await collect(
      h.brain.turn({ ...userTurn('one'), maxBudgetUsd: 0.01 }, new AbortController().signal),
    );
    expect(first.at(-1)).toEqual({ type: 'done', finishReason: 'stop' });
    const history = [
      { role: 'user' as const, content: 'one' },
      { role: 'assistant' as const, content: 'fine' },
    ];
    const second = await collect(
      h.brain.turn({ ...userTurn('two', { history }), maxBudgetUsd: 0.01 }, new AbortController().signal),
    );
    expect(second.at(-1)).toEqual({ type: 'done', finishReason: 'stop' });
    // The second turn resumed the first one's session, in a process of its own: it costs what
    // the first did, not both (2.1.332 starts its running total from the session's earlier cost).
    expect(h.fake.mainRequests()[1]?.userTexts).toContain('one');
    expect(usageOf(second)?.costUsd).toBeCloseTo(usageOf(first)?.costUsd ?? -1, 10);
    expect(usageOf(second)).toMatchObject({ inputTokens: 1000, outputTokens: 20 });
  });

  it('recognises a spent Agent SDK credit, apart from the subscription windows', async (ctx) => {
    const { expect } = ctx;
    const h = await harness(ctx, { auth: 'oauth' });
    const resetSec = Math.floor(Date.UTC(2031, 0, 15) / 1000);
    h.fake.script(() => creditSpent(resetSec));
    const spent = errorOf(await collect(h.brain.turn(userTurn('hi'), new AbortController().signal)));
    expect(spent).toMatchObject({ kind: 'usage_limit', limit: 'credit', resetsAt: resetSec * 1000 });
    expect(spent.message).toBe(
      "⚙️ [proxy] Claude's monthly Agent SDK credit is spent; it resets at 2031-01-15 00:00 UTC.",
    );

    // A 5-hour window refused while the usage credits are out is the window's limit.
    h.fake.script(() =>
      httpError(429, {
        shouldRetry: false,
        headers: {
          'anthropic-ratelimit-unified-status': 'rejected',
          'anthropic-ratelimit-unified-reset': String(resetSec),
          'anthropic-ratelimit-unified-representative-claim': 'five_hour',
          'anthropic-ratelimit-unified-overage-status': 'rejected',
          'anthropic-ratelimit-unified-overage-disabled-reason': 'out_of_credits',
        },
      }),
    );
    const window = errorOf(await collect(h.brain.turn(userTurn('again'), new AbortController().signal)));
    expect(window.kind).toBe('usage_limit');
    expect(window.limit).toBeUndefined();
  });

  it('estimates the cost of a turn whose CLI died before its result, from the tokens the stream showed', async (ctx) => {
    const { expect } = ctx;
    const h = await harness(ctx, { mode: { allowedTools: ['Bash'] }, claude: { env: PRICED_MODEL } });
    const held = createGate();
    ctx.onTestFinished(() => held.open());
    const usage = {
      input_tokens: 1000,
      output_tokens: 500,
      cache_read_input_tokens: 200,
      cache_creation_input_tokens: 300,
      // On a subscription the CLI asks for the 1-hour cache, which costs more to write.
      cache_creation: { ephemeral_5m_input_tokens: 100, ephemeral_1h_input_tokens: 200 },
    };
    // Two API calls: the first answers whole (a tool call), the second is cut after its first words.
    h.fake.script(() =>
      toolUse(
        'Bash',
        { command: 'echo step-two' },
        text(['half an answer', ' never finished'], { gate: held.promise, usage: { input_tokens: 2000 } }),
        { preamble: 'Let me look.', usage },
      ),
    );
    const events: TurnEvent[] = [];
    for await (const ev of h.brain.turn(userTurn('look'), new AbortController().signal)) {
      events.push(ev);
      if (ev.type === 'text' && ev.text === 'half an answer') process.kill(h.lastPid(), 'SIGKILL');
    }
    expect(events.at(-1)?.type).toBe('error');
    // Both CLIs price the first call at $0.012135 (claude-sonnet-4-5, cache written for 5 minutes and 1 hour);
    // the second so far is its input and the one output token its start counts.
    expect(usageOf(events)).toEqual({
      costUsd: expect.closeTo(0.012135 + 0.006 + 0.000015, 9),
      inputTokens: 3000,
      outputTokens: 501,
      cacheReadTokens: 200,
      cacheWriteTokens: 300,
      costBasis: 'estimated',
    });
  });

  it('prices a turn that died as its CLI prices the same calls: fast mode, US-only inference, web searches, an advisor', async (ctx) => {
    const { expect } = ctx;
    const { estimate, cliCost } = await estimateBesideCli(ctx, 'claude-opus-4-8', {
      ...CACHED,
      input_tokens: 1000,
      speed: 'fast',
      inference_geo: 'us',
      server_tool_use: { web_search_requests: 2 },
      iterations: [
        {
          type: 'advisor_message',
          model: 'claude-sonnet-4-5',
          input_tokens: 3000,
          output_tokens: 100,
          cache_read_input_tokens: 0,
          cache_creation_input_tokens: 0,
        },
      ],
    });
    // The first call at fast mode's prices ($0.04045) and its advisor's on claude-sonnet-4-5 ($0.0105),
    // 1.1 times that served in the US (2.1.332 only), and $0.01 a web search; the second call at
    // the standard price ($0.0105).
    const usOnly = CLAUDE_CLI === 'current' ? 1.1 : 1;
    expect(cliCost).toBeCloseTo((0.04045 + 0.0105) * usOnly + 0.02 + 0.0105, 9);
    expect(estimate).toMatchObject({ costUsd: expect.closeTo(cliCost, 9), costBasis: 'estimated' });
  });

  // 2.1.197 does not know the model, and prices it as its default model: the estimate keeps to its list price.
  it.skipIf(CLAUDE_CLI === 'pinned')(
    'prices a turn that died on claude-haiku-5-5 as its CLI does: five times over for a prompt past 100k tokens',
    async (ctx) => {
      const { expect } = ctx;
      const round = (input_tokens: number) => ({
        type: 'message' as const,
        input_tokens,
        output_tokens: 250,
        cache_read_input_tokens: 0,
        cache_creation_input_tokens: 0,
      });
      const { estimate, cliCost } = await estimateBesideCli(
        ctx,
        'claude-haiku-5-5',
        { ...CACHED, input_tokens: 99_501 },
        { input_tokens: 101_000, output_tokens: 500, iterations: [round(99_000), round(2000)] },
      );
      // The first call's prompt is 100,001 tokens: the long prompt's prices ($0.051273). The second's
      // is as long, but in two rounds, each priced by its own prompt: the standard prices ($0.01035).
      expect(cliCost).toBeCloseTo(0.051273 + 0.01035, 9);
      expect(estimate).toMatchObject({ costUsd: expect.closeTo(cliCost, 9), costBasis: 'estimated' });
    },
  );

  it('runs a mode on the API key of its own environment', async (ctx) => {
    const { expect } = ctx;
    const h = await harness(ctx, { auth: 'oauth', mode: { env: { ANTHROPIC_API_KEY: 'sk-mode-key' } } });
    const events = await collect(h.brain.turn(userTurn('hi'), new AbortController().signal));
    expect(events.at(-1)).toEqual({ type: 'done', finishReason: 'stop' });
    expect(h.fake.mainRequests()[0]?.headers['x-api-key']).toBe('sk-mode-key');
  });
});
