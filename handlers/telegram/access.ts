import type { Context, MiddlewareFn } from 'grammy';
import { langOf, t } from '../../src/i18n.js';
import type { Logger } from '../../src/logger.js';
import { PROXY_TAG } from '../../src/notices.js';

/** A stranger who keeps writing gets one refusal per this period; every attempt is still logged. */
const REFUSAL_EVERY_MS = 10 * 60_000;

/**
 * Only the allowed users reach anything past this point: no brain, no tool,
 * no command. A stranger is told their user id once (so the owner can add it
 * if it is theirs), and every refused update is logged.
 */
export function allowOnly(allowed: readonly number[], logger: Logger): MiddlewareFn<Context> {
  const ids = new Set(allowed);
  const refusedAt = new Map<number, number>();
  return async (ctx, next) => {
    const from = ctx.from;
    if (!from) return;
    if (ids.has(from.id)) return next();
    logger.warn(
      {
        userId: from.id,
        username: from.username,
        chatId: ctx.chat?.id,
        update: ctx.callbackQuery ? 'callback_query' : 'message',
      },
      'refused a Telegram user who is not on the allow-list',
    );
    const lang = langOf(from.language_code);
    const text = t(
      lang,
      `${PROXY_TAG} This bot is private. Your Telegram user id is ${from.id}: give it to the owner if you should have access.`,
      `${PROXY_TAG} Ce bot est privé. Votre identifiant Telegram est ${from.id} : donnez-le au propriétaire si vous devez y avoir accès.`,
    );
    if (ctx.callbackQuery) {
      await ctx.answerCallbackQuery({ text, show_alert: true });
      return;
    }
    const last = refusedAt.get(from.id);
    if (last !== undefined && Date.now() - last < REFUSAL_EVERY_MS) return;
    refusedAt.set(from.id, Date.now());
    if (ctx.chat) await ctx.api.sendMessage(ctx.chat.id, text);
  };
}
