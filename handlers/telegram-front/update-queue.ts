import { EventEmitter } from 'node:events';
import type { Db, KvStore } from '../../src/db/index.js';
import { formatDuration } from '../../src/i18n.js';
import type { Logger } from '../../src/logger.js';
import { OPT_IN_TYPES, updateKind } from './bot-api.js';

/**
 * OpenClaw's updates, kept in SQLite until OpenClaw's channel confirms them,
 * and served with Telegram's getUpdates semantics: update ids kept, `offset`
 * confirms everything below it, `limit`, a long poll answered the moment an
 * update arrives (an in-process waiter, no polling interval), `allowed_updates`
 * remembered like Telegram does. Nothing is lost while OpenClaw is down; like
 * Telegram, an update nobody fetches is kept for 24 hours.
 */

const DAY_MS = 24 * 3_600_000;
/** Expired updates are looked for at most this often. */
const PURGE_EVERY_MS = 60_000;
/** `lastPolledAt` is written to SQLite (for `brainstem doctor`) at most this often. */
const POLL_NOTE_EVERY_MS = 1_000;
const MAX_LIMIT = 100;

const ALLOWED_KEY = 'front_allowed_updates';
const LAST_QUEUED_KEY = 'front_last_queued';
export const LAST_POLLED_KEY = 'front_last_polled_at';

export interface Update {
  update_id: number;
}

export interface TakeRequest {
  offset?: number | undefined;
  limit?: number | undefined;
  /** Seconds. */
  timeout?: number | undefined;
  allowedUpdates?: readonly string[] | undefined;
}

/** A JSON array of updates, or Telegram's 409 when a newer getUpdates took over. */
export type TakeResult = { conflict: false; json: string; count: number } | { conflict: true };

export interface Waiting {
  count: number;
  /** When the oldest waiting update reached brainstem. */
  oldestAt: number | undefined;
  oldestId: number | undefined;
}

/** `polled`: a getUpdates came and confirmed what its offset confirms; `pushed`: updates were queued. */
export class UpdateQueue extends EventEmitter<{ polled: []; pushed: [] }> {
  private readonly insertStmt;
  private readonly selectStmt;
  private readonly ackStmt;
  private readonly waitingStmt;
  private readonly wakers = new Set<() => void>();
  /** The getUpdates still waiting, which a newer one ends (Telegram answers the older one 409). */
  private current: { cancel(): void } | undefined;
  /** What the poller last asked for; [] is Telegram's default set; undefined: never said. */
  private allowed: readonly string[] | undefined;
  private lastQueued: number;
  private lastPurge = 0;
  private pollNotedAt = 0;
  private closed = false;
  /** getUpdates calls being answered right now. */
  polling = 0;
  lastPolledAt: number | undefined;

  constructor(
    private readonly db: Db,
    private readonly kv: KvStore,
    private readonly logger: Logger,
    private readonly maxAgeMs = DAY_MS,
  ) {
    super();
    this.insertStmt = db.prepare(
      'INSERT OR IGNORE INTO front_updates (update_id, kind, body, received_at) VALUES (?, ?, ?, ?)',
    );
    this.selectStmt = db.prepare<[number, number], { body: string }>(
      'SELECT body FROM front_updates WHERE update_id >= ? ORDER BY update_id LIMIT ?',
    );
    this.ackStmt = db.prepare('DELETE FROM front_updates WHERE update_id < ?');
    this.waitingStmt = db.prepare<[], { count: number; oldestAt: number | null; oldestId: number | null }>(
      'SELECT COUNT(*) AS count, MIN(received_at) AS oldestAt, MIN(update_id) AS oldestId FROM front_updates',
    );
    const allowed = kv.get(ALLOWED_KEY);
    this.allowed = allowed === undefined ? undefined : (JSON.parse(allowed) as string[]);
    this.lastQueued = Number(kv.get(LAST_QUEUED_KEY) ?? 0);
    const polled = kv.get(LAST_POLLED_KEY);
    this.lastPolledAt = polled === undefined ? undefined : Number(polled);
  }

  /** What the poller asked for last ([] = Telegram's default set), or undefined if it never said. */
  allowedUpdates(): readonly string[] | undefined {
    return this.allowed;
  }

  /**
   * Stores OpenClaw's updates in one transaction and wakes a waiting poll. An
   * update already queued once (Telegram sends unconfirmed ones again after a
   * restart) and a type the poller does not take are left out.
   */
  push(updates: readonly Update[]): number {
    const now = Date.now();
    let queued = 0;
    this.db.transaction(() => {
      for (const u of updates) {
        if (u.update_id <= this.lastQueued) continue;
        this.lastQueued = u.update_id;
        const kind = updateKind(u);
        if (!this.wants(kind)) continue;
        this.insertStmt.run(u.update_id, kind, JSON.stringify(u), now);
        queued++;
      }
      this.kv.set(LAST_QUEUED_KEY, String(this.lastQueued));
    })();
    if (queued > 0) {
      for (const wake of [...this.wakers]) wake();
      this.emit('pushed');
    }
    return queued;
  }

  /** Telegram's getUpdates. Resolves at once when updates wait, else when one arrives or the timeout ends. */
  async take(req: TakeRequest, signal: AbortSignal): Promise<TakeResult> {
    this.current?.cancel();
    this.polling++;
    this.notePolled();
    let conflict = false;
    const mine = {
      cancel: () => {
        conflict = true;
        for (const wake of [...this.wakers]) wake();
      },
    };
    this.current = mine;
    try {
      this.remember(req.allowedUpdates ?? this.allowed ?? []);
      this.acknowledge(req.offset ?? 0);
      this.purge();
      this.emit('polled');
      const from = Math.max(0, req.offset ?? 0);
      const limit = Math.min(MAX_LIMIT, Math.max(1, Math.trunc(req.limit ?? MAX_LIMIT)));
      const deadline = Date.now() + Math.max(0, req.timeout ?? 0) * 1000;
      for (;;) {
        if (conflict) return { conflict: true };
        const rows = this.selectStmt.all(from, limit);
        if (rows.length > 0 || this.closed || signal.aborted || Date.now() >= deadline) {
          return { conflict: false, json: `[${rows.map((r) => r.body).join(',')}]`, count: rows.length };
        }
        await this.wait(deadline, signal);
      }
    } finally {
      if (this.current === mine) this.current = undefined;
      this.polling--;
      this.notePolled();
    }
  }

  waiting(): Waiting {
    const row = this.waitingStmt.get();
    return {
      count: row?.count ?? 0,
      oldestAt: row?.oldestAt ?? undefined,
      oldestId: row?.oldestId ?? undefined,
    };
  }

  /** Answers every waiting poll (empty) and takes no more waits: brainstem is stopping. */
  close(): void {
    this.closed = true;
    for (const wake of [...this.wakers]) wake();
  }

  private wants(kind: string): boolean {
    const allowed = this.allowed;
    if (allowed === undefined) return true;
    return allowed.length === 0 ? !OPT_IN_TYPES.includes(kind) : allowed.includes(kind);
  }

  /** Like Telegram, the set asked for applies from now on; waiting updates of other types are dropped. */
  private remember(allowed: readonly string[]): void {
    const next = [...new Set(allowed)].sort();
    if (this.allowed && JSON.stringify(next) === JSON.stringify([...this.allowed].sort())) return;
    this.allowed = next;
    this.kv.set(ALLOWED_KEY, JSON.stringify(next));
    const kinds = next.length === 0 ? OPT_IN_TYPES : next;
    const marks = kinds.map(() => '?').join(', ');
    const dropped = this.db
      .prepare(`DELETE FROM front_updates WHERE kind ${next.length === 0 ? 'IN' : 'NOT IN'} (${marks})`)
      .run(...kinds).changes;
    this.logger.info(
      { allowedUpdates: next.length === 0 ? 'default' : next, dropped },
      'OpenClaw changed the update types it polls for',
    );
  }

  /** `offset` confirms every update below it; a negative one keeps only the last -offset updates. */
  private acknowledge(offset: number): void {
    if (offset > 0) this.ackStmt.run(offset);
    else if (offset < 0) {
      const keepFrom = this.db
        .prepare<[number], { id: number }>(
          'SELECT update_id AS id FROM front_updates ORDER BY update_id DESC LIMIT 1 OFFSET ?',
        )
        .get(-offset - 1);
      if (keepFrom) this.ackStmt.run(keepFrom.id);
    }
  }

  /** Drops what waited longer than Telegram keeps updates (runs at most once a minute). */
  purge(): void {
    const now = Date.now();
    if (now - this.lastPurge < PURGE_EVERY_MS) return;
    this.lastPurge = now;
    const dropped = this.db
      .prepare('DELETE FROM front_updates WHERE received_at < ?')
      .run(now - this.maxAgeMs).changes;
    if (dropped > 0) {
      this.logger.warn(
        { dropped, maxAgeMs: this.maxAgeMs },
        `dropped ${dropped} update(s) OpenClaw did not fetch within ${formatDuration(this.maxAgeMs)}`,
      );
    }
  }

  private notePolled(): void {
    const now = Date.now();
    this.lastPolledAt = now;
    if (now - this.pollNotedAt < POLL_NOTE_EVERY_MS) return;
    this.pollNotedAt = now;
    this.kv.set(LAST_POLLED_KEY, String(now));
  }

  private wait(deadline: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.wakers.delete(wake);
        signal.removeEventListener('abort', wake);
        resolve();
      };
      const timer = setTimeout(wake, Math.max(0, deadline - Date.now()));
      this.wakers.add(wake);
      signal.addEventListener('abort', wake);
    });
  }
}
