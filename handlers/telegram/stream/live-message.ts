import { setTimeout as sleep } from 'node:timers/promises';
import type { ChatOutput } from '../send/output.js';

export interface LiveMessageOptions {
  /** Minimum time between two calls that change the message. */
  intervalMs: number;
  /** A message already in the chat (a question, a "queued" notice) that this one takes over. */
  messageId?: number | undefined;
  /** What the message replies to, when it has to be sent. */
  replyTo?: number | undefined;
  onError: (err: unknown, what: string) => void;
}

/**
 * One HTML message kept up to date while something runs (a tool's progress):
 * no more than one call per `intervalMs`, at most one in flight, and the state
 * is rendered only when a call can go out, so intermediate states are dropped,
 * never queued (a 429's retry_after, waited out by auto-retry, just means
 * fewer edits). The final text always goes out, after the call in flight.
 */
export class LiveMessage {
  /** Renders the latest state, not shown yet: a chatty command costs one rendering per call, not per line. */
  private latest: (() => string) | undefined;
  private shown = '';
  private inflight: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private lastCallAt = Number.NEGATIVE_INFINITY;
  private finishing = false;
  /** A call failed for good: no more progress (the final text still tries). */
  private broken = false;
  private id: number | undefined;

  constructor(
    private readonly out: ChatOutput,
    private readonly opts: LiveMessageOptions,
  ) {
    this.id = opts.messageId;
  }

  get messageId(): number | undefined {
    return this.id;
  }

  /** Shows what `render` gives as soon as the pace allows; never waits. */
  show(render: () => string): void {
    if (this.finishing) return;
    this.latest = render;
    this.schedule();
  }

  /** Delivers the final text; resolves true once Telegram has it, false if it refused it for good (logged). */
  async finish(html: string): Promise<boolean> {
    this.finishing = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.inflight;
    if (html === this.shown) return true;
    const wait = this.lastCallAt + this.opts.intervalMs - Date.now();
    if (this.id !== undefined && wait > 0) await sleep(wait);
    return this.put(html, 'final text');
  }

  private schedule(): void {
    if (this.timer || this.inflight || this.broken) return;
    const wait = Math.max(0, this.lastCallAt + this.opts.intervalMs - Date.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const render = this.latest;
      this.latest = undefined;
      const html = render?.();
      if (this.finishing || html === undefined || html === this.shown) return;
      this.inflight = this.put(html, 'progress').then(() => {
        this.inflight = undefined;
        if (!this.finishing && this.latest) this.schedule();
      });
    }, wait);
  }

  private async put(html: string, what: string): Promise<boolean> {
    try {
      if (this.id === undefined || (await this.out.editHtml(this.id, html)) === 'gone') {
        this.id = await this.out.sendHtml(html, this.opts.replyTo ? { replyTo: this.opts.replyTo } : {});
      }
      this.shown = html;
      return true;
    } catch (err) {
      this.broken = true;
      this.opts.onError(err, what);
      return false;
    } finally {
      this.lastCallAt = Date.now();
    }
  }
}
