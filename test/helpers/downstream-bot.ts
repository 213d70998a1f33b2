/**
 * A second grammY bot playing OpenClaw's Telegram channel against brainstem's
 * Bot API front: the same token, `client.apiRoot` set to the front, polled by
 * @grammyjs/runner with @grammyjs/auto-retry, as OpenClaw runs it. It keeps
 * every update it receives and every raw answer its API calls got (before
 * auto-retry, so a 429 shows with its retry_after).
 *
 *   const oc = await startDownstream(`${service.url}/telegram`, tg.token);
 *   oc.received            updates, in the order handled
 *   oc.answers             { method, ok, error_code?, retry_after? } per raw call
 *   oc.bot.on(…)           handlers of the test's own, run after the update is recorded
 *   await oc.stop()
 */
import { autoRetry } from '@grammyjs/auto-retry';
import { type RunnerHandle, run } from '@grammyjs/runner';
import { API_CONSTANTS, Bot } from 'grammy';
import type { Update } from 'grammy/types';

/** OpenClaw asks for Telegram's default set plus reactions. */
export const DOWNSTREAM_UPDATES = [...API_CONSTANTS.DEFAULT_UPDATE_TYPES, 'message_reaction'] as const;

/** A few of OpenClaw's own commands, /usage among them (brainstem's shadows it). */
export const DOWNSTREAM_COMMANDS = [
  { command: 'new', description: 'Start a new session' },
  { command: 'stop', description: 'Stop the current run' },
  { command: 'status', description: 'Show session status' },
  { command: 'help', description: 'Show help' },
  { command: 'model', description: 'Show or set the model' },
  { command: 'usage', description: 'Token usage of this session' },
];

export interface RawAnswer {
  method: string;
  ok: boolean;
  error_code?: number;
  retry_after?: number;
}

export interface Downstream {
  bot: Bot;
  received: Update[];
  answers: RawAnswer[];
  stop(): Promise<void>;
}

export async function startDownstream(
  apiRoot: string,
  token: string,
  opts: { commands?: boolean } = {},
): Promise<Downstream> {
  const bot = new Bot(token, { client: { apiRoot } });
  const answers: RawAnswer[] = [];
  // Installed first, so it sits under auto-retry and sees every answer as it came.
  bot.api.config.use(async (prev, method, payload, signal) => {
    const res = await prev(method, payload, signal);
    if (method !== 'getUpdates') {
      answers.push({
        method,
        ok: res.ok,
        ...(res.ok ? {} : { error_code: res.error_code, retry_after: res.parameters?.retry_after }),
      });
    }
    return res;
  });
  bot.api.config.use(autoRetry({ maxRetryAttempts: 3 }));
  const received: Update[] = [];
  // Kept first; a test may add handlers of its own after this one.
  bot.use((ctx, next) => {
    received.push(ctx.update);
    return next();
  });
  await bot.init();
  await bot.api.deleteWebhook();
  if (opts.commands !== false) {
    await bot.api.setMyCommands(DOWNSTREAM_COMMANDS);
    await bot.api.setMyCommands(DOWNSTREAM_COMMANDS, { scope: { type: 'all_group_chats' } });
  }
  const handle: RunnerHandle = run(bot, {
    runner: { fetch: { allowed_updates: DOWNSTREAM_UPDATES, timeout: 30 }, silent: true },
  });
  return {
    bot,
    received,
    answers,
    stop: async () => {
      if (handle.isRunning()) await handle.stop();
    },
  };
}
