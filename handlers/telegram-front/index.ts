import type { Transformer } from 'grammy';
import type { Update } from 'grammy/types';
import type { Core } from '../../src/core.js';
import { html } from '../../src/html.js';
import { noticeLang, t } from '../../src/i18n.js';
import type { Logger } from '../../src/logger.js';
import type { RouteSet } from '../http/server.js';
import { CommandsMerge } from './commands-merge.js';
import { frontIntake, type Split } from './intake.js';
import { localMethods } from './local-methods.js';
import { NoticeDedupe } from './notice-dedupe.js';
import { Passthrough } from './passthrough.js';
import { frontRoutes } from './routes.js';
import { StallWatch } from './stall-watch.js';
import { UpdateQueue } from './update-queue.js';

/**
 * The Bot API front: a Bot API root OpenClaw's own Telegram channel uses
 * (`channels.telegram.apiRoot`) while brainstem stays the only poller of the
 * real Telegram. brainstem keeps its own updates; OpenClaw gets every other
 * one from a durable queue, and its calls pass through to Telegram.
 */

export type { Split } from './intake.js';

export interface FrontStatus {
  /** When OpenClaw last called getUpdates (persisted across restarts). */
  lastPolledAt: number | undefined;
  /** A getUpdates is waiting right now. */
  polling: boolean;
  waiting: number;
  oldestAt: number | undefined;
  /** Since when updates wait with nobody fetching them (the notify chats were told). */
  stalledSince: number | undefined;
}

export interface Front {
  routes: RouteSet;
  /** The transformer for brainstem's own bot: see intake.ts. */
  intake(split: (update: Update) => Split, own: readonly string[]): Transformer;
  /** brainstem's own command menu goes through here, merged with OpenClaw's. */
  commands: CommandsMerge;
  status(): FrontStatus;
  stop(): Promise<void>;
}

export interface FrontOptions {
  core: Core;
  token: string;
  /** The real Bot API root. */
  apiRoot: string;
  logger: Logger;
  /** The command names brainstem answers while the front is on. */
  ownCommands: ReadonlySet<string>;
  /** Where brainstem sends its notices itself (OpenClaw's copies are taken out there). */
  notifyChats: readonly number[];
}

export function createFront(opts: FrontOptions): Front {
  const { core, token, logger } = opts;
  const { prefix, stallNoticeMs } = core.config.telegram.front;
  const log = logger.child({ part: 'telegram-front' });
  const queue = new UpdateQueue(core.db, core.kv, core.kept, log);
  const passthrough = new Passthrough(opts.apiRoot, token);
  const commands = new CommandsMerge(
    core.db,
    core.kept,
    (m, p) => passthrough.call(m, p),
    log,
    opts.ownCommands,
    (left) =>
      core.notifier.notify({
        kind: 'front',
        // Once for each set of commands left out, whichever scope or language it happened in.
        dedupeKey: `front:menu-full:${left.join(' ')}`,
        text: t(
          noticeLang(core.kv),
          html`📋 Telegram's command menu holds 100 commands, and OpenClaw's with brainstem's are more: ${left.join(' ')} are left out of it. They still work when typed.`,
          html`📋 Le menu des commandes de Telegram en contient 100, et celles d’OpenClaw avec celles de brainstem sont plus nombreuses : ${left.join(' ')} n’y figurent pas. Elles marchent toujours si on les tape.`,
        ),
      }),
  );
  const local = localMethods({ queue, commands, logger: log });
  const dedupe = new NoticeDedupe(core, new Set(opts.notifyChats));
  const stall = new StallWatch(queue, core, stallNoticeMs, log);

  return {
    routes: frontRoutes({
      prefix,
      token,
      local,
      passthrough,
      rewrite: dedupe,
      uploadIdleMs: core.config.server.requestTimeoutMs,
      stopping: () => queue.isClosed(),
      logger: log,
    }),
    intake: (split, own) => frontIntake({ queue, own, split, logger: log }),
    commands,
    status() {
      const w = queue.waiting();
      return {
        lastPolledAt: queue.lastPolledAt,
        polling: queue.polling > 0,
        waiting: w.count,
        oldestAt: w.oldestAt,
        stalledSince: stall.stall()?.since,
      };
    },
    async stop() {
      stall.stop();
      commands.close();
      queue.close();
      dedupe.close();
      await passthrough.close();
    },
  };
}
