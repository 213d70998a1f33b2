import type { Faces } from '../src/service.js';
import { buildHttpFace } from './http/server.js';
import type { TelegramFace } from './telegram/index.js';

/**
 * The faces main hands to the service (src/service.ts), built from the core
 * and the tools: the Telegram bot when a token is set (grammY and its
 * plugins load only then, so start-up stays fast without Telegram), and HTTP,
 * which also serves the bot's Bot API front when it is on.
 */
export const faces = {
  bot: async (core, tools) =>
    core.config.telegram.token ? (await import('./telegram/index.js')).telegramFace(core, tools) : undefined,
  http: (core, tools, bot) => buildHttpFace(core, tools, bot?.routes ? [bot.routes] : []),
} satisfies Faces<TelegramFace>;
