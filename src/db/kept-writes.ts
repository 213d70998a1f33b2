import type { Logger } from '../logger.js';
import type { Db } from './index.js';

/** How often writes kept behind a lock are tried again. */
const RETRY_MS = 1_000;

/** SQLite's "database is locked": another connection holds the write lock (SQLITE_BUSY and its extended codes). */
export function isBusy(err: unknown): boolean {
  const code = (err as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_BUSY');
}

/**
 * Runs `fn` with busy_timeout 0, for a caller that can wait for the lock
 * without holding the process: SQLite waits for another connection's lock
 * inside the synchronous call, so a write under a lock would stand the whole
 * process still for busy_timeout. Here it throws SQLITE_BUSY at once.
 */
export function withoutWaiting<T>(db: Db, fn: () => T): T {
  const timeout = db.pragma('busy_timeout', { simple: true }) as number;
  db.pragma('busy_timeout = 0');
  try {
    return fn();
  } finally {
    db.pragma(`busy_timeout = ${timeout}`);
  }
}

/** Thrown where a write must land now, behind the writes kept while another process holds the database. */
export class DatabaseLockedError extends Error {
  /** As SQLite's own, so isBusy() knows it. */
  readonly code = 'SQLITE_BUSY';
  /** The message for a reader in French (sayError), where a chat shows why something failed. */
  readonly fr =
    'la base de données d’état est verrouillée par un autre processus (un shell sqlite3, une sauvegarde, un autre brainstem)';
  constructor() {
    super('the state database is locked by another process (a sqlite3 shell, a backup, another brainstem)');
    this.name = 'DatabaseLockedError';
  }
}

interface Kept {
  /** What the write records, for the log: what is lost when it is dropped. */
  what: string;
  write: () => void;
  /** Where the caller keeps a copy of it (a file), for the log: not lost to a stop then. */
  savedIn?: string;
}

/**
 * Background writes that must outlive another process holding the state
 * database: a turn's usage, notices, audit rows, a chat's last exchange, the
 * language notices speak. Another process (an operator's `sqlite3` shell, a
 * backup, a second brainstem about to exit) may hold SQLite's write lock; the
 * write then throws SQLITE_BUSY ("database is locked"), and thrown where these
 * writes happen it cut the user's answer, dropped a Telegram message or, from
 * a timer, brought brainstem down.
 *
 * A write is run at once, without waiting for the lock (withoutWaiting):
 * SQLite's busy_timeout would hold the whole process at every write, and
 * these can wait in memory. One refused with SQLITE_BUSY is kept in memory with
 * every write that comes after it, in order (a later one never lands before
 * an earlier one, and does not wait out the lock again), and they are tried
 * every second until the lock is gone. The log says once that writes are
 * kept and once that they are written. Any other failure cannot be cured by
 * waiting: that write is logged with what it lost and dropped. Memory does not
 * outlive a stop or a crash: a write that must (the end of a mode switch, a
 * notice) is also kept by its caller in a file of its own (see SwitchEnds).
 */
export class KeptWrites {
  private readonly kept: Kept[] = [];
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Kept since the lock was seen, for the line that says they are written. */
  private count = 0;

  constructor(
    private readonly db: Db,
    private readonly logger: Logger,
  ) {}

  /**
   * Runs `write` now, or keeps it behind the writes already kept. Never throws.
   * True when it was written now; false when it waits (or, brainstem stopping, is lost).
   * `latest`: only the newest of the writes named `what` matters (a value noted
   * at every poll): a kept one of that name is dropped for this one, so a long
   * lock keeps one, not one per poll. `savedIn`: where the caller keeps a copy
   * of a write that must outlive a stop (the log then says it waits there).
   */
  run(what: string, write: () => void, opts: { latest?: boolean; savedIn?: string } = {}): boolean {
    let written = false;
    const w: Kept = {
      what,
      write: () => {
        write();
        written = true;
      },
      savedIn: opts.savedIn,
    };
    // Never waits for the lock: a kept write waits in memory instead, and the process goes on.
    if (this.kept.length === 0 && withoutWaiting(this.db, () => this.attempt(w))) return written;
    if (opts.latest) {
      const older = this.kept.findIndex((k) => k.what === what);
      if (older >= 0) {
        this.kept.splice(older, 1);
        this.count--;
      }
    }
    if (this.stopped) {
      this.lost(w, 'the database is locked and brainstem is stopping');
      return false;
    }
    this.kept.push(w);
    this.count++;
    if (this.kept.length > 1) return false;
    this.logger.warn(
      { file: this.db.name, write: what },
      'the state database is locked by another process (a sqlite3 shell, a backup, another brainstem): keeping writes in memory and trying them again every second',
    );
    this.schedule();
    return false;
  }

  /**
   * Writes what is kept now (waiting out busy_timeout once), for a write that must land after it
   * and cannot wait: clearing a chat's history, which a kept exchange would otherwise refill.
   * Throws DatabaseLockedError when the lock still refuses some.
   */
  settle(): void {
    if (this.kept.length === 0) return;
    this.flush();
    if (this.kept.length > 0) throw new DatabaseLockedError();
  }

  /** How many writes wait for the lock. */
  get waiting(): number {
    return this.kept.length;
  }

  /** No more retries: the kept writes are tried a last time (waiting out busy_timeout once); what is still refused is logged as lost. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.kept.length > 0 && this.db.open) this.flush();
    this.lose();
  }

  /** True once the write is done with: written, or dropped on an error waiting cannot cure. */
  private attempt(w: Kept): boolean {
    try {
      w.write();
    } catch (err) {
      if (isBusy(err)) return false;
      this.lost(w, 'a write to the state database failed', err);
    }
    return true;
  }

  /** Writes the kept writes in order, up to the first the lock still refuses. */
  private flush(): void {
    // A write kept from here on (one of these writes records a notice, say) goes behind them: the head leaves last.
    while (this.kept.length > 0) {
      const head = this.kept[0] as Kept;
      if (!this.attempt(head)) return;
      this.kept.shift();
    }
    this.logger.info(
      { writes: this.count },
      'the state database takes writes again: the kept writes are written',
    );
    this.count = 0;
  }

  private schedule(): void {
    this.timer = setTimeout(() => this.retry(), RETRY_MS);
    // The kept writes do not keep the process alive: a stop writes them, or says what is lost.
    this.timer.unref();
  }

  private retry(): void {
    this.timer = undefined;
    if (!this.db.open) {
      this.lose();
      return;
    }
    // A retry only tries: waiting out busy_timeout every second would hold the event loop most of the time.
    withoutWaiting(this.db, () => this.flush());
    if (this.kept.length > 0) this.schedule();
  }

  private lose(): void {
    for (const w of this.kept.splice(0))
      this.lost(w, 'the state database stayed locked until brainstem stopped');
  }

  /** A write whose caller keeps a copy (a switch's end, a notice: in their file) is not lost: the log says where it waits. */
  private lost(w: Kept, why: string, err?: unknown): void {
    if (w.savedIn !== undefined)
      this.logger.warn(
        { err, write: w.what, file: w.savedIn },
        `${why}: ${w.what} waits in ${w.savedIn} for the next start`,
      );
    else this.logger.error({ err, write: w.what }, `${why}: lost ${w.what}`);
  }
}
