import type { Bot, CommandContext, Composer, Context } from 'grammy';
import { langOf } from '../../../src/i18n.js';
import { PROXY_TAG } from '../../../src/notices.js';
import { shorten } from '../../../src/text.js';
import type { Tools } from '../../../src/tools/index.js';
import { DIALOG_DATA, type DialogContext, type DialogRequest, Dialogs } from '../approvals/dialogs.js';
import type { BotDeps } from '../deps.js';
import { escapeHtml } from '../format/render.js';
import { outputFor, topicOfCtx } from '../route/topic.js';
import { commandOf, guarded } from './handler.js';
import { fromShortcut, type Resolution, resolveRun, runListHtml } from './run-command.js';
import { submitToolRun, type ToolChat } from './tool-run.js';

/** What a tool command's handler gets: the tools, and the dialogs that confirm what changes things. */
export interface ToolCommandEnv {
  tools: Tools;
  dialogs: Dialogs;
  /** Runs the call at once, or asks first when it changes things; an unusable request is answered with why. */
  dispatch(ctx: DialogContext, res: Resolution): Promise<void>;
}

/** A command answered through the tools (table.ts: part 'tools'); registered only when the tools run. */
export type ToolCommandHandler = (ctx: CommandContext<DialogContext>, env: ToolCommandEnv) => Promise<void>;

/** A tool command as the table gives it: the name it is answered under, and its handler. */
export interface ToolCommand {
  name: string;
  served: string;
  handler: ToolCommandHandler;
}

/** /run: the list of tools and shortcuts, or a call. */
export const runCommand: ToolCommandHandler = async (ctx, { tools, dispatch }) => {
  const lang = langOf(ctx.from?.language_code);
  if (!ctx.match.trim()) {
    await outputFor(ctx).sendHtml(runListHtml(tools, lang));
    return;
  }
  await dispatch(ctx, resolveRun(tools, ctx.match, lang));
};

/** /upgrade: asks first, then updates brainstem from its git remote. */
export const upgradeCommand: ToolCommandHandler = (ctx, { dialogs }) =>
  dialogs.start(ctx, request(ctx, ctx.msg.message_id, { kind: 'upgrade' }));

/**
 * Tools from the chat: `/run <shortcut|tool> [args]`, the bare shortcut words
 * ("deploy", "tests", "git"…; any other words still go to the brain),
 * `/upgrade`, and the confirmations of what changes things. Access is the bot's
 * (only allowed users get this far). Returns how to close the open questions
 * on shutdown, or undefined when the tools do not run.
 */
export function registerToolCommands(
  bot: Bot,
  deps: BotDeps,
  commands: readonly ToolCommand[],
  /** What the user types to stop a run (see ToolChat.stopCommand). */
  stopCommand: string,
): { stop(graceMs: number): Promise<void> } | undefined {
  const { tools } = deps;
  if (!tools) return undefined;
  const { telegram } = deps.core.config;
  const chat: ToolChat = {
    tools,
    turns: deps.turns,
    api: bot.api,
    logger: deps.logger,
    intervalMs: telegram.editIntervalMs,
    paces: deps.paces,
    underWay: deps.underWay,
    stopCommand,
  };
  const dialogs = new Dialogs(chat, {
    timeoutMs: telegram.confirmTimeoutMs,
    approvers: new Set(telegram.approvers ?? telegram.allowedUsers),
  });
  const composer = dialogs.middleware();

  const dispatch = async (ctx: DialogContext, res: Resolution) => {
    const chatId = ctx.chat?.id;
    const from = ctx.from;
    const messageId = ctx.message?.message_id;
    if (chatId === undefined || !from || messageId === undefined) return;
    const lang = langOf(from.language_code);
    // In a group several people talk: the answer says whom it answers.
    const replyTo = chatId < 0 ? messageId : undefined;
    if (!res.ok) {
      // Cut before escaping (an entity stays whole): zod's messages and the tools' refusals may quote a long key or value.
      const error = escapeHtml(shorten(res.error, 1000));
      await outputFor(ctx).sendHtml(`${PROXY_TAG} ❌ ${error}`, replyTo ? { replyTo } : {});
      return;
    }
    const { word, tool, input } = res.call;
    if (res.call.mutating) {
      await dialogs.start(ctx, request(ctx, messageId, { kind: 'tool', call: { word, tool, input } }));
      return;
    }
    const topicId = topicOfCtx(ctx);
    submitToolRun(chat, { chatId, topicId, userId: from.id, lang, call: { word, tool, input }, replyTo });
  };

  const env: ToolCommandEnv = { tools, dialogs, dispatch };
  for (const { name, served, handler } of commands) {
    composer.command(served, (ctx) => guarded(ctx, deps.logger, name, () => handler(ctx, env)));
  }

  composer.on('message:text', (ctx, next) => {
    // A command addressed to another bot (/run@other) falls through to here: not ours.
    if (ctx.message.text.startsWith('/')) return next();
    const shortcut = tools.resolveShortcut(ctx.message.text);
    if (!shortcut) return next();
    return guarded(ctx, deps.logger, 'run', () =>
      dispatch(ctx, fromShortcut(shortcut, langOf(ctx.from.language_code))),
    );
  });

  // Only these updates go through the conversations plugin; the plugin is what adds ctx.conversation.
  const served = new Set(commands.map((c) => c.served));
  bot.filter(isToolUpdate(tools, served)).use(composer as unknown as Composer<Context>);
  return { stop: (graceMs) => dialogs.close(graceMs) };
}

function isToolUpdate(tools: Tools, commands: ReadonlySet<string>): (ctx: Context) => boolean {
  return (ctx) => {
    if (ctx.callbackQuery) return DIALOG_DATA.test(ctx.callbackQuery.data ?? '');
    const text = ctx.message?.text;
    if (!text) return false;
    const command = commandOf(text);
    if (command !== undefined) return commands.has(command);
    return !text.startsWith('/') && tools.resolveShortcut(text) !== undefined;
  };
}

function request(ctx: Context, messageId: number, action: DialogRequest['action']): DialogRequest {
  const chatId = ctx.chat?.id ?? 0;
  return {
    id: messageId,
    chatId,
    topicId: topicOfCtx(ctx),
    askerId: ctx.from?.id ?? 0,
    askerName: ctx.from?.first_name ?? '?',
    lang: langOf(ctx.from?.language_code),
    replyTo: chatId < 0 ? messageId : undefined,
    action,
  };
}
