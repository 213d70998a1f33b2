import type { Lang } from './i18n.js';

/**
 * One registry of the errors brainstem answers with: a code, the HTTP status,
 * the OpenAI error `type`, and a message a user can act on. Handlers throw
 * `BrainstemError`; the HTTP layer turns it into OpenAI's error shape.
 */
export const errorCodes = {
  UNAUTHORIZED: {
    status: 401,
    type: 'authentication_error',
    message:
      'Missing or wrong Bearer token. Use the token from BRAINSTEM_API_TOKEN or the data dir file api-token.',
  },
  FORBIDDEN_HOST: {
    status: 403,
    type: 'permission_error',
    message:
      'This Host is not one brainstem answers to (its Host-header guard, against rebinding attacks); use 127.0.0.1 or localhost, or add the name to server.allowedHosts.',
  },
  FORBIDDEN_ORIGIN: {
    status: 403,
    type: 'permission_error',
    message:
      'A cross-site request may not change anything here; only pages on an allowed host (server.allowedHosts) may.',
  },
  BAD_JSON: { status: 400, type: 'invalid_request_error', message: 'The request body is not valid JSON.' },
  JSON_TOO_DEEP: {
    status: 400,
    type: 'invalid_request_error',
    message: 'The request body is nested too deeply.',
  },
  INVALID_REQUEST: { status: 400, type: 'invalid_request_error', message: 'The request is not valid.' },
  BODY_TOO_LARGE: { status: 413, type: 'invalid_request_error', message: 'The request body is too large.' },
  UNSUPPORTED_MEDIA_TYPE: {
    status: 415,
    type: 'invalid_request_error',
    message: 'Send the body as uncompressed UTF-8 JSON.',
  },
  UNSUPPORTED_IMAGE: {
    status: 400,
    type: 'invalid_request_error',
    message: 'This image cannot be taken: send a JPEG, PNG, GIF or WebP as a base64 data URL.',
  },
  IMAGES_NOT_TAKEN: {
    status: 400,
    type: 'invalid_request_error',
    message: 'The model of this mode takes no images.',
  },
  UNKNOWN_MODEL: { status: 404, type: 'invalid_request_error', message: 'Unknown model.' },
  // 400, not 409 or 503: OpenAI's SDK would retry those, and only a switch, or another model, helps.
  MODEL_NOT_LOADED: {
    status: 400,
    type: 'invalid_request_error',
    message: "This mode's model is not the one loaded now.",
  },
  UNKNOWN_MODE: { status: 404, type: 'invalid_request_error', message: 'Unknown mode.' },
  NOT_FOUND: { status: 404, type: 'invalid_request_error', message: 'Not found.' },
  SWITCH_FAILED: { status: 409, type: 'server_error', message: 'The mode switch failed.' },
  // Not 401: that is a wrong Bearer token to brainstem (UNAUTHORIZED), and a client reading it so
  // changes its own key (OpenClaw's failover takes 401 for its key refused and asks to re-authenticate
  // it). The brain's own login failing upstream is a gateway's failure, as OpenRouter answers a
  // provider's: 502, not retried (brainFailure), since it fails the same way until it is renewed.
  BRAIN_AUTH: {
    status: 502,
    type: 'server_error',
    message: "The brain's own login was refused upstream; renew it on the host (/creds shows it).",
  },
  BRAIN_LIMIT: { status: 429, type: 'rate_limit_error', message: 'The brain hit a usage or rate limit.' },
  BRAIN_DOWN: { status: 503, type: 'server_error', message: 'The brain is not reachable.' },
  // 503 with Retry-After, as OpenAI-compatible servers answer while they load or are full: the SDKs
  // retry it after the wait the header says (a 502 they retry after 0.5 s and 1 s, and give up).
  BRAIN_UNAVAILABLE: {
    status: 503,
    type: 'server_error',
    message: "The brain's model is loading or its server is busy; try again in a moment.",
  },
  // OpenAI's code for it: clients (OpenClaw among them) compact the conversation and send it again.
  CONTEXT_LENGTH_EXCEEDED: {
    status: 400,
    type: 'invalid_request_error',
    message: "The conversation is longer than the model's context.",
  },
  BRAIN_ERROR: { status: 502, type: 'server_error', message: 'The brain answered with an error.' },
  TOOL_UNKNOWN: { status: 404, type: 'invalid_request_error', message: 'Unknown tool; GET /api lists them.' },
  TOOL_NOT_CONFIGURED: {
    status: 501,
    type: 'invalid_request_error',
    message: 'This tool is not configured; see tools in brainstem.json.',
  },
  TOOL_FORBIDDEN: {
    status: 403,
    type: 'permission_error',
    message: 'The tools configuration does not allow this call.',
  },
  TOOL_REFUSED: {
    status: 409,
    type: 'invalid_request_error',
    message: 'The tool refused to run in this state.',
  },
  TOOL_FAILED: { status: 502, type: 'server_error', message: 'The tool could not complete.' },
  TOOL_TIMEOUT: {
    status: 504,
    type: 'server_error',
    message: 'The tool hit its time limit and was stopped.',
  },
  TOOL_ABORTED: {
    status: 503,
    type: 'server_error',
    message:
      'The tool call was stopped (the caller cancelled it or went away, or brainstem is shutting down).',
    fr: 'L’appel de l’outil a été arrêté (l’appelant l’a annulé ou est parti, ou brainstem s’arrête).',
  },
  SHUTTING_DOWN: {
    status: 503,
    type: 'server_error',
    message: 'brainstem is shutting down; try again shortly.',
    fr: 'brainstem s’arrête ; réessayez dans un moment.',
  },
  INTERNAL: { status: 500, type: 'server_error', message: 'Internal error; see the brainstem log.' },
  // `fr`: the message for a French reader, for the codes thrown with their registry message where a
  // chat can show it (the others are thrown with their own words, or reach the API only).
} as const satisfies Record<string, { status: number; type: string; message: string; fr?: string }>;

export type ErrorCode = keyof typeof errorCodes;

export class BrainstemError extends Error {
  readonly status: number;
  readonly type: string;
  /**
   * Seconds the client should wait before sending the request again (the HTTP face's
   * `Retry-After`), when known; set by whoever knows it (see brainFailure).
   */
  retryAfterS?: number;
  /**
   * When the request may be sent again, in ms since the epoch, when that is further away than
   * retryAfterS can say (MAX_RETRY_AFTER_S): a usage limit that resets in hours. A model told
   * "try again in 60 s" over MCP would start a Claude CLI every minute until then.
   */
  retryAt?: number;
  /** The client must not send the request again by itself (the HTTP face's `x-should-retry: false`; see BrainError.noRetry). */
  noRetry?: boolean;
  /**
   * The message in French, for a face that speaks the reader's language (Telegram, through
   * sayError); the API's answers and the log keep `message`. The registry's, without a message.
   */
  readonly fr?: string;
  constructor(
    readonly code: ErrorCode,
    message?: string,
    readonly param?: string,
    fr?: string,
  ) {
    super(message ?? errorCodes[code].message);
    this.name = 'BrainstemError';
    this.status = errorCodes[code].status;
    this.type = errorCodes[code].type;
    const entry = errorCodes[code];
    this.fr = fr ?? (message === undefined && 'fr' in entry ? entry.fr : undefined);
  }
}

/** An error's message in the reader's language (English when it has no French one): a BrainstemError, or what a tool result carries of one. */
export function sayError(e: { message: string; fr?: string | undefined }, lang: Lang | undefined): string {
  return lang === 'fr' && e.fr ? e.fr : e.message;
}

/**
 * A thrown error's message for a reader in `lang`: its French wording when it has one (a
 * BrainstemError, a DatabaseLockedError), else its own words.
 */
export function sayThrown(err: unknown, lang: Lang | undefined): string {
  if (!(err instanceof Error)) return String(err);
  const fr = (err as { fr?: unknown }).fr;
  return sayError({ message: err.message, fr: typeof fr === 'string' ? fr : undefined }, lang) || String(err);
}

/**
 * The longest Retry-After sent, in seconds. The openai SDK for Python (and Anthropic's) honours a
 * Retry-After of at most 60 s and falls back to its own backoff of a second or so above it, which
 * is the early retry the header is there to prevent; the openai SDK for Node sleeps whatever it is
 * told, holding the call for hours before a usage limit's reset. At 60 s each retry comes a minute
 * later and is told again, and the message says the actual reset time.
 */
export const MAX_RETRY_AFTER_S = 60;

/**
 * `err` telling its client to wait `waitMs` before sending the request again: whole seconds, 1 to
 * MAX_RETRY_AFTER_S, and the time itself (retryAt) when the cap cut the wait.
 */
export function retryAfter<E extends BrainstemError>(err: E, waitMs: number, now = Date.now()): E {
  err.retryAfterS = Math.min(MAX_RETRY_AFTER_S, Math.max(1, Math.ceil(waitMs / 1000)));
  if (waitMs > MAX_RETRY_AFTER_S * 1000) err.retryAt = now + waitMs;
  return err;
}

export function isBrainstemError(e: unknown): e is BrainstemError {
  return e instanceof BrainstemError;
}
