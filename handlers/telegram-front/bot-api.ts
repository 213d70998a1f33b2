/**
 * Answers in the Bot API's own shapes, so a grammY client (OpenClaw's
 * Telegram channel) treats what the front says exactly like what Telegram says.
 */

export interface BotApiAnswer {
  status: number;
  /** JSON text. */
  body: string;
}

export function apiResult(result: unknown): BotApiAnswer {
  return { status: 200, body: `{"ok":true,"result":${JSON.stringify(result)}}` };
}

export function apiError(
  code: number,
  description: string,
  parameters?: { retry_after?: number },
): BotApiAnswer {
  return {
    status: code,
    body: JSON.stringify({ ok: false, error_code: code, description, ...(parameters ? { parameters } : {}) }),
  };
}

/** What Telegram answers to a wrong token, word for word. */
export const UNAUTHORIZED = apiError(401, 'Unauthorized');
export const NOT_FOUND = apiError(404, 'Not Found');

/** Update types Telegram sends only to a poller that names them in `allowed_updates`. */
export const OPT_IN_TYPES: readonly string[] = ['chat_member', 'message_reaction', 'message_reaction_count'];

/**
 * Every update type of the Bot API, as grammY's `API_CONSTANTS.ALL_UPDATE_TYPES` lists them. A
 * copy, because importing grammY here would load all of it (node:https with it) before brainstem
 * listens; test/front-methods.test.ts checks it against grammY's, so an upgrade that brings a new
 * type says so.
 */
export const ALL_UPDATE_TYPES: readonly string[] = [
  'message',
  'edited_message',
  'channel_post',
  'edited_channel_post',
  'business_connection',
  'business_message',
  'edited_business_message',
  'deleted_business_messages',
  'guest_message',
  'stopped_message_generation',
  'inline_query',
  'chosen_inline_result',
  'callback_query',
  'shipping_query',
  'pre_checkout_query',
  'purchased_paid_media',
  'poll',
  'poll_answer',
  'my_chat_member',
  'managed_bot',
  'chat_join_request',
  'chat_boost',
  'removed_chat_boost',
  'subscription',
  ...OPT_IN_TYPES,
];

/** What Telegram sends a poller that names no type (or `[]`). */
export const DEFAULT_UPDATE_TYPES: readonly string[] = ALL_UPDATE_TYPES.filter(
  (t) => !OPT_IN_TYPES.includes(t),
);

const UPDATE_TYPES: ReadonlySet<string> = new Set(ALL_UPDATE_TYPES);
/** How Telegram names its update types. */
const TYPE_NAME = /^[a-z][a-z0-9_]*$/;

/**
 * An `allowed_updates` list as the front matches it: names in any case (a
 * client's `MESSAGE` is Telegram's `message`, not a type that matches
 * nothing). A name of no type brainstem knows, but shaped like one, is kept
 * (`newer`): OpenClaw's grammY may be newer than brainstem's, and Telegram
 * has the type; Telegram ignores it otherwise, and so does the queue, which
 * then never gets such an update. Anything else is ignored, as Telegram does;
 * a list with no known name left means Telegram's default set, as `[]` does.
 */
export function updateTypes(names: readonly string[]): {
  types: string[];
  newer: string[];
  ignored: string[];
} {
  const lower = [...new Set(names.map((n) => n.toLowerCase()))];
  const known = lower.filter((n) => UPDATE_TYPES.has(n));
  const newer = known.length === 0 ? [] : lower.filter((n) => !UPDATE_TYPES.has(n) && TYPE_NAME.test(n));
  return {
    types: [...known, ...newer].sort(),
    newer,
    ignored: [
      ...new Set(names.filter((n) => !known.includes(n.toLowerCase()) && !newer.includes(n.toLowerCase()))),
    ],
  };
}

/** An update's type: its one field besides `update_id`. */
export function updateKind(update: object): string {
  return Object.keys(update).find((k) => k !== 'update_id') ?? 'unknown';
}

const BOT_PATH = /(\/(?:file\/)?bot)[^/\s?#]+/gi;

/**
 * A bot token never leaves in a log line or an error: `/bot<token>` and
 * `/file/bot<token>` become `<redacted>`, whatever the case of `bot`, and also
 * when the path was percent-encoded (a client's typo must not log the secret).
 */
export function redactBotPaths(text: string): string {
  const plain = text.replace(/%[0-9a-f]{2}/gi, (h) => String.fromCharCode(Number.parseInt(h.slice(1), 16)));
  const redacted = plain.replace(BOT_PATH, '$1<redacted>');
  return redacted === plain ? text : redacted;
}

/** A request path for the log: bot paths redacted, and the bot token's secret wherever else it stands. */
export function loggedPath(url: string, botToken: string | undefined): string {
  const path = redactBotPaths(url.split('?')[0] ?? '');
  const secret = botToken?.split(':')[1];
  if (!secret) return path;
  return [secret, encodeURIComponent(secret)].reduce((p, s) => p.split(s).join('<redacted>'), path);
}
