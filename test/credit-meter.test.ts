/**
 * The credit's cycle, its amount (configured, or from the plan in a real
 * credentials file) and the meter over a real SQLite ledger.
 */
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { afterEach, describe, expect, it, onTestFinished, vi } from 'vitest';
import { usageView } from '../handlers/telegram/views/usage.js';
import { creditBypass } from '../src/credit/billing.js';
import { Budgets } from '../src/credit/budget.js';
import { cycleAt } from '../src/credit/cycle.js';
import { CreditMeter, type CreditReading, creditSentence, percent } from '../src/credit/meter.js';
import { CreditSource, planCredit } from '../src/credit/plan.js';
import { type Db, KvStore, migrate, openDb } from '../src/db/index.js';
import { KeptWrites } from '../src/db/kept-writes.js';
import { html } from '../src/html.js';
import { type Billing, SPEND_QUERIES, UsageLedger } from '../src/usage.js';
import { usageContext } from '../src/usage-summary.js';
import { claudeTestEnv, startFakeAnthropic } from './fakes/anthropic.js';
import { startFakeLlama } from './fakes/llama.js';
import { modeConfig } from './helpers/mode-config.js';
import { CLAUDE_BIN, startTestService } from './helpers/service.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const at = (iso: string) => Date.parse(iso);

const dirs: string[] = [];
const dbs: Db[] = [];
afterEach(async () => {
  for (const db of dbs.splice(0)) db.close();
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});
async function tempDir(): Promise<string> {
  const d = await mkdtemp(path.join(tmpdir(), 'credit-meter-'));
  dirs.push(d);
  return d;
}

describe('the cycle', () => {
  it('renews on a day of the month at 00:00 UTC, on the last day of a shorter month', () => {
    expect(cycleAt(1, at('2026-11-24T10:00:00Z'))).toEqual({
      start: at('2026-11-01T00:00:00Z'),
      end: at('2026-12-01T00:00:00Z'),
    });
    expect(cycleAt(15, at('2026-11-10T00:00:00Z'))).toEqual({
      start: at('2026-10-15T00:00:00Z'),
      end: at('2026-11-15T00:00:00Z'),
    });
    expect(cycleAt(31, at('2027-02-10T00:00:00Z'))).toEqual({
      start: at('2027-01-31T00:00:00Z'),
      end: at('2027-02-28T00:00:00Z'),
    });
    expect(cycleAt(31, at('2026-12-31T00:00:00Z')).end).toBe(at('2027-01-31T00:00:00Z'));
  });

  it('renews monthly at the time of day of a given renewal', () => {
    const reset = '2026-06-15T08:30:00+02:00';
    expect(cycleAt(reset, at('2026-11-15T06:29:59Z'))).toEqual({
      start: at('2026-10-15T06:30:00Z'),
      end: at('2026-11-15T06:30:00Z'),
    });
    expect(cycleAt(reset, at('2026-11-15T06:30:00Z')).start).toBe(at('2026-11-15T06:30:00Z'));
  });
});

describe('the amount', () => {
  it('comes from the plan: Pro 20, Max 5x 100, Max 20x 200, Team 20 or 100; none for Enterprise', () => {
    expect(planCredit('pro')?.usd).toBe(20);
    expect(planCredit('max', 'default_claude_max_5x')).toEqual({ usd: 100, from: 'plan', plan: 'Max 5x' });
    expect(planCredit('max', 'default_claude_max_20x')?.usd).toBe(200);
    expect(planCredit('team')?.usd).toBe(20);
    expect(planCredit('team', 'default_claude_team_premium')?.usd).toBe(100);
    expect(planCredit('enterprise')).toBeUndefined();
    expect(planCredit(undefined)).toBeUndefined();
  });

  it('reads the plan from the credentials file; monthlyUsd overrides it, 0 means no credit', async () => {
    const file = path.join(await tempDir(), '.credentials.json');
    await writeFile(
      file,
      JSON.stringify({
        claudeAiOauth: {
          accessToken: 'sk-ant-oat01-x',
          refreshToken: 'r',
          expiresAt: Date.now() + HOUR,
          subscriptionType: 'max',
          rateLimitTier: 'default_claude_max_20x',
        },
      }),
    );
    expect(new CreditSource({}, file).amount()).toEqual({ usd: 200, from: 'plan', plan: 'Max 20x' });
    expect(new CreditSource({ monthlyUsd: 42 }, file).amount()).toEqual({ usd: 42, from: 'config' });
    expect(new CreditSource({ monthlyUsd: 0 }, file).amount()).toBeUndefined();
    // An API-key setup has no credentials file: no credit.
    expect(new CreditSource({}, path.join(path.dirname(file), 'missing.json')).amount()).toBeUndefined();
    // Every Claude mode billed per token: none, whatever the file or monthlyUsd say.
    expect(new CreditSource({}, file, 'ANTHROPIC_API_KEY').amount()).toBeUndefined();
    expect(new CreditSource({ monthlyUsd: 42 }, file, 'ANTHROPIC_API_KEY').amount()).toBeUndefined();
  });

  // The file of an old /login stays on the host after a switch to an API key, which the CLI then uses.
  for (const [auth, env] of [
    ['a login', { CLAUDE_CODE_OAUTH_TOKEN: 'sk-ant-oat01-x', ANTHROPIC_API_KEY: '' }],
    ['an API key', { ANTHROPIC_API_KEY: 'sk-test-key', CLAUDE_CODE_OAUTH_TOKEN: '' }],
  ] as const) {
    it(`with Claude Code on ${auth}, GET /api/usage ${auth === 'a login' ? 'shows the plan' : 'says the credit does not apply, whatever plan the file holds'}`, async () => {
      const dir = await tempDir();
      const file = path.join(dir, '.credentials.json');
      await writeFile(file, JSON.stringify({ claudeAiOauth: maxPlan() }));
      const svc = await startTestService({
        dir,
        // A local model is active, so no Claude CLI starts; the Claude modes are billed as configured.
        config: { defaultMode: 'local', claude: { env, credentialsFile: file } },
        parts: { tools: true },
      });
      try {
        const usage = async () => {
          const r = await fetch(`${svc.url}/api/usage`, {
            headers: { authorization: `Bearer ${svc.token}` },
          });
          return (await r.json()) as { data: { credit: CreditReading }; output: string };
        };
        const { data, output } = await usage();
        if (auth === 'a login') {
          expect(data.credit.credit).toEqual({ usd: 200, from: 'plan', plan: 'Max 20x' });
          expect(output).toContain("Claude's monthly Agent SDK credit (Max 20x): $0.00 of $200.00 spent");
        } else {
          expect(data.credit.credit).toBeUndefined();
          expect(data.credit.billedBy).toBe('ANTHROPIC_API_KEY');
          expect(output).toContain(
            "Claude's Agent SDK credit does not apply: every Claude mode is billed per token (ANTHROPIC_API_KEY).",
          );
        }
      } finally {
        await svc.close();
      }
    });
  }

  it('applies while one Claude mode still runs on the subscription', () => {
    const claude = (id: string, env?: Record<string, string>) => modeConfig({ id, kind: 'claude', env });
    const keyed = claude('keyed', { ANTHROPIC_API_KEY: 'sk-mode' });
    expect(creditBypass([keyed, claude('plan')], {}, {})).toBeUndefined();
    expect(creditBypass([keyed, claude('bedrock', { CLAUDE_CODE_USE_BEDROCK: '1' })], {}, {})).toBe(
      'ANTHROPIC_API_KEY, CLAUDE_CODE_USE_BEDROCK',
    );
    // A mode that blanks the key runs on the subscription again.
    expect(
      creditBypass([claude('plan', { ANTHROPIC_API_KEY: '' })], { ANTHROPIC_API_KEY: 'sk' }, {}),
    ).toBeUndefined();
    expect(creditBypass([claude('plan')], {}, { ANTHROPIC_API_KEY: 'sk-inherited' })).toBe(
      'ANTHROPIC_API_KEY',
    );
    expect(creditBypass([], {}, { ANTHROPIC_API_KEY: 'sk' })).toBeUndefined();
  });
});

function maxPlan() {
  return {
    accessToken: 'sk-ant-oat01-x',
    refreshToken: 'r',
    expiresAt: Date.now() + HOUR,
    subscriptionType: 'max',
    rateLimitTier: 'default_claude_max_20x',
  };
}

describe('the meter', () => {
  it('says a share in whole percent, never a point below it (0.29 * 100 is 28.999… in floating point)', () => {
    expect([0.29, 0.57, 0.58, 0.999, 1].map(percent)).toEqual(['29 %', '57 %', '58 %', '99 %', '100 %']);
  });

  async function ledgerAt(monthlyUsd?: number) {
    const db = openDb(await tempDir());
    dbs.push(db);
    const ledger = new UsageLedger(db, new KeptWrites(db, pino({ level: 'silent' })));
    const config = { monthlyUsd, resetDay: 1 };
    const kv = new KvStore(db);
    const meter = new CreditMeter({
      ledger,
      source: new CreditSource(config, '/nonexistent/credentials.json'),
      config,
      kv,
    });
    const spend = (ts: number, costUsd: number, billing: Billing | undefined = 'subscription') =>
      ledger.record({
        ts,
        mode: billing ? 'assistant' : 'local',
        sessionKey: 'k',
        source: 'test',
        costUsd,
        inputTokens: 0,
        outputTokens: 0,
        cacheReadTokens: 0,
        cacheWriteTokens: 0,
        durationMs: 0,
        billing,
      });
    return { meter, spend, kv, db, ledger };
  }

  it('counts this cycle on the subscription, paces the last 7 days and forecasts the run-out', async () => {
    const { meter, spend } = await ledgerAt(100);
    const now = at('2026-11-21T00:00:00Z');
    spend(at('2026-10-31T12:00:00Z'), 50); // the previous cycle
    for (let d = 1; d <= 20; d++) spend(at('2026-11-01T00:00:00Z') + (d - 1) * DAY + HOUR, 3);
    spend(now - HOUR, 9, 'api_key');
    spend(now - HOUR, 0, undefined);
    const r = meter.reading(now);
    expect(r.spent).toBeCloseTo(60, 9);
    expect(r.share).toBeCloseTo(0.6, 9);
    expect(r.left).toBeCloseTo(40, 9);
    expect(r.apiSpent).toBeCloseTo(9, 9);
    // Seven days of $3 a day.
    expect(r.pacePerDay).toBeCloseTo(3, 9);
    expect(r.runOutAt).toBe(now + (40 / 3) * DAY);
    expect(r.cycle.end).toBe(at('2026-12-01T00:00:00Z'));
    expect(r.exhausted).toBe(false);
  });

  it('is exhausted when the ledger passes the credit or when Claude says so, for that cycle only', async () => {
    const { meter, spend } = await ledgerAt(10);
    const now = at('2026-11-21T00:00:00Z');
    spend(now - HOUR, 4);
    meter.markSpent(now - 1000, at('2026-12-01T00:00:00Z'));
    expect(meter.reading(now)).toMatchObject({ exhausted: true, left: 0, runOutAt: now });
    expect(meter.reading(at('2026-12-01T00:00:00Z'))).toMatchObject({ exhausted: false, spent: 0 });
    spend(now - HOUR, 7);
    expect(meter.reading(now).share).toBeCloseTo(1.1, 9);
  });

  it('reads a stored "spent" that is not what it writes (a hand edit, garbage) as not spent, without throwing', async () => {
    const { meter, kv } = await ledgerAt(10);
    const now = at('2026-11-21T00:00:00Z');
    for (const stored of ['{not json', '{"cycleStart":"soon"}', '42', '']) {
      kv.set('credit_spent', stored);
      expect(meter.reading(now)).toMatchObject({ exhausted: false, left: 10 });
    }
  });

  it('paces a first turn over a day, not over the minutes since it', async () => {
    const { meter, spend } = await ledgerAt(20);
    const now = at('2026-12-03T10:00:00Z');
    spend(now - 10 * 60_000, 0.45);
    // Over its 10 minutes it would be $64.80 a day, and a run-out warning the same day.
    expect(meter.reading(now).pacePerDay).toBeCloseTo(0.45, 9);
  });

  it("takes Claude's own reset, when it comes before the cycle's end, as the end of a spent credit", async () => {
    const { meter } = await ledgerAt(10);
    const now = at('2026-12-03T10:00:00Z');
    const resetsAt = at('2026-12-03T12:00:00Z');
    meter.markSpent(now, resetsAt);
    expect(meter.reading(now)).toMatchObject({ exhausted: true, until: resetsAt });
    expect(creditSentence(meter.reading(now))).toContain(
      'it is spent (Claude said so) until 2026-12-03 12:00 UTC, when Claude said it resets',
    );
    // Read in French (the usage tool run from a French chat): the same facts, no English.
    expect(creditSentence(meter.reading(now), 'fr')).toMatch(
      /^Crédit mensuel Agent SDK de Claude : \$\d+\.\d+ dépensés sur \$10\.00 ce cycle \(\d+ %\), il reste \$\d+\.\d+ ; il est épuisé \(Claude l’a dit\) jusqu’au 2026-12-03 12:00 UTC, quand Claude a dit qu’il se renouvelle\.$/,
    );
    // Past it, Claude takes turns again: the credit is not spent any more, whatever resetDay says.
    expect(meter.reading(resetsAt)).toMatchObject({ exhausted: false, left: 10 });
    // Without a reset from Claude, or one past the cycle's end, the cycle's end it is.
    meter.markSpent(now);
    expect(meter.reading(now).until).toBe(at('2027-01-01T00:00:00Z'));
  });

  it("counts afresh from Claude's own reset once it has passed: the turns before it no longer draw from the credit", async () => {
    const { meter, spend } = await ledgerAt(10);
    const now = at('2026-12-10T10:00:00Z');
    const resetsAt = at('2026-12-17T00:00:00Z'); // the account renews on the 17th; resetDay says the 1st
    spend(now - HOUR, 10.2);
    meter.markSpent(now, resetsAt);
    expect(meter.reading(resetsAt - 1)).toMatchObject({ exhausted: true, until: resetsAt });
    spend(resetsAt + HOUR, 0.5);
    // The cycle's notices and switch are keyed by its start: they come again for the renewed credit.
    expect(meter.reading(resetsAt + 2 * HOUR)).toMatchObject({
      cycle: { start: resetsAt, end: at('2027-01-01T00:00:00Z') },
      spent: 0.5,
      left: 9.5,
      exhausted: false,
    });
    // The next renewal by resetDay starts a whole cycle again.
    expect(meter.reading(at('2027-01-02T00:00:00Z')).cycle.start).toBe(at('2027-01-01T00:00:00Z'));
  });

  it("brings a fallback back at Claude's earlier reset, else at the cycle's end, never at the reset of an earlier cycle's report", async () => {
    const { meter } = await ledgerAt(10);
    const now = at('2026-12-03T10:00:00Z');
    const since = now + 1000; // the switch away, right after Claude said so
    const cycleEnd = at('2027-01-01T00:00:00Z');
    meter.markSpent(now, at('2026-12-03T12:00:00Z'));
    expect(meter.renewalAfter(since)).toBe(at('2026-12-03T12:00:00Z'));
    meter.markSpent(now);
    expect(meter.renewalAfter(since)).toBe(cycleEnd);
    meter.markSpent(now, at('2027-01-05T00:00:00Z'));
    expect(meter.renewalAfter(since)).toBe(cycleEnd);
    // Said in November, with a reset after December's renewal: a switch in December is not about it.
    meter.markSpent(at('2026-11-30T10:00:00Z'), at('2026-12-05T00:00:00Z'));
    expect(meter.renewalAfter(since)).toBe(cycleEnd);
    // A reset already passed when the switch came is an earlier switch's.
    meter.markSpent(now - 2 * HOUR, now - HOUR);
    expect(meter.renewalAfter(since)).toBe(cycleEnd);
  });

  it('counts a turn whose row waits behind another process’s lock, in the meter, the day budget and the usage reports, once', async () => {
    const { meter, spend, db, ledger } = await ledgerAt(100);
    db.pragma('busy_timeout = 0');
    const rows = () => (db.prepare('SELECT COUNT(*) AS n FROM usage').get() as { n: number }).n;
    const mode = modeConfig({ id: 'assistant', kind: 'claude', budget: { dayUsd: 3 } });
    // Yesterday at noon (UTC): the turn and the next one fall on one day whenever the test runs (at
    // 00:00:00.5 the turn was yesterday's, and the day's budget fresh), and both lie in the past the
    // reports end at.
    const now = Math.floor(Date.now() / DAY) * DAY - DAY / 2;
    // A sqlite3 shell inside a transaction.
    const other = new Database(db.name, { timeout: 0 });
    other.exec('BEGIN IMMEDIATE');
    try {
      spend(now - 1000, 3);
      expect(rows()).toBe(0);
      expect(meter.reading(now + 1).spent).toBeCloseTo(3, 9);
      expect(ledger.report(now - 2000).totals).toMatchObject({ turns: 1, costUsd: 3 });
      // The day's budget is spent: the next turn must not get it again because the row waits.
      expect(new Budgets(ledger).admit(mode, 'en', now + 1)).toMatchObject({
        ok: false,
        error: { limit: 'day_budget' },
      });
    } finally {
      other.exec('ROLLBACK');
      other.close();
    }
    // Written at the next try, and counted once.
    await vi.waitFor(() => expect(rows()).toBe(1), { timeout: 20_000 });
    expect(meter.reading(now + 1).spent).toBeCloseTo(3, 9);
    expect(ledger.report(now - 2000).totals).toMatchObject({ turns: 1, costUsd: 3 });
  });

  it('counts a cost estimated from the tokens like any other, and /usage says it is estimated', async () => {
    const { meter, ledger } = await ledgerAt(100);
    // Not the real clock: two seconds into a month, the first row fell in the cycle before.
    const now = at('2026-11-21T00:00:00Z');
    const row = {
      mode: 'assistant',
      sessionKey: 'k',
      source: 'test',
      inputTokens: 1000,
      outputTokens: 500,
      cacheReadTokens: 0,
      cacheWriteTokens: 0,
      durationMs: 0,
      billing: 'subscription' as const,
    };
    ledger.record({ ...row, ts: now - 2000, costUsd: 1 });
    ledger.record({ ...row, ts: now - 1000, costUsd: 0.5, costBasis: 'estimated', error: 'aborted' });
    expect(meter.reading(now + 1).spent).toBeCloseTo(1.5, 9);
    expect(ledger.totals(now - HOUR, now + 1)).toMatchObject({ turns: 2, costUsd: 1.5, estimated: 1 });
    expect(usageView(ledger, '1h', 'en', now)).toContain('Total: $1.50 (estimated for 1 turn), 2 turns,');
  });

  it("finds a cycle's spend and the first turn in the (billing, ts, cost_usd) index alone, kept rows included", async () => {
    const { db } = await ledgerAt(100);
    const plan = (sql: string, params: object) =>
      (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(params) as { detail: string }[]).map((r) => r.detail);
    const cycle = { billing: 'subscription', since: 0, until: Date.now() };
    for (const detail of [
      plan(SPEND_QUERIES.spend, cycle),
      plan(SPEND_QUERIES.first, { billing: 'subscription' }),
    ]) {
      expect(detail).toContainEqual(
        expect.stringMatching(/^SEARCH main\.usage USING COVERING INDEX usage_billing_ts/),
      );
      expect(detail).toContainEqual(expect.stringMatching(/temp\.usage_kept/));
    }
  });

  it('/usage and the usage summary group the rows of this month alone: every other period is its totals', async () => {
    // Over all time each grouping reads every row: half a second on a year of turns, brainstem standing still.
    const ran: string[] = [];
    const db = new Database(path.join(await tempDir(), 'brainstem.sqlite'), {
      verbose: (sql) => ran.push(String(sql)),
    });
    dbs.push(db);
    migrate(db);
    const ledger = new UsageLedger(db, new KeptWrites(db, pino({ level: 'silent' })));
    const now = at('2026-12-03T10:00:00Z');
    for (const [ts, mode] of [
      [at('2025-06-01T00:00:00Z'), 'old'],
      [now - HOUR, 'assistant'],
    ] as const)
      ledger.record({
        ts,
        mode,
        sessionKey: 'k',
        source: 'test',
        costUsd: 1,
        inputTokens: 10,
        outputTokens: 1,
        cacheReadTokens: 0,
        cacheWriteTokens: 0,
        durationMs: 0,
        billing: 'subscription',
      });
    const groupings = (show: () => string) => {
      ran.length = 0;
      const shown = show();
      return { shown, groupings: ran.filter((sql) => /GROUP BY/i.test(sql)).length };
    };
    const usage = groupings(() => usageView(ledger, undefined, 'en', now));
    expect(usage.shown).toContain('All time: $2.00, 2 turns');
    expect(usage.shown).toContain('• assistant: $1.00, 1 turn,');
    expect(usage.shown).not.toContain('• old');
    // This month's modes and its top sessions.
    expect(usage.groupings).toBe(2);
    const summary = groupings(() => usageContext(ledger, now));
    expect(summary.shown).toContain('- all time: $2.00, 2 turns');
    expect(summary.groupings).toBe(1);
  });

  it('without a credit still counts, and forecasts nothing', async () => {
    const { meter, spend } = await ledgerAt(0);
    // Not the real clock: in the first hour of a month (the cycle renews on the 1st), the turn an
    // hour ago fell in the cycle before, and the test failed.
    const now = at('2026-11-21T00:00:00Z');
    spend(now - HOUR, 2);
    const r = meter.reading(now);
    expect(r.credit).toBeUndefined();
    expect(r.spent).toBeCloseTo(2, 9);
    expect(r.runOutAt).toBeUndefined();
  });
});

describe('a plan changed mid-cycle', () => {
  /** A service on Pro's plan, on the local mode with a fallback to it, and a way to spend on the subscription. */
  async function onPro() {
    const dir = await tempDir();
    const file = path.join(dir, '.credentials.json');
    const plan = (subscriptionType: string, rateLimitTier: string) =>
      writeFile(file, JSON.stringify({ claudeAiOauth: { ...maxPlan(), subscriptionType, rateLimitTier } }));
    await plan('pro', 'default_claude_pro');
    const llama = await startFakeLlama();
    // The CLI on a subscription token, as after `claude setup-token`; the plan comes from the file.
    const fake = await startFakeAnthropic();
    const cli = await claudeTestEnv(fake.url, { auth: 'oauth' });
    const svc = await startTestService({
      dir,
      config: {
        defaultMode: 'local',
        claude: {
          bin: CLAUDE_BIN,
          env: cli.env,
          credentialsFile: file,
        },
        llama: { baseUrl: llama.baseUrl, pollIntervalMs: 50 },
        usageLimit: { fallbackMode: 'local' },
      },
    });
    onTestFinished(async () => {
      await svc.close();
      await llama.close();
      await fake.close();
      await cli.cleanup();
    });
    const { core } = svc.service;
    const spend = (ts: number, costUsd: number) =>
      core.ledger.record({
        ts,
        mode: 'assistant',
        sessionKey: 'k',
        source: 'test',
        costUsd,
        inputTokens: 0,
        outputTokens: 0,
        cacheReadTokens: 0,
        cacheWriteTokens: 0,
        durationMs: 0,
        billing: 'subscription',
      });
    const notices = () =>
      core.notifier
        .recent(100)
        .filter((n) => n.kind === 'credit')
        .map((n) => n.text)
        .reverse();
    const toClaude = async () =>
      expect(await core.switcher.switchTo('assistant', { source: 'api' })).toMatchObject({ ok: true });
    return { core, plan, spend, notices, toClaude };
  }

  it('warns at each share of the new credit, and switches at it again, once the plan in the credentials file grows', async () => {
    const { core, plan, spend, notices, toClaude } = await onPro();
    // A cycle a year ahead of the wall clock, so the fallback's way back is still to come.
    const t0 = at('2028-03-03T00:00:00Z');
    const shares = () => notices().map((n) => /\d+ % spent|📉|⛔/.exec(n)?.[0]);
    await toClaude();
    spend(t0, 19.5); // 97.5 % of Pro's $20
    await core.creditWatcher.check(t0 + HOUR);
    expect(shares()).toContain('95 % spent');
    expect(core.switcher.active().id).toBe('local');
    // The owner upgrades to Max 5x ($100), and goes back to Claude.
    await plan('max', 'default_claude_max_5x');
    await toClaude();
    const later = t0 + 2 * DAY; // past the plan's read cache
    expect(core.meter.reading(later).credit).toMatchObject({ usd: 100, plan: 'Max 5x' });
    spend(later, 76); // $95.5 of $100
    await core.creditWatcher.check(later + HOUR);
    expect(shares().filter((s) => s === '95 % spent')).toHaveLength(2);
    expect(core.switcher.active().id).toBe('local');
  });

  it('repeats no notice nor switch stored, before keys named the credit, in the cycle under way', async () => {
    const { core, spend, notices, toClaude } = await onPro();
    const t0 = at('2028-03-03T00:00:00Z');
    const start = at('2028-03-01T00:00:00Z');
    // What an older brainstem stored this cycle: the 80 % notice, the forecast and the switch at 95 %.
    core.notifier.notify({ kind: 'credit', dedupeKey: `credit:${start}:80`, text: html`80 % before` });
    core.notifier.notify({
      kind: 'credit',
      dedupeKey: `credit:${start}:forecast`,
      text: html`forecast before`,
    });
    core.kv.set(`credit_switch:${start}:share`, String(t0));
    await toClaude();
    spend(t0, 19.5); // 97.5 %: the 95 % notice is new, the switch at that share is not
    await core.creditWatcher.check(t0 + HOUR);
    expect(notices().map((n) => /\d+ % spent|📉|before/.exec(n)?.[0])).toEqual([
      'before',
      'before',
      '95 % spent',
    ]);
    expect(core.switcher.active().id).toBe('assistant');
  });

  it('brings the fallback back to Claude once the plan grew past the share that switched, not at the renewal', async () => {
    const { core, plan, spend, notices, toClaude } = await onPro();
    const t0 = at('2028-03-03T00:00:00Z');
    vi.useFakeTimers({ toFake: ['Date'], now: t0, shouldAdvanceTime: true });
    onTestFinished(() => void vi.useRealTimers());
    await toClaude();
    spend(t0, 20.5); // Pro's $20 spent
    await core.creditWatcher.check();
    expect(core.switcher.active().id).toBe('local');
    // A local turn while still on Pro: nothing changes.
    await core.creditWatcher.check();
    expect(core.switcher.active().id).toBe('local');
    // The owner upgrades to Max 5x ($100): 20 % of it spent, far from the 95 % that switches.
    await plan('max', 'default_claude_max_5x');
    vi.setSystemTime(t0 + 2 * HOUR); // past the plan's read cache
    const back = once(core.switcher, 'switched');
    // The next turn's check (the local mode's answer) sees the new credit.
    await core.creditWatcher.check();
    const [outcome] = await back;
    expect(outcome).toMatchObject({ ok: true, from: 'local', to: 'assistant' });
    await vi.waitFor(() => expect(notices().at(-1)).toContain('back to <b>assistant</b>'), {
      timeout: 20_000,
    });
    expect(notices().at(-1)).toBe(
      "⚙️ [proxy] 💳 Claude's Agent SDK credit is now $100.00 (Max 5x), $79.50 left: back to <b>assistant</b>.",
    );
    // And it switches again at 95 % of the new credit.
    vi.setSystemTime(t0 + 3 * HOUR);
    spend(t0 + 3 * HOUR - 1000, 75);
    await core.creditWatcher.check();
    expect(core.switcher.active().id).toBe('local');
  });
});
