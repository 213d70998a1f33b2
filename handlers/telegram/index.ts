import { sequentialize } from '@grammyjs/runner';
import type { Context, MiddlewareFn } from 'grammy';
import { notifyChatsOf } from '../../src/config.js';
import type { Core } from '../../src/core.js';
import type { KvStore } from '../../src/db/index.js';
import type { KeptWrites } from '../../src/db/kept-writes.js';
import { langOf, NOTICE_LANG_KEY, noticeLang, t } from '../../src/i18n.js';
import { detectIntent } from '../../src/intents.js';
import type { BotFace } from '../../src/service.js';
import type { Tools } from '../../src/tools/index.js';
import { createTranscriber } from '../../src/transcribe/index.js';
import type { RouteSet } from '../http/server.js';
import { createFront } from '../telegram-front/index.js';
import { allowOnly } from './access.js';
import { dialogKeyOf } from './approvals/dialogs.js';
import { ApprovalPrompts } from './approvals/prompts.js';
import { allowedUpdates, createBot, startPolling } from './bot.js';
import { commandOf, commandsInAnyCase, isForwarded } from './commands/handler.js';
import { SwitchProgress } from './commands/switch-progress.js';
import {
  laneOf as commandLane,
  commandMenus,
  commandNames,
  publishCommands,
  registerCommands,
  servedAs,
  toolCommands,
} from './commands/table.js';
import { registerToolCommands } from './commands/tools.js';
import type { BotDeps } from './deps.js';
import { HandedOver } from './offset.js';
import { recordArrivals } from './route/arrivals.js';
import { TurnsUnderWay } from './route/cut-turns.js';
import { DirectRoute } from './route/direct.js';
import { registerEdits } from './route/edits.js';
import { ChatHistory } from './route/history.js';
import { inboundSplit } from './route/inbound-split.js';
import { registerMediaMessages } from './route/media-messages.js';
import { ownMentionOut } from './route/mention.js';
import { registerForwarded, registerMessages } from './route/messages.js';
import { QueuedMessages } from './route/queued-messages.js';
import { topicOf } from './route/topic.js';
import { registerVoice } from './route/voice.js';
import { botOf, forgetGone } from './send/gone-topics.js';
import { startNoticeSink } from './send/notice-sink.js';
import { answerPress } from './send/press.js';
import { ChatPaces } from './stream/pacer.js';
import { ChatTurns } from './turns.js';

const TELEGRAM_API_ROOT = 'https://api.telegram.org';
/** How long a stop waits for running answers to say they were cut, and for a notice being delivered. */
const STOP_GRACE_MS = 5_000;

/**
 * Updates of one chat are handled in order, but in three lanes so nothing
 * long holds the others: /stop alone (always answered at once), the read-only
 * commands and buttons, and the messages themselves (with /new, which must
 * stay in order with them). The command table (commands/table.ts) gives each
 * command its lane. Turns run outside the middleware (see ChatTurns).
 */
function laneOf(ctx: Context): string | undefined {
  const chat = ctx.chat?.id;
  if (chat === undefined) return undefined;
  if (ctx.callbackQuery) return `${chat}:control`;
  const command = isForwarded(ctx.message) ? undefined : commandOf(ctx.message?.text);
  const lane = command === undefined ? 'chat' : commandLane(command);
  return lane === 'chat' ? String(chat) : `${chat}:${lane}`;
}

/** The update's lane in its chat, and the dialog it may belong to (see dialogKeyOf). */
function lanesOf(ctx: Context): string[] {
  return [laneOf(ctx), dialogKeyOf(ctx)].filter((lane) => lane !== undefined);
}

/**
 * Notices have no reader of their own: they use the language the owner last wrote in.
 * Under another process's lock the record waits (KeptWrites): the message is handled all the same.
 */
function rememberLang(kv: KvStore, kept: KeptWrites): MiddlewareFn<Context> {
  let last = kv.get(NOTICE_LANG_KEY);
  return (ctx, next) => {
    const lang = langOf(ctx.from?.language_code);
    if (lang !== last) {
      kept.run(`the language notices speak (${lang})`, () => kv.set(NOTICE_LANG_KEY, lang));
      last = lang;
    }
    return next();
  };
}

/** The bot, and what it serves over HTTP: the Bot API front's routes, when the front is on. */
export interface TelegramFace extends BotFace {
  routes?: RouteSet;
}

/**
 * The Telegram bot: on when TELEGRAM_BOT_TOKEN is set. `tools`, when they run,
 * give it /run, /upgrade and the shortcut words. Nothing reaches Telegram
 * before `start`.
 */
export function telegramFace(core: Core, tools: Tools | undefined): TelegramFace | undefined {
  const { telegram } = core.config;
  if (!telegram.token) return undefined;
  const logger = core.logger.child({ part: 'telegram' });
  const apiRoot = telegram.apiRoot ?? TELEGRAM_API_ROOT;
  const bot = createBot(telegram.token, telegram.apiRoot, { logger });

  const approvers = new Set(telegram.approvers ?? telegram.allowedUsers);
  const approvals = new ApprovalPrompts({
    api: bot.api,
    approvers,
    timeoutMs: core.config.claude.approvalTimeoutMs,
    checkEveryMs: telegram.questionCheckMs,
    logger,
  });
  const route = new DirectRoute(core, new ChatHistory(core.db, core.kept), (chatId, lang, topicId) =>
    approvals.forChat(chatId, lang, topicId),
  );
  const turns = new ChatTurns();
  const underWay = new TurnsUnderWay(core.db, core.kept, logger);
  const switches = new SwitchProgress(core, logger);
  const chats = notifyChatsOf(telegram);
  // The commands brainstem answers with the front on; without the tools, /run and /upgrade are OpenClaw's.
  const ownCommands = commandNames(true, tools !== undefined);
  const front = telegram.front.enabled
    ? createFront({
        core,
        token: telegram.token,
        apiRoot,
        logger,
        ownCommands,
        notifyChats: chats,
      })
    : undefined;
  const deps: BotDeps = {
    core,
    tools,
    route,
    turns,
    underWay,
    queued: new QueuedMessages(),
    switches,
    paces: new ChatPaces(),
    logger,
    apiRoot,
    token: telegram.token,
    front,
    transcriber: createTranscriber(core.config.transcription),
  };
  if (front) {
    const isMode = (name: string) => core.modes.find(name) !== undefined;
    const split = inboundSplit({
      ownCommands,
      allowedUsers: new Set(telegram.allowedUsers),
      isOwnText: (text) =>
        !text.startsWith('/') &&
        (detectIntent(text, isMode)?.kind === 'switch' || tools?.resolveShortcut(text) !== undefined),
      botUsername: () => (bot.isInited() ? bot.botInfo.username : undefined),
    });
    bot.api.config.use(front.intake(split, allowedUpdates(true)));
  }
  // On the direct route: what was handed over is not fetched again after a restart (the front keeps its own offset).
  const handedOver = front
    ? undefined
    : new HandedOver(core.kv, core.kept, `${apiRoot} bot ${botOf(bot.api)}`);
  if (handedOver) {
    bot.api.config.use(handedOver.transformer());
    bot.use(handedOver.middleware());
  }

  // First: a message is recorded before the runner's next fetch confirms it at Telegram.
  bot.use(recordArrivals(underWay, telegram.allowedUsers));
  bot.use(commandsInAnyCase(front ? ownCommands : commandNames(false, tools !== undefined)));
  bot.use(sequentialize(lanesOf));
  // Before the allow-list: Telegram itself says a group got a new id, whoever upgraded it. With the
  // front on too: the split hands these messages to OpenClaw and to brainstem (route/inbound-split.ts).
  bot.on(['message:migrate_to_chat_id', 'message:migrate_from_chat_id'], (ctx) => {
    const { chat } = ctx;
    const [from, to] = ctx.message.migrate_to_chat_id
      ? [chat.id, ctx.message.migrate_to_chat_id]
      : [ctx.message.migrate_from_chat_id ?? chat.id, chat.id];
    logger.info({ chatId: from, newChatId: to }, 'a group became a supergroup: its conversation follows');
    route.follow(from, to);
    // The supergroup's turns wait for those of the group still running, which its conversation follows.
    turns.follow(from, to);
    // The command menu OpenClaw set for the group, kept by the front, follows too.
    void front?.commands.follow(from, to);
  });
  // Before the allow-list too: whoever reopened a forum topic, brainstem writes into it again at once
  // rather than sending outside it what a refusal there made it send outside (send/gone-topics.ts).
  bot.on('message:forum_topic_reopened', (ctx) => {
    const topicId = topicOf(ctx.message);
    if (topicId !== undefined && forgetGone(ctx.api, ctx.chat.id, topicId))
      logger.info({ chatId: ctx.chat.id, topicId }, 'a forum topic was reopened: messages go into it again');
  });
  bot.use(allowOnly(telegram.allowedUsers, approvers, logger));
  bot.use(ownMentionOut());
  bot.use(rememberLang(core.kv, core.kept));
  bot.use(approvals.middleware());
  // Before anything that reads a message as a command or a request: a forwarded one is neither.
  registerForwarded(bot, deps);
  // Before the relay: a shortcut word is answered by its tool, never sent to the brain.
  const toolDialogs = registerToolCommands(
    bot,
    deps,
    toolCommands(front !== undefined),
    servedAs('stop', front !== undefined),
  );
  registerCommands(bot, deps);
  // Before registerVoice, which takes audio files: every sent file is remembered (media-messages.ts);
  // before registerMessages, whose catch-all ends the chain.
  const media = registerMediaMessages(bot, deps);
  registerVoice(bot, deps);
  registerMessages(bot, deps);
  // Edits are fetched on the direct route only (allowedUpdates): with the front on, they are OpenClaw's.
  registerEdits(bot, deps);
  // A press no handler took (a button of an older version, or made up) is still answered:
  // an unanswered one keeps a spinner on the user's button until Telegram gives up.
  bot.on('callback_query', (ctx) =>
    answerPress(ctx, logger, {
      text: t(
        langOf(ctx.from.language_code),
        'This button no longer works.',
        'Ce bouton ne fonctionne plus.',
      ),
    }),
  );
  bot.catch((err) =>
    logger.error({ err: err.error, updateId: err.ctx.update.update_id }, 'telegram update failed'),
  );

  let polling: ReturnType<typeof startPolling> | undefined;
  let sink: ReturnType<typeof startNoticeSink> | undefined;
  let stopFollowing: (() => void) | undefined;

  return {
    routes: front?.routes,
    // Turns from elsewhere (the OpenAI endpoint, OpenClaw included) are asked about in the notify chats.
    approver: chats.length > 0 ? approvals.forChats(chats, () => noticeLang(core.kv)) : undefined,
    start() {
      // Before the service finishes the switch a restart cut (Switcher.resumeCut).
      stopFollowing = switches.followResumed(chats);
      // Before the first update: what is under way now is this run's.
      underWay.tellCut(core.notifier);
      polling = startPolling(bot, logger, allowedUpdates(front !== undefined));
      if (front) front.commands.setOwn(commandMenus(true));
      else void publishCommands(bot.api, logger);
      // With no notify chats too: a chat that asked for a switch a restart cut hears how it ended.
      sink = startNoticeSink({
        notifier: core.notifier,
        api: bot.api,
        chats,
        logger,
        lang: () => noticeLang(core.kv),
      });
      if (chats.length === 0)
        logger.warn('no notify chats (TELEGRAM_ALLOWED_USERS is empty): notices wait in the database');
      logger.info(
        { route: front ? 'openclaw-front' : 'direct', notifyChats: chats },
        front
          ? `Telegram bot starting; OpenClaw's channel polls the front at ${telegram.front.prefix}`
          : 'Telegram bot starting',
      );
    },
    async stop() {
      // First: OpenClaw's waiting long poll is answered at once, so the HTTP server can close.
      await front?.stop();
      await polling?.stop();
      // An album still gathering is never handed on: its turn, queued with its first photo, is cut below and says so.
      media.stop();
      await toolDialogs?.stop(STOP_GRACE_MS);
      stopFollowing?.();
      await switches.close(STOP_GRACE_MS);
      await turns.close(STOP_GRACE_MS);
      await approvals.close(STOP_GRACE_MS);
      await sink?.stop(STOP_GRACE_MS);
    },
  };
}
