import type { Bot } from 'grammy';
import { sayThrown } from '../../../src/errors.js';
import { upgradedSessions } from '../../../src/former-chats.js';
import { type Lang, langOf, t } from '../../../src/i18n.js';
import { loadsOnSwitch } from '../../../src/modes.js';
import { PROXY_TAG } from '../../../src/notices.js';
import type { BotDeps } from '../deps.js';
import { escapeHtml } from '../format/render.js';
import { outputFor } from '../route/topic.js';
import type { ChatOutput } from '../send/output.js';
import { answerPress } from '../send/press.js';
import { creditLines } from '../views/credit.js';
import { credsView } from '../views/creds.js';
import { helpHtml } from '../views/help.js';
import { limitLines } from '../views/limit.js';
import { statusView } from '../views/status.js';
import { usageView } from '../views/usage.js';
import { chartPeriodOf, sendUsageChart } from '../views/usage-chart.js';
import { ownData } from './callback-data.js';
import { type BotCommandHandler, guarded } from './handler.js';
import { modeCallbackSchema, modeMenu } from './mode-keyboard.js';

/**
 * The handlers of the commands the bot answers itself (not the tools'):
 * table.ts gives each its name, menu line and lane. Each answers in the
 * chat it came from, in the user's language.
 */

const start: BotCommandHandler = async (_ctx, { deps, lang, out, menu }) => {
  const hello = t(lang, '👋 Hello! ', '👋 Bonjour ! ');
  await out.sendHtml(hello + helpHtml(deps, lang, menu));
};

const help: BotCommandHandler = async (_ctx, { deps, lang, out, menu }) => {
  await out.sendHtml(helpHtml(deps, lang, menu));
};

const mode: BotCommandHandler = async (ctx, { deps, lang, out }) => {
  const target = ctx.match.trim();
  if (target) {
    // Not awaited: a model load can take minutes and the chat must stay responsive.
    deps.switches.run(out, target, { source: 'command', by: String(ctx.from?.id), lang }, lang);
    return;
  }
  await showModeMenu(deps, out, lang);
};

const usage: BotCommandHandler = async (ctx, { deps: { core }, lang, out }) => {
  const chart = chartPeriodOf(ctx.match);
  if (chart !== undefined)
    await sendUsageChart(out, core.ledger, chart, lang, Date.now(), core.meter.reading());
  else {
    const limit = limitLines(core.limits.state(), core.config.usageLimit.fallbackMode, lang);
    const credit = creditLines(core.meter.reading(), lang);
    // A group upgraded to a supergroup is one conversation: its turns are counted as the supergroup's.
    const renamed = upgradedSessions(core.kv);
    await out.sendHtml(usageView(core.ledger, ctx.match, lang, Date.now(), [...limit, ...credit], renamed));
  }
};

const creds: BotCommandHandler = async (_ctx, { deps: { core }, lang, out }) => {
  await out.sendHtml(
    await credsView(
      core.config.claude.credentialsFile,
      core.kv,
      lang,
      Date.now(),
      core.config.claude.env,
      core.modes.all,
    ),
  );
};

const status: BotCommandHandler = async (_ctx, { deps, lang, out }) => {
  await out.sendHtml(await statusView(deps.core, deps.front?.status(), lang), { lang });
};

const fresh: BotCommandHandler = async (
  _ctx,
  { deps: { turns, route, logger }, chatId, topicId, turnKey, lang, out },
) => {
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
      try {
        route.reset(chatId, topicId);
      } catch (err) {
        // Nothing was reset (the history is cleared first): said, or the user thinks it was.
        logger.error({ err, chatId }, '/new failed');
        const why = escapeHtml(sayThrown(err, lang));
        await out.sendHtml(
          t(
            lang,
            `${PROXY_TAG} ⚠️ /new failed: ${why}. The conversation goes on as it was; send /new again in a moment.`,
            `${PROXY_TAG} ⚠️ /new a échoué : ${why}. La conversation continue telle quelle ; renvoyez /new dans un instant.`,
          ),
        );
        return;
      }
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
};

const stop: BotCommandHandler = async (ctx, { deps: { turns }, turnKey, lang, out }) => {
  const stopped = turns.stop(turnKey, ctx.update.update_id);
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
};

export const controlHandlers = { start, help, mode, usage, creds, status, new: fresh, stop };

/** The mode keyboard's buttons (the menu /mode shows). */
export function registerModeButtons(bot: Bot, deps: BotDeps): void {
  bot.callbackQuery(ownData('mode:'), (ctx, next) => {
    const parsed = modeCallbackSchema.safeParse(ctx.callbackQuery.data);
    const messageId = ctx.callbackQuery.message?.message_id;
    // No mode id there can be (an older version's button), or no message to show the switch in:
    // answered as any button no handler takes, with a word, not a silent toast.
    if (!parsed.success || messageId === undefined) return next();
    return guarded(ctx, deps.logger, 'mode', async () => {
      const lang = langOf(ctx.from?.language_code);
      const out = outputFor(ctx);
      const trigger = { source: 'keyboard' as const, by: String(ctx.from.id), lang };
      await answerPress(ctx, deps.logger, {
        text: deps.switches.press(out, parsed.data, trigger, lang, messageId),
      });
    });
  });
}

export async function showModeMenu(deps: BotDeps, out: ChatOutput, lang: Lang): Promise<void> {
  const menu = modeMenu(await deps.core.chat.statusLines(3000), lang, (m) =>
    loadsOnSwitch(deps.core.config.llama, m),
  );
  await out.sendHtml(menu.html, { keyboard: menu.keyboard });
}
