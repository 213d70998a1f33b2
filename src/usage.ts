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
  // The sum is no firmer than its least firm part.
  const basis = [a.costBasis, b.costBasis];
  const costBasis = basis.includes('unknown')
    ? 'unknown'
    : basis.includes('estimated')
      ? 'estimated'
      : undefined;
  return {
    costUsd: a.costUsd + b.costUsd,
    inputTokens: a.inputTokens + b.inputTokens,
    outputTokens: a.outputTokens + b.outputTokens,
    cacheReadTokens: a.cacheReadTokens + b.cacheReadTokens,
    cacheWriteTokens: a.cacheWriteTokens + b.cacheWriteTokens,
    ...(costBasis ? { costBasis } : {}),
    // Part of the sum was not counted: the sum is not a count either.
    ...(a.tokensUnknown || b.tokensUnknown ? { tokensUnknown: true as const } : {}),
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
  /** Turns whose cost is an estimate (see TurnUsage.costBasis). */
  estimated: number;
  /** Turns whose tokens the upstream did not count (see TurnUsage.tokensUnknown): the token totals leave them out. */
  uncounted: number;
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
  TOTAL(duration_ms) AS durationMs, SUM(cost_basis IS NOT NULL) AS estimated,
  SUM(tokens_uncounted IS NOT NULL) AS uncounted`;

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
    estimated: r.estimated ?? 0,
    uncounted: r.uncounted ?? 0,
  }) as T & UsageTotals;

const COLUMNS = `ts, mode, session_key, brain_session_id, source, cost_usd, input_tokens, output_tokens,
  cache_read_tokens, cache_write_tokens, duration_ms, error, billing, cost_basis, tokens_uncounted`;

/** `select` from the ledger and the kept rows, `where` applied to each table. */
const bothTables = (select: string, where: string) =>
  `SELECT ${select} FROM main.usage WHERE ${where} UNION ALL SELECT ${select} FROM temp.usage_kept WHERE ${where}`;

/**
 * What the meter and the budgets ask after every turn. They name both tables and only the
 * columns they need: through the usage_seen view SQLite read every matching row of main.usage
 * for all its columns (5.7 ms a meter reading over a year of turns, against 0.1); this way the
 * spend and the first turn read the (billing, ts, cost_usd) index alone (test/credit-meter.test.ts
 * checks the plan).
 */
export const SPEND_QUERIES = {
  spend: `SELECT TOTAL(cost) AS cost FROM (${bothTables('cost_usd AS cost', 'billing = @billing AND ts >= @since AND ts < @until')})`,
  first: `SELECT MIN(ts) AS ts FROM (${bothTables('MIN(ts) AS ts', 'billing = @billing')})`,
  modeSpend: `SELECT TOTAL(cost) AS cost FROM (${bothTables('cost_usd AS cost', 'mode = @mode AND ts >= @since AND ts < @until')})`,
};

/**
 * Every brain turn, successful or not, lands here; reports are plain SQL
 * aggregates. A turn's row is written as its answer ends: when another process
 * holds the database it is kept until the lock is gone (see KeptWrites), so
 * the answer still ends normally and the cost is not lost. Meanwhile it waits
 * in a TEMP table (the connection's own in-memory database, which takes writes
 * whatever locks the file), and every read goes through a view of both tables:
 * the budgets, the credit meter and `/usage` count a kept turn as soon as it ends.
 */
export class UsageLedger {
  private readonly insert;
  private readonly keep;
  private readonly unkeep;
  private readonly spendStmt;
  private readonly firstStmt;
  private readonly modeSpendStmt;
  constructor(
    private readonly db: Db,
    private readonly kept: KeptWrites,
  ) {
    db.exec(`CREATE TEMP TABLE IF NOT EXISTS usage_kept AS SELECT ${COLUMNS} FROM main.usage WHERE 0;
      CREATE TEMP VIEW IF NOT EXISTS usage_seen AS
        SELECT ${COLUMNS} FROM main.usage UNION ALL SELECT ${COLUMNS} FROM temp.usage_kept`);
    const values = 'VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)';
    this.insert = db.prepare(`INSERT INTO main.usage (${COLUMNS}) ${values}`);
    this.keep = db.prepare(`INSERT INTO temp.usage_kept (${COLUMNS}) ${values}`);
    this.unkeep = db.prepare('DELETE FROM temp.usage_kept WHERE rowid = ?');
    this.spendStmt = db.prepare<[{ billing: Billing; since: number; until: number }], { cost: number }>(
      SPEND_QUERIES.spend,
    );
    this.firstStmt = db.prepare<[{ billing: Billing }], { ts: number | null }>(SPEND_QUERIES.first);
    this.modeSpendStmt = db.prepare<[{ mode: string; since: number; until: number }], { cost: number }>(
      SPEND_QUERIES.modeSpend,
    );
  }

  /** Never throws: a row the database refuses is kept or, on an error waiting cannot cure, logged as lost. */
  record(e: UsageEntry): void {
    const cost = `$${e.costUsd.toFixed(4)}${e.costBasis ? ` ${e.costBasis}` : ''}`;
    const what = `the usage of a turn (mode ${e.mode}, ${e.sessionKey}, ${cost}, ${e.inputTokens} tokens in / ${e.outputTokens} out)`;
    const row = [
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
      e.costBasis ?? null,
      e.tokensUnknown ? 1 : null,
    ];
    const id = this.keep.run(...row).lastInsertRowid;
    this.kept.run(what, () => {
      try {
        // One transaction: the row moves, it is never counted twice or not at all.
        this.db.transaction(() => {
          this.insert.run(...row);
          this.unkeep.run(id);
        })();
      } catch (err) {
        // Refused by the lock, the row waits (and counts); any other error loses it (KeptWrites logs it).
        if (!isBusy(err)) this.unkeep.run(id);
        throw err;
      }
    });
  }

  /** Cost of the turns paid by `billing` over [since, until). */
  spend(billing: Billing, since: number, until: number): number {
    return this.spendStmt.get({ billing, since, until })?.cost ?? 0;
  }

  /** When the first turn paid by `billing` was recorded, if any. */
  firstTurn(billing: Billing): number | undefined {
    return this.firstStmt.get({ billing })?.ts ?? undefined;
  }

  /** Cost of one mode's turns over [since, until), whoever paid. */
  modeSpend(mode: string, since: number, until: number): number {
    return this.modeSpendStmt.get({ mode, since, until })?.cost ?? 0;
  }

  /** Cost per hour of the turns paid by `billing` over [since, until): hour starts in unix ms. */
  hourlySpend(billing: Billing, since: number, until: number): { hour: number; costUsd: number }[] {
    return this.db
      .prepare<[Billing, number, number], { hour: number; costUsd: number }>(
        `SELECT (ts / 3600000) * 3600000 AS hour, TOTAL(cost_usd) AS costUsd FROM usage_seen
         WHERE billing = ? AND ts >= ? AND ts < ? GROUP BY hour ORDER BY hour`,
      )
      .all(billing, since, until);
  }

  /**
   * The totals over [since, until), a period's line. Each of a report's breakdowns groups every
   * row of its period: over all time, half a second on a year of turns, and the whole process
   * waits for it (better-sqlite3 is synchronous). So a view reads only the parts it shows.
   */
  totals(since: number, until = Date.now() + 1): UsageTotals {
    return norm(
      this.db
        .prepare<[number, number], Totals>(`SELECT ${sums} FROM usage_seen WHERE ts >= ? AND ts < ?`)
        .get(since, until) ?? ({} as Totals),
    );
  }

  /** Totals per mode over [since, until), the costliest first. */
  byMode(since: number, until = Date.now() + 1): UsageReport['byMode'] {
    return this.db
      .prepare<[number, number], Totals<{ mode: string }>>(
        `SELECT mode, ${sums} FROM usage_seen WHERE ts >= ? AND ts < ? GROUP BY mode ORDER BY costUsd DESC, turns DESC`,
      )
      .all(since, until)
      .map(norm);
  }

  /**
   * The `top` costliest sessions over [since, until). `countedAs`: keys a conversation had before
   * it was renamed, each to its present key: their turns count under it (a row keeps the key its
   * turn had), so one conversation is one line, ranked by all it cost.
   */
  topSessions(
    since: number,
    until: number,
    top: number,
    countedAs: ReadonlyMap<string, string> = new Map(),
  ): UsageReport['bySession'] {
    return this.db
      .prepare<[string, number, number, number], Totals<{ sessionKey: string; mode: string }>>(
        `SELECT COALESCE(renamed.value, session_key) AS sessionKey, mode, ${sums}
         FROM usage_seen LEFT JOIN json_each(?) AS renamed ON renamed.key = session_key
         WHERE ts >= ? AND ts < ?
         GROUP BY 1, mode ORDER BY costUsd DESC, turns DESC LIMIT ?`,
      )
      .all(JSON.stringify(Object.fromEntries(countedAs)), since, until, top)
      .map(norm);
  }

  /**
   * Totals and breakdowns over [since, until). Days are UTC. `countedAs`: the sessions renamed since
   * (topSessions).
   */
  report(
    since: number,
    { until = Date.now() + 1, countedAs }: { until?: number; countedAs?: ReadonlyMap<string, string> } = {},
  ): UsageReport {
    const byDay = this.db
      .prepare<[number, number], Totals<{ day: string }>>(
        `SELECT date(ts / 1000, 'unixepoch') AS day, ${sums} FROM usage_seen WHERE ts >= ? AND ts < ? GROUP BY day ORDER BY day`,
      )
      .all(since, until)
      .map(norm);
    return {
      since,
      until,
      totals: this.totals(since, until),
      byDay,
      byMode: this.byMode(since, until),
      bySession: this.topSessions(since, until, 10, countedAs),
    };
  }

  /** Daily totals per mode, for charts. */
  dailyByMode(since: number, until = Date.now() + 1): (UsageTotals & { day: string; mode: string })[] {
    return this.db
      .prepare<[number, number], Totals<{ day: string; mode: string }>>(
        `SELECT date(ts / 1000, 'unixepoch') AS day, mode, ${sums} FROM usage_seen WHERE ts >= ? AND ts < ?
         GROUP BY day, mode ORDER BY day, mode`,
      )
      .all(since, until)
      .map(norm);
  }
}
