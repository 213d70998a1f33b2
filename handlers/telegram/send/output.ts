import { type Api, GrammyError, type InputFile } from 'grammy';
import type { InlineKeyboardMarkup } from 'grammy/types';
import { type Lang, t } from '../../../src/i18n.js';
import { fitHtml } from '../format/fit.js';
import { htmlToPlain, renderMarkdown } from '../format/render.js';
import { TELEGRAM_LIMIT } from '../format/split.js';
import type { EditResult } from '../stream/ports.js';

/**
 * Sending to one chat with Telegram's quirks handled in one place: HTML first,
 * the same text plain when Telegram still rejects the entities (so a formatting
 * slip never loses an answer), "message is not modified" counted as success,
 * and an edit of a vanished message reported instead of thrown.
 */

export const isParseError = (err: unknown): boolean =>
  err instanceof GrammyError && err.error_code === 400 && /can't parse entities/i.test(err.description);

export const isNotModified = (err: unknown): boolean =>
  err instanceof GrammyError && err.error_code === 400 && /message is not modified/i.test(err.description);

/**
 * The message cannot be edited any more (deleted by the user, too old, or left in a group since
 * upgraded to a supergroup, which takes no changes): send a new one instead.
 */
export const isGone = (err: unknown): boolean =>
  err instanceof GrammyError &&
  err.error_code === 400 &&
  /message to edit not found|message can't be edited|MESSAGE_ID_INVALID|group chat was upgraded to a supergroup/i.test(
    err.description,
  );

/**
 * The forum topic refuses new messages for good: closed by an admin (the bot may not write there
 * unless it manages topics) or deleted. The rest of the group still takes them.
 */
export const isTopicGone = (err: unknown): boolean =>
  err instanceof GrammyError &&
  err.error_code === 400 &&
  /TOPIC_CLOSED|TOPIC_DELETED|message thread not found/i.test(err.description);

/** Telegram will never take this message for this chat (blocked, kicked, chat gone): retrying is pointless. */
export const isPermanent = (err: unknown): boolean =>
  err instanceof GrammyError && (err.error_code === 403 || (err.error_code === 400 && !isParseError(err)));

export interface SendExtra {
  replyTo?: number;
  keyboard?: InlineKeyboardMarkup;
  /** The language of the note under an HTML text cut to fit one message (fitted); default English. */
  lang?: Lang;
}

/**
 * brainstem's HTML as one message takes it: whole while it fits, else cut with a note saying so
 * (format/fit.ts), rather than refused whole by Telegram as too long. `limit` below Telegram's
 * leaves room for a line the caller adds after it.
 */
export function fitted(html: string, lang: Lang = 'en', limit = TELEGRAM_LIMIT): string {
  return fitHtml(
    html,
    (omitted) =>
      `<i>${t(
        lang,
        `[… cut here: ${omitted} more characters, past what one Telegram message holds]`,
        `[… coupé ici : ${omitted} caractères de plus, au-delà de ce que tient un message Telegram]`,
      )}</i>`,
    limit,
  );
}

export class ChatOutput {
  /** Messages already fallen back to plain text: their later edits go plain at once. */
  private readonly plain = new Set<number>();
  /** The newest message sent through this output (Telegram's ids grow within a chat): see ChatTurns.shown. */
  private newest: number | undefined;
  /** Telegram refused a chat action for good: no more are sent (see typing). */
  private refusesActions = false;

  constructor(
    private readonly api: Api,
    readonly chatId: number,
    /** The forum topic everything goes to (edits follow their message); undefined: the chat itself. */
    readonly topicId?: number,
  ) {}

  /** The id of the newest message sent through this output, if any. */
  get newestMessageId(): number | undefined {
    return this.newest;
  }

  /**
   * The same chat outside the output's topic (a forum's General topic), where what the topic refuses
   * for good goes (outside-topic.ts); undefined when the output writes to no topic.
   */
  outside(): ChatOutput | undefined {
    return this.topicId === undefined ? undefined : new ChatOutput(this.api, this.chatId);
  }

  /** `message_thread_id` for every send of this output, when it writes into a topic. */
  private get inTopic(): { message_thread_id?: number } {
    return this.topicId === undefined ? {} : { message_thread_id: this.topicId };
  }

  sendMarkdown(markdown: string, extra: SendExtra = {}): Promise<number> {
    return this.send(renderMarkdown(markdown), markdown, extra);
  }

  editMarkdown(messageId: number, markdown: string, extra: SendExtra = {}): Promise<EditResult> {
    return this.edit(messageId, renderMarkdown(markdown), markdown, extra);
  }

  sendHtml(html: string, extra: SendExtra = {}): Promise<number> {
    const fit = fitted(html, extra.lang);
    return this.send(fit, htmlToPlain(fit), extra);
  }

  editHtml(messageId: number, html: string, extra: SendExtra = {}): Promise<EditResult> {
    const fit = fitted(html, extra.lang);
    return this.edit(messageId, fit, htmlToPlain(fit), extra);
  }

  /**
   * "typing…", or "sending a photo…" while a picture is made, in the output's topic. Once Telegram
   * refused it for good (the user blocked the bot, the chat is gone), later ones are not sent: the
   * indicator repeats every few seconds for as long as the brain works, and each refusal was one
   * more call to Telegram and one more warning in the log, minutes long. The first one throws.
   */
  async typing(action: 'typing' | 'upload_photo' = 'typing'): Promise<void> {
    if (this.refusesActions) return;
    try {
      await this.api.sendChatAction(this.chatId, action, this.inTopic);
    } catch (err) {
      if (isPermanent(err)) this.refusesActions = true;
      throw err;
    }
  }

  /** A file as a photo or a document (the outbox, a long tool output), in the output's topic. */
  async sendFile(
    kind: 'photo' | 'document',
    file: InputFile,
    opts: { replyTo?: number; caption?: string } = {},
  ): Promise<number> {
    const extra = {
      ...this.inTopic,
      ...(opts.caption !== undefined ? { caption: opts.caption } : {}),
      ...(opts.replyTo !== undefined
        ? { reply_parameters: { message_id: opts.replyTo, allow_sending_without_reply: true } }
        : {}),
    };
    const m =
      kind === 'photo'
        ? await this.api.sendPhoto(this.chatId, file, extra)
        : await this.api.sendDocument(this.chatId, file, extra);
    return this.sent(m.message_id);
  }

  async deleteMessage(messageId: number): Promise<void> {
    await this.api.deleteMessage(this.chatId, messageId);
  }

  /** Shows `markdown` as the chat's draft `draftId` (private chats only); plain when the HTML is refused. */
  async sendDraft(draftId: number, markdown: string): Promise<void> {
    try {
      await this.api.sendMessageDraft(this.chatId, draftId, renderMarkdown(markdown), {
        ...this.inTopic,
        parse_mode: 'HTML',
      });
    } catch (err) {
      if (!isParseError(err)) throw err;
      await this.api.sendMessageDraft(this.chatId, draftId, markdown, this.inTopic);
    }
  }

  private async send(html: string, plain: string, extra: SendExtra): Promise<number> {
    const common = {
      ...this.inTopic,
      link_preview_options: { is_disabled: true },
      ...(extra.replyTo
        ? { reply_parameters: { message_id: extra.replyTo, allow_sending_without_reply: true } }
        : {}),
      ...(extra.keyboard ? { reply_markup: extra.keyboard } : {}),
    };
    try {
      const m = await this.api.sendMessage(this.chatId, html, { ...common, parse_mode: 'HTML' });
      return this.sent(m.message_id);
    } catch (err) {
      if (!isParseError(err)) throw err;
      const m = await this.api.sendMessage(this.chatId, plain, common);
      this.plain.add(m.message_id);
      return this.sent(m.message_id);
    }
  }

  private sent(messageId: number): number {
    this.newest = Math.max(this.newest ?? messageId, messageId);
    return messageId;
  }

  private async edit(messageId: number, html: string, plain: string, extra: SendExtra): Promise<EditResult> {
    const common = {
      link_preview_options: { is_disabled: true },
      ...(extra.keyboard ? { reply_markup: extra.keyboard } : {}),
    };
    try {
      if (this.plain.has(messageId)) {
        await this.api.editMessageText(this.chatId, messageId, plain, common);
        return 'ok';
      }
      try {
        await this.api.editMessageText(this.chatId, messageId, html, { ...common, parse_mode: 'HTML' });
      } catch (err) {
        if (!isParseError(err)) throw err;
        this.plain.add(messageId);
        await this.api.editMessageText(this.chatId, messageId, plain, common);
      }
      return 'ok';
    } catch (err) {
      if (isNotModified(err)) return 'ok';
      if (isGone(err)) return 'gone';
      throw err;
    }
  }
}
