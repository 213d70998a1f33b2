/**
 * The ports of answer streaming: what the turn runner sees of a sender
 * (AnswerStream), what a sender calls to reach the chat (StreamOutput,
 * implemented by ChatOutput over grammY) and what a benchmark reads
 * (StreamStats). Kept apart from the senders so that they, the typing
 * indicator and the chat output depend on this file, not on each other.
 */

/** An edit landed, or its message is gone (deleted, too old) and a new one must be sent. */
export type EditResult = 'ok' | 'gone';

/**
 * How a streamed answer reaches a chat. The turn runner only knows this
 * interface, so other ways of showing an answer while it is written (Bot API
 * drafts in private chats) sit beside the edit-in-place sender (edit-sender.ts).
 */
export interface AnswerStream {
  /** The answer has started: show that something is coming (typing…) until the first text. */
  begin(): void;
  /**
   * The whole answer so far (Markdown). It grows, but for a status line at its end that may go again (see
   * answer.ts). Never waits: text not shown yet is replaced by later text.
   */
  update(text: string): void;
  /**
   * The final text, delivered in full (over several messages past 4096
   * characters). Resolves true once delivered (an empty text adds nothing),
   * false once Telegram refused it for good (logged): 429s are waited out, 5xx
   * and network failures retried by the API pipeline first. Never throws.
   */
  finish(text: string): Promise<boolean>;
  readonly stats: StreamStats;
}

/** What a benchmark reads: latency from the first text to the first message, and how many calls an answer cost. */
export interface StreamStats {
  /** When update() first got non-blank text (ms since epoch). */
  firstTextAt?: number;
  /** When Telegram first acknowledged a send, edit or draft carrying answer text. */
  firstShownAt?: number;
  /** update() calls with non-blank text. */
  updates: number;
  sends: number;
  edits: number;
  /** sendMessageDraft calls Telegram accepted. */
  drafts: number;
  finishedAt?: number;
}

/** The calls a sender makes; ChatOutput implements it over grammY (HTML with a plain fallback). */
export interface StreamOutput {
  sendMarkdown(markdown: string, extra?: { replyTo?: number }): Promise<number>;
  editMarkdown(messageId: number, markdown: string): Promise<EditResult>;
  typing(): Promise<void>;
  deleteMessage(messageId: number): Promise<void>;
  /** A Bot API draft (private chats): the text being written, shown without a message. */
  sendDraft(draftId: number, markdown: string): Promise<void>;
}
