import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import type { Logger } from './logger.js';
import { type KeptNotices, NOTICE_KINDS, type NoticeRecord } from './notices.js';

/** Next to the database, so `brainstem.sqlite*` (a copy, what no brain reads) takes it along. */
const FILE = 'brainstem.sqlite-switch-ends';

const noticeSchema = z.object({
  ts: z.number(),
  kind: z.enum(NOTICE_KINDS),
  text: z.string(),
  dedupeKey: z.string(),
  chat: z.object({ id: z.number(), topicId: z.number().optional() }).optional(),
});

const endsSchema = z.object({
  /** The record of the switch under way (CUT_KEY's value, whole) whose switch ended. */
  cut: z.string().optional(),
  /** The ids of queued switches that began. */
  queued: z.array(z.string()),
  /**
   * Notices of any kind (a switch's end, a brain down, a credit threshold…) not recorded yet: kept
   * in memory only, a stop or a crash before the lock went lost them. Keyed, so never recorded twice.
   */
  notices: z.array(z.unknown()).default([]),
  /**
   * The ids of notices delivered whose "sent" mark another process's lock kept from the database:
   * without them here, a stop before the lock went sent them again at the next start.
   */
  sent: z.array(z.number()).default([]),
});
export type Ends = Omit<z.infer<typeof endsSchema>, 'notices'> & { notices: NoticeRecord[] };

/**
 * The ends of switches, and every notice (KeptNotices, for the Notifier), that
 * another process's lock keeps from the state database (see KeptWrites), in a
 * small file until the database has them: kept in memory only, they were lost
 * to a stop that came before the lock went or to a crash, and the next start
 * made the switch again (and announced it), taking the user away from the mode
 * they were told they are on. The file keeps its first name (it held the ends
 * of switches only), so one a user has is still read. The next start reads it
 * before the notices and the switch records. Written whole to a temporary file
 * that replaces it (a crash leaves the old file or the new one, never half of
 * one), 0600, both synced to the disk before the write returns, so a power loss
 * does not lose it either.
 */
export class SwitchEnds implements KeptNotices {
  private ends: Ends;
  readonly file: string;

  constructor(
    dataDir: string,
    private readonly logger: Logger,
  ) {
    this.file = path.join(dataDir, FILE);
    this.ends = this.read();
  }

  /** What the last run could not write, as the file had it at start, and what was noted since. */
  get pending(): Ends {
    return this.ends;
  }

  /** Whether the switch whose record CUT_KEY holds (as stored) ended. */
  cutEnded(record: string | undefined): boolean {
    return record !== undefined && this.ends.cut === record;
  }

  queuedBegan(id: string): boolean {
    return this.ends.queued.includes(id);
  }

  /** Ends the database could not take now: kept in the file until it has them. */
  note(ends: { cut?: string; queued?: string[]; notices?: NoticeRecord[]; sent?: number[] }): void {
    const queued = [...new Set([...this.ends.queued, ...(ends.queued ?? [])])];
    const keys = new Set(this.ends.notices.map((n) => n.dedupeKey));
    const notices = [...this.ends.notices, ...(ends.notices ?? []).filter((n) => !keys.has(n.dedupeKey))];
    const sent = [...new Set([...this.ends.sent, ...(ends.sent ?? [])])];
    this.save({ cut: ends.cut ?? this.ends.cut, queued, notices, sent });
  }

  /** The database has these (notices by their dedupe key, "sent" marks by their id): what else waits stays. */
  written(ends: { cut?: string; queued?: string[]; notices?: string[]; sent?: number[] }): void {
    const cut = ends.cut !== undefined && ends.cut === this.ends.cut ? undefined : this.ends.cut;
    const queued = this.ends.queued.filter((id) => !ends.queued?.includes(id));
    const notices = this.ends.notices.filter((n) => !ends.notices?.includes(n.dedupeKey));
    const sent = this.ends.sent.filter((id) => !ends.sent?.includes(id));
    const same =
      cut === this.ends.cut &&
      queued.length === this.ends.queued.length &&
      notices.length === this.ends.notices.length &&
      sent.length === this.ends.sent.length;
    if (!same) this.save({ cut, queued, notices, sent });
  }

  private read(): Ends {
    let raw: string;
    try {
      raw = readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
        this.logger.error(
          { err, file: this.file },
          'could not read the ends of switches and the notices kept for this start',
        );
      return { queued: [], notices: [], sent: [] };
    }
    try {
      const { notices, ...ends } = endsSchema.parse(JSON.parse(raw));
      // One by one: a notice this version cannot send (a kind a newer one wrote, before a downgrade)
      // must not take the switch records and the other notices with it.
      const readable = notices.flatMap((n) => {
        const notice = noticeSchema.safeParse(n);
        if (notice.success) return [notice.data];
        this.logger.error(
          { file: this.file, notice: n },
          'a notice kept for this start is not readable: not sent',
        );
        return [];
      });
      return { ...ends, notices: readable };
    } catch (err) {
      this.logger.error(
        { err, file: this.file },
        'the ends of switches and the notices kept for this start are not readable: ignored (a switch that ended may be made again, those notices are lost)',
      );
      return { queued: [], notices: [], sent: [] };
    }
  }

  /** Never throws: a file that cannot be written leaves the ends in memory, as before, and says so. */
  private save(ends: Ends): void {
    this.ends = ends;
    try {
      // Not synced: a file a power loss brings back is applied again, harmlessly (what the database has is skipped).
      const empty = ends.queued.length === 0 && ends.notices.length === 0 && ends.sent.length === 0;
      if (ends.cut === undefined && empty) {
        rmSync(this.file, { force: true });
        return;
      }
      writeDurably(this.file, JSON.stringify(ends));
    } catch (err) {
      this.logger.error(
        { err, file: this.file },
        'could not keep the ends of switches and the notices on disk: a restart before the database takes them makes those switches again and loses those notices',
      );
    }
  }
}

/**
 * Replaces `file` with `data`, 0600, through a temporary file: a crash leaves the old file or the
 * new one. The data is synced before the rename, and the folder after it: otherwise a power loss
 * may leave the new name on an empty file, or the old file back.
 */
function writeDurably(file: string, data: string): void {
  const tmp = `${file}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeFileSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  const dir = openSync(path.dirname(file), 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}
