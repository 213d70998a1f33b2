import { autoRetry } from '@grammyjs/auto-retry';
import { type RunnerHandle, run } from '@grammyjs/runner';
import { apiThrottler } from '@grammyjs/transformer-throttler';
import { Bot } from 'grammy';
import type { Logger } from '../../src/logger.js';

/** Only what the bot handles; edits, channel posts and the rest are never fetched. */
export const ALLOWED_UPDATES = ['message', 'callback_query'] as const;

/**
 * The grammY bot with its outgoing API pipeline. The throttler keeps within
 * Telegram's global and per-group budgets (the stream sender paces its own
 * edits, so private chats only get a light spacing); auto-retry, outermost,
 * waits out a 429's retry_after however long (dropping it would lose the
 * final text), and retries 5xx and network failures a bounded number of times.
 */
export function createBot(token: string, apiRoot: string | undefined): Bot {
  const bot = new Bot(token, apiRoot ? { client: { apiRoot } } : {});
  bot.api.config.use(
    apiThrottler({
      global: { reservoir: 30, reservoirRefreshAmount: 30, reservoirRefreshInterval: 1000 },
      group: {
        maxConcurrent: 1,
        minTime: 1000,
        reservoir: 20,
        reservoirRefreshAmount: 20,
        reservoirRefreshInterval: 60_000,
      },
      out: { maxConcurrent: 1, minTime: 50 },
    }),
  );
  bot.api.config.use(autoRetry({ maxRetryAttempts: 6 }));
  return bot;
}

/**
 * Starts long polling once the bot's identity is known. Telegram may be out
 * of reach when brainstem starts: getMe is retried with a growing pause
 * instead of failing the whole service. Returns how to stop it.
 */
export function startPolling(bot: Bot, logger: Logger): { stop(): Promise<void> } {
  let handle: RunnerHandle | undefined;
  // Aborted on stop: ends a pause between attempts and any call still retrying.
  const stopping = new AbortController();
  const { signal } = stopping;
  // grammY types its signals with the abort-controller shim; Node's own signal is what it uses at run time.
  const grammySignal = signal as unknown as Parameters<Bot['init']>[0];
  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      signal.addEventListener('abort', () => {
        clearTimeout(timer);
        resolve();
      });
    });

  const starting = (async () => {
    for (let delay = 1000; !signal.aborted; delay = Math.min(delay * 2, 60_000)) {
      try {
        await bot.init(grammySignal);
        break;
      } catch (err) {
        if (signal.aborted) return;
        logger.warn({ err: (err as Error).message, retryInMs: delay }, 'Telegram getMe failed; retrying');
        await pause(delay);
      }
    }
    if (signal.aborted) return;
    await bot.api
      .deleteWebhook(undefined, grammySignal)
      .catch((err: Error) => logger.warn({ err: err.message }, 'deleteWebhook failed'));
    if (signal.aborted) return;
    handle = run(bot, { runner: { fetch: { allowed_updates: ALLOWED_UPDATES, timeout: 30 } } });
    logger.info({ bot: bot.botInfo.username }, 'Telegram bot polling');
    handle.task()?.catch((err: Error) => {
      // 401 (token revoked) or 409 (another poller on this token) end polling for good.
      logger.error({ err: err.message }, 'Telegram polling stopped');
    });
  })();

  return {
    async stop() {
      stopping.abort();
      await starting;
      if (handle?.isRunning()) await handle.stop();
    },
  };
}
