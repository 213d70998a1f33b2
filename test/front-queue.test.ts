/**
 * The front's update queue on a real SQLite file: Telegram's getUpdates
 * semantics (offset, limit, long poll, allowed_updates, 409 for a second
 * poll) and the 24-hour limit.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { UpdateQueue } from '../handlers/telegram-front/update-queue.js';
import { type Db, KvStore, openDb } from '../src/db/index.js';

let dir: string;
let db: Db;
let logs: Record<string, unknown>[];
let queue: UpdateQueue;

const open = (maxAgeMs?: number) => {
  const logger = pino(
    { level: 'debug' },
    new Writable({
      write(chunk: Buffer, _enc, done) {
        logs.push(JSON.parse(chunk.toString('utf8')));
        done();
      },
    }),
  );
  return new UpdateQueue(db, new KvStore(db), logger, maxAgeMs);
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

  it('queues an update once, even when Telegram sends it again after a restart', async () => {
    queue.push([text(1), text(2)]);
    await ids({ offset: 3 });
    const again = open();
    expect(again.push([text(2), text(3)])).toBe(1);
    queue = again;
    expect(await ids({})).toEqual([3]);
  });

  it('answers a long poll the moment an update arrives', async () => {
    const poll = queue.take({ timeout: 30 }, new AbortController().signal);
    queue.push([text(5, 'now')]);
    const r = await poll;
    expect(r).toMatchObject({ conflict: false, count: 1 });
    expect(queue.polling).toBe(0);
  });

  it('ends a waiting poll with 409 when a newer one comes, as Telegram does', async () => {
    const older = queue.take({ timeout: 30 }, new AbortController().signal);
    const newer = queue.take({ timeout: 0 }, new AbortController().signal);
    expect(await older).toEqual({ conflict: true });
    expect(await newer).toMatchObject({ conflict: false, count: 0 });
  });

  it('honours allowed_updates and remembers them; Telegram’s default leaves reactions out', async () => {
    queue.push([text(1), reaction(2)]);
    expect(queue.allowedUpdates()).toBeUndefined();
    expect(await ids({})).toEqual([1]);
    expect(queue.allowedUpdates()).toEqual([]);
    queue.push([reaction(3)]);
    expect(await ids({ offset: 2 })).toEqual([]);
    expect(await ids({ offset: 2, allowedUpdates: ['message_reaction'] })).toEqual([]);
    queue.push([text(4), reaction(5)]);
    expect(await ids({})).toEqual([5]);
    expect(open().allowedUpdates()).toEqual(['message_reaction']);
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
