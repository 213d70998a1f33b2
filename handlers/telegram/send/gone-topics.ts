import type { Api } from 'grammy';

/**
 * The forum topics that refused a message for good (closed by an admin, or deleted), for each bot:
 * without this, every message meant for such a topic cost one refused call to Telegram before going
 * outside it, for as long as brainstem ran (an answer streamed there, one per update). Remembered,
 * what is meant for the topic goes straight where its refusal sent it (output.ts).
 *
 * A closed topic can be reopened. Telegram then posts a `forum_topic_reopened` service message in
 * it, which forgets the refusal at once (index.ts). A message from inside the topic proves nothing:
 * an admin still writes in a closed one. The reopening can also be missed (brainstem down, or the
 * message handed to OpenClaw only), so a refusal is remembered for GONE_KEPT_MS at most: past that,
 * one send tries the topic again.
 *
 * Keyed by the bot's id (its token's part before ':'), not by the Api object: grammY makes a new Api
 * for each update.
 */

/** How long a topic's refusal stands without a word from Telegram that the topic was reopened. */
export const GONE_KEPT_MS = 10 * 60_000;
/** How many refusing topics each bot remembers; the oldest go first (a later send just tries again). */
const GONE_KEPT = 500;

interface Gone {
  /** Telegram's refusal, thrown again (or quoted in the line saying why) instead of asking again. */
  refusal: unknown;
  until: number;
}

const gone = new Map<string, Map<string, Gone>>();

/** The bot an Api object speaks for. */
export const botOf = (api: Api): string => api.token.split(':')[0] ?? '';
const topicKey = (chatId: number, topicId: number) => `${chatId}:${topicId}`;

/** The topic refused a message for good with `refusal`. */
export function rememberGone(
  api: Api,
  chatId: number,
  topicId: number,
  refusal: unknown,
  now = Date.now(),
): void {
  const topics = gone.get(botOf(api)) ?? new Map<string, Gone>();
  gone.set(botOf(api), topics);
  const key = topicKey(chatId, topicId);
  // Re-inserted: the newest stay when the oldest go.
  topics.delete(key);
  topics.set(key, { refusal, until: now + GONE_KEPT_MS });
  if (topics.size > GONE_KEPT) topics.delete(topics.keys().next().value as string);
}

/** The refusal the topic gave, while it still stands; undefined when it gave none or it lapsed. */
export function goneRefusal(api: Api, chatId: number, topicId: number, now = Date.now()): unknown {
  const topics = gone.get(botOf(api));
  const key = topicKey(chatId, topicId);
  const entry = topics?.get(key);
  if (!entry) return undefined;
  if (now < entry.until) return entry.refusal;
  topics?.delete(key);
  return undefined;
}

/** Telegram said the topic was reopened: what is meant for it goes there again. Whether it was remembered. */
export function forgetGone(api: Api, chatId: number, topicId: number): boolean {
  return gone.get(botOf(api))?.delete(topicKey(chatId, topicId)) ?? false;
}
