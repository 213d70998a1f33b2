import { randomBytes } from 'node:crypto';
import { type Api, Composer, type Context, GrammyError, type InlineKeyboard } from 'grammy';
import type { MaybeInaccessibleMessage } from 'grammy/types';
import {
  type ApprovalDecision,
  ApprovalQuestionGone,
  type ApprovalRequest,
  type Approver,
} from '../../../brains/types.js';
import { type Lang, langOf, t } from '../../../src/i18n.js';
import type { Logger } from '../../../src/logger.js';
import { waitAtMost } from '../../../src/wait.js';
import { ChatOutput } from '../send/output.js';
import { sendHtmlOrOutside } from '../send/outside-topic.js';
import {
  APPROVAL_DATA,
  askedOfApprovers,
  type Choice,
  closedHtml,
  decidedText,
  pressSchema,
  promptHtml,
  promptKeyboard,
  type Unanswered,
  unansweredText,
} from './view.js';

interface Open {
  req: ApprovalRequest;
  lang: Lang;
  /** The question in each chat it was asked in (as shown there: see Card), once Telegram has it. */
  cards: Card[];
  /** Hands the decision to the brain. */
  settle(decision: ApprovalDecision): void;
  /** Tells the brain the question can no longer be answered anywhere (see check). */
  fail(err: ApprovalQuestionGone): void;
  /** The check of the question's messages under way, if one is (see check). */
  checking?: Promise<void> | undefined;
}

/** A copy of the question: its message, once Telegram has it, and its text as shown there. */
interface Card {
  /** Its chat: the one asked in, or the supergroup it went to once shown (see card). */
  chatId: number;
  /** The question, under the line saying why when it came outside its forum topic (once `shown`). */
  html: string;
  shown: Promise<number>;
  /** With the buttons: an approver can answer it (while it is there). */
  buttons: boolean;
  /** Its message, once Telegram has it. */
  messageId?: number;
  /**
   * Nobody can press it any more: found deleted (by hand, or with its forum topic), its chat shut
   * to the bot (the approver blocked it, the group removed it, the chat is no more), or its group
   * upgraded to a supergroup (asked again there: see check).
   */
  gone?: 'deleted' | 'shut' | 'moved';
}

/** A chat a question is asked in: with the buttons, or (the asker's, who cannot answer) without. */
interface Target {
  chatId: number;
  topicId?: number | undefined;
  html: string;
  buttons?: boolean;
}

const noop = () => undefined;

/**
 * Tool approvals asked in Telegram: a question with "Allow once", "Allow for
 * this session" and "Deny" buttons, in the chat whose turn asks, or in every
 * notify chat for a turn from elsewhere (the OpenAI endpoint), where the first
 * answer wins and every copy shows it. Only approvers can answer; anyone else
 * is told so and nothing changes. A question the brain stops waiting for
 * (timeout, turn stopped) says why. State lives in memory: after a restart an
 * old button says the question is closed (its question may never have been
 * closed: a crash, or Telegram refusing the "restarting" edit).
 */
export class ApprovalPrompts {
  /** This run's part of every prompt id: the count restarts at 1 with each start, this does not. */
  private readonly run = randomBytes(4).toString('hex');
  private nextId = 1;
  private readonly open = new Map<string, Open>();

  constructor(
    private readonly o: {
      api: Api;
      approvers: ReadonlySet<number>;
      /** config.claude.approvalTimeoutMs: the brain denies at this limit; the question says so. */
      timeoutMs: number;
      /** config.telegram.questionCheckMs: how often an open question is checked to be still there. */
      checkEveryMs: number;
      logger: Logger;
    },
  ) {}

  /**
   * The approver of a chat's own turns: asks in that chat (in the turn's forum topic, if it has
   * one). The private chat of someone who is not an approver is one no approver sees: there the
   * question comes without buttons, saying who can answer, and is asked of each approver in their
   * own chat with the bot, naming the conversation; the first answer wins.
   */
  forChat(chatId: number, lang: Lang, topicId?: number): Approver {
    if (chatId < 0 || this.o.approvers.has(chatId)) {
      return (req, signal) =>
        this.ask(req, [{ chatId, topicId, html: promptHtml(req, lang, false), buttons: true }], lang, signal);
    }
    return (req, signal) => {
      const question = promptHtml(req, lang, true);
      const elsewhere = [...this.o.approvers].map((id) => ({ chatId: id, html: question, buttons: true }));
      const here = { chatId, topicId, html: promptHtml(req, lang, false, askedOfApprovers(lang)) };
      return this.ask(req, [here, ...elsewhere], lang, signal);
    };
  }

  /** The approver of turns from elsewhere: asks in every one of `chats`, naming the conversation. */
  forChats(chats: readonly number[], lang: () => Lang): Approver {
    return (req, signal) => {
      const html = promptHtml(req, lang(), true);
      return this.ask(
        req,
        chats.map((chatId) => ({ chatId, html, buttons: true })),
        lang(),
        signal,
      );
    };
  }

  /** Answers the presses on approval buttons. */
  middleware(): Composer<Context> {
    const composer = new Composer<Context>();
    composer.callbackQuery(APPROVAL_DATA, (ctx) => this.press(ctx));
    return composer;
  }

  /** On shutdown: nobody can answer any more, and every open question says so (within `graceMs`). */
  async close(graceMs: number): Promise<void> {
    const closing = [...this.open.entries()].map(([id, prompt]) => {
      // Not settled: the brain's own clock, or the end of the turn, still decides what it reports.
      this.open.delete(id);
      return this.showOutcome(prompt, unansweredText('restarting', this.o.timeoutMs, prompt.lang));
    });
    await waitAtMost(Promise.allSettled(closing), graceMs);
  }

  /** Sends the question to `target`: a copy of it (see Card). */
  private card({ chatId, topicId, html, buttons }: Target, keyboard: InlineKeyboard, lang: Lang): Card {
    // A forum topic closed or deleted refuses the question: it comes, with its buttons, to the group
    // outside the topic, saying why, where an approver can still answer (the turn's answer comes
    // there too), rather than denied as if no approver could be asked.
    const sent = sendHtmlOrOutside(
      new ChatOutput(this.o.api, chatId, topicId),
      html,
      lang,
      buttons ? { keyboard } : {},
    );
    const card: Card = {
      chatId,
      html,
      buttons: buttons === true,
      shown: sent.then((s) => {
        card.html = s.html;
        card.messageId = s.messageId;
        // Asked in a group just upgraded (the turn began there), the question went to the supergroup:
        // its checks, its closing edit and the presses on it are there, or the checks would find it
        // 'moved' and ask it a second time, and its first copy's buttons would answer nothing.
        card.chatId = s.chatId;
        return s.messageId;
      }),
    };
    return card;
  }

  private ask(
    req: ApprovalRequest,
    targets: Target[],
    lang: Lang,
    signal: AbortSignal,
  ): Promise<ApprovalDecision> {
    const id = `${this.run}-${this.nextId++}`;
    const keyboard = promptKeyboard(id, lang);
    return new Promise<ApprovalDecision>((resolve, reject) => {
      let checks: NodeJS.Timeout | undefined;
      const onAbort = () => {
        // The brain says why (ApprovalWithdrawn): its clock started before this question was shown.
        const why: Unanswered = signal.reason === 'timeout' ? 'timeout' : 'stopped';
        // Nobody reads this decision any more: the brain reports the timeout or the stop itself.
        this.conclude(id, { behavior: 'deny', message: why }, unansweredText(why, this.o.timeoutMs, lang));
      };
      const prompt: Open = {
        req,
        lang,
        cards: targets.map((target) => this.card(target, keyboard, lang)),
        settle: (decision) => {
          clearInterval(checks);
          signal.removeEventListener('abort', onAbort);
          resolve(decision);
        },
        fail: (err) => {
          clearInterval(checks);
          signal.removeEventListener('abort', onAbort);
          reject(err);
        },
      };
      // Recorded before Telegram answers: a press can come as soon as the buttons are there.
      this.open.set(id, prompt);
      signal.addEventListener('abort', onAbort, { once: true });
      checks = setInterval(() => {
        // Closed without a decision (a restart's close): nothing left to check.
        if (this.open.get(id) === prompt) void this.check(id, prompt, keyboard);
        else clearInterval(checks);
      }, this.o.checkEveryMs);
      checks.unref();
      void Promise.allSettled(prompt.cards.map((c) => c.shown)).then((results) => {
        const refused = results.flatMap((r, i) =>
          r.status === 'rejected' ? [{ chatId: targets[i]?.chatId, err: r.reason as unknown }] : [],
        );
        for (const r of refused) {
          this.o.logger.warn(
            { err: r.err, chatId: r.chatId, tool: req.tool },
            'approval question not delivered',
          );
        }
        // Asked of nobody who can answer: the brain denies and tells the user the question could
        // not be asked (an approver who never opened a chat with the bot cannot be written to).
        const answerable = results.filter((r, i) => targets[i]?.buttons && r.status === 'fulfilled');
        if (answerable.length === 0 && this.open.get(id) === prompt) {
          this.open.delete(id);
          clearInterval(checks);
          signal.removeEventListener('abort', onAbort);
          reject(refused[0]?.err ?? new Error('no approver could be asked'));
          // A copy that did arrive (the asker's, without buttons) would wait for an answer for ever.
          void this.showOutcome(prompt, unansweredText('unreachable', this.o.timeoutMs, lang));
        }
      });
    });
  }

  private async press(ctx: Context): Promise<void> {
    const from = ctx.from;
    if (!from) {
      await ctx.answerCallbackQuery().catch(noop);
      return;
    }
    const press = pressSchema.safeParse(ctx.callbackQuery?.data);
    const lang = langOf(from.language_code);
    const prompt = press.success ? this.open.get(press.data.id) : undefined;
    if (!this.o.approvers.has(from.id)) {
      this.o.logger.warn(
        { userId: from.id, chatId: ctx.chat?.id, tool: prompt?.req.tool },
        'refused an approval press from a user who is not an approver',
      );
      await ctx
        .answerCallbackQuery({
          text: t(
            lang,
            'Only an approver can answer this; nothing changed.',
            'Seul un approbateur peut répondre ; rien n’a changé.',
          ),
          show_alert: true,
        })
        .catch(noop);
      return;
    }
    // The button data alone is not enough: it may be made up, or come from before a restart.
    const asked = prompt && (await isOneOf(prompt, ctx.callbackQuery?.message));
    if (!press.success || !prompt || !asked || this.open.get(press.data.id) !== prompt) {
      await ctx
        .answerCallbackQuery({
          text: t(lang, 'This question is closed.', 'Cette question est close.'),
          show_alert: true,
        })
        .catch(noop);
      // Its buttons go, unless the message pressed is another question still open (a modified client
      // can send one question's data from another's message): that one must stay answerable.
      if (!(await this.isOpenQuestion(ctx.callbackQuery?.message)))
        await ctx.editMessageReplyMarkup().catch(noop);
      return;
    }
    const { choice } = press.data;
    const by = from.first_name;
    this.o.logger.info({ userId: from.id, tool: prompt.req.tool, choice }, 'tool approval answered');
    this.conclude(press.data.id, decisionOf(choice, prompt.req, by), decidedText(choice, by, prompt.lang));
    await ctx.answerCallbackQuery({ text: decidedText(choice, by, lang) }).catch(noop);
  }

  /**
   * Whether the question's copies with buttons are still there. Telegram tells the bot nothing of a
   * message deleted, by hand or with its forum topic (a closed topic keeps it, and its buttons still
   * answer): without this the turn waited out approvalTimeoutMs for an answer nobody could give. An
   * edit that changes nothing is refused as "not modified" while the message is there, "not found"
   * once it is gone. When none is left, the brain denies at once and tells the user why (the answer
   * goes outside a deleted topic, saying so, as any message does).
   */
  private async check(id: string, prompt: Open, keyboard: InlineKeyboard): Promise<void> {
    if (this.open.get(id) !== prompt || prompt.checking) return;
    prompt.checking = (async () => {
      for (const card of [...prompt.cards]) {
        if (!card.buttons || card.gone || card.messageId === undefined) continue;
        if (this.open.get(id) !== prompt) return;
        const refused = await this.o.api
          .editMessageReplyMarkup(card.chatId, card.messageId, { reply_markup: keyboard })
          .then(
            () => undefined,
            (err: unknown) => err,
          );
        if (refused === undefined) continue;
        const to = upgradedTo(refused);
        if (to === undefined) {
          card.gone = goneBy(refused);
          continue;
        }
        // Its group became a supergroup (a new chat id): the old chat takes no edits nor presses, and
        // the turn goes on in the supergroup. Asked again there, where an approver can answer it,
        // rather than waiting out claude.approvalTimeoutMs (a basic group has no topics).
        card.gone = 'moved';
        const again = this.card({ chatId: to, html: card.html, buttons: true }, keyboard, prompt.lang);
        prompt.cards.push(again);
        await again.shown.catch((err: unknown) =>
          this.o.logger.warn(
            { err, chatId: to, tool: prompt.req.tool },
            'approval question not delivered to the supergroup its group became',
          ),
        );
      }
    })();
    try {
      await prompt.checking;
    } finally {
      prompt.checking = undefined;
    }
    // Only copies Telegram took can be pressed; one it refused was dealt with when it was sent.
    const left = prompt.cards.filter((c) => c.buttons && !c.gone && c.messageId !== undefined);
    if (left.length > 0 || !prompt.cards.some((c) => c.gone) || this.open.get(id) !== prompt) return;
    this.open.delete(id);
    // A question its group's supergroup did not take either is out of reach as a shut chat's.
    const shut = prompt.cards.some((c) => c.gone === 'shut' || c.gone === 'moved');
    this.o.logger.warn(
      { tool: prompt.req.tool },
      shut
        ? 'approval question out of the approvers’ reach in Telegram: denied'
        : 'approval question deleted in Telegram: denied',
    );
    prompt.fail(
      shut
        ? new ApprovalQuestionGone(
            'Telegram no longer lets the bot into the chat it was asked in: the bot was blocked or removed there, or its question deleted',
            'Telegram ne laisse plus le bot entrer dans la discussion où elle a été posée : le bot y a été bloqué ou retiré, ou sa question supprimée',
          )
        : new ApprovalQuestionGone(
            'its question was deleted in Telegram, by hand or with its forum topic',
            'sa question a été supprimée dans Telegram, à la main ou avec son sujet de forum',
          ),
    );
    // A copy still there (the asker's, without buttons) must not go on waiting for an answer.
    void this.showOutcome(prompt, unansweredText(shut ? 'shut' : 'deleted', this.o.timeoutMs, prompt.lang));
  }

  /** Whether `message` is a copy of any question still open. */
  private async isOpenQuestion(message: MaybeInaccessibleMessage | undefined): Promise<boolean> {
    for (const prompt of this.open.values()) if (await isOneOf(prompt, message)) return true;
    return false;
  }

  /** Closes a question still open (the first answer wins): the brain gets `decision`, every copy shows `outcome`. */
  private conclude(id: string, decision: ApprovalDecision, outcome: string): void {
    const prompt = this.open.get(id);
    if (!prompt) return;
    this.open.delete(id);
    prompt.settle(decision);
    void this.showOutcome(prompt, outcome);
  }

  /** Every copy of the question shows `outcome`, its buttons gone. */
  private async showOutcome(prompt: Open, outcome: string): Promise<void> {
    // A check under way puts the buttons back as they were: the outcome comes after it, not under it.
    await prompt.checking;
    await Promise.all(
      prompt.cards.map(async (card) => {
        const messageId = await card.shown.catch(() => undefined);
        if (messageId === undefined || card.gone) return;
        // Read once shown: its chat (a group's question may have landed in its supergroup, see card),
        // and the question as it came, outside its topic or not.
        const { chatId } = card;
        await new ChatOutput(this.o.api, chatId)
          .editHtml(messageId, closedHtml(card.html, outcome, prompt.lang), { lang: prompt.lang })
          .catch((err: unknown) =>
            this.o.logger.warn({ err, chatId }, 'could not show the outcome of an approval question'),
          );
      }),
    );
  }
}

/** Whether `message` (the one whose button was pressed) is one of the prompt's own questions. */
async function isOneOf(prompt: Open, message: MaybeInaccessibleMessage | undefined): Promise<boolean> {
  if (!message) return false;
  // Each card's chat read once shown: a group's question may have landed in its supergroup (see card),
  // and a press there can come before Telegram's answer to its sending.
  const ids = await Promise.all(
    prompt.cards.map(async (card) => {
      const messageId = await card.shown.catch(() => undefined);
      return card.chatId === message.chat.id ? messageId : undefined;
    }),
  );
  return ids.includes(message.message_id);
}

function decisionOf(choice: Choice, req: ApprovalRequest, by: string): ApprovalDecision {
  if (choice === 'deny')
    return { behavior: 'deny', message: `Permission to use ${req.tool} was denied by ${by} in Telegram.` };
  return { behavior: 'allow', scope: choice };
}

/**
 * What the refusal of a check's edit says of the question: deleted ("message to edit not found"), or
 * its chat shut to the bot (403: blocked by the approver, removed from the group; 400 "chat not
 * found"), where nobody can press it either. Anything else (a 429, the network) says nothing of
 * the message: it is asked again at the next check.
 */
function goneBy(err: unknown): 'deleted' | 'shut' | undefined {
  if (!(err instanceof GrammyError)) return undefined;
  if (/message to edit not found/i.test(err.description)) return 'deleted';
  if (err.error_code === 403 || /chat not found/i.test(err.description)) return 'shut';
  return undefined;
}

/** Telegram's refusal of a call naming a group upgraded to a supergroup: the supergroup's id. */
function upgradedTo(err: unknown): number | undefined {
  if (!(err instanceof GrammyError)) return undefined;
  const to = err.parameters.migrate_to_chat_id;
  return typeof to === 'number' ? to : undefined;
}
