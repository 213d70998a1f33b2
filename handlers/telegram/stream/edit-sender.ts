import { setTimeout as sleep } from 'node:timers/promises';
import { splitMarkdown } from '../format/split.js';
import { DraftStreamSender } from './draft-sender.js';
import type { AnswerStream, StreamOutput, StreamStats } from './ports.js';
import { TypingIndicator } from './typing.js';

export interface EditStreamOptions {
  /** Minimum time between two calls that change the answer (config.telegram.editIntervalMs). */
  intervalMs: number;
  /** How often the typing action is repeated (Telegram shows it for about 5 s). */
  typingEveryMs?: number;
  /** false: no intermediate text, typing until the end, then the final text (streaming "off"). */
  live?: boolean;
  /** A message already in the chat (the "queued" notice) that becomes the answer's first message. */
  adoptMessageId?: number;
  /** Where the first message of the answer replies to, when one is sent. */
  replyTo?: number;
  onError?: (err: unknown, what: string) => void;
}

/**
 * Edit-in-place streaming within the Bot API's limits: one message edited no
 * more often than `intervalMs`, at most one call in flight, and while a call
 * runs (or waits out a 429's retry_after, done by the auto-retry transformer)
 * newer text simply replaces the text waiting to be shown: intermediate edits
 * are dropped, never queued. The final text is always sent in full, after the
 * last call in flight, and continues in new messages past 4096 characters.
 */
export class EditStreamSender implements AnswerStream {
  readonly stats: StreamStats = { updates: 0, sends: 0, edits: 0, drafts: 0 };
  private readonly intervalMs: number;
  private readonly live: boolean;
  private latest = '';
  private shownText = '';
  /** Message ids of the answer, in order, and the piece each one shows. */
  private readonly ids: number[] = [];
  private readonly shown: (string | undefined)[] = [];
  private inflight: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly typing: TypingIndicator;
  private lastCallAt = Number.NEGATIVE_INFINITY;
  private finishing = false;
  /** A call failed for good: no more intermediate updates (the final text still tries). */
  private broken = false;

  constructor(
    private readonly out: StreamOutput,
    private readonly opts: EditStreamOptions,
  ) {
    this.intervalMs = opts.intervalMs;
    this.live = opts.live ?? true;
    this.typing = new TypingIndicator(out, opts.typingEveryMs, opts.onError);
    if (opts.adoptMessageId !== undefined) {
      this.ids.push(opts.adoptMessageId);
      this.shown.push(undefined);
    }
  }

  begin(): void {
    if (this.typing.running || this.finishing) return;
    this.typing.start();
  }

  update(text: string): void {
    if (this.finishing || text.trim().length === 0) return;
    this.stats.updates++;
    this.stats.firstTextAt ??= Date.now();
    this.latest = text;
    if (!this.live) return;
    this.typing.stop();
    this.schedule();
  }

  async finish(text: string): Promise<boolean> {
    this.finishing = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.typing.stop();
    await this.inflight;
    let delivered = true;
    if (text.trim().length > 0 && text !== this.shownText) {
      // The final edit keeps to the pace too; a first message goes at once.
      const wait = this.lastCallAt + this.intervalMs - Date.now();
      if (this.ids.length > 0 && wait > 0) await sleep(wait);
      delivered = await this.show(text);
    }
    this.stats.finishedAt = Date.now();
    return delivered;
  }

  private schedule(): void {
    if (this.timer || this.inflight || this.broken) return;
    const wait = Math.max(0, this.lastCallAt + this.intervalMs - Date.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.finishing) return;
      this.inflight = this.show(this.latest).then(() => {
        this.inflight = undefined;
        if (!this.finishing && this.latest !== this.shownText) this.schedule();
      });
    }, wait);
  }

  /** Brings the chat to `text`: edits the pieces that changed, sends the new ones. False if Telegram refused one. */
  private async show(text: string): Promise<boolean> {
    const pieces = splitMarkdown(text);
    for (const [i, piece] of pieces.entries()) {
      if (this.shown[i] === piece) continue;
      try {
        const id = this.ids[i];
        if (id === undefined) {
          const replyTo = this.ids.length === 0 ? this.opts.replyTo : undefined;
          this.ids.push(await this.out.sendMarkdown(piece, replyTo ? { replyTo } : {}));
          this.stats.sends++;
        } else if ((await this.out.editMarkdown(id, piece)) === 'gone') {
          this.ids[i] = await this.out.sendMarkdown(piece);
          this.stats.sends++;
        } else {
          this.stats.edits++;
        }
        this.shown[i] = piece;
        this.stats.firstShownAt ??= Date.now();
      } catch (err) {
        this.broken = true;
        this.opts.onError?.(err, this.finishing ? 'final text' : 'streamed edit');
        return false;
      } finally {
        this.lastCallAt = Date.now();
      }
    }
    this.shownText = text;
    return true;
  }
}

export type StreamingMode = 'draft' | 'edit' | 'off';

/**
 * The sender for an answer, from config.telegram.streaming: `off` shows typing
 * until the whole answer is there; `edit` edits in place; `draft` streams Bot
 * API drafts, and edits in place wherever a draft is refused.
 */
export function createAnswerStream(
  mode: StreamingMode,
  out: StreamOutput,
  opts: Omit<EditStreamOptions, 'live'>,
): AnswerStream {
  const edits = () => new EditStreamSender(out, { ...opts, live: mode !== 'off' });
  return mode === 'draft' ? new DraftStreamSender(out, { ...opts, fallback: edits }) : edits();
}
