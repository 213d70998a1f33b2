import type { Faces } from '../src/service.js';
import { buildHttpFace } from './http/server.js';

/**
 * The faces main hands to the service (src/service.ts), built from the core
 * and the tools: HTTP always, the Telegram bot when a token is set. grammY
 * and its plugins load only then, so start-up stays fast without Telegram.
 */
export const faces = {
  http: buildHttpFace,
  bot: async (core, tools) =>
    core.config.telegram.token ? (await import('./telegram/index.js')).telegramFace(core, tools) : undefined,
} satisfies Faces;
