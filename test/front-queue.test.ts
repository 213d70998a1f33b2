/**
 * The front's update queue on a real SQLite file: Telegram's getUpdates
 * semantics (offset, limit, long poll, allowed_updates, 409 for a second
 * poll) and the 24-hour limit.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { frontIntake } from '../handlers/telegram-front/intake.js';
import { UpdateQueue } from '../handlers/telegram-front/update-queue.js';
import { type Db, KvStore, openDb } from '../src/db/index.js';
import { KeptWrites } from '../src/db/kept-writes.js';
import Sqlite from '../src/db/sqlite.js';
import { recordingLogger } from './helpers/logs.js';

let dir: string;
let db: Db;
let logs: Record<string, unknown>[];
let queue: UpdateQueue;
let kept: KeptWrites;

const open = (maxAgeMs?: number) => {
  const { logger } = recordingLogger('debug', logs);
  kept = new KeptWrites(db, logger);
  return new UpdateQueue(db, new KvStore(db), kept, logger, maxAgeMs);
};
const text = (id: number, t = `u${id}`) => ({ update_id: id, message: { message_id: id, text: t } });
const reaction = (id: number) => ({ update_id: id, message_reaction: { message_id: 1 } });
const ids = async (req: Parameters<UpdateQueue['take']>[0]) => {
  const r = await queue.take(req, new AbortController().signal);
  if (r.conflict) throw new Error('conflict');
  return (JSON.parse(r.json) as { update_id: number }[]).map((u) => u.update_id);
};

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'bst-front-queue-'));
  db = openDb(dir);
  logs = [];
  queue = open();
});
afterEach(() => {
  vi.useRealTimers();
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('the front’s update queue', () => {
  it('keeps update ids; offset confirms, limit caps, a negative offset keeps the last ones', async () => {
    queue.push([text(10), text(11), text(12), text(13)]);
    expect(await ids({ limit: 2 })).toEqual([10, 11]);
    expect(await ids({})).toEqual([10, 11, 12, 13]);
    expect(await ids({ offset: 12 })).toEqual([12, 13]);
    expect(queue.waiting().count).toBe(2);
    queue.push([text(14), text(15)]);
    expect(await ids({ offset: -2 })).toEqual([14, 15]);
    expect(queue.waiting()).toMatchObject({ count: 2, oldestId: 14 });
  });

  it('keeps ids growing when Telegram’s start again lower, logging it once', async () => {
    queue.push([text(500), text(501)]);
    expect(await ids({ offset: 502 })).toEqual([]);
    queue.push([text(7), text(8)]);
    queue.push([text(9)]);
    expect(await ids({ offset: 502 })).toEqual([502, 503, 504]);
    const bodies = await queue.take({ offset: 502 }, new AbortController().signal);
    expect(bodies.conflict === false && JSON.parse(bodies.json)[0]).toEqual({
      update_id: 502,
      message: { message_id: 7, text: 'u7' },
    });
    expect(logs.filter((l) => /ids are below the front's/.test(String(l.msg)))).toHaveLength(1);
    // Restarted, the queue goes on from the last id it gave.
    queue = open();
    queue.push([text(10)]);
    expect(await ids({ offset: 505 })).toEqual([505]);
  });

  it('numbers what waits, and what comes, from an offset past every id it gave out: OpenClaw skips lower ids', async () => {
    queue.push([text(3), text(4)]);
    // OpenClaw's offset from the days it polled Telegram itself (or an earlier data folder).
    expect(await ids({ offset: 9000 })).toEqual([9000, 9001]);
    const served = await queue.take({ offset: 9000 }, new AbortController().signal);
    expect(served.conflict === false && JSON.parse(served.json)[0]).toEqual({
      update_id: 9000,
      message: { message_id: 3, text: 'u3' },
    });
    queue.push([text(5)]);
    expect(await ids({ offset: 9002 })).toEqual([9002]);
    expect(queue.waiting().count).toBe(1);
    expect(logs.filter((l) => /never gave out/.test(String(l.msg)))).toHaveLength(1);
  });

  it('stores where brainstem’s next getUpdates at Telegram starts, with the updates it confirms', () => {
    expect(queue.telegramOffset()).toBeUndefined();
    queue.push([text(41)], 43);
    expect(open().telegramOffset()).toBe(43);
    // A batch of brainstem's own updates only moves it too.
    queue.push([], 50);
    expect(open().telegramOffset()).toBe(50);
  });

  it('starts after the last id queued with a database of an earlier version (no stored offset)', () => {
    new KvStore(db).set('front_last_queued', '77');
    expect(open().telegramOffset()).toBe(78);
  });

  it('answers a long poll the moment an update arrives', async () => {
    const poll = queue.take({ timeout: 30 }, new AbortController().signal);
    queue.push([text(5, 'now')]);
    const r = await poll;
    expect(r).toMatchObject({ conflict: false, count: 1 });
    expect(queue.polling).toBe(0);
  });

  it('ends a waiting poll with 409 when a newer one waits too, as Telegram does', async () => {
    const older = queue.take({ timeout: 30 }, new AbortController().signal);
    const newer = queue.take({ timeout: 30 }, new AbortController().signal);
    expect(await older).toEqual({ conflict: true });
    queue.push([text(1)]);
    expect(await newer).toMatchObject({ conflict: false, count: 1 });
  });

  it('tells the owner once that two pollers fight, not at every 409', async () => {
    const fights = () => logs.filter((l) => /two pollers/.test(String(l.msg)));
    const first = queue.take({ offset: 1, timeout: 30 }, new AbortController().signal);
    expect(fights()).toHaveLength(0);
    // Two clients taking turns, each poll ending the other's.
    let waiting = first;
    for (let i = 0; i < 4; i++) {
      const next = queue.take({ offset: 1, timeout: 30 }, new AbortController().signal);
      expect(await waiting).toEqual({ conflict: true });
      waiting = next;
    }
    queue.push([text(1)]);
    expect(await waiting).toMatchObject({ conflict: false, count: 1 });
    expect(fights()).toHaveLength(1);
    expect(fights()[0]).toMatchObject({ level: 40 });
  });

  it('leaves a waiting poll alone when a short poll comes, as Telegram does', async () => {
    const waiting = queue.take({ timeout: 30 }, new AbortController().signal);
    expect(await ids({ timeout: 0 })).toEqual([]);
    queue.push([text(1)]);
    expect(await waiting).toMatchObject({ conflict: false, count: 1 });
  });

  it('makes a client looping short polls at one offset wait for an update after a few, as Telegram does, leaving a waiting poll alone', async () => {
    // Every repeat within Telegram's 3 s of the one before, however loaded the machine.
    vi.useFakeTimers({ toFake: ['Date'] });
    const waiting = queue.take({ offset: 1, timeout: 30 }, new AbortController().signal);
    // Bounded: unheld, the loop would answer itself in microtasks and never let the test go on.
    const loop = (async () => {
      for (let empty = 0; empty < 50; empty++) {
        const got = await ids({ timeout: 0 });
        if (got.length > 0) return { empty, got };
      }
      return { empty: 50, got: [] };
    })();
    await new Promise(setImmediate);
    expect(queue.polling).toBe(2);
    queue.push([text(1)]);
    expect(await loop).toEqual({ empty: 11, got: [1] });
    expect(await waiting).toMatchObject({ conflict: false, count: 1 });
  });

  it('honours allowed_updates for what arrives later and remembers them; Telegram’s default leaves reactions out', async () => {
    queue.push([text(1), reaction(2)]);
    expect(queue.allowedUpdates()).toBeUndefined();
    // Like Telegram, the set asked for leaves what already waits alone.
    expect(await ids({})).toEqual([1, 2]);
    expect(queue.allowedUpdates()).toEqual([]);
    queue.push([reaction(3)]);
    expect(await ids({ offset: 3 })).toEqual([]);
    expect(await ids({ offset: 3, allowedUpdates: ['message_reaction'] })).toEqual([]);
    queue.push([text(4), reaction(5)]);
    expect(await ids({})).toEqual([5]);
    expect(open().allowedUpdates()).toEqual(['message_reaction']);
  });

  it('serves polls while another process holds the database: what they confirm is not served again, and is deleted once the lock is gone', async () => {
    queue.push([text(1), text(2), text(3)]);
    const other = new Sqlite(path.join(dir, 'brainstem.sqlite'), { timeout: 0 });
    other.exec('BEGIN IMMEDIATE');
    db.pragma('busy_timeout = 0');
    try {
      expect(await ids({ allowedUpdates: ['message'] })).toEqual([1, 2, 3]);
      expect(await ids({ offset: 3, allowedUpdates: ['message', 'edited_message'] })).toEqual([3]);
      expect(await ids({ offset: 4, allowedUpdates: ['message'] })).toEqual([]);
      expect(await ids({ offset: 1 })).toEqual([]);
      expect(queue.waiting().count).toBe(0);
      // Two confirmations, and the newest of each note (the update types, when it last polled).
      expect(kept.waiting).toBe(4);
    } finally {
      other.exec('ROLLBACK');
      other.close();
    }
    kept.settle();
    expect((db.prepare('SELECT COUNT(*) AS n FROM front_updates').get() as { n: number }).n).toBe(0);
    expect(new KvStore(db).get('front_allowed_updates')).toBe('["message"]');
  });

  it('drops what nobody fetched within the limit, with one log line giving the count', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    queue = open(60_000);
    queue.push([text(1), text(2)]);
    vi.setSystemTime(Date.now() + 61_000);
    queue.push([text(3)]);
    expect(await ids({})).toEqual([3]);
    const lines = logs.filter((l) => /did not fetch/.test(String(l.msg)));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      dropped: 2,
      msg: 'dropped 2 update(s) OpenClaw did not fetch within 1 min 00 s',
    });
  });
});

describe('brainstem’s getUpdates at Telegram, through the front’s intake', () => {
  type Call = (
    prev: (method: string, payload: unknown) => Promise<unknown>,
    method: string,
    payload: unknown,
    signal?: AbortSignal,
  ) => Promise<unknown>;

  it('moves its offset only once the batch is stored: under a lock the batch waits in memory; stopped meanwhile, the same batch is fetched again', async () => {
    const logger = pino({ level: 'silent' });
    const intake = frontIntake({
      queue,
      own: ['message'],
      split: (update) => ({ to: 'openclaw', update }),
      logger,
    }) as unknown as Call;
    // Telegram, as far as the intake sees it: the offsets it is asked for, and one batch until confirmed.
    const offsets: unknown[] = [];
    const telegram = async (_method: string, payload: unknown) => {
      const offset = (payload as { offset?: number }).offset;
      offsets.push(offset);
      return { ok: true, result: (offset ?? 0) > 11 ? [] : [text(10), text(11)] };
    };
    // Another connection holds the write lock (a sqlite3 shell): the queue's write is refused.
    const locker = new Sqlite(path.join(dir, 'brainstem.sqlite'));
    locker.exec('BEGIN IMMEDIATE');
    const stop = new AbortController();
    const stopped = intake(telegram, 'getUpdates', {}, stop.signal);
    await vi.waitFor(() => expect(offsets).toHaveLength(1), { timeout: 30_000 });
    stop.abort();
    await expect(stopped).rejects.toThrow(/locked/);
    // The next poll fetches the same batch, which waits for the lock to go.
    const waiting = intake(telegram, 'getUpdates', {});
    await vi.waitFor(() => expect(offsets).toHaveLength(2), { timeout: 30_000 });
    expect(await ids({})).toEqual([]);
    locker.exec('ROLLBACK');
    locker.close();
    await waiting;
    await intake(telegram, 'getUpdates', {});
    expect(offsets).toEqual([undefined, undefined, 12]);
    expect(await ids({})).toEqual([10, 11]);
    expect(queue.telegramOffset()).toBe(12);
    // brainstem restarted: its first getUpdates confirms what was handed on, so nothing comes twice.
    const again = frontIntake({
      queue: open(),
      own: ['message'],
      split: (update) => ({ to: 'openclaw', update }),
      logger,
    }) as unknown as Call;
    await again(telegram, 'getUpdates', {});
    expect(offsets.at(-1)).toBe(12);
    expect(await ids({})).toEqual([10, 11]);
  });
});
