import { API_CONSTANTS } from 'grammy';

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

export function apiError(code: number, description: string): BotApiAnswer {
  return { status: code, body: JSON.stringify({ ok: false, error_code: code, description }) };
}

/** What Telegram answers to a wrong token, word for word. */
export const UNAUTHORIZED = apiError(401, 'Unauthorized');
export const NOT_FOUND = apiError(404, 'Not Found');

/** Update types Telegram sends only to a poller that names them in `allowed_updates`. */
export const OPT_IN_TYPES: readonly string[] = ['chat_member', 'message_reaction', 'message_reaction_count'];

const UPDATE_TYPES: ReadonlySet<string> = new Set(API_CONSTANTS.ALL_UPDATE_TYPES);

/**
 * An `allowed_updates` list as the front matches it: names in any case (a
 * client's `MESSAGE` is Telegram's `message`, not a type that matches
 * nothing), and, as Telegram does, names of no update type ignored; a list
 * left empty then means Telegram's default set, as `[]` does.
 */
export function updateTypes(names: readonly string[]): { types: string[]; ignored: string[] } {
  const lower = names.map((n) => n.toLowerCase());
  return {
    types: [...new Set(lower.filter((n) => UPDATE_TYPES.has(n)))].sort(),
    ignored: [...new Set(names.filter((n) => !UPDATE_TYPES.has(n.toLowerCase())))],
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
