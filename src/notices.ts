import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Db } from './db/index.js';
import type { KeptWrites } from './db/kept-writes.js';
import { type Html, html } from './html.js';
import type { Logger } from './logger.js';

/** Every message brainstem itself sends starts with this, so users tell it from the brain and the body. */
export const PROXY_TAG = '⚙️ [proxy]';

export const NOTICE_KINDS = [
  'switch',
  'switch_failed',
  'credentials',
  'brain_health',
  'usage_limit',
  'credit',
  'auth',
  'upgrade',
  'shutdown',
  'approval',
  'front',
] as const;
export type NoticeKind = (typeof NOTICE_KINDS)[number];

/**
 * The one chat (and forum topic) a notice is for, instead of the notify chats: the chat that asked
 * for what it tells and is not a notify chat (how a switch a restart cut ended).
 */
export interface NoticeChat {
  id: number;
  topicId?: number;
}

export interface Notice {
  id: number;
  ts: number;
  kind: NoticeKind;
  /** Telegram HTML, the proxy tag first. */
  text: string;
  chat?: NoticeChat;
}

/**
 * The families of dedupe keys whose every notice is one occasion's, told once and never due again:
 * none needs its latest kept past retention.noticeDays, and a cause read from such a key (the key up
 * to its last `:`) names the occasion itself, so its latest, the only one, was kept for ever: one row
 * per upgrade (`upgrade:<ts>:chat`, the copy for the chat that asked) and per credit cycle
 * (`credit:<start>:<usd>usd:<step>`), never removed.
 * - `notice:` a key made for a notice that had none (random);
 * - `upgrade:` an upgrade's outcome, told at the start after it, whose record is cleared then;
 * - `credit:` a credit cycle's steps, each asked for once in the cycle: retention.noticeDays is at
 *   least a cycle (config refuses less), so a notice outlives its cycle without being kept;
 * - `brain:` a mode's outage and its end (`brain:down:<mode>:<since>`), keyed by when the outage
 *   began: the monitor tells it as it begins and keeps the outage itself (kv `brain_outage`), so
 *   no later notice has its key. Kept as a cause, the latest of each mode stayed for ever, also
 *   that of a mode since removed from the config.
 */
const ONE_OCCASION = ['notice:', 'upgrade:', 'credit:', 'brain:'];

/**
 * The cause a notice's dedupe key names, whose latest notice retention keeps whatever its age (a
 * notice due for as long as its cause lasts, kept from coming again by its key): the key up to its
 * last `:` (`credentials:expired`, `usage_limit`, `auth:<source>`). Undefined
 * for a key of a family whose notices are each one occasion's (ONE_OCCASION): they age out as any.
 */
export function noticeCause(dedupeKey: string): string | undefined {
  if (ONE_OCCASION.some((family) => dedupeKey.startsWith(family))) return undefined;
  const end = dedupeKey.lastIndexOf(':');
  return end < 0 ? '' : dedupeKey.slice(0, end);
}

export interface NoticeInput {
  kind: NoticeKind;
  /**
   * Telegram HTML from an `html` template (so every outside part is escaped),
   * without the proxy tag; it is added here.
   */
  text: Html;
  /**
   * A notice with a key already used is not sent again, not even after a restart. Written
   * `<cause>:<instance>` (`credentials:expired:<expiry>`): the latest notice of each cause (see
   * noticeCause) outlasts retention.noticeDays, so one due while its cause lasts comes once.
   */
  dedupeKey?: string;
  chat?: NoticeChat;
}

/**
 * A notice ready to be recorded, its text Telegram HTML with the proxy tag: what waits on disk to be
 * recorded at a later start. Every one has a key (its own, else one made for it): one the database
 * took just before a crash, its copy still on disk, is then not recorded twice.
 */
export interface NoticeRecord {
  ts: number;
  kind: NoticeKind;
  text: string;
  dedupeKey: string;
  chat?: NoticeChat;
}

/**
 * Where a notice that another process's lock keeps from the database waits until the database has
 * it (SwitchEnds' file), so a stop or a crash before the lock goes does not lose it.
 */
export interface KeptNotices {
  readonly file: string;
  /** What the last run kept there, read at start, and what was kept since. */
  readonly pending: { notices: NoticeRecord[]; sent: number[] };
  /** `sent`: notices delivered (by their id) whose mark waits for the lock. */
  note(ends: { notices?: NoticeRecord[]; sent?: number[] }): void;
  /** The database has these: notices by their dedupe key, marks by their notice's id. */
  written(ends: { notices?: string[]; sent?: number[] }): void;
}

/**
 * Delivers a notice somewhere (the Telegram bot): `sent` once it is really delivered, `retry` when
 * it must be tried again later (the notices after it wait, so they keep their order), `held` when
 * the sink has nowhere to send it (no notify chats): it waits in the database and the next goes on.
 */
export type NoticeSink = (notice: Notice) => Promise<'sent' | 'retry' | 'held'>;

interface Row {
  id: number;
  ts: number;
  kind: NoticeKind;
  text: string;
  chatId: number | null;
  topicId: number | null;
}

/**
 * Notices are written to SQLite before anyone tries to send them, and marked
 * sent only after a sink delivered them: none is lost across a restart or a
 * Telegram outage. With no sink they wait (the log says so once); a sink with
 * no notify chats holds theirs in the database and still delivers those meant
 * for one chat. While
 * another process holds the database, both writes are kept in memory (see
 * KeptWrites): a notice is sent once it is recorded, and one delivered meanwhile
 * is not delivered again. A notice kept so waits on disk too (KeptNotices) until
 * the database has it: a stop or a crash before the lock goes leaves it to the
 * next start, which records it first.
 */
export class Notifier extends EventEmitter<{ notice: [Notice] }> {
  private sink: NoticeSink | undefined;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly db: Db,
    private readonly kept: KeptWrites,
    private readonly onDisk: KeptNotices,
    private readonly logger: Logger,
  ) {
    super();
    // Marks first: a power loss may have taken a marked notice out of the database (synchronous=NORMAL)
    // but not out of the synced file, and a notice recorded below would take its id.
    for (const id of onDisk.pending.sent) this.markSent(id, Date.now());
    // One the database took before the last run ended is known by its key: not sent twice.
    for (const n of onDisk.pending.notices) this.record(n);
  }

  /**
   * Records a notice and tries to deliver it; one whose dedupe key was used is
   * dropped. Under another process's lock it is recorded (and sent) once the lock
   * is gone, or by the next start.
   */
  notify(input: NoticeInput): void {
    const body = input.text.text;
    const text = body.startsWith(PROXY_TAG) ? body : html`${PROXY_TAG} ${input.text}`.text;
    const dedupeKey = input.dedupeKey ?? `notice:${randomUUID()}`;
    const chat = input.chat === undefined ? {} : { chat: input.chat };
    this.record({ ts: Date.now(), kind: input.kind, text, dedupeKey, ...chat });
  }

  /**
   * Records a notice now, or keeps it behind another process's lock, in memory and on disk until the
   * database has it. Never throws: a database that cannot be written to (closed by a stop) leaves
   * it on disk for the next start too.
   */
  private record(n: NoticeRecord): void {
    let recorded = false;
    try {
      recorded = this.kept.run(
        `the ${n.kind} notice "${n.text}"`,
        () => {
          const r = this.db
            .prepare(
              'INSERT OR IGNORE INTO notices (ts, kind, dedupe_key, text, chat_id, topic_id) VALUES (?, ?, ?, ?, ?, ?)',
            )
            .run(n.ts, n.kind, n.dedupeKey, n.text, n.chat?.id ?? null, n.chat?.topicId ?? null);
          this.onDisk.written({ notices: [n.dedupeKey] });
          if (r.changes === 0) return;
          const { dedupeKey: _, ...rest } = n;
          const notice: Notice = { id: Number(r.lastInsertRowid), ...rest };
          this.logger.info({ kind: notice.kind, id: notice.id }, 'notice');
          this.emit('notice', notice);
          void this.flush();
        },
        { savedIn: this.onDisk.file },
      );
    } catch (err) {
      this.logger.error(
        { err, kind: n.kind, file: this.onDisk.file },
        'could not record a notice: it waits in that file for the next start',
      );
    }
    if (!recorded) this.onDisk.note({ notices: [n] });
  }

  /** When the latest notice whose dedupe key starts with `prefix` was recorded, if any. */
  lastKeyed(prefix: string): number | undefined {
    // A range rather than LIKE: the key's unique index serves it, and `_` or `%` in it mean nothing.
    const row = this.db
      .prepare<[string, string], { ts: number | null }>(
        'SELECT MAX(ts) AS ts FROM notices WHERE dedupe_key >= ? AND dedupe_key < ?',
      )
      .get(prefix, `${prefix}\uffff`);
    return row?.ts ?? undefined;
  }

  wasSent(dedupeKey: string): boolean {
    return this.db.prepare('SELECT 1 FROM notices WHERE dedupe_key = ?').get(dedupeKey) !== undefined;
  }

  setSink(sink: NoticeSink | undefined): void {
    this.sink = sink;
    void this.flush();
  }

  pending(): Notice[] {
    return this.db
      .prepare<[], Row>(
        'SELECT id, ts, kind, text, chat_id AS chatId, topic_id AS topicId FROM notices WHERE sent_at IS NULL ORDER BY id',
      )
      .all()
      .map(({ chatId, topicId, ...n }) =>
        chatId === null ? n : { ...n, chat: { id: chatId, ...(topicId === null ? {} : { topicId }) } },
      );
  }

  /** The latest notices for the notify chats (not those for one chat of their own), newest first. */
  recent(limit = 20): (Omit<Notice, 'chat'> & { sentAt: number | null })[] {
    return this.db
      .prepare<[number], Omit<Row, 'chatId' | 'topicId'> & { sentAt: number | null }>(
        'SELECT id, ts, kind, text, sent_at AS sentAt FROM notices WHERE chat_id IS NULL ORDER BY id DESC LIMIT ?',
      )
      .all(limit);
  }

  /**
   * Sends pending notices in order; one flush at a time so nothing is sent twice.
   * Never rejects: a database that refuses a read is logged, and the next flush
   * (the sink retries) goes on.
   */
  flush(): Promise<void> {
    this.flushing = this.flushing
      .then(() => this.flushNow())
      .catch((err: unknown) => this.logger.warn({ err }, 'notices: the database refused; will retry'));
    return this.flushing;
  }

  private async flushNow(): Promise<void> {
    const sink = this.sink;
    if (!sink) return;
    for (const n of this.pending()) {
      // Delivered, its mark kept behind another process's lock (by this run or the last): not again.
      if (this.onDisk.pending.sent.includes(n.id)) continue;
      let delivery: Awaited<ReturnType<NoticeSink>> = 'retry';
      try {
        delivery = await sink(n);
      } catch (err) {
        this.logger.warn({ err, id: n.id }, 'notice delivery failed; will retry');
      }
      if (delivery === 'held') continue;
      if (delivery === 'retry') return;
      this.markSent(n.id, Date.now());
    }
  }

  /**
   * Records that a notice was delivered. Behind another process's lock the mark waits in memory and
   * on disk (KeptNotices) until the database has it: a stop before the lock goes does not send the
   * notice again at the next start. Only a crash between the delivery and the mark does.
   */
  private markSent(id: number, sentAt: number): void {
    const written = this.kept.run(
      `that notice ${id} was sent`,
      () => {
        this.db.prepare('UPDATE notices SET sent_at = ? WHERE id = ?').run(sentAt, id);
        this.onDisk.written({ sent: [id] });
      },
      { savedIn: this.onDisk.file },
    );
    if (!written) this.onDisk.note({ sent: [id] });
  }
}
