import { showsNothing } from '../format/render.js';
import { splitMarkdown } from '../format/split.js';
import { DraftStreamSender } from './draft-sender.js';
import { type ChatPace, Pacer, type SendOutcome } from './pacer.js';
import type { AnswerStream, StreamOutput, StreamStats } from './ports.js';
import { TypingIndicator } from './typing.js';

export interface EditStreamOptions {
  /** Minimum time between two calls that change the answer (config.telegram.editIntervalMs). */
  intervalMs: number;
  /** Minimum time before a streamed change, the final text excepted (pacer.ts paceFor). */
  streamIntervalMs?: number | undefined;
  /** The chat's pace, shared with its other streams (pacer.ts ChatPaces). */
  chat?: ChatPace | undefined;
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
 * Edit-in-place streaming within the Bot API's limits, paced by Pacer
 * (pacer.ts): newer text replaces the text waiting to be shown, intermediate
 * edits are dropped, never queued. The final text is always sent in full,
 * after the last call in flight, and continues in new messages past 4096
 * characters.
 */
export class EditStreamSender implements AnswerStream {
  readonly stats: StreamStats = { updates: 0, sends: 0, edits: 0, drafts: 0 };
  private readonly live: boolean;
  private shownText = '';
  /** Message ids of the answer, in order, and the piece each one shows. */
  private readonly ids: number[] = [];
  private readonly shown: (string | undefined)[] = [];
  private readonly pacer: Pacer<string>;
  private readonly typing: TypingIndicator;
  private finishing = false;

  constructor(
    private readonly out: StreamOutput,
    private readonly opts: EditStreamOptions,
  ) {
    this.pacer = new Pacer({
      intervalMs: opts.intervalMs,
      streamIntervalMs: opts.streamIntervalMs,
      chat: opts.chat,
      send: (text) => this.show(text),
    });
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
    if (!this.live) return;
    this.typing.stop();
    // Telegram drops trailing whitespace: a paragraph break not followed by words yet would be an edit that changes nothing.
    this.pacer.push(text.trimEnd());
  }

  async finish(text: string): Promise<boolean> {
    this.finishing = true;
    this.typing.stop();
    await this.pacer.flush();
    let delivered = true;
    if (text.trim().length > 0 && text !== this.shownText) {
      // The final edit keeps to the pace too; a first message goes at once.
      if (this.ids.length > 0) await this.pacer.turn();
      delivered = (await this.show(text)) !== 'failed';
    }
    this.stats.finishedAt = Date.now();
    return delivered;
  }

  /**
   * Brings the chat to `text`: edits the pieces that changed, sends the new
   * ones. `unchanged` when every piece was already shown, `failed` if Telegram
   * refused one.
   */
  private async show(text: string): Promise<SendOutcome> {
    const pieces = splitMarkdown(text);
    // A piece still without words would be refused, and a refusal ends the streaming: it waits for them.
    const wordless = !this.finishing && pieces.length > 0 && showsNothing(pieces.at(-1) ?? '');
    if (wordless) pieces.pop();
    let outcome: SendOutcome = 'unchanged';
    for (const [i, piece] of pieces.entries()) {
      if (this.shown[i] === piece) continue;
      outcome = 'sent';
      try {
        const id = this.ids[i];
        // The answer's first message replies to what it answers (in a group, the question), sent
        // again too when the one shown was deleted: without it nobody could tell whose question it answers.
        const replyTo = i === 0 && this.opts.replyTo ? { replyTo: this.opts.replyTo } : {};
        if (id === undefined) {
          this.ids.push(await this.out.sendMarkdown(piece, replyTo));
          this.stats.sends++;
        } else if ((await this.out.editMarkdown(id, piece)) === 'gone') {
          this.ids[i] = await this.out.sendMarkdown(piece, replyTo);
          this.stats.sends++;
        } else {
          this.stats.edits++;
        }
        this.shown[i] = piece;
        this.stats.firstShownAt ??= Date.now();
      } catch (err) {
        this.opts.onError?.(err, this.finishing ? 'final text' : 'streamed edit');
        return 'failed';
      }
    }
    // A piece held back is still to be shown: the final text must not take it for shown.
    if (!wordless) this.shownText = text;
    return outcome;
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
