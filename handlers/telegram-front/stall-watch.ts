import { z } from 'zod';
import type { Core } from '../../src/core.js';
import { html } from '../../src/html.js';
import { formatDuration, formatUtc, noticeLang, t } from '../../src/i18n.js';
import type { Logger } from '../../src/logger.js';
import type { UpdateQueue } from './update-queue.js';

/**
 * OpenClaw not picking up: when an update has waited longer than
 * `telegram.front.stallNoticeMs` because nobody fetched it, the notify chats
 * get one notice, and one more once OpenClaw has fetched and confirmed what
 * waited. A timer set for the moment the oldest update turns stale, never a
 * polling loop. The state is kept in SQLite, so a restart in the middle never
 * repeats the first notice and still ends with the second. The check and the
 * end of a stall write: under another process's lock they wait for the lock
 * to go (KeptWrites), where a throw from the timer would bring brainstem down
 * and one from a poll would fail OpenClaw's getUpdates.
 */

const STATE_KEY = 'front_stall';
const stateSchema = z.object({ since: z.number(), firstId: z.number(), count: z.number() });
type Stall = z.infer<typeof stateSchema>;

export class StallWatch {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly onPushed = () => this.arm();
  private readonly onPolled = () => this.polled();

  constructor(
    private readonly queue: UpdateQueue,
    private readonly core: Core,
    private readonly stallMs: number,
    private readonly logger: Logger,
  ) {
    queue.on('pushed', this.onPushed);
    queue.on('polled', this.onPolled);
    // Updates may wait from before a restart.
    this.arm();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.queue.off('pushed', this.onPushed);
    this.queue.off('polled', this.onPolled);
  }

  /** Whether OpenClaw is called stalled now, and since when. */
  stall(): Stall | undefined {
    return this.core.kv.getJson(STATE_KEY, stateSchema);
  }

  /** A timer for when the oldest waiting update turns stale, unless one runs or the stall is already told. */
  private arm(): void {
    if (this.stopped || this.timer || this.stall()) return;
    const { oldestAt } = this.queue.waiting();
    if (oldestAt === undefined) return;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.core.kept.run('the check whether OpenClaw fetches its updates', () => this.check());
      },
      Math.max(0, oldestAt + this.stallMs - Date.now()),
    );
    this.timer.unref();
  }

  private check(): void {
    // A check kept behind a lock may find the stall told by another one.
    if (this.stopped || this.stall()) return;
    this.queue.purge();
    const w = this.queue.waiting();
    if (w.oldestAt === undefined || w.oldestId === undefined) return;
    if (Date.now() - w.oldestAt < this.stallMs) {
      this.arm();
      return;
    }
    const stall: Stall = { since: w.oldestAt, firstId: w.oldestId, count: w.count };
    this.core.kv.set(STATE_KEY, JSON.stringify(stall));
    this.logger.warn({ waiting: w.count, since: w.oldestAt }, 'OpenClaw is not fetching its updates');
    const lang = noticeLang(this.core.kv);
    this.core.notifier.notify({
      kind: 'front',
      dedupeKey: `front:stalled:${w.oldestId}`,
      text: t(
        lang,
        html`📭 OpenClaw is not fetching messages: ${w.count} waiting since ${formatUtc(w.oldestAt)}. Check that its gateway runs and that its Telegram channel's apiRoot is brainstem's front (npm run openclaw-config -- --apply ~/.openclaw/openclaw.json). Nothing is lost; they wait up to 24 hours.`,
        html`📭 OpenClaw ne récupère pas les messages : ${w.count} en attente depuis ${formatUtc(w.oldestAt)}. Vérifiez que sa passerelle tourne et que l’apiRoot de son canal Telegram est le front de brainstem (npm run openclaw-config -- --apply ~/.openclaw/openclaw.json). Rien n’est perdu ; ils attendent jusqu’à 24 heures.`,
      ),
    });
  }

  /** After a getUpdates: once what waited at the stall is confirmed, OpenClaw is picking up again. */
  private polled(): void {
    const stall = this.stall();
    if (!stall) return;
    const { oldestId } = this.queue.waiting();
    if (oldestId !== undefined && oldestId <= stall.firstId) return;
    this.core.kept.run('the end of the stall OpenClaw was told of', () => this.resumed(stall), {
      latest: true,
    });
  }

  private resumed(stall: Stall): void {
    // Kept behind a lock, it may find the stall ended by another poll's.
    if (this.stopped || this.stall()?.firstId !== stall.firstId) return;
    this.core.kv.set(STATE_KEY, '');
    this.logger.info({ since: stall.since }, 'OpenClaw is fetching its updates again');
    const lang = noticeLang(this.core.kv);
    const waited = formatDuration(Date.now() - stall.since);
    this.core.notifier.notify({
      kind: 'front',
      dedupeKey: `front:resumed:${stall.firstId}`,
      text: t(
        lang,
        html`📬 OpenClaw is fetching messages again (the first had waited ${waited}).`,
        html`📬 OpenClaw récupère de nouveau les messages (le premier avait attendu ${waited}).`,
      ),
    });
    this.arm();
  }
}
