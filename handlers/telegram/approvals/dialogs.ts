import {
  type Conversation,
  type ConversationData,
  type ConversationFlavor,
  conversations,
  createConversation,
  type VersionedState,
} from '@grammyjs/conversations';
import { Composer, type Context, InlineKeyboard } from 'grammy';
import { z } from 'zod';
import { formatDuration, type Lang, langOf, t } from '../../../src/i18n.js';
import { PROXY_TAG } from '../../../src/notices.js';
import { shorten } from '../../../src/text.js';
import { waitAtMost } from '../../../src/wait.js';
import { OWN_DATA_PREFIX, ownData } from '../commands/callback-data.js';
import { submitToolRun, type ToolChat } from '../commands/tool-run.js';
import { type CheckOutcome, checkInChat, checkView } from '../commands/upgrade.js';
import { escapeHtml } from '../format/render.js';
import { failureReason } from '../send/failure.js';
import { linesOutput } from '../send/outside-topic.js';
import { type CallRequest, confirmHtml } from '../views/tool.js';

/**
 * Confirmations, as @grammyjs/conversations dialogs: a mutating tool call
 * ("Run `make deploy`?" Confirm / Cancel) and /upgrade (the new commits,
 * Apply / Cancel). Only the user who asked, or an approver, can answer; Cancel
 * or no answer in time runs nothing, and the message says so. An accepted
 * call runs as one of the chat's turns, in the question's own message.
 *
 * Each dialog is keyed by its chat and the id of the message that asked, in
 * its button data too (see dialogKeyOf), so dialogs never share plugin state
 * (updates of one chat are handled in several lanes at once) and a chat can
 * hold several at a time. Telegram never reuses a message id in a chat, so a
 * button left from before a restart names no dialog asked after it; a press
 * counts only on the question's own message.
 * State lives in memory: after a restart an old button says the question is closed.
 */

export type DialogContext = ConversationFlavor<Context>;

/** What an accepted dialog runs. JSON only: the plugin keeps it between updates. */
export type DialogAction = { kind: 'tool'; call: CallRequest } | { kind: 'upgrade' };

export interface DialogRequest {
  /** The message that asked: with the chat, it names the dialog. */
  id: number;
  chatId: number;
  /** The forum topic it was asked in: the question, the run and its result go there. */
  topicId?: number | undefined;
  askerId: number;
  askerName: string;
  lang: Lang;
  /** In a group, the question replies to the message that asked. */
  replyTo?: number | undefined;
  action: DialogAction;
}

/** Button data: `bs:dlg:<message id that asked>:ok|no`. */
const pressSchema = z
  .string()
  .regex(ownData('dlg:\\d{1,15}:(?:ok|no)$'))
  .transform((data) => {
    const [, , id, choice] = data.split(':');
    return { id: Number(id), choice: choice === 'ok' ? ('ok' as const) : ('no' as const) };
  });
export const DIALOG_DATA = ownData('dlg:');

const CONVERSATION = 'confirm';
const keyOf = (chatId: number, id: number) => `dialog:${chatId}:${id}`;

/**
 * The dialog an update belongs to: a press, by its button data; a message, as
 * the one that may open a dialog. It is the dialog's storage key and also a
 * lane of sequentialize (index.ts), so a press waits until the update that
 * opened its dialog is done and the dialog stored.
 */
export function dialogKeyOf(ctx: Context): string | undefined {
  const press = pressSchema.safeParse(ctx.callbackQuery?.data);
  const id = press.success ? press.data.id : ctx.message?.message_id;
  return ctx.chat === undefined || id === undefined ? undefined : keyOf(ctx.chat.id, id);
}

interface Open {
  req: DialogRequest;
  /** The question (the outcome is added below it), its message once Telegram has it, and what a yes runs. */
  question?: { html: string; shown: Promise<number>; run: CallRequest };
  timer?: NodeJS.Timeout;
  /**
   * Why asking failed, as thrown: the plugin rethrows a structured clone of
   * it, which is no GrammyError any more, and the chat is told the reason (see guarded).
   */
  failure?: unknown;
}

const noop = () => undefined;

/** The answer to a press on no open question. */
async function answerClosed(ctx: Context): Promise<void> {
  await ctx
    .answerCallbackQuery({
      text: t(
        langOf(ctx.from?.language_code),
        // It may have closed by this very user's first press (a double tap): never "nothing ran".
        'This question is closed: its message says what happened. Ask again to run it again.',
        'Cette question est close : son message dit ce qui s’est passé. Redemandez pour relancer.',
      ),
      show_alert: true,
    })
    .catch(noop);
}

export class Dialogs {
  /** Dialogs not answered yet; a dialog's plugin state is kept only while it is here. */
  private readonly open = new Map<string, Open>();
  private readonly states = new Map<string, VersionedState<ConversationData>>();

  constructor(
    private readonly chat: ToolChat,
    private readonly opts: { timeoutMs: number; approvers: ReadonlySet<number> },
  ) {}

  /** The plugin, the dialog, and the answer to a button whose dialog is gone (answered, expired, restarted). */
  middleware(): Composer<DialogContext> {
    const composer = new Composer<DialogContext>();
    composer.use(
      conversations<DialogContext, Context>({
        storage: {
          type: 'key',
          getStorageKey: dialogKeyOf,
          adapter: {
            read: (key) => this.states.get(key),
            // A write that comes after the dialog closed (it expired meanwhile) must not bring it back.
            write: (key, state) => {
              if (this.open.has(key)) this.states.set(key, state);
            },
            delete: (key) => {
              this.states.delete(key);
            },
          },
        },
      }),
    );
    composer.use(createConversation<DialogContext, Context>(this.dialog, CONVERSATION));
    composer.callbackQuery(DIALOG_DATA, async (ctx) => {
      await answerClosed(ctx);
      await ctx.editMessageReplyMarkup().catch(noop);
    });
    return composer;
  }

  /** Opens a dialog from the update that asks (a /run, a shortcut word, /upgrade). */
  async start(ctx: DialogContext, req: DialogRequest): Promise<void> {
    const key = keyOf(req.chatId, req.id);
    const open: Open = { req };
    this.open.set(key, open);
    try {
      await ctx.conversation.enter(CONVERSATION, req);
    } catch (err) {
      this.forget(key);
      throw open.failure ?? err;
    }
  }

  /** On shutdown: every open question says that nothing ran, within `graceMs`. */
  async close(graceMs: number): Promise<void> {
    const closing = [...this.open.keys()].map((key) =>
      this.finish(key, (req) =>
        t(
          req.lang,
          '⏹ brainstem is restarting: nothing ran. Ask again once it is back.',
          '⏹ brainstem redémarre : rien n’a été lancé. Redemandez quand il sera revenu.',
        ),
      ),
    );
    await waitAtMost(Promise.allSettled(closing), graceMs);
  }

  /**
   * The conversation: ask once, then wait for presses on this dialog's buttons
   * until one counts. Everything with a side effect runs in `external`, so the
   * plugin's replays never repeat it.
   */
  private readonly dialog = async (
    conversation: Conversation<DialogContext, Context>,
    _ctx: Context,
    req: DialogRequest,
  ): Promise<void> => {
    await conversation.external(() =>
      this.ask(req).catch((err: unknown) => {
        const open = this.open.get(keyOf(req.chatId, req.id));
        if (open) open.failure = err;
        throw err;
      }),
    );
    const buttons = ownData(`dlg:${req.id}:(?:ok|no)$`);
    for (;;) {
      await conversation.waitForCallbackQuery(buttons);
      if (await conversation.external((ctx) => this.answer(req, ctx))) return;
    }
  };

  private async ask(req: DialogRequest): Promise<void> {
    if (req.action.kind === 'tool') {
      // Shown cut to fit one message; a yes runs req.action.call, the whole of it.
      await this.question(req, undefined, confirmHtml(req.action.call, req.lang), req.action.call);
      return;
    }
    // Not awaited: the check waits its turn in the chat's queue, and the chat must not wait with it.
    void checkInChat(this.chat, {
      chatId: req.chatId,
      topicId: req.topicId,
      userId: req.askerId,
      lang: req.lang,
      replyTo: req.replyTo,
    })
      .then((outcome) => this.afterCheck(req, outcome))
      .catch((err: unknown) => this.chat.logger.error({ err, chatId: req.chatId }, 'upgrade dialog failed'));
  }

  private async afterCheck(req: DialogRequest, outcome: CheckOutcome): Promise<void> {
    const key = keyOf(req.chatId, req.id);
    const view = checkView(outcome, req.lang);
    try {
      if (view.apply) {
        await this.question(req, outcome.messageId, view.html, view.apply);
        return;
      }
      this.forget(key);
      await this.put(req, outcome.messageId, view.html);
    } catch (err) {
      // Telegram refused the answer: the dialog closes, and the chat still learns that nothing ran.
      this.chat.logger.error({ err, chatId: req.chatId }, 'upgrade check could not be shown');
      this.forget(key);
      const why = escapeHtml(shorten(failureReason(err, req.lang), 300));
      await this.put(
        req,
        outcome.messageId,
        t(
          req.lang,
          `${PROXY_TAG} ❌ The upgrade check could not be shown (${why}): nothing ran. See the brainstem log.`,
          `${PROXY_TAG} ❌ Le résultat de la vérification n’a pas pu être affiché (${why}) : rien n’a été lancé. Voir le journal de brainstem.`,
        ),
      );
    }
  }

  /** Shows the question with its buttons and starts the clock. */
  private async question(
    req: DialogRequest,
    messageId: number | undefined,
    html: string,
    run: CallRequest,
  ): Promise<void> {
    const key = keyOf(req.chatId, req.id);
    const open = this.open.get(key);
    if (!open) return;
    const [yes, no] =
      req.action.kind === 'upgrade'
        ? [t(req.lang, '⬆️ Apply', '⬆️ Appliquer'), t(req.lang, '✖️ Cancel', '✖️ Annuler')]
        : [t(req.lang, '✅ Confirm', '✅ Confirmer'), t(req.lang, '✖️ Cancel', '✖️ Annuler')];
    const keyboard = new InlineKeyboard()
      .text(yes, `${OWN_DATA_PREFIX}dlg:${req.id}:ok`)
      .text(no, `${OWN_DATA_PREFIX}dlg:${req.id}:no`);
    // Recorded before Telegram answers: a press can come as soon as the buttons are there.
    open.question = { html, shown: this.put(req, messageId, html, keyboard), run };
    open.timer = setTimeout(() => {
      void this.finish(key, (r) =>
        t(
          r.lang,
          `⌛ No answer within ${formatDuration(this.opts.timeoutMs)}: nothing ran.`,
          `⌛ Pas de réponse en ${formatDuration(this.opts.timeoutMs)} : rien n’a été lancé.`,
        ),
      ).catch((err: unknown) =>
        this.chat.logger.warn({ err, chatId: req.chatId }, 'could not close a question'),
      );
    }, this.opts.timeoutMs);
    await open.question.shown;
  }

  /** A press on this dialog's buttons; true when the dialog is over. */
  private async answer(req: DialogRequest, ctx: DialogContext): Promise<boolean> {
    const press = pressSchema.safeParse(ctx.callbackQuery?.data);
    const from = ctx.from;
    if (!press.success || !from) return false;
    // A toast is the presser's (an approver answering for someone else reads theirs); the
    // question's message stays in the chat's language, the asker's.
    const lang = langOf(from.language_code);
    if (from.id !== req.askerId && !this.opts.approvers.has(from.id)) {
      await ctx
        .answerCallbackQuery({
          text: t(
            lang,
            `Only ${req.askerName}, who asked, or an approver can answer this.`,
            `Seul ${req.askerName}, qui a demandé, ou un approbateur peut répondre.`,
          ),
          show_alert: true,
        })
        .catch(noop);
      return false;
    }
    const key = keyOf(req.chatId, req.id);
    const open = this.open.get(key);
    const question = open?.question;
    const messageId = await question?.shown.catch(() => undefined);
    // Button data alone names the dialog; a client can send it from any message, as a press on no question.
    if (messageId !== undefined && ctx.callbackQuery?.message?.message_id !== messageId) {
      await answerClosed(ctx);
      return false;
    }
    if (!open || !question || messageId === undefined || this.open.get(key) !== open) {
      await ctx
        .answerCallbackQuery({
          text: t(lang, 'Too late: nothing ran.', 'Trop tard : rien n’a été lancé.'),
        })
        .catch(noop);
      return true;
    }
    // Closed before anything is awaited, so the clock cannot close it a second time.
    this.forget(key);
    if (press.data.choice === 'no') {
      const by = from.id === req.askerId ? '' : ` (${from.first_name})`;
      await ctx.answerCallbackQuery({ text: t(lang, 'Cancelled', 'Annulé') }).catch(noop);
      await this.conclude(
        open,
        t(req.lang, `✖️ Cancelled${by}: nothing ran.`, `✖️ Annulé${by} : rien n’a été lancé.`),
      );
      return true;
    }
    await ctx.answerCallbackQuery({ text: t(lang, 'Running…', 'C’est parti…') }).catch(noop);
    submitToolRun(this.chat, {
      chatId: req.chatId,
      topicId: req.topicId,
      userId: req.askerId,
      lang: req.lang,
      call: question.run,
      messageId,
      replyTo: req.replyTo,
    });
    return true;
  }

  /** Closes the dialog, if still open, with `outcome` in its language. */
  private async finish(key: string, outcome: (req: DialogRequest) => string): Promise<void> {
    const open = this.forget(key);
    if (open) await this.conclude(open, outcome(open.req));
  }

  /** Shows the question with `outcome` below it, buttons gone. */
  private async conclude(open: Open, outcome: string): Promise<void> {
    if (!open.question) return;
    const { html, shown } = open.question;
    await this.put(open.req, await shown, `${html}\n\n<b>${escapeHtml(outcome)}</b>`);
  }

  /** Forgets an open dialog and its state; returns it if it was still open. */
  private forget(key: string): Open | undefined {
    const open = this.open.get(key);
    if (!open) return undefined;
    clearTimeout(open.timer);
    this.open.delete(key);
    this.states.delete(key);
    return open;
  }

  /** Edits `messageId` into `html` (sending it when there is none, or it is gone); returns the message shown. */
  private async put(
    req: DialogRequest,
    messageId: number | undefined,
    html: string,
    keyboard?: InlineKeyboard,
  ): Promise<number> {
    // In a topic closed or deleted since it was asked, the question comes outside it, saying why, with
    // its buttons (a press finds it by chat and message); its later edits there keep that line.
    const out = linesOutput(this.chat.api, req.chatId, req.topicId, req.lang);
    const extra = keyboard ? { keyboard } : {};
    if (messageId !== undefined && (await out.editHtml(messageId, html, extra)) === 'ok') return messageId;
    return out.sendHtml(html, { ...extra, ...(req.replyTo ? { replyTo: req.replyTo } : {}) });
  }
}
