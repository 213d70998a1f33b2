import { sequentialize } from '@grammyjs/runner';
import type { Context, MiddlewareFn } from 'grammy';
import type { Core } from '../../src/core.js';
import type { KvStore } from '../../src/db/index.js';
import { langOf, NOTICE_LANG_KEY, noticeLang } from '../../src/i18n.js';
import type { BotFace } from '../../src/service.js';
import type { Tools } from '../../src/tools/index.js';
import { allowOnly } from './access.js';
import { ApprovalPrompts } from './approval-prompts.js';
import { createBot, startPolling } from './bot.js';
import { CONTROL_COMMANDS, commandOf, publishCommands, registerCommands } from './commands.js';
import type { BotDeps } from './deps.js';
import { dialogKeyOf } from './dialogs.js';
import { ChatHistory } from './history.js';
import { registerMessages } from './messages.js';
import { startNoticeSink } from './notice-sink.js';
import { OpenClawClient } from './openclaw-client.js';
import { DirectRoute, OpenClawRoute } from './relay.js';
import { registerToolCommands } from './tool-commands.js';
import { ChatTurns } from './turns.js';

const TELEGRAM_API_ROOT = 'https://api.telegram.org';
/** How long a stop waits for running answers to say they were cut, and for a notice being delivered. */
const STOP_GRACE_MS = 5_000;

/**
 * Updates of one chat are handled in order, but in three lanes so nothing
 * long holds the others: /stop alone (always answered at once), the read-only
 * commands and buttons, and the messages themselves (with /new, which must
 * stay in order with them). Turns run outside the middleware (see ChatTurns).
 */
function laneOf(ctx: Context): string | undefined {
  const chat = ctx.chat?.id;
  if (chat === undefined) return undefined;
  if (ctx.callbackQuery) return `${chat}:control`;
  const command = commandOf(ctx.message?.text);
  if (command === 'stop') return `${chat}:stop`;
  if (command && CONTROL_COMMANDS.has(command)) return `${chat}:control`;
  return String(chat);
}

/** The update's lane in its chat, and the dialog it may belong to (see dialogKeyOf). */
function lanesOf(ctx: Context): string[] {
  return [laneOf(ctx), dialogKeyOf(ctx)].filter((lane) => lane !== undefined);
}

/** Notices have no reader of their own: they use the language the owner last wrote in. */
function rememberLang(kv: KvStore): MiddlewareFn<Context> {
  let last = kv.get(NOTICE_LANG_KEY);
  return (ctx, next) => {
    const lang = langOf(ctx.from?.language_code);
    if (lang !== last) {
      kv.set(NOTICE_LANG_KEY, lang);
      last = lang;
    }
    return next();
  };
}

/**
 * The Telegram bot: on when TELEGRAM_BOT_TOKEN is set. `tools`, when they run,
 * give it /run, /upgrade and the shortcut words. Nothing reaches Telegram
 * before `start`.
 */
export function telegramFace(core: Core, tools: Tools | undefined): BotFace | undefined {
  const { telegram, openclaw } = core.config;
  if (!telegram.token) return undefined;
  const logger = core.logger.child({ part: 'telegram' });
  const apiRoot = telegram.apiRoot ?? TELEGRAM_API_ROOT;
  const bot = createBot(telegram.token, telegram.apiRoot);

  const client = openclaw.gatewayUrl
    ? new OpenClawClient({
        url: openclaw.gatewayUrl,
        token: openclaw.gatewayToken,
        silenceTimeoutMs: core.config.claude.turnTimeoutMs,
      })
    : undefined;
  const approvals = new ApprovalPrompts({
    api: bot.api,
    approvers: new Set(telegram.approvers ?? telegram.allowedUsers),
    timeoutMs: core.config.claude.approvalTimeoutMs,
    logger,
  });
  const route = client
    ? new OpenClawRoute(core, client)
    : new DirectRoute(core, new ChatHistory(core.db), (chatId, lang) => approvals.forChat(chatId, lang));
  const turns = new ChatTurns();
  const deps: BotDeps = { core, tools, route, turns, logger, apiRoot, token: telegram.token };

  bot.use(sequentialize(lanesOf));
  bot.use(allowOnly(telegram.allowedUsers, logger));
  bot.use(rememberLang(core.kv));
  bot.use(approvals.middleware());
  // Before the relay: a shortcut word is answered by its tool, never sent to the brain.
  const toolCommands = registerToolCommands(bot, deps);
  registerCommands(bot, deps);
  registerMessages(bot, deps);
  bot.catch((err) =>
    logger.error({ err: err.error, updateId: err.ctx.update.update_id }, 'telegram update failed'),
  );

  const chats = telegram.notifyChats ?? telegram.allowedUsers;
  let polling: ReturnType<typeof startPolling> | undefined;
  let sink: ReturnType<typeof startNoticeSink> | undefined;

  return {
    // Turns from elsewhere (the OpenAI endpoint, OpenClaw included) are asked about in the notify chats.
    approver: chats.length > 0 ? approvals.forChats(chats, () => noticeLang(core.kv)) : undefined,
    start() {
      polling = startPolling(bot, logger);
      void publishCommands(bot.api, logger);
      if (chats.length > 0) sink = startNoticeSink({ notifier: core.notifier, api: bot.api, chats, logger });
      else logger.warn('no notify chats (TELEGRAM_ALLOWED_USERS is empty): notices wait in the database');
      logger.info({ route: route.kind, notifyChats: chats }, 'Telegram bot starting');
    },
    async stop() {
      await polling?.stop();
      await toolCommands?.stop(STOP_GRACE_MS);
      await turns.close(STOP_GRACE_MS);
      await approvals.close(STOP_GRACE_MS);
      await sink?.stop(STOP_GRACE_MS);
      await client?.close();
    },
  };
}
