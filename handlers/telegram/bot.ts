import { autoRetry } from '@grammyjs/auto-retry';
import { type RunnerHandle, run } from '@grammyjs/runner';
import { Bot, GrammyError, HttpError, type Transformer } from 'grammy';
import type { ApiResponse, Update } from 'grammy/types';
import { z } from 'zod';
import type { Logger } from '../../src/logger.js';
import { type Clock, Throttler } from './throttle.js';

type UpdateType = Exclude<keyof Update, 'update_id'>;

/**
 * The update types brainstem's own handlers take, so Telegram sends nothing
 * else (channel posts and the rest are never fetched). On the direct route
 * that includes edited messages (route/edits.ts answers them). With the front
 * on, an edit is OpenClaw's (route/inbound-split.ts), asked of Telegram only
 * when OpenClaw's channel asks for it (telegram-front/intake.ts adds these to
 * OpenClaw's list).
 */
export function allowedUpdates(front: boolean): readonly UpdateType[] {
  return front ? ['message', 'callback_query'] : ['message', 'edited_message', 'callback_query'];
}

/**
 * Whether a call is one of the messages Telegram counts against a chat's budget (about 20 a
 * minute in a group): a message sent, copied or forwarded, or one changed. Other calls ("typing…",
 * a deletion, a file lookup) are not counted by Telegram; throttled like messages, a topic's
 * "typing…" every few seconds would spend the group's budget and hold the final texts behind it.
 */
export function countedByTelegram(method: string): boolean {
  if (method === 'sendChatAction') return false;
  return /^(send|edit|copy|forward|stop)/.test(method);
}

/** The chat a call goes to; none for the calls that do not name one (getUpdates, answerCallbackQuery). */
function chatOf(payload: object): number | string | undefined {
  return 'chat_id' in payload ? (payload.chat_id as number | string | undefined) : undefined;
}

/** A 429's retry_after, in ms: how long Telegram asks to wait before the call is made again. */
function rateLimited(answer: ApiResponse<unknown>): number | undefined {
  if (answer.ok || answer.error_code !== 429) return undefined;
  const seconds = answer.parameters?.retry_after;
  return typeof seconds === 'number' ? seconds * 1000 : undefined;
}

/**
 * The longest 429 the answer to a button press waits out. Telegram takes the answer only for
 * about 15 s after the press, and the chat's later presses wait for it (one lane per chat):
 * a longer retry_after was waited out for an answer Telegram then refused as too old, every
 * press after it held as long. Past this, the answer is given up (send/press.ts logs it).
 */
const PRESS_ANSWER_MAX_WAIT_S = 5;

/**
 * The grammY bot with its outgoing API pipeline. A 429's retry_after is waited
 * out however long (dropping it would lose the final text); auto-retry
 * retries 5xx a bounded number of times and network failures until they pass. Not
 * "typing…": it is worth its moment only (the indicator repeats every few
 * seconds), and sent again after a failure it could reach Telegram after the
 * answer, which would then show "typing…" under it.
 *
 * The throttler (throttle.ts), outermost, keeps the messages within Telegram's
 * global and per-group budgets, a chat's messages in their order, and each
 * behind the "typing…" already on its way to its chat; other calls go straight
 * out. A message retried keeps its chat's place until it is through: retried
 * from outside the throttler, it went back to the end of its chat's queue,
 * behind the messages sent after it. Its 429s are the throttler's to wait out,
 * so it gives back its slot of the bot's 30 meanwhile and only its chat waits
 * (throttle.ts); auto-retry, inside, leaves them to it.
 */
export function createBot(
  token: string,
  apiRoot: string | undefined,
  opts: { clock?: Clock; logger?: Logger } = {},
): Bot {
  const bot = new Bot(token, apiRoot ? { client: { apiRoot } } : {});
  // Innermost: a call moved to a group's new id is retried and paced like any other.
  bot.api.config.use(followUpgrades(opts.logger));
  const retry = autoRetry({ maxRetryAttempts: 6 });
  // Tried again twice at most for a 5xx (3 s, then 6 s): within the press's life.
  const pressAnswer = autoRetry({ maxRetryAttempts: 2, maxDelaySeconds: PRESS_ANSWER_MAX_WAIT_S });
  // No retry_after is at most -1 s: every 429 is handed back as it came.
  const retryButRateLimits = autoRetry({ maxRetryAttempts: 6, maxDelaySeconds: -1 });
  bot.api.config.use((prev, method, payload, signal) => {
    // getMe is retried by startPolling, which logs each failure: auto-retry's pauses (3 s, doubling,
    // six times) would keep a Telegram out of reach at start silent for minutes.
    if (method === 'sendChatAction' || method === 'getMe') return prev(method, payload, signal);
    if (method === 'answerCallbackQuery') return pressAnswer(prev, method, payload, signal);
    const paced = chatOf(payload) !== undefined && countedByTelegram(method);
    return (paced ? retryButRateLimits : retry)(prev, method, payload, signal);
  });
  // Installed last, so it runs first (grammY wraps each transformer around those installed before it).
  const throttler = new Throttler(opts.clock);
  bot.api.config.use((prev, method, payload, signal) => {
    const chatId = chatOf(payload);
    const call = () => prev(method, payload, signal);
    if (chatId === undefined) return call();
    // grammY types its signals with the abort-controller shim; Node's own signal is what it uses at run time.
    const given = signal as unknown as AbortSignal | undefined;
    if (countedByTelegram(method))
      return throttler.schedule(chatId, call, { retryAfter: rateLimited, signal: given });
    return method === 'sendChatAction' ? throttler.action(chatId, call) : call();
  });
  return bot;
}

/** Telegram's answer to a call naming a group upgraded to a supergroup: where the group now is. */
const upgradeAnswer = z.object({
  ok: z.literal(false),
  parameters: z.object({ migrate_to_chat_id: z.number().int() }),
});

/** A call that creates a message (or shows "typing…") and so can go to the new chat as it is. */
const createsMessage = (method: string) => /^send/.test(method);

/**
 * A basic group upgraded to a supergroup (made public, given topics, grown
 * past its limit) has a new chat id, and Telegram refuses every call naming
 * the old one (400 "group chat was upgraded to a supergroup chat", the new id
 * in parameters.migrate_to_chat_id): an answer under way, a "queued" notice,
 * a notice for that chat, all were lost. A message to send goes to the new id
 * instead, from then on at once, without the reply to a message of the old
 * chat (its id there names another message). An edit or a deletion is left
 * refused: the message is in the old chat, which no longer takes changes
 * (output.ts isGone: the text is sent again as a new message, which follows).
 */
function followUpgrades(logger: Logger | undefined): Transformer {
  const movedTo = new Map<number | string, number>();
  const moved = <P>(payload: P, to: number): P => {
    const { reply_parameters: _old, ...rest } = payload as Record<string, unknown>;
    return { ...rest, chat_id: to } as P;
  };
  return async (prev, method, payload, signal) => {
    const chatId = chatOf(payload);
    if (chatId === undefined) return prev(method, payload, signal);
    const known = movedTo.get(chatId);
    if (known !== undefined && createsMessage(method)) return prev(method, moved(payload, known), signal);
    const answer = await prev(method, payload, signal);
    const upgrade = upgradeAnswer.safeParse(answer);
    if (!upgrade.success) return answer;
    const to = upgrade.data.parameters.migrate_to_chat_id;
    if (!movedTo.has(chatId))
      logger?.warn(
        { chatId, newChatId: to },
        'a Telegram group became a supergroup with a new id: messages for it go there now; if telegram.notifyChats names the old id, put the new one there',
      );
    movedTo.set(chatId, to);
    return createsMessage(method) ? prev(method, moved(payload, to), signal) : answer;
  };
}

/** The pause before polling again after the runner ended (a 409, a long outage), growing to the last. */
const RESTART_PAUSES_MS = [2_000, 4_000, 8_000, 15_000, 30_000, 60_000];
/** Polling that ran this long before it ended starts the pauses over. */
const STEADY_MS = 5 * 60_000;

/**
 * Starts long polling once the bot's identity is known. Telegram may be out
 * of reach when brainstem starts: getMe is retried with a growing pause
 * instead of failing the whole service. When the runner ends (a 409: another
 * program polled this token, say OpenClaw's channel not yet pointed at the
 * front; or hours without Telegram), polling starts again after a pause,
 * since brainstem must stay the poller, and each time the log says what to
 * fix. A refused token ends it for good. Returns how to stop it.
 */
export function startPolling(
  bot: Bot,
  logger: Logger,
  allowed: readonly UpdateType[],
): { stop(): Promise<void> } {
  let handle: RunnerHandle | undefined;
  // Aborted on stop: ends a pause between attempts and any call still retrying.
  const stopping = new AbortController();
  const { signal } = stopping;
  // grammY types its signals with the abort-controller shim; Node's own signal is what it uses at run time.
  const grammySignal = signal as unknown as Parameters<Bot['init']>[0];
  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done);
    });

  const starting = (async () => {
    for (let delay = 1000; !signal.aborted; delay = Math.min(delay * 2, 60_000)) {
      try {
        // Not bot.init(): it retries a network failure or a 5xx for ever, silently (grammY's own
        // backoff), so an unreachable Telegram never reached the log line below.
        bot.botInfo = await bot.api.getMe(grammySignal);
        break;
      } catch (err) {
        if (signal.aborted) return;
        if (refusedToken(err)) {
          // No "token:" before the advice: the log's scrubber takes `token: …` for a header and
          // hides all that follows (src/redact.ts), the advice with it.
          logger.error(
            { err: err.message },
            'Telegram refused the bot token; check TELEGRAM_BOT_TOKEN (telegram.token) against @BotFather (/token shows it, /revoke makes a new one); the bot stays off until brainstem restarts with a good one',
          );
          return;
        }
        logger.warn({ err: failure(err), retryInMs: delay }, 'Telegram getMe failed; retrying');
        await pause(delay);
      }
    }
    if (signal.aborted) return;
    await bot.api
      .deleteWebhook(undefined, grammySignal)
      .catch((err: Error) => logger.warn({ err: err.message }, 'deleteWebhook failed'));
    // The runner's own report of a failed fetch is a stack trace on stderr: a log line instead.
    // Telegram's refusals come back as answers (grammY throws them later), a network failure as a throw.
    bot.api.config.use(async (prev, method, payload, callSignal) => {
      const failed = (why: string, code?: number) => {
        if (method !== 'getUpdates' || signal.aborted || code === 409 || code === 401 || code === 404) return;
        logger.warn({ err: why, code }, 'Telegram getUpdates failed; trying again');
      };
      try {
        const res = await prev(method, payload, callSignal);
        if (!res.ok) failed(res.description, res.error_code);
        return res;
      } catch (err) {
        failed(failure(err));
        throw err;
      }
    });
    for (let failures = 0; !signal.aborted; ) {
      const started = Date.now();
      handle = run(bot, {
        // A fixed pause between failed fetches: the runner's own doubles without bound, and stop() waits it out.
        runner: {
          fetch: { allowed_updates: allowed, timeout: 30 },
          silent: true,
          retryInterval: 5_000,
        },
      });
      logger.info({ bot: bot.botInfo.username }, 'Telegram bot polling');
      const err = await handle.task()?.then(
        () => undefined,
        (e: unknown) => e,
      );
      if (signal.aborted || err === undefined) return;
      if (refusedToken(err)) {
        logger.error(
          { err: err.message },
          'Telegram polling stopped: the bot token was refused (revoked?); check TELEGRAM_BOT_TOKEN',
        );
        return;
      }
      if (Date.now() - started > STEADY_MS) failures = 0;
      const delay = RESTART_PAUSES_MS[Math.min(failures++, RESTART_PAUSES_MS.length - 1)] ?? 60_000;
      logger.error(
        { err: (err as Error).message, retryInMs: delay },
        err instanceof GrammyError && err.error_code === 409
          ? 'another program polled this bot token (409 Conflict): only brainstem may poll it; point OpenClaw at the Bot API front (channels.telegram.apiRoot, see the README) and stop any other copy. Polling again'
          : 'Telegram polling ended; polling again',
      );
      await pause(delay);
    }
  })();

  return {
    async stop() {
      stopping.abort();
      // The start waits on the runner's task: the runner stops first.
      if (handle?.isRunning()) await handle.stop();
      await starting;
    },
  };
}

/**
 * What a failed call says, for the log. grammY's network error says only "Network request for
 * 'getMe' failed!": the reason is in the fetch error it wraps ("request to <url> failed, reason:
 * connect ECONNREFUSED …", getaddrinfo ENOTFOUND, a certificate's), without which the owner cannot
 * tell a wrong TELEGRAM_API_ROOT from a firewall or a DNS failure. Only the reason is taken, not
 * the URL, which holds the bot token; a reason Node left empty (an AggregateError of every address
 * tried) gives its code instead.
 */
function failure(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  if (!(err instanceof HttpError)) return message;
  const inner = err.error as { message?: unknown; code?: unknown } | null | undefined;
  const said =
    typeof inner?.message === 'string' ? /reason: ([\s\S]*)$/.exec(inner.message)?.[1]?.trim() : '';
  const reason = said || (typeof inner?.code === 'string' ? inner.code : '');
  return reason ? `${message} (${reason})` : message;
}

/** Telegram's answer to a wrong token: 401, or 404 when it is not even shaped like one. */
function refusedToken(err: unknown): err is GrammyError {
  return err instanceof GrammyError && (err.error_code === 401 || err.error_code === 404);
}
