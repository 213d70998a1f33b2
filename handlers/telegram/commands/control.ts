import { type Api, type Bot, type CommandContext, type Context, GrammyError } from 'grammy';
import type { BotCommand, LanguageCode } from 'grammy/types';
import { type Lang, langOf, t } from '../../../src/i18n.js';
import type { Logger } from '../../../src/logger.js';
import { PROXY_TAG } from '../../../src/notices.js';
import type { BotDeps } from '../deps.js';
import { escapeHtml } from '../format/render.js';
import { topicOfCtx, topicTurnKey } from '../route/topic.js';
import { ChatOutput } from '../send/output.js';
import { creditLines } from '../views/credit.js';
import { credsView } from '../views/creds.js';
import { limitLines } from '../views/limit.js';
import { statusView } from '../views/status.js';
import { usageView } from '../views/usage.js';
import { chartPeriodOf, sendUsageChart } from '../views/usage-chart.js';
import { ownData } from './callback-data.js';
import { modeCallbackSchema, modeMenu, switchWithProgress } from './mode-keyboard.js';

interface CommandSpec {
  command: string;
  en: string;
  fr: string;
  /**
   * Its name while the Bot API front is on, when OpenClaw has a command of
   * the same name (OpenClaw's acts on its own session); null: OpenClaw's
   * alone then. See the README's table.
   */
  front?: string | null;
}

const COMMANDS: CommandSpec[] = [
  {
    command: 'mode',
    en: 'Show or switch the brain (/mode local)',
    fr: 'Voir ou changer de cerveau (/mode local)',
  },
  {
    command: 'stop',
    en: 'Interrupt the answer in progress',
    fr: 'Interrompre la réponse en cours',
    front: 'bstop',
  },
  {
    command: 'new',
    en: 'Start a fresh conversation',
    fr: 'Commencer une nouvelle conversation',
    front: null,
  },
  {
    command: 'run',
    en: 'Run a tool or shortcut (/run tests, /run git_log max=5)',
    fr: 'Lancer un outil ou un raccourci (/run tests, /run git_log max=5)',
  },
  {
    command: 'usage',
    en: 'Consumption (/usage 30d, /usage chart)',
    fr: 'Consommation (/usage 30d, /usage chart)',
  },
  { command: 'status', en: 'Modes, route, uptime', fr: 'Modes, route, disponibilité', front: 'bstatus' },
  { command: 'creds', en: 'Claude credentials state', fr: 'État des identifiants Claude' },
  {
    command: 'upgrade',
    en: 'Update brainstem from its git remote',
    fr: 'Mettre à jour brainstem depuis son dépôt git',
  },
  { command: 'help', en: 'What this bot does', fr: 'Ce que fait ce bot', front: 'bhelp' },
  // Telegram's start button; not in the menu.
  { command: 'start', en: '', fr: '', front: null },
];

/** Commands answered in a lane of their own, beside the chat's messages (see index.ts). */
export const CONTROL_COMMANDS = new Set([
  'start',
  'help',
  'bhelp',
  'mode',
  'usage',
  'creds',
  'status',
  'bstatus',
]);

/** The command word of a message (`/mode@bot local` → `mode`), if it is one. */
export function commandOf(text: string | undefined): string | undefined {
  return text ? /^\/([A-Za-z0-9_]+)(?:@\w+)?(?:\s|$)/.exec(text)?.[1]?.toLowerCase() : undefined;
}

/** The name a command of brainstem's is answered under; undefined when, with the front on, it is OpenClaw's. */
export function commandName(command: string, front: boolean): string | undefined {
  const spec = COMMANDS.find((c) => c.command === command);
  if (!front || spec?.front === undefined) return command;
  return spec.front ?? undefined;
}

/** What brainstem answers while the front is on; every other command goes to OpenClaw. */
export function frontCommandNames(): Set<string> {
  return new Set(COMMANDS.flatMap((c) => commandName(c.command, true) ?? []));
}

/** The command menu, in English (the default) and French. */
export function commandMenus(front: boolean): { lang: string; commands: BotCommand[] }[] {
  const menu = COMMANDS.filter((c) => c.en).flatMap((c) => {
    const command = commandName(c.command, front);
    return command ? [{ command, en: c.en, fr: c.fr }] : [];
  });
  return [
    { lang: '', commands: menu.map(({ command, en }) => ({ command, description: en })) },
    { lang: 'fr', commands: menu.map(({ command, fr }) => ({ command, description: fr })) },
  ];
}

/** Registers the command menu straight at Telegram (no front). */
export async function publishCommands(api: Api, logger: Logger): Promise<void> {
  try {
    for (const { lang, commands } of commandMenus(false)) {
      await api.setMyCommands(commands, lang ? { language_code: lang as LanguageCode } : {});
    }
  } catch (err) {
    logger.warn({ err: (err as Error).message }, 'setMyCommands failed; the command menu may be stale');
  }
}

export function helpText(deps: BotDeps, lang: Lang): string {
  const front = deps.front !== undefined;
  const active = escapeHtml(deps.core.switcher.active().id);
  const route = front
    ? t(
        lang,
        `Your messages go to OpenClaw (now on <b>${active}</b>); these commands are brainstem's, OpenClaw's own of the same name are /oc_&lt;name&gt;.`,
        `Vos messages vont à OpenClaw (en ce moment sur <b>${active}</b>) ; ces commandes sont celles de brainstem, celles d’OpenClaw du même nom sont /oc_&lt;nom&gt;.`,
      )
    : t(
        lang,
        `Your messages go to the active brain (now <b>${active}</b>).`,
        `Vos messages vont au cerveau actif (en ce moment <b>${active}</b>).`,
      );
  const menu = commandMenus(front).find((m) => m.lang === (lang === 'fr' ? 'fr' : ''))?.commands ?? [];
  return [
    `${PROXY_TAG} <b>brainstem</b>. ${route}`,
    ...menu.map((c) => `/${c.command}: ${escapeHtml(c.description)}`),
    ...shortcutLine(deps, lang),
    front
      ? t(lang, 'You can also say “switch to local”.', 'Vous pouvez aussi dire « passe en mode local ».')
      : t(
          lang,
          'You can also say “switch to local”. Photos and documents are saved and passed to the brain; voice messages are not supported.',
          'Vous pouvez aussi dire « passe en mode local ». Photos et documents sont enregistrés et transmis au cerveau ; les messages vocaux ne sont pas pris en charge.',
        ),
  ].join('\n');
}

/** The shortcut words, when the tools run: they are answered without a brain. */
function shortcutLine(deps: BotDeps, lang: Lang): string[] {
  const words = deps.tools?.shortcuts.list().map((s) => s.word);
  if (!words?.length) return [];
  return [
    t(
      lang,
      `Shortcut words run their tool at once: ${escapeHtml(words.join(', '))} (/run lists them).`,
      `Les mots raccourcis lancent leur outil directement : ${escapeHtml(words.join(', '))} (/run les liste).`,
    ),
  ];
}

/** A command handler's failure, told in one line (never a stack) and logged in full. */
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
    await ctx.api
      .sendMessage(
        ctx.chat.id,
        t(lang, `${PROXY_TAG} /${what} failed: `, `${PROXY_TAG} /${what} a échoué : `) +
          ((err as Error).message || String(err)),
      )
      .catch(() => undefined);
  }
}

export function registerCommands(bot: Bot, deps: BotDeps): void {
  const { core, turns, route, logger } = deps;
  /** A command under the name it is answered by, if it is brainstem's in this set-up. */
  const command = (name: string, handler: (ctx: CommandContext<Context>) => Promise<void>) => {
    const served = commandName(name, deps.front !== undefined);
    if (served) bot.command(served, handler);
  };
  const ctxInfo = (ctx: Context) => {
    const chatId = ctx.chat?.id ?? 0;
    const topicId = topicOfCtx(ctx);
    return {
      chatId,
      topicId,
      turnKey: topicTurnKey(chatId, topicId),
      lang: langOf(ctx.from?.language_code),
      out: new ChatOutput(ctx.api, chatId, topicId),
    };
  };

  command('start', (ctx) =>
    guarded(ctx, logger, 'start', async () => {
      const { lang, out } = ctxInfo(ctx);
      const hello = t(lang, '👋 Hello! ', '👋 Bonjour ! ');
      await out.sendHtml(hello + helpText(deps, lang));
    }),
  );

  command('help', (ctx) =>
    guarded(ctx, logger, 'help', async () => {
      const { lang, out } = ctxInfo(ctx);
      await out.sendHtml(helpText(deps, lang));
    }),
  );

  command('mode', (ctx) =>
    guarded(ctx, logger, 'mode', async () => {
      const { lang, out } = ctxInfo(ctx);
      const target = ctx.match.trim();
      if (target) {
        // Not awaited: a model load can take minutes and the chat must stay responsive.
        void switchWithProgress(
          core,
          out,
          target,
          { source: 'command', by: String(ctx.from?.id), lang },
          lang,
        ).catch((err: unknown) => logger.error({ err }, 'switch from /mode failed'));
        return;
      }
      await showModeMenu(deps, out, lang);
    }),
  );

  bot.callbackQuery(ownData('mode:'), (ctx) =>
    guarded(ctx, logger, 'mode', async () => {
      const { lang, out } = ctxInfo(ctx);
      const parsed = modeCallbackSchema.safeParse(ctx.callbackQuery.data);
      const messageId = ctx.callbackQuery.message?.message_id;
      if (!parsed.success || messageId === undefined) {
        await ctx.answerCallbackQuery();
        return;
      }
      await ctx.answerCallbackQuery({ text: `→ ${parsed.data}` });
      void switchWithProgress(
        core,
        out,
        parsed.data,
        { source: 'keyboard', by: String(ctx.from.id), lang },
        lang,
        messageId,
      ).catch((err: unknown) => logger.error({ err }, 'switch from the keyboard failed'));
    }),
  );

  command('usage', (ctx) =>
    guarded(ctx, logger, 'usage', async () => {
      const { lang, out } = ctxInfo(ctx);
      const chart = chartPeriodOf(ctx.match);
      if (chart !== undefined)
        await sendUsageChart(ctx.api, out, core.ledger, chart, lang, Date.now(), core.meter.reading());
      else {
        const limit = limitLines(core.limits.state(), core.config.usageLimit.fallbackMode, lang);
        const credit = creditLines(core.meter.reading(), lang);
        await out.sendHtml(usageView(core.ledger, ctx.match, lang, Date.now(), [...limit, ...credit]));
      }
    }),
  );

  command('creds', (ctx) =>
    guarded(ctx, logger, 'creds', async () => {
      const { lang, out } = ctxInfo(ctx);
      await out.sendHtml(await credsView(core.config.claude.credentialsFile, core.kv, lang));
    }),
  );

  command('status', (ctx) =>
    guarded(ctx, logger, 'status', async () => {
      const { lang, out } = ctxInfo(ctx);
      await out.sendHtml(await statusView(core, deps.front?.status(), lang));
    }),
  );

  command('new', (ctx) =>
    guarded(ctx, logger, 'new', async () => {
      const { chatId, topicId, turnKey, lang, out } = ctxInfo(ctx);
      if (turns.busy(turnKey)) {
        await out.sendHtml(
          t(
            lang,
            `${PROXY_TAG} A fresh conversation starts once the current answer is done (/stop cuts it short).`,
            `${PROXY_TAG} Une nouvelle conversation commencera après la réponse en cours (/stop pour l’interrompre).`,
          ),
        );
      }
      // Through the chat's queue, so an answer still running cannot write into the fresh history.
      turns.submit(
        turnKey,
        async () => {
          route.reset(chatId, topicId);
          await out.sendHtml(
            t(
              lang,
              `${PROXY_TAG} 🆕 Fresh conversation: your next message starts a new session.`,
              `${PROXY_TAG} 🆕 Nouvelle conversation : votre prochain message ouvre une nouvelle session.`,
            ),
          );
        },
        undefined,
        (err) => logger.error({ err, chatId }, '/new failed'),
      );
    }),
  );

  command('stop', (ctx) =>
    guarded(ctx, logger, 'stop', async () => {
      const { turnKey, lang, out } = ctxInfo(ctx);
      const stopped = turns.stop(turnKey);
      const waiting = Math.max(0, turns.depth(turnKey) - (stopped ? 1 : 0));
      const next = waiting
        ? t(lang, ` ${waiting} queued message(s) follow.`, ` ${waiting} message(s) en attente suivent.`)
        : '';
      await out.sendHtml(
        stopped
          ? t(
              lang,
              `${PROXY_TAG} ⏹ Stopped the answer in progress.`,
              `${PROXY_TAG} ⏹ Réponse en cours arrêtée.`,
            ) + next
          : t(lang, `${PROXY_TAG} Nothing is running.`, `${PROXY_TAG} Rien n’est en cours.`) + next,
      );
    }),
  );
}

export async function showModeMenu(deps: BotDeps, out: ChatOutput, lang: Lang): Promise<void> {
  const menu = modeMenu(await deps.core.chat.statusLines(3000), lang);
  await out.sendHtml(menu.html, { keyboard: menu.keyboard });
}
