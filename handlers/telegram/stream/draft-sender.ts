import { randomInt } from 'node:crypto';
import { showsNothing } from '../format/render.js';
import { splitMarkdown } from '../format/split.js';
import { type ChatPace, Pacer, type SendOutcome } from './pacer.js';
import type { AnswerStream, StreamOutput, StreamStats } from './ports.js';
import { TypingIndicator } from './typing.js';

/** Telegram drops a draft about 30 s after its last update: a quiet answer (a tool running) re-sends it before. */
const KEEP_ALIVE_MS = 20_000;

export interface DraftStreamOptions {
  /** Minimum time between two drafts (config.telegram.editIntervalMs, like edits). */
  intervalMs: number;
  /** Minimum time before a streamed change, the final text excepted (pacer.ts paceFor). */
  streamIntervalMs?: number | undefined;
  /** The chat's pace, shared with its other streams (pacer.ts ChatPaces). */
  chat?: ChatPace | undefined;
  /** How often the typing action is repeated until the first draft. */
  typingEveryMs?: number;
  /** The "queued" notice of this answer: deleted once the answer is delivered (see finish). */
  adoptMessageId?: number | undefined;
  /** What the answer's first message replies to. */
  replyTo?: number | undefined;
  onError?: (err: unknown, what: string) => void;
  /** The edit-in-place sender that takes the answer over when a draft is refused. */
  fallback: () => AnswerStream;
}

/**
 * Streams an answer as a Bot API draft (`sendMessageDraft`): the text appears
 * as it is written, without edit flicker and outside the per-chat edit
 * budget, then the final text is sent as real messages, which replace the
 * draft (nothing is shown twice). Drafts are paced like edits (pacer.ts), one
 * call in flight, newer text replacing text not shown yet. A draft shows the last
 * 4096-character piece; earlier pieces arrive with the final text.
 *
 * Any refused draft (a group, a topic, a bot without drafts, a Telegram
 * error) hands the rest of the answer to the edit-in-place sender, with the
 * whole text so far: nothing shown was a message yet, so nothing is lost or
 * repeated.
 */
export class DraftStreamSender implements AnswerStream {
  private readonly own: StreamStats = { updates: 0, sends: 0, edits: 0, drafts: 0 };
  private readonly draftId = randomInt(1, 2 ** 31 - 1);
  /** The whole text so far: what the edit-in-place sender starts from if a draft is refused. */
  private latest = '';
  private readonly pacer: Pacer<string>;
  private readonly typing: TypingIndicator;
  private finishing = false;
  private fallback: AnswerStream | undefined;

  constructor(
    private readonly out: StreamOutput,
    private readonly opts: DraftStreamOptions,
  ) {
    this.typing = new TypingIndicator(out, opts.typingEveryMs, opts.onError);
    this.pacer = new Pacer({
      intervalMs: opts.intervalMs,
      streamIntervalMs: opts.streamIntervalMs,
      chat: opts.chat,
      send: (text) => this.draft(text),
      repeatAfterMs: KEEP_ALIVE_MS,
    });
  }

  get stats(): StreamStats {
    const f = this.fallback?.stats;
    if (!f) return this.own;
    return {
      ...this.own,
      sends: f.sends,
      edits: f.edits,
      firstShownAt: this.own.firstShownAt ?? f.firstShownAt,
      finishedAt: f.finishedAt,
    };
  }

  begin(): void {
    if (this.typing.running || this.finishing) return;
    this.typing.start();
  }

  update(text: string): void {
    if (this.finishing || text.trim().length === 0) return;
    this.own.updates++;
    this.own.firstTextAt ??= Date.now();
    this.typing.stop();
    // Telegram drops trailing whitespace: a paragraph break not followed by words yet would redraw the same draft.
    const shown = text.trimEnd();
    if (shown === this.latest) return;
    this.latest = shown;
    if (this.fallback) this.fallback.update(shown);
    else this.pacer.push(shown);
  }

  async finish(text: string): Promise<boolean> {
    this.finishing = true;
    this.typing.stop();
    await this.pacer.flush();
    if (this.fallback) return this.fallback.finish(text);
    let delivered = true;
    if (text.trim().length > 0) {
      for (const [i, piece] of splitMarkdown(text).entries()) {
        const replyTo = i === 0 ? this.opts.replyTo : undefined;
        try {
          await this.out.sendMarkdown(piece, replyTo ? { replyTo } : {});
          this.own.sends++;
          this.own.firstShownAt ??= Date.now();
        } catch (err) {
          this.opts.onError?.(err, 'final text');
          delivered = false;
          break;
        }
      }
    }
    // The previous answer was delivered after the "queued" notice, as a new message: answering
    // in the notice's place would put this answer above it, so the notice goes instead.
    const queued = this.opts.adoptMessageId;
    if (queued !== undefined) {
      await this.out.deleteMessage(queued).catch((err) => this.opts.onError?.(err, 'queued notice'));
    }
    this.own.finishedAt = Date.now();
    return delivered;
  }

  private async draft(text: string): Promise<SendOutcome> {
    const piece = splitMarkdown(text).at(-1) ?? text;
    // Refused (400 message text is empty), which would end the drafts: shown once it has words.
    if (showsNothing(piece)) return 'unchanged';
    try {
      await this.out.sendDraft(this.draftId, piece);
      this.own.drafts++;
      this.own.firstShownAt ??= Date.now();
      return 'sent';
    } catch (err) {
      this.opts.onError?.(err, 'draft');
      this.fallback = this.opts.fallback();
      this.fallback.update(this.latest);
      return 'failed';
    }
  }
}
