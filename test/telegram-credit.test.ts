/**
 * The Agent SDK credit seen from Telegram, with the real `claude` CLI on
 * subscription (OAuth) credentials against the fake Anthropic API and a credit
 * of ten cents: the notices in order, once each, and not again after a
 * restart; /usage and /usage chart; the switch to the local mode at 95 % and
 * back at a renewal moved a few seconds ahead.
 *
 * Turn costs are set through the fake's token counts: the CLI prices
 * `claude-sonnet-4-5` (set as ANTHROPIC_MODEL, since the default model and its
 * price differ between CLI versions) at $3 per million input tokens and $15 per
 * million output tokens, and each answer has 20 output tokens ($0.0003).
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { ConfigFile } from '../src/config.js';
import { creditSentence, day } from '../src/credit/meter.js';
import { creditSpent, text } from './fakes/anthropic.js';
import { PRICED_MODEL } from './helpers/claude-bin.js';
import { claudeOnFake } from './helpers/claude-fake.js';
import { CLAUDE_BIN } from './helpers/service.js';
import { type Harness, OWNER, startHarness } from './telegram-harness.js';

const DAY_MS = 86_400_000;
/** Input tokens for a turn that costs `usd`. */
const tokensFor = (usd: number) => Math.round((usd - 0.0003) / 3e-6);

const claude = claudeOnFake({ auth: 'oauth', perTest: true });
const open: Harness[] = [];

afterEach(async () => {
  // The restarted service first: the first harness owns the fakes and the dir.
  for (const h of open.splice(0).reverse()) await h.close();
});

function config(credit: Record<string, unknown>, extra: ConfigFile = {}): ConfigFile {
  return {
    defaultMode: 'assistant',
    claude: {
      env: { ...claude.cli.env, ...PRICED_MODEL },
      maxRetries: 0,
      credit: { monthlyUsd: 0.1, ...credit },
    },
    ...extra,
  };
}

async function start(c: ConfigFile, reuse?: Harness): Promise<Harness> {
  const h = await startHarness({
    env: { CLAUDE_BIN },
    config: c,
    ...(reuse ? { tg: reuse.tg, llama: reuse.llama, dir: reuse.dir } : {}),
  });
  open.push(h);
  return h;
}

/** One Claude turn from user 112 that costs about `usd`; resolves on its answer. */
async function turn(h: Harness, n: number, usd: number): Promise<void> {
  claude.fake.script(() => text(`answer ${n}`, { usage: { input_tokens: tokensFor(usd) } }));
  h.tg.user(112).says(`question ${n}`);
  await reply(h, 112, new RegExp(`^answer ${n}$`));
}

/** The bot's first message in `chatId` matching `pattern`; on a timeout, says what the chat holds. */
const reply = (h: Harness, chatId: number, pattern: RegExp, timeoutMs = 30_000) =>
  h.tg
    .waitFor(() => h.tg.botMessages(chatId).find((m) => pattern.test(m.text)), { timeoutMs })
    .catch((err: Error) => {
      const seen = h.tg.botMessages(chatId).map((m) => m.text);
      throw new Error(`${err.message}: no ${pattern} in chat ${chatId}, which holds ${JSON.stringify(seen)}`);
    });
const creditNotices = (h: Harness) =>
  h.tg.botMessages(OWNER).filter((m) => /Agent SDK credit|📉/.test(m.text));

describe('the Agent SDK credit in Telegram', { timeout: 180_000 }, () => {
  it('notices at 50, 80, 95 and 100 % and on the forecast, in order, once each, not again after a restart; /usage shows the meter', async () => {
    const renewal = Date.now() + 10 * DAY_MS;
    const c = config({ resetDay: new Date(renewal).toISOString() });
    const h = await start(c);

    await turn(h, 1, 0.06); // 60 %
    await reply(h, OWNER, /50 % spent/);
    // Less than a day of history counts as a day: $0.06 a day, gone long before the renewal.
    await reply(h, OWNER, /📉 At the 7-day pace/);
    await turn(h, 2, 0.027); // 87 %
    await reply(h, OWNER, /80 % spent/);

    h.tg.user(112).says('/usage');
    const usage = await reply(h, 112, /^⚙️ \[proxy\] Usage\n/);
    const r = h.service.core.meter.reading();
    expect(usage.text).toContain('💳 Agent SDK credit: $0.10 a month (claude.credit.monthlyUsd)');
    expect(usage.text).toMatch(/Spent this cycle: \$0\.08\d \(8\d %\) · left: \$0\.01\d/);
    expect(usage.text).toContain(`Spent this cycle: $${r.spent.toFixed(3)}`);
    expect(usage.text).toMatch(
      /Pace \(7 days\): \$\d+\.\d+\/day → runs out on \d{4}-\d\d-\d\d, 9 d \d+ h before the renewal/,
    );
    expect(usage.text).toContain(
      `Renewal: ${new Date(renewal).toISOString().slice(0, 16).replace('T', ' ')} UTC (in 9 d `,
    );
    h.tg.user(113, { languageCode: 'fr' }).says('/usage');
    const fr = await reply(h, 113, /^⚙️ \[proxy\] Consommation\n/);
    expect(fr.text).toMatch(/, 9 j \d+ h avant le renouvellement/);
    expect(fr.text).toContain(
      `Renouvellement : ${new Date(renewal).toISOString().slice(0, 16).replace('T', ' ')} UTC (dans 9 j `,
    );

    h.tg.user(112).says('/status');
    const status = await reply(h, 112, /^⚙️ \[proxy\] Status\n/);
    expect(status.text).toMatch(
      /\n💳 Agent SDK credit: \$0\.08\d of \$0\.10 \(8\d %\), \$0\.01\d left, runs out \d{4}-\d\d-\d\d; renews /,
    );

    h.tg.user(112).says('/usage chart');
    const photo = await h.tg.waitFor(() => h.tg.botMessages(112).find((m) => m.photo), { timeoutMs: 30_000 });
    const png = Buffer.from(photo.photo?.bytes ?? []);
    expect([...png.subarray(0, 4)]).toEqual([0x89, 0x50, 0x4e, 0x47]);
    expect(photo.text).toMatch(
      /^⚙️ \[proxy\] 💳 Agent SDK credit: \$0\.08\d of \$0\.10 \(8\d %\), \$0\.01\d left, runs out /,
    );

    await turn(h, 3, 0.0105); // 97.5 %
    await reply(h, OWNER, /95 % spent/);
    await turn(h, 4, 0.0075); // 105 %
    await reply(h, OWNER, /⛔ Claude's Agent SDK credit is spent \(\$0\.1\d of \$0\.10\)/);
    expect(creditNotices(h).map((m) => /\d+ % spent|📉|⛔/.exec(m.text)?.[0])).toEqual([
      '50 % spent',
      '📉',
      '80 % spent',
      '95 % spent',
      '⛔',
    ]);
    // No fallback mode configured: Claude keeps answering (the fake does not refuse).
    expect(h.service.core.switcher.active().id).toBe('assistant');

    await h.stopService();
    const again = await start(c, h);
    await turn(again, 5, 0.001);
    // The turn is in the ledger, and checked, before its answer is sent: any notice would be stored by now.
    const stored = again.service.core.notifier.recent(100).filter((n) => n.kind === 'credit');
    expect(stored).toHaveLength(5);
    expect(again.service.core.meter.reading().exhausted).toBe(true);
  });

  it('switches to the local mode at 95 % with the wake notice, and back at a renewal moved a few seconds ahead', async () => {
    const c = config(
      { resetDay: new Date(Date.now() + 10 * DAY_MS).toISOString() },
      { usageLimit: { fallbackMode: 'local' } },
    );
    const h = await start(c);
    await turn(h, 1, 0.06); // 60 %
    await reply(h, OWNER, /50 % spent/);
    await turn(h, 2, 0.0375); // 97.5 %
    const notice = await reply(h, OWNER, /95 % spent/);
    expect(notice.text).toMatch(
      /Switching to local until the renewal; \/mode assistant goes back to Claude knowingly\.$/,
    );
    const wake = await reply(h, OWNER, /Mode local is awake/);
    expect(wake.text).toMatch(/Switched from assistant in /);
    expect(h.service.core.switcher.active().id).toBe('local');
    h.tg.user(112).says('still there?');
    await reply(h, 112, /^echo: still there\?$/);

    // The owner moves the renewal to a few seconds from now and restarts: the way back follows it.
    await h.stopService();
    const moved = config(
      { resetDay: new Date(Date.now() + 2_000).toISOString() },
      { usageLimit: { fallbackMode: 'local' } },
    );
    const again = await start(moved, h);
    const back = await reply(again, OWNER, /credit has renewed/);
    expect(back.text).toBe("⚙️ [proxy] 💳 Claude's Agent SDK credit has renewed: back to assistant.");
    await reply(again, OWNER, /Mode assistant is awake/);
    expect(again.service.core.switcher.active().id).toBe('assistant');
    // A new cycle: nothing spent in it yet.
    expect(again.service.core.meter.reading()).toMatchObject({ spent: 0, exhausted: false });
    await turn(again, 3, 0.001);
  });

  it("once Claude says the credit is spent, after brainstem's own count did, a notice, /usage and /status say when Claude resets it", async () => {
    // A cycle that ends in about a month; Claude resets the credit in three hours.
    const h = await start(config({ resetDay: new Date(Date.now() - DAY_MS).toISOString() }));
    // brainstem's count passes the credit first: its notice can only give the cycle's end.
    await turn(h, 1, 0.11);
    await reply(h, OWNER, /⛔ Claude's Agent SDK credit is spent/);
    const resetSec = Math.floor((Date.now() + 3 * 3_600_000) / 1000);
    const at = `${new Date(resetSec * 1000).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
    claude.fake.script(() => creditSpent(resetSec));
    h.tg.user(112).says('one more');
    await reply(h, 112, /Agent SDK credit is spent/);
    const notice = await reply(h, OWNER, /Claude says its Agent SDK credit is spent/);
    expect(notice.text).toContain(`${at} (Claude's reset)`);
    h.tg.user(113).says('/usage');
    const usage = await reply(h, 113, /Agent SDK credit/);
    expect(usage.text).toContain(at);
    h.tg.user(114).says('/status');
    const status = await reply(h, 114, /Agent SDK credit/);
    expect(status.text).toContain(at);
  });

  it("after a restart, the fallback mode still goes back to Claude at the reset Claude gave, not at the cycle's end", async () => {
    const c = config(
      { resetDay: new Date(Date.now() + 10 * DAY_MS).toISOString() },
      { usageLimit: { fallbackMode: 'local' } },
    );
    const wayBack = (x: Harness) =>
      (JSON.parse(x.service.core.kv.get('credit_fallback') ?? '{}') as { resetsAt?: number }).resetsAt;
    // Claude resets the credit `margin` after its answer, ten days before the configured renewal: time for
    // the switch and a restart. A restart that ends after the reset proves nothing (the way back is then
    // taken at the start, not by the restarted service's timer): on a loaded machine the next try has twice
    // the margin. The restarted service's timer is what is checked, and only ever on a try that reached it.
    for (let margin = 1_000; ; margin *= 2) {
      if (margin > 32_000) throw new Error('no restart ended before the reset, even with 32 s for it');
      const h = await start(c);
      let resetsAt = 0;
      claude.fake.script(() => {
        // From Claude's answer on (the CLI's start is not the restart's to wait for); once, should it ask again.
        resetsAt ||= Math.ceil((Date.now() + margin) / 1000) * 1000;
        return creditSpent(resetsAt / 1000);
      });
      h.tg.user(112).says('one more');
      await reply(h, OWNER, /Mode local is awake/);
      expect(wayBack(h)).toBe(resetsAt);
      await h.stopService();
      const again = await start(c, h);
      if (Date.now() >= resetsAt) {
        for (const x of open.splice(0).reverse()) await x.close();
        continue;
      }
      // Restarted before the reset, while still on the fallback mode: the way back is the restarted service's to take.
      expect(again.service.core.switcher.active().id).toBe('local');
      expect(wayBack(again)).toBe(resetsAt);
      expect(again.service.core.meter.reading().until).toBe(resetsAt);
      const back = await reply(again, OWNER, /credit has renewed/, resetsAt - Date.now() + 30_000);
      expect(Date.now()).toBeGreaterThanOrEqual(resetsAt);
      expect(back.text).toBe("⚙️ [proxy] 💳 Claude's Agent SDK credit has renewed: back to assistant.");
      await reply(again, OWNER, /Mode assistant is awake/);
      expect(again.service.core.switcher.active().id).toBe('assistant');
      return;
    }
  });

  it('with a credit far above the spending, /usage and the credit chart say it lasts until the renewal', async () => {
    // "No limit, but count": at $0.50 a day the run-out is past the last date JavaScript can write.
    const h = await start(config({ monthlyUsd: 1_000_000_000 }));
    h.service.core.ledger.record({
      ts: Date.now() - 60_000,
      mode: 'assistant',
      sessionKey: 'telegram:114',
      source: 'telegram',
      costUsd: 0.5,
      inputTokens: 1000,
      outputTokens: 20,
      cacheReadTokens: 0,
      cacheWriteTokens: 0,
      durationMs: 1,
      billing: 'subscription',
    });
    h.tg.user(114).says('/usage');
    // It said "/usage failed: Invalid time value".
    const usage = await reply(h, 114, /^⚙️ \[proxy\] Usage\n/);
    expect(usage.text).toContain('Pace (7 days): $0.50/day → lasts until the renewal\n');
    h.tg.user(114).says('/usage chart');
    const photo = await h.tg.waitFor(() => h.tg.botMessages(114).find((m) => m.photo), { timeoutMs: 30_000 });
    expect(photo.text).toMatch(/^⚙️ \[proxy\] 💳 Agent SDK credit: \$0\.50 of \$1000000000\.00 \(0 %\)/);
  });

  it('with Claude Code on an API key, /usage and /usage chart credit say the credit does not apply', async () => {
    const h = await start(
      config(
        {},
        // monthlyUsd and the CLI's environment as above, but the CLI runs on an API key.
        {
          claude: {
            env: {
              ...claude.cli.env,
              ...PRICED_MODEL,
              ANTHROPIC_API_KEY: 'sk-test',
              CLAUDE_CODE_OAUTH_TOKEN: '',
            },
            maxRetries: 0,
            credit: { monthlyUsd: 0.1 },
          },
        },
      ),
    );
    await turn(h, 1, 0.06);
    await h.tg.waitFor(() => h.service.core.meter.reading().apiSpent > 0);
    h.tg.user(113).says('/usage');
    const usage = await reply(h, 113, /^⚙️ \[proxy\] Usage\n/);
    expect(usage.text).toContain(
      '💳 The Agent SDK credit does not apply: every Claude mode is billed per token (ANTHROPIC_API_KEY).',
    );
    expect(usage.text).toMatch(/API-key turns this cycle: \$0\.06\d \(billed to the key, not the credit\)/);
    expect(usage.text).not.toContain('a month');
    h.tg.user(113).says('/usage chart credit');
    await reply(
      h,
      113,
      /The Agent SDK credit does not apply, so there is no credit chart: every Claude mode is billed per token \(ANTHROPIC_API_KEY\)/,
    );
    expect(creditNotices(h)).toEqual([]);
  });

  it('with monthlyUsd 0 (no credit, on purpose), /usage, /usage chart credit and the usage report say no more than that', async () => {
    // A plan in the credentials file, as after a /login; monthlyUsd 0 says there is no credit all the same.
    const h = await start(config({ monthlyUsd: 0 }));
    h.service.core.ledger.record({
      ts: Date.now() - 60_000,
      mode: 'assistant',
      sessionKey: 'telegram:115',
      source: 'telegram',
      costUsd: 0.25,
      inputTokens: 1000,
      outputTokens: 20,
      cacheReadTokens: 0,
      cacheWriteTokens: 0,
      durationMs: 1,
      billing: 'subscription',
    });
    h.tg.user(115, { languageCode: 'fr' }).says('/usage');
    const usage = await reply(h, 115, /^⚙️ \[proxy\] Consommation\n/);
    // It said "No Agent SDK credit known (set claude.credit.monthlyUsd, or log in with a plan)".
    expect(usage.text).not.toMatch(/crédit|monthlyUsd/i);
    h.tg.user(115, { languageCode: 'fr' }).says('/usage chart credit');
    const chart = await reply(h, 115, /graphique du crédit/);
    expect(chart.text).toContain('claude.credit.monthlyUsd vaut 0');
    expect(chart.text).not.toContain('réglez');
    const r = h.service.core.meter.reading();
    expect(r).toMatchObject({ off: true, spent: 0.25 });
    expect(creditSentence(r)).toBe(
      `There is no Agent SDK credit (claude.credit.monthlyUsd is 0): Claude turns on the subscription cost $0.25 since ${day(r.cycle.start)}.`,
    );
    expect(creditNotices(h)).toEqual([]);
  });
});
