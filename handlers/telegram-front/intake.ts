import type { Transformer } from 'grammy';
import type { Update } from 'grammy/types';
import { DatabaseLockedError, isBusy } from '../../src/db/kept-writes.js';
import type { Logger } from '../../src/logger.js';
import { ALL_UPDATE_TYPES, DEFAULT_UPDATE_TYPES } from './bot-api.js';
import type { UpdateQueue } from './update-queue.js';

/**
 * Where brainstem's own poller meets the front: a grammY API transformer on
 * its getUpdates. It asks Telegram for what brainstem handles plus what
 * OpenClaw polls for (Telegram leaves reactions and member updates out unless
 * asked), hands brainstem its own updates and queues the rest for OpenClaw
 * before the next getUpdates confirms them at Telegram, so none is lost.
 *
 * The offset is kept here, not by the runner (which sees brainstem's updates
 * only), and stored with the queued updates: after a restart the first
 * getUpdates confirms what was handed on, so Telegram sends nothing twice
 * (brainstem's own commands included: a /run is not run again). It follows
 * the ids Telegram gives, also when they start again lower: an offset past
 * them all would get the same updates again and again.
 */

/**
 * Whose an update is; OpenClaw's may be rewritten (a renamed command given back its name). `both`:
 * news both act on (a group's new id), handed to OpenClaw and handled by brainstem too.
 */
export type Split = { to: 'brainstem' } | { to: 'openclaw'; update: Update } | { to: 'both'; update: Update };

interface GetUpdatesPayload {
  offset?: number;
  allowed_updates?: readonly string[];
  [key: string]: unknown;
}

export function frontIntake(opts: {
  queue: UpdateQueue;
  /** The update types brainstem's own handlers take. */
  own: readonly string[];
  split: (update: Update) => Split;
  logger: Logger;
}): Transformer {
  const { queue, own, split, logger } = opts;
  let offset = queue.telegramOffset();
  const transformer = async (
    prev: (method: string, payload: unknown, signal?: AbortSignal) => Promise<unknown>,
    method: string,
    payload: unknown,
    signal?: AbortSignal,
  ) => {
    if (method !== 'getUpdates') return prev(method, payload, signal);
    const p = (payload ?? {}) as GetUpdatesPayload;
    // Telegram keeps no update of a type the poll did not ask for: when OpenClaw asks for more
    // (reactions, say), the long poll open with the old types is ended at once, not after its 30 s.
    // One signal for both: the runner's (a polyfill's, which AbortSignal.any does not take) and the change.
    const poll = new AbortController();
    let changed = false;
    const onChange = () => {
      changed = true;
      poll.abort();
    };
    const onStop = () => poll.abort();
    if (signal?.aborted) poll.abort();
    signal?.addEventListener('abort', onStop);
    queue.on('allowedChanged', onChange);
    let res: { ok: boolean; result?: Update[] };
    try {
      res = (await prev(
        method,
        {
          ...p,
          ...(offset !== undefined ? { offset } : {}),
          allowed_updates: allowedForTelegram(queue.allowedUpdates(), own),
        },
        poll.signal,
      )) as typeof res;
    } catch (err) {
      // Nothing was confirmed (the offset has not moved): the next poll, with the new types, gets it all.
      if (changed && !signal?.aborted) return { ok: true, result: [] };
      throw err;
    } finally {
      signal?.removeEventListener('abort', onStop);
      queue.off('allowedChanged', onChange);
    }
    if (!res.ok || !res.result || res.result.length === 0) return res;
    const mine: Update[] = [];
    const theirs: Update[] = [];
    let last = Number.NEGATIVE_INFINITY;
    for (const u of res.result) {
      last = Math.max(last, u.update_id);
      let s: Split;
      try {
        s = split(u);
      } catch (err) {
        // Never lost: an update brainstem cannot judge is OpenClaw's, as it came.
        logger.error(
          { err, updateId: u.update_id },
          'could not tell whose an update is; it goes to OpenClaw',
        );
        s = { to: 'openclaw', update: u };
      }
      if (s.to !== 'openclaw') mine.push(u);
      if (s.to !== 'brainstem') theirs.push(s.update);
    }
    // Stored before the offset moves: if this throws, the next getUpdates fetches the same batch.
    await storedBehindLock(() => queue.push(theirs, last + 1), logger, signal);
    offset = last + 1;
    return { ...res, result: mine };
  };
  return transformer as unknown as Transformer;
}

/** The pause between tries to store a batch while another process holds the state database: doubling up to the last. */
const LOCKED_RETRY_MS = [50, 100, 200, 500, 1_000];

/**
 * Runs `store` (which never waits for the lock) until another process's lock
 * on the state database lets it through. Meanwhile the batch waits here, in
 * memory, and the poll with it: nothing of it is confirmed at Telegram, which
 * keeps it should brainstem stop or crash. Each try takes the lock or gives
 * up at once: SQLite's own wait (busy_timeout) would hold the whole process,
 * every chat with it, at each try.
 */
async function storedBehindLock(store: () => void, logger: Logger, signal?: AbortSignal): Promise<void> {
  for (let tries = 0; ; tries++) {
    try {
      store();
      if (tries > 0)
        logger.info(
          { tries },
          'front: the state database takes writes again; the waiting updates are stored',
        );
      return;
    } catch (err) {
      if (!isBusy(err)) throw err;
    }
    if (tries === 0)
      logger.warn(
        'front: updates fetched from Telegram wait in memory (not yet confirmed there) while another process (a sqlite3 shell, a backup) holds the state database',
      );
    const ms = LOCKED_RETRY_MS[Math.min(tries, LOCKED_RETRY_MS.length - 1)] as number;
    await pauseUnlessStopped(ms, signal);
  }
}

/** Resolves after `ms`; rejects at once when the poll is stopped (the runner's signal, a polyfill's: no timers/promises). */
function pauseUnlessStopped(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const stop = () => {
      clearTimeout(timer);
      reject(new DatabaseLockedError());
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', stop);
      resolve();
    }, ms);
    if (signal?.aborted) stop();
    else signal?.addEventListener('abort', stop);
  });
}

/**
 * The union of brainstem's types and OpenClaw's: every type while OpenClaw
 * has never said (so nothing is missing when it first asks), Telegram's
 * default set for `[]`.
 */
export function allowedForTelegram(
  downstream: readonly string[] | undefined,
  own: readonly string[],
): string[] {
  if (downstream === undefined) return [...ALL_UPDATE_TYPES];
  const theirs = downstream.length === 0 ? DEFAULT_UPDATE_TYPES : downstream;
  return [...new Set([...theirs, ...own])];
}
