import { EventEmitter } from 'node:events';
import type { Db, KvStore } from '../../src/db/index.js';
import { isBusy, type KeptWrites, withoutWaiting } from '../../src/db/kept-writes.js';
import { formatDuration } from '../../src/i18n.js';
import type { Logger } from '../../src/logger.js';
import { OPT_IN_TYPES, updateKind, updateTypes } from './bot-api.js';

/**
 * OpenClaw's updates, kept in SQLite until OpenClaw's channel confirms them,
 * and served with Telegram's getUpdates semantics: update ids kept, `offset`
 * confirms everything below it, `limit`, a long poll answered the moment an
 * update arrives (an in-process waiter, no polling interval), `allowed_updates`
 * remembered like Telegram does. Nothing is lost while OpenClaw is down; like
 * Telegram, an update nobody fetches is kept for 24 hours.
 *
 * The ids OpenClaw sees only grow, even when Telegram's do not (they start
 * again at a random value after a week without updates, and differ on another
 * Bot API server): OpenClaw confirms by offset, and keeps its offset across
 * restarts, so a lower id would be confirmed before it was ever read.
 *
 * While another process holds the state database, OpenClaw's polls go on:
 * what an offset confirms is no longer served at once and deleted once the
 * lock is gone (KeptWrites), and so are the poll's other notes. Only storing
 * new updates waits for the lock, in Telegram (see push).
 */

const DAY_MS = 24 * 3_600_000;
/** Expired updates are looked for at most this often. */
const PURGE_EVERY_MS = 60_000;
/** `lastPolledAt` is written to SQLite (for `brainstem doctor`) at most this often. */
const POLL_NOTE_EVERY_MS = 1_000;
const MAX_LIMIT = 100;
/**
 * As at Telegram (telegram-bot-api's process_get_updates_query), a getUpdates
 * with the offset of one that started less than this ago, and a shorter
 * timeout, waits this long for an update. A client looping short polls
 * (grammY's `bot.start({ timeout: 0 })`) then waits for updates instead of
 * being answered 500 times a second, half of a core spent by brainstem.
 */
const REPEAT_WAIT_S = 3;
/**
 * Unlike Telegram, that many repeats in a row are answered at once first: a
 * few looks with curl, or a client's quick retries, are not held; a loop gets
 * at most a dozen answers every 3 s.
 */
const REPEATS_AT_ONCE = 10;
/**
 * Telegram's update ids stay below this (tdlib's TQueue::EventId::MAX_ID): an
 * offset above it, and above every id the front gave out, is no id at all.
 */
const MAX_UPDATE_ID = 2_000_000_000;
/** Two pollers taking turns are logged once; again only after this long without a poll taking over. */
const FIGHT_QUIET_MS = 10 * 60_000;

const ALLOWED_KEY = 'front_allowed_updates';
/** The highest id given to an update of OpenClaw's. */
const LAST_QUEUED_KEY = 'front_last_queued';
/** Where brainstem's next getUpdates at Telegram starts: it confirms everything already handed on. */
const TELEGRAM_OFFSET_KEY = 'front_telegram_offset';
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
export class UpdateQueue extends EventEmitter<{
  polled: [];
  pushed: [];
  /** OpenClaw asks for other update types: brainstem's open poll at Telegram still asks for the old ones. */
  allowedChanged: [];
}> {
  private readonly insertStmt;
  private readonly selectStmt;
  private readonly ackStmt;
  private readonly waitingStmt;
  private readonly wakers = new Set<() => void>();
  /** The getUpdates waiting, which a newer one ends when it waits too (Telegram answers the older one 409). */
  private current: { cancel(): void } | undefined;
  /** What the poller last asked for, as matched (see updateTypes); [] is Telegram's default set; undefined: never said. */
  private allowed: readonly string[] | undefined;
  /** The list as the poller last gave it, so that names ignored in it are logged once, not at every poll. */
  private lastAsked: string | undefined;
  private lastQueued: number;
  /** Every update below this id is confirmed, whether or not its deletion is written yet. */
  private confirmedBelow = 0;
  /** Telegram's ids are below ours for now (logged once when that starts). */
  private renumbering = false;
  /** The poller's offset is past any update id (logged once until it asks for a real one). */
  private strayOffset = false;
  private lastPurge = 0;
  /** The offset and start of the last getUpdates, and how many repeated it before (see REPEAT_WAIT_S). */
  private lastTake: { offset: number; at: number; repeats: number } | undefined;
  private pollNotedAt = 0;
  /** When a long poll last ended another one still waiting (see noteTakeover). */
  private lastTakeoverAt = Number.NEGATIVE_INFINITY;
  private closed = false;
  /** getUpdates calls being answered right now. */
  polling = 0;
  lastPolledAt: number | undefined;

  constructor(
    private readonly db: Db,
    private readonly kv: KvStore,
    private readonly kept: KeptWrites,
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
    this.waitingStmt = db.prepare<
      [number],
      { count: number; oldestAt: number | null; oldestId: number | null }
    >(
      'SELECT COUNT(*) AS count, MIN(received_at) AS oldestAt, MIN(update_id) AS oldestId FROM front_updates WHERE update_id >= ?',
    );
    const allowed = kv.get(ALLOWED_KEY);
    // An earlier version stored the names as given: a stored `MESSAGE` would drop every message until the next poll.
    this.allowed = allowed === undefined ? undefined : updateTypes(JSON.parse(allowed) as string[]).types;
    this.lastQueued = Number(kv.get(LAST_QUEUED_KEY) ?? 0);
    const polled = kv.get(LAST_POLLED_KEY);
    this.lastPolledAt = polled === undefined ? undefined : Number(polled);
  }

  /** What the poller asked for last ([] = Telegram's default set), or undefined if it never said. */
  allowedUpdates(): readonly string[] | undefined {
    return this.allowed;
  }

  /**
   * Where brainstem's getUpdates at Telegram starts after a restart, so that
   * Telegram sends nothing twice; undefined the first time. (A database of an
   * earlier version holds only the last id queued, which serves as well.)
   */
  telegramOffset(): number | undefined {
    const stored = this.kv.get(TELEGRAM_OFFSET_KEY);
    if (stored !== undefined) return Number(stored);
    return this.lastQueued > 0 ? this.lastQueued + 1 : undefined;
  }

  /**
   * Stores OpenClaw's updates, and the offset that confirms them at Telegram,
   * in one transaction, then wakes a waiting poll. A type the poller does not
   * take is left out. An update keeps Telegram's id unless that id is not
   * above the last one queued: then it gets the next one (see above).
   * Under another process's lock it throws SQLITE_BUSY at once rather than
   * wait (withoutWaiting): its caller, the intake, waits without holding the
   * process.
   */
  push(updates: readonly Update[], telegramOffset?: number): number {
    const now = Date.now();
    // Written to the fields only once the transaction holds: a failed write leaves them as they were.
    let last = this.lastQueued;
    let renumbered: { telegramId: number; id: number } | undefined;
    let queued = 0;
    const store = this.db.transaction(() => {
      for (const u of updates) {
        const kind = updateKind(u);
        if (!this.wants(kind)) continue;
        const id = Math.max(u.update_id, last + 1);
        renumbered = id === u.update_id ? undefined : (renumbered ?? { telegramId: u.update_id, id });
        last = id;
        this.insertStmt.run(id, kind, JSON.stringify(id === u.update_id ? u : { ...u, update_id: id }), now);
        queued++;
      }
      if (queued > 0) this.kv.set(LAST_QUEUED_KEY, String(last));
      if (telegramOffset !== undefined) this.kv.set(TELEGRAM_OFFSET_KEY, String(telegramOffset));
    });
    withoutWaiting(this.db, store);
    this.lastQueued = last;
    if (queued > 0) {
      this.noteRenumbered(renumbered);
      for (const wake of [...this.wakers]) wake();
      this.emit('pushed');
    }
    return queued;
  }

  /**
   * Telegram's getUpdates. Resolves at once when updates wait, else when one arrives or the timeout
   * ends (REPEAT_WAIT_S at least for a repeat). As at Telegram, a poll ends the one waiting (409)
   * only when it is going to wait itself: a short poll, or one answered at once, leaves the waiting
   * one alone (a `curl …/getUpdates` must not stop OpenClaw's poller, which takes a 409 as fatal).
   * Unlike Telegram, a short poll made to wait as a repeat leaves it alone too, for the same reason.
   */
  async take(req: TakeRequest, signal: AbortSignal): Promise<TakeResult> {
    this.polling++;
    this.notePolled();
    let conflict = false;
    const mine = {
      cancel: () => {
        conflict = true;
        for (const wake of [...this.wakers]) wake();
      },
    };
    try {
      if (req.allowedUpdates !== undefined) this.remember(req.allowedUpdates);
      else if (this.allowed === undefined) this.remember([]);
      const offset = this.offsetOf(req.offset ?? 0);
      if (offset > this.lastQueued + 1) this.fromElsewhere(offset);
      this.acknowledge(offset);
      this.purge();
      this.emit('polled');
      const from = Math.max(0, offset, this.confirmedBelow);
      const limit = Math.min(MAX_LIMIT, Math.max(1, Math.trunc(req.limit ?? MAX_LIMIT)));
      const asked = Math.max(0, req.timeout ?? 0);
      const deadline = Date.now() + this.repeatWait(req.offset ?? 0, asked) * 1000;
      for (;;) {
        if (conflict) return { conflict: true };
        const rows = this.selectStmt.all(from, limit);
        if (rows.length > 0 || this.closed || signal.aborted || Date.now() >= deadline) {
          return { conflict: false, json: `[${rows.map((r) => r.body).join(',')}]`, count: rows.length };
        }
        if (asked > 0 && this.current !== mine) {
          if (this.current) {
            this.current.cancel();
            this.noteTakeover();
          }
          this.current = mine;
        }
        await this.wait(deadline, signal);
      }
    } finally {
      if (this.current === mine) this.current = undefined;
      this.polling--;
      this.notePolled();
    }
  }

  /** The seconds a poll waits for an update: what it asked, or REPEAT_WAIT_S once it is one repeat too many (see there). */
  private repeatWait(offset: number, asked: number): number {
    const now = Date.now();
    const last = this.lastTake;
    const repeats = last?.offset === offset && now < last.at + REPEAT_WAIT_S * 1000 ? last.repeats + 1 : 0;
    this.lastTake = { offset, at: now, repeats };
    return repeats > REPEATS_AT_ONCE ? Math.max(asked, REPEAT_WAIT_S) : asked;
  }

  waiting(): Waiting {
    const row = this.waitingStmt.get(this.confirmedBelow);
    return {
      count: row?.count ?? 0,
      oldestAt: row?.oldestAt ?? undefined,
      oldestId: row?.oldestId ?? undefined,
    };
  }

  /** brainstem is stopping (see close). */
  isClosed(): boolean {
    return this.closed;
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

  /**
   * The update types the poller asks for (in getUpdates, or in setWebhook and
   * deleteWebhook, which Telegram takes them with too). Like Telegram, the
   * set asked for applies to updates that arrive from now on; those already
   * waiting stay ("unwanted updates may be received for a short period of time").
   */
  remember(asked: readonly string[]): void {
    const said = JSON.stringify([...new Set(asked)].sort());
    if (said === this.lastAsked) return;
    this.lastAsked = said;
    const { types: next, newer, ignored } = updateTypes(asked);
    if (newer.length > 0) {
      this.logger.info(
        { newer },
        `OpenClaw polls for update types brainstem does not know (a newer Bot API's?), asked of Telegram as they are: ${newer.join(', ')}`,
      );
    }
    if (ignored.length > 0) {
      this.logger.warn(
        { ignored },
        `OpenClaw polls for update types Telegram does not have, ignored as Telegram does: ${ignored.join(', ')}`,
      );
    }
    if (this.allowed && JSON.stringify(next) === JSON.stringify(this.allowed)) return;
    this.allowed = next;
    this.kept.run(
      'the update types OpenClaw polls for',
      () => this.kv.set(ALLOWED_KEY, JSON.stringify(next)),
      {
        latest: true,
      },
    );
    this.emit('allowedChanged');
    this.logger.info(
      { allowedUpdates: next.length === 0 ? 'default' : next },
      'OpenClaw changed the update types it polls for',
    );
  }

  /**
   * An offset past every id the front gave out and past any Telegram gives
   * (2^31 - 1 from a client's bug) is taken as Telegram takes it: it
   * confirms nothing, and the updates waiting are served from the first.
   * Numbering them from there would give ids no offset can confirm (Telegram's
   * are 32-bit): the client would get the same update again at every poll.
   */
  private offsetOf(asked: number): number {
    const stray = asked > MAX_UPDATE_ID && asked > this.lastQueued + 1;
    if (stray && !this.strayOffset) {
      this.logger.warn(
        { offset: asked, lastId: this.lastQueued },
        'OpenClaw asked for updates from an offset past any update id; as Telegram does, it confirms nothing and gets what waits from the first',
      );
    }
    this.strayOffset = stray;
    return stray ? 0 : asked;
  }

  /**
   * An offset past every id given out comes from somewhere else: OpenClaw's
   * offset stored while it polled Telegram itself, or an earlier data folder.
   * OpenClaw skips (and then confirms) any update below the ids it has seen:
   * what waits is numbered again from its offset, and so is what comes later,
   * so that it takes them all as new. (Telegram would serve them unchanged;
   * OpenClaw would lose them.)
   */
  private fromElsewhere(offset: number): void {
    const rows = this.db
      .prepare<[number], { update_id: number; kind: string; body: string; received_at: number }>(
        'SELECT update_id, kind, body, received_at FROM front_updates WHERE update_id >= ? ORDER BY update_id',
      )
      .all(this.confirmedBelow);
    const last = offset - 1 + rows.length;
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM front_updates').run();
      rows.forEach((r, i) => {
        const body = JSON.parse(r.body) as Update;
        this.insertStmt.run(
          offset + i,
          r.kind,
          JSON.stringify({ ...body, update_id: offset + i }),
          r.received_at,
        );
      });
      this.kv.set(LAST_QUEUED_KEY, String(last));
    })();
    this.lastQueued = last;
    this.logger.warn(
      { offset, waiting: rows.length },
      'OpenClaw asked for updates from an id the front never gave out (its offset from polling Telegram itself, or an earlier data folder); what waits, and what comes, is numbered from there',
    );
  }

  /**
   * A long poll ended one still waiting, which gets Telegram's 409: two
   * pollers take turns (a second OpenClaw gateway, or another client with the
   * bot token), each poll ending the other's, and each loses the updates the
   * other takes. Logged once per fight, not at every 409.
   */
  private noteTakeover(): void {
    const now = Date.now();
    const quietBefore = now - this.lastTakeoverAt >= FIGHT_QUIET_MS;
    this.lastTakeoverAt = now;
    if (!quietBefore) return;
    this.logger.warn(
      `two pollers fight over OpenClaw's updates at the front: a getUpdates ended one still waiting, which got 409 Conflict as at Telegram. Is a second OpenClaw gateway, or another client with this bot token, polling the front? Each gets only part of the updates. (Told again only after ${formatDuration(FIGHT_QUIET_MS)} without it.)`,
    );
  }

  /** Logs once when Telegram's ids fall below the front's, again only after they caught up. */
  private noteRenumbered(first: { telegramId: number; id: number } | undefined): void {
    const was = this.renumbering;
    this.renumbering = first !== undefined;
    if (!first || was) return;
    this.logger.info(
      first,
      "Telegram's update ids are below the front's (they start again lower after a week without updates or on another Bot API server, or OpenClaw's offset moved the front's on); OpenClaw gets the front's next ones",
    );
  }

  /** deleteWebhook's `drop_pending_updates`: everything waiting goes. */
  dropPending(): number {
    const dropped = this.db.prepare('DELETE FROM front_updates').run().changes;
    this.logger.info({ dropped }, 'OpenClaw dropped the updates waiting for it');
    return dropped;
  }

  /** `offset` confirms every update below it; a negative one keeps only the last -offset updates. */
  private acknowledge(offset: number): void {
    const below =
      offset >= 0
        ? offset
        : this.db
            .prepare<[number, number], { id: number }>(
              'SELECT update_id AS id FROM front_updates WHERE update_id >= ? ORDER BY update_id DESC LIMIT 1 OFFSET ?',
            )
            .get(this.confirmedBelow, -offset - 1)?.id;
    if (below === undefined || below <= this.confirmedBelow) return;
    this.confirmedBelow = below;
    this.kept.run(`OpenClaw's confirmation of the updates below ${below}`, () => this.ackStmt.run(below));
  }

  /** Drops what waited longer than Telegram keeps updates (runs at most once a minute; skipped while another process holds the database). */
  purge(): void {
    const now = Date.now();
    if (now - this.lastPurge < PURGE_EVERY_MS) return;
    this.lastPurge = now;
    let dropped: number;
    try {
      // Skipped at once: the next purge does it.
      dropped = withoutWaiting(
        this.db,
        () =>
          this.db.prepare('DELETE FROM front_updates WHERE received_at < ?').run(now - this.maxAgeMs).changes,
      );
    } catch (err) {
      if (isBusy(err)) return;
      throw err;
    }
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
    this.kept.run('when OpenClaw last polled the front', () => this.kv.set(LAST_POLLED_KEY, String(now)), {
      latest: true,
    });
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
