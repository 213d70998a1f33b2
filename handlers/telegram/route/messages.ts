import type { Bot, Context } from 'grammy';
import type { Message } from 'grammy/types';
import { html } from '../../../src/html.js';
import { type Lang, langOf, t } from '../../../src/i18n.js';
import type { ImageData } from '../../../src/images.js';
import { PROXY_TAG } from '../../../src/notices.js';
import { adoptOldOutbox } from '../../../src/outbox.js';
import { telegramSessionKey } from '../../../src/session-keys.js';
import { shorten } from '../../../src/text.js';
import { isForwarded } from '../commands/handler.js';
import type { BotDeps } from '../deps.js';
import { ChatOutput } from '../send/output.js';
import { sendHtmlOrOutside } from '../send/outside-topic.js';
import { answerTurn, switchWaitLine } from '../stream/answer.js';
import { formerChat } from './former-chat.js';
import { answerIntent } from './intents.js';
import { fetchFailureText, saveTelegramFile } from './media.js';
import { deliverOutbox, turnOutbox } from './outbox.js';
import { repliedImage } from './replied-image.js';
import { withEditNote, withForwardNote, withReplyContext } from './reply.js';
import { outputFor, topicOfCtx, topicTurnKey } from './topic.js';

/**
 * Message kinds that get a "not supported" reply: every kind of content the
 * Bot API has ("Message is …") that no handler before takes, so no user waits
 * for an answer that never comes. Service messages (joins, pins) get none.
 * The French name carries its gender: the participle agrees with it ("prises" for les vidéos).
 */
const UNSUPPORTED: Partial<Record<keyof Message, [string, string, 'm' | 'f']>> = {
  video: ['Videos', 'Les vidéos', 'f'],
  animation: ['GIFs', 'Les GIF', 'm'],
  sticker: ['Stickers', 'Les autocollants', 'm'],
  venue: ['Venues', 'Les lieux', 'm'],
  location: ['Locations', 'Les positions', 'f'],
  contact: ['Contacts', 'Les contacts', 'm'],
  poll: ['Polls', 'Les sondages', 'm'],
  dice: ['Dice', 'Les dés', 'm'],
  story: ['Forwarded stories', 'Les stories transférées', 'f'],
  paid_media: ['Paid media', 'Les médias payants', 'm'],
  rich_message: ['Rich messages', 'Les messages enrichis', 'm'],
  checklist: ['Checklists', 'Les listes de tâches', 'f'],
  game: ['Games', 'Les jeux', 'm'],
  invoice: ['Invoices', 'Les factures', 'f'],
  giveaway: ['Giveaways', 'Les concours', 'm'],
  giveaway_winners: ['Giveaway results', 'Les résultats de concours', 'm'],
};

/** A forwarded text goes to the brain as it is (see isForwarded); registered before the commands, intents and shortcut words. */
export function registerForwarded(bot: Bot, deps: BotDeps): void {
  bot.on('message:text').filter(
    (ctx) => isForwarded(ctx.message),
    (ctx) => submitTurn(deps, ctx, ctx.message.text, langOf(ctx.from.language_code)),
  );
}

export function registerMessages(bot: Bot, deps: BotDeps): void {
  bot.on('message:text', async (ctx) => {
    // In a group, a command meant for another bot is not ours to relay.
    const addressee = /^\/\w+@(\w+)/.exec(ctx.message.text)?.[1];
    if (addressee && addressee.toLowerCase() !== ctx.me.username.toLowerCase()) return;
    const lang = langOf(ctx.from.language_code);
    if (await answerIntent(deps, outputFor(ctx), ctx.message.text, ctx.from.id, lang)) return;
    submitTurn(deps, ctx, ctx.message.text, lang);
  });

  bot.on('message', async (ctx) => {
    const lang = langOf(ctx.from.language_code);
    const text = unsupportedText(ctx.message, lang);
    // In a forum topic closed since (an admin still writes there), to the group outside it, saying why.
    if (text) await outputFor(ctx).sendHtml(text, { lang });
  });
}

/**
 * The "not supported" reply to a message of a kind no handler takes; undefined for any other.
 * `inAlbum`: the message is a part of an album whose other parts go to the brain without it.
 */
export function unsupportedText(
  message: Message,
  lang: Lang,
  inAlbum = message.media_group_id !== undefined,
): string | undefined {
  const kind = (Object.keys(UNSUPPORTED) as (keyof Message)[]).find((k) => message[k] !== undefined);
  const names = kind ? UNSUPPORTED[kind] : undefined;
  if (!names) return undefined;
  // An album's caption rides on its first item: if that one is refused, its words must not vanish.
  const caption = inAlbum ? message.caption?.trim() : undefined;
  const lost = caption
    ? t(
        lang,
        html` Its caption (“${shorten(caption, 200)}”) did not go with the rest of the album: send it as a message.`,
        html` Sa légende (« ${shorten(caption, 200)} ») n’est pas partie avec le reste de l’album : envoyez-la en message.`,
      )
    : '';
  return t(
    lang,
    `${PROXY_TAG} ${names[0]} are not supported: please send text, a photo or a document.${lost}`,
    `${PROXY_TAG} ${names[1]} ne sont pas ${names[2] === 'f' ? 'prises' : 'pris'} en charge : envoyez du texte, une photo ou un document.${lost}`,
  );
}

/** Downloads a file the user sent; on failure tells them why and returns undefined. */
export async function save(
  deps: BotDeps,
  ctx: Context,
  file: { fileId: string; name: string; size: number | undefined },
  lang: Lang,
): Promise<string | undefined> {
  const chatId = ctx.chat?.id ?? 0;
  try {
    const saved = await saveTelegramFile({
      api: ctx.api,
      token: deps.token,
      apiRoot: deps.apiRoot,
      dataDir: deps.core.config.dataDir,
      // A supergroup's files go where the group's went (former-chat.ts).
      chatId: formerChat(deps.core.kv, chatId),
      ...file,
    });
    deps.logger.info({ chatId, path: saved.path, size: saved.size }, 'saved a file from Telegram');
    return saved.path;
  } catch (err) {
    deps.logger.warn({ err: (err as Error).message, chatId }, 'could not save a file from Telegram');
    // Telegram refusing the notice must not take the turn, and the other files sent with this one, with it.
    // In a forum topic closed since, it comes to the group outside it, saying why.
    await outputFor(ctx)
      .sendHtml(fetchFailureText(file.name, err, lang), { lang })
      .catch((e: unknown) => deps.logger.warn({ err: e, chatId }, 'could not say that a file was not saved'));
    return undefined;
  }
}

/** What a turn says, and the photos sent with it (a photo, an album, an image document) for the brain to see. */
export interface TurnContent {
  text: string;
  images?: ImageData[];
}

/** What a turn's job is given once the turn's turn comes. */
export interface TurnStart {
  signal: AbortSignal;
  out: ChatOutput;
  /** The message's caption as it now reads, when the job reads it (submitTurn's `readsCaption`): an edit made while the turn waited is taken. */
  caption: string | undefined;
  /** The message as it now reads, likewise: its file replaced while the turn waited (submitTurn's `readsFile`). */
  message: Message | undefined;
  /**
   * The "queued" notice, when the turn waited, for a job that shows something
   * before the answer (what a recording said): the job turns the notice into
   * that, and the answer follows in a message of its own, below it.
   */
  takeQueuedNotice(): number | undefined;
  /**
   * Shows what the turn waits for before its text can be made (a mode switch, for documents whose
   * notes depend on the mode), where the answer will come: in the "queued" notice when the turn
   * waited, else in a message of its own, which the answer then takes over as it does that notice.
   * In a forum topic closed meanwhile: outside it, saying why, removed once the turn ends.
   */
  showWaiting(html: string): Promise<void>;
}

/**
 * What a turn says: its text, or how to get it once the turn's turn comes (a
 * voice note is transcribed then, photos downloaded; undefined when that
 * failed and the user was told why).
 */
export type TurnText = string | ((turn: TurnStart) => Promise<TurnContent | undefined>);

/**
 * Queues a turn for the chat (or its forum topic): answered in order, "queued"
 * shown when it has to wait. `readsCaption`: a job that takes the message's
 * caption from `TurnStart.caption`, so the caption waits in deps.queued like a
 * text and an edit of it before the turn begins is what the turn answers.
 * `readsFile`: the files such a job reads from `TurnStart.message`, so a file
 * of these replaced before the turn begins is the one answered (the others
 * leave the message out of the turn: see QueuedMessages.replaceFile).
 * `onStop`: called once the turn is stopped (/stop, a restart), at once.
 */
export function submitTurn(
  deps: BotDeps,
  ctx: Context,
  turnText: TurnText,
  lang: Lang,
  opts: { readsCaption?: boolean; readsFile?: (m: Message) => boolean; onStop?: () => void } = {},
): void {
  const chatId = ctx.chat?.id;
  const userId = ctx.from?.id;
  // An edited message is a turn too (see edits.ts): answered, and replied to, as the message it is.
  const message = ctx.message ?? ctx.editedMessage;
  const messageId = message?.message_id;
  if (chatId === undefined || userId === undefined) return;
  const topicId = topicOfCtx(ctx);
  const out = new ChatOutput(ctx.api, chatId, topicId);
  const key = topicTurnKey(chatId, topicId);
  if (deps.turns.stopsAhead(key, ctx.update.update_id)) {
    // The /stop sent right after it already said nothing was running: this says what it stopped
    // (in a forum topic closed since, to the group outside it, saying why).
    void sendHtmlOrOutside(
      out,
      t(
        lang,
        `${PROXY_TAG} ⏹ Not answered: the /stop sent after this message stopped it.`,
        `${PROXY_TAG} ⏹ Pas de réponse : le /stop envoyé après ce message l’a arrêté.`,
      ),
      lang,
      messageId ? { replyTo: messageId } : {},
    ).catch((err: unknown) => deps.logger.warn({ err, chatId }, 'could not say a message was stopped'));
    opts.onStop?.();
    return;
  }
  const { config } = deps.core;
  const outbox = (earlier: boolean) =>
    deliverOutbox({
      out,
      dataDir: config.dataDir,
      dir: turnOutbox(deps.core, chatId, topicId),
      lang,
      logger: deps.logger,
      earlier,
    });
  // A message's own text (or caption) waits under its id: an edit made before its turn begins changes what is answered.
  const own = message?.text ?? message?.caption;
  const holds = typeof turnText === 'string' ? turnText === own : opts.readsCaption === true;
  const latest = message && holds ? deps.queued.hold(message, opts.readsFile) : undefined;
  // From now until the job ends: a crash meanwhile is told to the chat at the next start (cut-turns.ts).
  const underWay = deps.underWay.begin({ chatId, topicId, kind: 'answer', lang, said: own ?? '' });
  deps.turns.submit<number>(
    key,
    async (signal, queuedMessageId) => {
      /** The wait line (showWaiting) its forum topic refused, sent outside it: removed once the turn ends. */
      let waitOutside: number | undefined;
      try {
        const { onStop } = opts;
        if (onStop && signal.aborted) onStop();
        else if (onStop) signal.addEventListener('abort', onStop, { once: true });
        const now = latest?.release();
        const words = now && (now.text ?? now.caption ?? '');
        // Files a brainstem stopped mid-delivery left behind. Here, not at start-up: the folder's name
        // does not give its chat back (a hash), and the chat's language is known only from a message.
        await adoptOldOutbox(config.dataDir, telegramSessionKey(chatId, topicId)).catch((err: unknown) =>
          deps.logger.warn({ err: (err as Error).message }, 'an outbox from before its new name stays'),
        );
        await outbox(true);
        // The files of an earlier answer just sent came after the "queued" notice too.
        deps.turns.shown(key, out.newestMessageId);
        // The answer goes into the "queued" notice unless the job has shown something in it, or the
        // notice came before what the chat's earlier turns showed (messages sent one right after the
        // other, answered below the notice): the answer there would read above the answers it follows.
        let queued = queuedMessageId;
        if (queued !== undefined && deps.turns.isAboveShown(key, queued)) {
          await out
            .deleteMessage(queued)
            .catch((err: unknown) => deps.logger.warn({ err, chatId }, 'could not remove the queued notice'));
          queued = undefined;
        }
        const takeQueuedNotice = () => {
          const id = queued;
          queued = undefined;
          return id;
        };
        const showWaiting = async (line: string) => {
          try {
            if (waitOutside !== undefined) return;
            if (queued !== undefined && (await out.editHtml(queued, line)) === 'ok') return;
            // In a forum topic closed meanwhile (an admin still writes there), the line comes to the group
            // outside it, saying why. The answer is not written into it there (it would take the place of
            // the line saying why, and its next parts would go to the topic): the answer comes outside
            // with a line of its own, and this one is removed then, as the answer would have replaced it.
            const sent = await sendHtmlOrOutside(out, line, lang, messageId ? { replyTo: messageId } : {});
            queued = sent.outside ? undefined : sent.messageId;
            if (sent.outside) waitOutside = sent.messageId;
          } catch (err) {
            deps.logger.warn({ err, chatId }, 'could not show what the turn waits for');
          }
        };
        const said =
          typeof turnText === 'string'
            ? { text: words ?? turnText }
            : await turnText({
                signal,
                out,
                caption: words ?? message?.caption,
                message: now ?? message,
                takeQueuedNotice,
                showWaiting,
              });
        if (said === undefined) {
          // Nothing to answer (the job told the user why, or the turn was stopped): a notice that promised
          // an answer, the "queued" one or a wait line, must not stay behind saying one will come.
          if (queued !== undefined)
            await out
              .deleteMessage(queued)
              .catch((err: unknown) =>
                deps.logger.warn({ err, chatId }, 'could not remove the queued notice'),
              );
          return;
        }
        const waiting = () => showWaiting(switchWaitLine(lang, 'html'));
        const replied = message && (await repliedImage(deps, message, ctx.api, { signal, waiting }));
        const images = replied ? [...(said.images ?? []), replied] : said.images;
        const text = withReplyContext(
          withForwardNote(withEditNote(said.text, ctx.editedMessage), message),
          message,
        );
        await answerTurn(out, { chatId, topicId, userId, text, images, lang }, signal, {
          route: deps.route,
          streaming: config.telegram.streaming,
          intervalMs: config.telegram.editIntervalMs,
          paces: deps.paces,
          logger: deps.logger,
          queuedMessageId: queued,
          // In a group several people talk: the answer says whom it answers.
          replyTo: chatId < 0 ? messageId : undefined,
          onFinal: () => deps.underWay.delivering(underWay),
        });
        // The answer is there (or the chat was told it did not come): a crash now must not say it will
        // not come. The outbox's files, if one cuts them, go with the chat's next answer (outbox.ts).
        deps.underWay.end(underWay);
        await outbox(false);
      } finally {
        if (waitOutside !== undefined)
          await out
            .deleteMessage(waitOutside)
            .catch((err: unknown) =>
              deps.logger.warn({ err, chatId }, 'could not remove the line saying what the turn waited for'),
            );
        deps.turns.shown(key, out.newestMessageId);
        deps.underWay.end(underWay);
      }
    },
    async () => {
      // In a forum topic closed meanwhile (an admin still writes there), the notice comes to the group
      // outside it, saying why; the answer is not written into it there (it goes to the topic first,
      // and outside only if refused there, with a line of its own), so it is not the turn's message.
      const queued = await sendHtmlOrOutside(
        out,
        t(
          lang,
          `${PROXY_TAG} ⏳ Queued: I will answer once the current answer is done (/stop interrupts it).`,
          `${PROXY_TAG} ⏳ En attente : je réponds dès que la réponse en cours est finie (/stop pour l’interrompre).`,
        ),
        lang,
        messageId ? { replyTo: messageId } : {},
      );
      return queued.outside ? undefined : queued.messageId;
    },
    (err) => deps.logger.error({ err, chatId }, 'turn failed'),
  );
}
