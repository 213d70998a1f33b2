import { setImmediate } from 'node:timers/promises';
import type { Db } from './db/index.js';
import { isBusy, withoutWaiting } from './db/kept-writes.js';
import type { Logger } from './logger.js';
import { noticeCause } from './notices.js';

const DAY_MS = 86_400_000;
/** How often the old rows are looked for once brainstem runs (the first time at start). */
export const RETENTION_SWEEP_MS = DAY_MS;
/**
 * Rows removed by one DELETE: each holds the database's write lock while it runs, and the event
 * loop waits between two, so a year of audit rows (~70 MB) never stands a turn still for long.
 */
const BATCH_ROWS = 500;

export interface RetentionConfig {
  /** Audit rows older than this many days go; 0: kept for ever. */
  auditDays: number;
  /**
   * Notices delivered more than this many days ago go (never one not delivered, nor the latest of
   * its cause); 0: kept for ever.
   */
  noticeDays: number;
}

export interface Removed {
  audit: number;
  notices: number;
}

/**
 * What the state database keeps only for so long: the audit log (one row per tool call, the
 * biggest table after a year) and the notices once delivered. The other tables bound themselves
 * (sessions and conversation heads by their TTL, the chat history per chat, the front's queue by
 * age); these two only grow, so they are swept at start and then daily, in the background, in
 * small batches. A notice not yet delivered (sent_at NULL: waiting for a sink, held for want of a
 * notify chat, its mark kept behind another process's lock) is never removed: it is still owed.
 * Nor is the latest notice of each cause (noticeCause: its dedupe key's part before the last `:`,
 * none for a notice of one occasion): a notice due for as long as its cause lasts (credentials that
 * expired) is kept from coming again by its key.
 * Never throws: a database another process holds is left for the next sweep (logged).
 */
export class Retention {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private running: Promise<Removed> | undefined;
  private readonly auditStmt;
  private readonly noticesStmt;

  constructor(
    private readonly db: Db,
    private readonly config: RetentionConfig,
    private readonly logger: Logger,
  ) {
    // By id through the rowid: SQLite's DELETE has no LIMIT unless built with it.
    this.auditStmt = db.prepare(
      'DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE ts < ? ORDER BY ts LIMIT ?)',
    );
    // The latest notice of each cause stays, whatever its age: its key is what keeps it from coming
    // again while the cause lasts (credentials that expired and stay so: told once, not every
    // noticeDays). The cause is decided per family of keys (noticeCause): none for a notice of one
    // occasion (an upgrade's, a credit cycle's), which ages out as any.
    db.function('notice_cause', { deterministic: true }, (key: unknown) =>
      typeof key === 'string' ? (noticeCause(key) ?? null) : null,
    );
    this.noticesStmt = db.prepare(
      `DELETE FROM notices WHERE id IN (
         SELECT id FROM notices WHERE sent_at IS NOT NULL AND sent_at < ?
           AND id NOT IN (
             SELECT MAX(id) FROM notices WHERE notice_cause(dedupe_key) IS NOT NULL
             GROUP BY notice_cause(dedupe_key)
           )
         LIMIT ?)`,
    );
  }

  /** Sweeps now, then every RETENTION_SWEEP_MS; the timer keeps no process alive. */
  start(): void {
    if (this.stopped || this.timer) return;
    void this.sweep();
    this.timer = setInterval(() => void this.sweep(), RETENTION_SWEEP_MS);
    this.timer.unref();
  }

  /** No sweep starts after this, and one under way ends at its next batch (the database closes next). */
  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Removes what is past its days; one sweep at a time (a second call joins the one running). */
  sweep(now = Date.now()): Promise<Removed> {
    this.running ??= this.sweepNow(now).finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async sweepNow(now: number): Promise<Removed> {
    const { auditDays, noticeDays } = this.config;
    const removed: Removed = { audit: 0, notices: 0 };
    try {
      if (auditDays > 0) removed.audit = await this.inBatches(this.auditStmt, now - auditDays * DAY_MS);
      if (noticeDays > 0) removed.notices = await this.inBatches(this.noticesStmt, now - noticeDays * DAY_MS);
    } catch (err) {
      if (isBusy(err)) {
        this.logger.warn(
          { removed },
          'old audit rows and notices: the state database is locked by another process; the next daily sweep tries again',
        );
      } else {
        this.logger.error(
          { err, removed },
          'old audit rows and notices could not be removed; the next daily sweep tries again',
        );
      }
      return removed;
    }
    if (removed.audit + removed.notices > 0) {
      this.logger.info(
        { ...removed, auditDays, noticeDays },
        `removed ${removed.audit} audit row(s) older than ${auditDays} days and ${removed.notices} notice(s) delivered more than ${noticeDays} days ago`,
      );
    }
    return removed;
  }

  /** Runs `stmt` until it removes nothing, letting the event loop (turns, requests) run between two batches. */
  private async inBatches(stmt: { run(cutoff: number, limit: number): { changes: number } }, cutoff: number) {
    let total = 0;
    for (;;) {
      if (this.stopped || !this.db.open) return total;
      // Never waits for another process's lock: SQLite would stand the whole process still meanwhile.
      const { changes } = withoutWaiting(this.db, () => stmt.run(cutoff, BATCH_ROWS));
      total += changes;
      if (changes < BATCH_ROWS) return total;
      await setImmediate();
    }
  }
}
