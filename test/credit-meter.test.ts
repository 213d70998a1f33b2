/**
 * The credit's cycle, its amount (configured, or from the plan in a real
 * credentials file) and the meter over a real SQLite ledger.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { cycleAt } from '../src/credit/cycle.js';
import { CreditMeter, creditSentence } from '../src/credit/meter.js';
import { CreditSource, planCredit } from '../src/credit/plan.js';
import { type Db, KvStore, openDb } from '../src/db/index.js';
import { KeptWrites } from '../src/db/kept-writes.js';
import { type Billing, UsageLedger } from '../src/usage.js';

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
  });
});

describe('the meter', () => {
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
    return { meter, spend, kv };
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
    // Past it, Claude takes turns again: the credit is not spent any more, whatever resetDay says.
    expect(meter.reading(resetsAt)).toMatchObject({ exhausted: false, left: 10 });
    // Without a reset from Claude, or one past the cycle's end, the cycle's end it is.
    meter.markSpent(now);
    expect(meter.reading(now).until).toBe(at('2027-01-01T00:00:00Z'));
  });

  it('without a credit still counts, and forecasts nothing', async () => {
    const { meter, spend } = await ledgerAt(0);
    spend(Date.now() - HOUR, 2);
    const r = meter.reading();
    expect(r.credit).toBeUndefined();
    expect(r.spent).toBeCloseTo(2, 9);
    expect(r.runOutAt).toBeUndefined();
  });
});
