import { type Api, GrammyError, type InputFile } from 'grammy';
import type { InlineKeyboardMarkup } from 'grammy/types';
import { type Lang, t } from '../../../src/i18n.js';
import { shorten } from '../../../src/text.js';
import { fitHtml } from '../format/fit.js';
import { escapeHtml, htmlToPlain, renderMarkdown } from '../format/render.js';
import { TELEGRAM_LIMIT } from '../format/split.js';
import type { EditResult } from '../stream/ports.js';
import { botOf, goneRefusal, rememberGone } from './gone-topics.js';

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

/** What a topic that refused a message for good said, told above it outside the topic (outside-topic.ts). */
export type RefusedLine = (refusal: unknown, what: 'message' | 'file') => string;

/** A caption holds this many characters at most (Telegram's limit). */
const CAPTION_LIMIT = 1024;
/** How many messages sent outside their topic each bot remembers, for their edits to keep the line. */
const MOVED_KEPT = 500;
/** The newest messages of an output that landed in another chat, kept to edit them there (ChatOutput.chatOf). */
const ELSEWHERE_KEPT = 100;

/**
 * The line (plain text) above each message an output sent outside its refusing topic, by chat and
 * message, for each bot: whichever output edits the message later (a progress turned into its
 * outcome, a question into its answer) keeps the line saying why it is there. Only the newest are
 * kept: an older one edited loses its line, never the edit.
 *
 * Keyed by the bot's id (its token's part before ':'), not by the Api object: grammY makes a new Api
 * for each update, and the edit often comes from another update than the send (a /mode menu's
 * button pressed, the menu then edited into the switch's progress).
 */
const movedLines = new Map<string, Map<string, { line: string; lang: Lang }>>();
const movedKey = (chatId: number, messageId: number) => `${chatId}:${messageId}`;

export class ChatOutput {
  /** Messages already fallen back to plain text: their later edits go plain at once. */
  private readonly plain = new Set<number>();
  /** The newest message sent through this output (Telegram's ids grow within a chat): see ChatTurns.shown. */
  private newest: number | undefined;
  /** Telegram refused a chat action for good: no more are sent (see typing). */
  private refusesActions = false;
  /** The chat the newest message sent went to (see landedIn). */
  private landed: number | undefined;
  /** Messages sent through this output that landed in another chat (a group's supergroup), by id. */
  private readonly elsewhere = new Map<number, number>();

  constructor(
    private readonly api: Api,
    readonly chatId: number,
    /** The forum topic everything goes to (edits follow their message); undefined: the chat itself. */
    readonly topicId?: number,
    /**
     * Set: a message or file the topic refuses for good (closed or deleted) goes to the group outside
     * it, under this line saying why, instead of throwing (outside-topic.ts linesOutput). Unset: the
     * refusal is thrown, for callers that move what was refused themselves (an answer, a /run's document).
     */
    private readonly refusedLine?: RefusedLine,
    /** The language of the note under a text cut to fit once the line is above it. */
    private readonly lang: Lang = 'en',
  ) {}

  /** The id of the newest message sent through this output, if any. */
  get newestMessageId(): number | undefined {
    return this.newest;
  }

  /**
   * The chat the last message sent through this output is in: `chatId`, but for a basic group
   * upgraded to a supergroup, whose sends the bot takes to the supergroup (bot.ts followUpgrades).
   * A caller that edits the message later, or matches a button pressed on it, names that chat: the
   * group takes no edits any more, and a press there comes from the supergroup.
   */
  get landedIn(): number {
    return this.landed ?? this.chatId;
  }

  /**
   * The same chat outside the output's topic (a forum's General topic), where what the topic refuses
   * for good goes (outside-topic.ts); undefined when the output writes to no topic.
   */
  outside(): ChatOutput | undefined {
    return this.topicId === undefined ? undefined : new ChatOutput(this.api, this.chatId);
  }

  /**
   * Whether message `messageId` of this chat was sent outside its refusing topic (by any output of the
   * bot, among the newest kept): what follows it (a /run's document under its result) goes there too.
   */
  sentOutside(messageId: number): boolean {
    return movedLines.get(botOf(this.api))?.has(movedKey(this.chatId, messageId)) ?? false;
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
    const fit = fitted(html, extra.lang ?? this.lang);
    return this.send(fit, htmlToPlain(fit), extra);
  }

  editHtml(messageId: number, html: string, extra: SendExtra = {}): Promise<EditResult> {
    const fit = fitted(html, extra.lang ?? this.lang);
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
      // A topic known to refuse messages: the answer will come outside it, and so does the indicator.
      await this.api.sendChatAction(this.chatId, action, this.goneRefusal() ? {} : this.inTopic);
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
    const post = async (
      thread: { message_thread_id?: number },
      o: { replyTo?: number; caption?: string },
    ) => {
      const extra = {
        ...thread,
        ...(o.caption !== undefined ? { caption: o.caption } : {}),
        ...(o.replyTo !== undefined
          ? { reply_parameters: { message_id: o.replyTo, allow_sending_without_reply: true } }
          : {}),
      };
      const m =
        kind === 'photo'
          ? await this.api.sendPhoto(this.chatId, file, extra)
          : await this.api.sendDocument(this.chatId, file, extra);
      return this.sent(m);
    };
    try {
      return await this.intoTopic(() => post(this.inTopic, opts));
    } catch (err) {
      const line = this.movedLine(err, 'file');
      if (line === undefined) throw err;
      // Replying to nothing out there: what it replied to is in the topic.
      const caption = opts.caption ? shorten(`${line}\n\n${opts.caption}`, CAPTION_LIMIT) : line;
      return post({}, { caption });
    }
  }

  async deleteMessage(messageId: number): Promise<void> {
    await this.api.deleteMessage(this.chatOf(messageId), messageId);
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

  /** The refusal the output's topic gave for good, while it stands (gone-topics.ts). */
  private goneRefusal(): unknown {
    return this.topicId === undefined ? undefined : goneRefusal(this.api, this.chatId, this.topicId);
  }

  /**
   * `post` into the output's topic, unless the topic is known to refuse it for good: then its refusal
   * is thrown again without asking Telegram (the caller moves what was refused, as after a first
   * refusal). A first refusal is remembered for the sends after it, whichever output makes them.
   */
  private async intoTopic<T>(post: () => Promise<T>): Promise<T> {
    const known = this.goneRefusal();
    if (known !== undefined) throw known;
    try {
      return await post();
    } catch (err) {
      if (this.topicId !== undefined && isTopicGone(err))
        rememberGone(this.api, this.chatId, this.topicId, err);
      throw err;
    }
  }

  /**
   * The line to put above what the topic refused with `err`, when this output sends such things
   * outside the topic; undefined when it throws them (see refusedLine) or the refusal is not the topic's.
   */
  private movedLine(err: unknown, what: 'message' | 'file'): string | undefined {
    if (this.topicId === undefined || !this.refusedLine || !isTopicGone(err)) return undefined;
    return this.refusedLine(err, what);
  }

  private async send(html: string, plain: string, extra: SendExtra): Promise<number> {
    try {
      return await this.intoTopic(() => this.post(html, plain, extra, this.inTopic));
    } catch (err) {
      const line = this.movedLine(err, 'message');
      if (line === undefined) throw err;
      // With its buttons, replying to nothing out there: what it replied to is in the topic.
      const lang = extra.lang ?? this.lang;
      const shown = fitted(`${escapeHtml(line)}\n\n${html}`, lang);
      const keyboard = extra.keyboard ? { keyboard: extra.keyboard } : {};
      const messageId = await this.post(shown, htmlToPlain(shown), keyboard, {});
      const moved = movedLines.get(botOf(this.api)) ?? new Map<string, { line: string; lang: Lang }>();
      movedLines.set(botOf(this.api), moved);
      // With the reader's language: an output that edits it later may not know it.
      moved.set(movedKey(this.chatId, messageId), { line, lang });
      if (moved.size > MOVED_KEPT) moved.delete(moved.keys().next().value as string);
      return messageId;
    }
  }

  private async post(
    html: string,
    plain: string,
    extra: SendExtra,
    thread: { message_thread_id?: number },
  ): Promise<number> {
    const common = {
      ...thread,
      link_preview_options: { is_disabled: true },
      ...(extra.replyTo
        ? { reply_parameters: { message_id: extra.replyTo, allow_sending_without_reply: true } }
        : {}),
      ...(extra.keyboard ? { reply_markup: extra.keyboard } : {}),
    };
    try {
      const m = await this.api.sendMessage(this.chatId, html, { ...common, parse_mode: 'HTML' });
      return this.sent(m);
    } catch (err) {
      if (!isParseError(err)) throw err;
      const m = await this.api.sendMessage(this.chatId, plain, common);
      this.plain.add(m.message_id);
      return this.sent(m);
    }
  }

  private sent(m: { message_id: number; chat?: { id: number } }): number {
    const messageId = m.message_id;
    this.newest = Math.max(this.newest ?? messageId, messageId);
    if (m.chat?.id !== undefined) {
      this.landed = m.chat.id;
      if (m.chat.id !== this.chatId) {
        this.elsewhere.set(messageId, m.chat.id);
        if (this.elsewhere.size > ELSEWHERE_KEPT)
          this.elsewhere.delete(this.elsewhere.keys().next().value as number);
      }
    }
    return messageId;
  }

  /**
   * The chat message `messageId` of this output is in. A basic group upgraded to a supergroup takes
   * no edits: a message the bot took to the supergroup (a streamed answer sent again there) is
   * edited there, or each edit was refused and the text sent again as a new message, a copy of the
   * answer at each edit.
   */
  private chatOf(messageId: number): number {
    return this.elsewhere.get(messageId) ?? this.chatId;
  }

  private async edit(messageId: number, html: string, plain: string, extra: SendExtra): Promise<EditResult> {
    const moved = movedLines.get(botOf(this.api))?.get(movedKey(this.chatId, messageId));
    if (moved !== undefined) {
      // Sent outside its topic: the line saying why stays above whatever it now says, cut (if it
      // must be) with a note in the language the line was written in.
      html = fitted(`${escapeHtml(moved.line)}\n\n${html}`, extra.lang ?? moved.lang);
      plain = htmlToPlain(html);
    }
    const chatId = this.chatOf(messageId);
    const common = {
      link_preview_options: { is_disabled: true },
      ...(extra.keyboard ? { reply_markup: extra.keyboard } : {}),
    };
    try {
      if (this.plain.has(messageId)) {
        await this.api.editMessageText(chatId, messageId, plain, common);
        return 'ok';
      }
      try {
        await this.api.editMessageText(chatId, messageId, html, { ...common, parse_mode: 'HTML' });
      } catch (err) {
        if (!isParseError(err)) throw err;
        this.plain.add(messageId);
        await this.api.editMessageText(chatId, messageId, plain, common);
      }
      return 'ok';
    } catch (err) {
      if (isNotModified(err)) return 'ok';
      if (isGone(err)) return 'gone';
      throw err;
    }
  }
}
