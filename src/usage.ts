import type { TurnUsage } from '../brains/types.js';
import type { Db } from './db/index.js';
import { isBusy, type KeptWrites } from './db/kept-writes.js';

/** Who paid a Claude turn: the subscription (its monthly Agent SDK credit) or an API key. */
export type Billing = 'subscription' | 'api_key';

export interface UsageEntry extends TurnUsage {
  ts: number;
  mode: string;
  sessionKey: string;
  brainSessionId?: string;
  /** Who asked: openai, telegram, tool. */
  source: string;
  durationMs: number;
  error?: string;
  /** Claude turns only; a local model costs nothing. */
  billing?: Billing;
}

export const NO_USAGE: TurnUsage = {
  costUsd: 0,
  inputTokens: 0,
  outputTokens: 0,
  cacheReadTokens: 0,
  cacheWriteTokens: 0,
};

/** Usage of an answer that took several brain calls (tool rounds). */
export function addUsage(a: TurnUsage | undefined, b: TurnUsage): TurnUsage {
  if (!a) return b;
  return {
    costUsd: a.costUsd + b.costUsd,
    inputTokens: a.inputTokens + b.inputTokens,
    outputTokens: a.outputTokens + b.outputTokens,
    cacheReadTokens: a.cacheReadTokens + b.cacheReadTokens,
    cacheWriteTokens: a.cacheWriteTokens + b.cacheWriteTokens,
  };
}

export interface UsageTotals {
  turns: number;
  errors: number;
  costUsd: number;
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  durationMs: number;
}

export interface UsageReport {
  since: number;
  until: number;
  totals: UsageTotals;
  byDay: (UsageTotals & { day: string })[];
  byMode: (UsageTotals & { mode: string })[];
  bySession: (UsageTotals & { sessionKey: string; mode: string })[];
}

const sums = `COUNT(*) AS turns, SUM(error IS NOT NULL) AS errors, TOTAL(cost_usd) AS costUsd,
  TOTAL(input_tokens) AS inputTokens, TOTAL(output_tokens) AS outputTokens,
  TOTAL(cache_read_tokens) AS cacheReadTokens, TOTAL(cache_write_tokens) AS cacheWriteTokens,
  TOTAL(duration_ms) AS durationMs`;

type Totals<T = object> = T & { [K in keyof UsageTotals]: number | null };

const norm = <T extends object>(r: Totals<T>): T & UsageTotals =>
  ({
    ...r,
    turns: r.turns ?? 0,
    errors: r.errors ?? 0,
    costUsd: r.costUsd ?? 0,
    inputTokens: r.inputTokens ?? 0,
    outputTokens: r.outputTokens ?? 0,
    cacheReadTokens: r.cacheReadTokens ?? 0,
    cacheWriteTokens: r.cacheWriteTokens ?? 0,
    durationMs: r.durationMs ?? 0,
  }) as T & UsageTotals;

/**
 * Every brain turn, successful or not, lands here; reports are plain SQL
 * aggregates. A turn's row is written as its answer ends: when another process
 * holds the database it is kept until the lock is gone (see KeptWrites), so
 * the answer still ends normally and the cost is not lost. What the budgets and
 * the credit meter read (spend, modeSpend, firstTurn) counts the kept rows too:
 * a turn does not get a day's budget again because the last one's cost waits.
 */
export class UsageLedger {
  /** Rows recorded but not written yet (another process holds the database). */
  private readonly unwritten = new Set<UsageEntry>();
  private readonly insert;
  private readonly spendStmt;
  private readonly firstStmt;
  private readonly modeSpendStmt;
  constructor(
    private readonly db: Db,
    private readonly kept: KeptWrites,
  ) {
    this.insert = db.prepare(
      `INSERT INTO usage (ts, mode, session_key, brain_session_id, source, cost_usd, input_tokens, output_tokens,
        cache_read_tokens, cache_write_tokens, duration_ms, error, billing)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    // The meter runs after every turn: these read the (billing, ts, cost_usd) index only.
    this.spendStmt = db.prepare<[Billing, number, number], { cost: number }>(
      'SELECT TOTAL(cost_usd) AS cost FROM usage WHERE billing = ? AND ts >= ? AND ts < ?',
    );
    this.firstStmt = db.prepare<[Billing], { ts: number | null }>(
      'SELECT MIN(ts) AS ts FROM usage WHERE billing = ?',
    );
    this.modeSpendStmt = db.prepare<[string, number, number], { cost: number }>(
      'SELECT TOTAL(cost_usd) AS cost FROM usage WHERE mode = ? AND ts >= ? AND ts < ?',
    );
  }

  /** Never throws: a row the database refuses is kept or, on an error waiting cannot cure, logged as lost. */
  record(e: UsageEntry): void {
    const what = `the usage of a turn (mode ${e.mode}, ${e.sessionKey}, $${e.costUsd.toFixed(4)}, ${e.inputTokens} tokens in / ${e.outputTokens} out)`;
    this.unwritten.add(e);
    this.kept.run(what, () => {
      try {
        this.write(e);
      } catch (err) {
        // Refused by the lock, the row waits (and counts); any other error loses it (KeptWrites logs it).
        if (!isBusy(err)) this.unwritten.delete(e);
        throw err;
      }
      this.unwritten.delete(e);
    });
  }

  /** The cost of the unwritten rows that `keep` accepts. */
  private unwrittenCost(keep: (e: UsageEntry) => boolean): number {
    let cost = 0;
    for (const e of this.unwritten) if (keep(e)) cost += e.costUsd;
    return cost;
  }

  private write(e: UsageEntry): void {
    this.insert.run(
      e.ts,
      e.mode,
      e.sessionKey,
      e.brainSessionId ?? null,
      e.source,
      e.costUsd,
      e.inputTokens,
      e.outputTokens,
      e.cacheReadTokens,
      e.cacheWriteTokens,
      e.durationMs,
      e.error ?? null,
      e.billing ?? null,
    );
  }

  /** Cost of the turns paid by `billing` over [since, until). */
  spend(billing: Billing, since: number, until: number): number {
    const written = this.spendStmt.get(billing, since, until)?.cost ?? 0;
    return written + this.unwrittenCost((e) => e.billing === billing && e.ts >= since && e.ts < until);
  }

  /** When the first turn paid by `billing` was recorded, if any. */
  firstTurn(billing: Billing): number | undefined {
    const kept = [...this.unwritten].filter((e) => e.billing === billing).map((e) => e.ts);
    const written = this.firstStmt.get(billing)?.ts ?? undefined;
    return kept.length === 0 ? written : Math.min(written ?? Number.POSITIVE_INFINITY, ...kept);
  }

  /** Cost of one mode's turns over [since, until), whoever paid. */
  modeSpend(mode: string, since: number, until: number): number {
    const written = this.modeSpendStmt.get(mode, since, until)?.cost ?? 0;
    return written + this.unwrittenCost((e) => e.mode === mode && e.ts >= since && e.ts < until);
  }

  /** Cost per hour of the turns paid by `billing` over [since, until): hour starts in unix ms. */
  hourlySpend(billing: Billing, since: number, until: number): { hour: number; costUsd: number }[] {
    return this.db
      .prepare<[Billing, number, number], { hour: number; costUsd: number }>(
        `SELECT (ts / 3600000) * 3600000 AS hour, TOTAL(cost_usd) AS costUsd FROM usage
         WHERE billing = ? AND ts >= ? AND ts < ? GROUP BY hour ORDER BY hour`,
      )
      .all(billing, since, until);
  }

  /** Totals and breakdowns over [since, until). Days are UTC. */
  report(since: number, until = Date.now() + 1, topSessions = 10): UsageReport {
    const totals = norm(
      this.db
        .prepare<[number, number], Totals>(`SELECT ${sums} FROM usage WHERE ts >= ? AND ts < ?`)
        .get(since, until) ?? ({} as Totals),
    );
    const byDay = this.db
      .prepare<[number, number], Totals<{ day: string }>>(
        `SELECT date(ts / 1000, 'unixepoch') AS day, ${sums} FROM usage WHERE ts >= ? AND ts < ? GROUP BY day ORDER BY day`,
      )
      .all(since, until)
      .map(norm);
    const byMode = this.db
      .prepare<[number, number], Totals<{ mode: string }>>(
        `SELECT mode, ${sums} FROM usage WHERE ts >= ? AND ts < ? GROUP BY mode ORDER BY costUsd DESC, turns DESC`,
      )
      .all(since, until)
      .map(norm);
    const bySession = this.db
      .prepare<[number, number, number], Totals<{ sessionKey: string; mode: string }>>(
        `SELECT session_key AS sessionKey, mode, ${sums} FROM usage WHERE ts >= ? AND ts < ?
         GROUP BY session_key, mode ORDER BY costUsd DESC, turns DESC LIMIT ?`,
      )
      .all(since, until, topSessions)
      .map(norm);
    return { since, until, totals, byDay, byMode, bySession };
  }

  /** Daily totals per mode, for charts. */
  dailyByMode(since: number, until = Date.now() + 1): (UsageTotals & { day: string; mode: string })[] {
    return this.db
      .prepare<[number, number], Totals<{ day: string; mode: string }>>(
        `SELECT date(ts / 1000, 'unixepoch') AS day, mode, ${sums} FROM usage WHERE ts >= ? AND ts < ?
         GROUP BY day, mode ORDER BY day, mode`,
      )
      .all(since, until)
      .map(norm);
  }
}
