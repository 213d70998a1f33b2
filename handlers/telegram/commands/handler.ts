import { type CommandContext, type Context, GrammyError, type MiddlewareFn } from 'grammy';
import type { BotCommand } from 'grammy/types';
import { type Lang, langOf, t } from '../../../src/i18n.js';
import type { Logger } from '../../../src/logger.js';
import { PROXY_TAG } from '../../../src/notices.js';
import { shorten } from '../../../src/text.js';
import type { BotDeps } from '../deps.js';
import { escapeHtml } from '../format/render.js';
import { outputFor, topicOfCtx, topicTurnKey } from '../route/topic.js';
import { failureReason } from '../send/failure.js';
import type { ChatOutput } from '../send/output.js';

/**
 * What a bot command's handler gets (its entry in table.ts names it), and the
 * two things every command path shares: the command word of a message and
 * how a handler's failure is told. Kept apart from the table, which imports
 * the handlers, so that they need not import it back.
 */

/** The chat a command came from, worked out once for its handler. */
export interface CommandEnv {
  deps: BotDeps;
  chatId: number;
  /** The forum topic it came from, if any: answers go there (outside it once closed or deleted: `out`). */
  topicId: number | undefined;
  /** The turn queue of that chat or topic (see route/topic.ts). */
  turnKey: number | string;
  lang: Lang;
  /** The chat or topic, for the command's replies: outside a topic closed or deleted, saying why (outputFor). */
  out: ChatOutput;
  /** This set-up's command menu in the user's language (what /help lists). */
  menu: readonly BotCommand[];
}

/** A command answered by the bot itself (table.ts: part 'bot'). */
export type BotCommandHandler = (ctx: CommandContext<Context>, env: CommandEnv) => Promise<void>;

/** The chat of an update, in the user's language, with the menu in that language. */
export function commandEnv(
  ctx: Context,
  deps: BotDeps,
  menuIn: (lang: Lang) => readonly BotCommand[],
): CommandEnv {
  const chatId = ctx.chat?.id ?? 0;
  const topicId = topicOfCtx(ctx);
  const lang = langOf(ctx.from?.language_code);
  return {
    deps,
    chatId,
    topicId,
    turnKey: topicTurnKey(chatId, topicId),
    lang,
    out: outputFor(ctx),
    menu: menuIn(lang),
  };
}

/** The command word of a message (`/mode@bot local` → `mode`), if it is one. */
export function commandOf(text: string | undefined): string | undefined {
  return text ? /^\/([A-Za-z0-9_]+)(?:@\w+)?(?:\s|$)/.exec(text)?.[1]?.toLowerCase() : undefined;
}

/**
 * A message forwarded from elsewhere: what someone else wrote, for the brain to read, never a
 * command, a switch request or a shortcut word of whoever forwarded it (a `/mode` or a "switch to
 * local" in someone else's message must not act).
 */
export function isForwarded(message: { forward_origin?: unknown } | undefined): boolean {
  return message?.forward_origin !== undefined;
}

/**
 * brainstem's commands are answered whatever the case they were typed in:
 * Telegram clients send `/Usage` as typed, the owner means /usage (and with the
 * front on the split, which goes by commandOf, took it as brainstem's), but
 * grammY's `command` matches case-sensitively. So before any handler, the
 * command word of a message naming one of `names` is written as commandOf reads it.
 */
export function commandsInAnyCase(names: ReadonlySet<string>): MiddlewareFn<Context> {
  return (ctx, next) => {
    const message = ctx.message;
    const name = commandOf(message?.text);
    if (message?.text && name !== undefined && names.has(name) && !isForwarded(message)) {
      message.text = `/${name}${message.text.slice(1 + name.length)}`;
    }
    return next();
  };
}

/**
 * A command handler's failure, told in one line (never a stack, never grammY's
 * own text: see failureReason) and logged in full.
 */
export async function guarded(
  ctx: Context,
  logger: Logger,
  what: string,
  fn: () => Promise<unknown>,
): Promise<void> {
  try {
    await fn();
  } catch (err) {
    logger.error({ err, command: what, chatId: ctx.chat?.id }, 'telegram command failed');
    if (!ctx.chat || (err instanceof GrammyError && err.error_code === 403)) return;
    const lang = langOf(ctx.from?.language_code);
    // In the command's topic (outside it once closed or deleted, saying why), and short: the error may
    // quote what was typed, shown as plain text.
    await outputFor(ctx)
      .sendHtml(
        escapeHtml(
          t(lang, `${PROXY_TAG} /${what} failed: `, `${PROXY_TAG} /${what} a échoué : `) +
            shorten(failureReason(err, lang), 1000),
        ),
        { lang },
      )
      .catch((sendErr: unknown) =>
        logger.warn({ err: sendErr, command: what, chatId: ctx.chat?.id }, 'could not tell the chat'),
      );
  }
}
