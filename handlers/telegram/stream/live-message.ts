import type { ChatOutput } from '../send/output.js';
import { type ChatPace, Pacer, paceFor, type SendOutcome } from './pacer.js';

export interface LiveMessageOptions {
  /** Minimum time between two calls that change the message. */
  intervalMs: number;
  /** The chat's pace, shared with its other streams (pacer.ts ChatPaces). */
  chat: ChatPace;
  /** A message already in the chat (a question, a "queued" notice) that this one takes over. */
  messageId?: number | undefined;
  /** What the message replies to, when it has to be sent. */
  replyTo?: number | undefined;
  onError: (err: unknown, what: string) => void;
}

/**
 * One HTML message kept up to date while something runs (a tool's progress),
 * paced by Pacer (pacer.ts). The state is rendered only when a call can go
 * out, so intermediate states are dropped, never queued. The final text
 * always goes out, after the call in flight.
 */
export class LiveMessage {
  /** Renders the latest state when its call goes out: a chatty command costs one rendering per call, not per line. */
  private readonly pacer: Pacer<() => string>;
  private shown = '';
  private finishing = false;
  private id: number | undefined;

  constructor(
    private readonly out: ChatOutput,
    private readonly opts: LiveMessageOptions,
  ) {
    this.id = opts.messageId;
    this.pacer = new Pacer({
      ...paceFor(out.chatId, opts.intervalMs),
      chat: opts.chat,
      send: (render) => this.progress(render()),
    });
  }

  get messageId(): number | undefined {
    return this.id;
  }

  /** Shows what `render` gives as soon as the pace allows; never waits. */
  show(render: () => string): void {
    if (this.finishing) return;
    this.pacer.push(render);
  }

  /** Delivers the final text; resolves true once Telegram has it, false if it refused it for good (logged). */
  async finish(html: string): Promise<boolean> {
    this.finishing = true;
    await this.pacer.flush();
    if (html === this.shown) return true;
    if (this.id !== undefined) await this.pacer.turn();
    return this.put(html, 'final text');
  }

  private async progress(html: string): Promise<SendOutcome> {
    if (html === this.shown) return 'unchanged';
    return (await this.put(html, 'progress')) ? 'sent' : 'failed';
  }

  private async put(html: string, what: string): Promise<boolean> {
    try {
      if (this.id === undefined || (await this.out.editHtml(this.id, html)) === 'gone') {
        this.id = await this.out.sendHtml(html, this.opts.replyTo ? { replyTo: this.opts.replyTo } : {});
      }
      this.shown = html;
      return true;
    } catch (err) {
      this.opts.onError(err, what);
      return false;
    }
  }
}
