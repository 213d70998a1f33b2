import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import { BrainstemError, errorCodes } from '../../src/errors.js';
import { notFoundMessage } from './not-found.js';
import { lingerOnTooLarge } from './too-large.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * 'bot-api': the route's clients read Telegram's error shape (the Bot API
     * front: grammY shows `error_code` and `description`). Absent: OpenAI's.
     */
    errors?: 'bot-api';
  }
}

/** OpenAI's error body, which every OpenAI client knows how to show. */
export function openAiError(err: { message: string; type: string; code: string; param?: string | null }) {
  return {
    error: { message: err.message, type: err.type, param: err.param ?? null, code: err.code.toLowerCase() },
  };
}

/**
 * Whether and when the client may send the request again, as `e` says: Retry-After, and
 * `x-should-retry: false`, read by the openai and Anthropic SDKs, which otherwise send a 5xx again
 * twice. Every answer of a BrainstemError sets them here (a buffered answer cut mid-way too).
 */
export function retryHeaders(reply: FastifyReply, e: BrainstemError): void {
  if (e.retryAfterS !== undefined) reply.header('retry-after', String(e.retryAfterS));
  if (e.noRetry) reply.header('x-should-retry', 'false');
}

/**
 * Every error leaves as OpenAI's error shape with a message a user can act on;
 * unexpected ones are logged with their stack and answered without it.
 */
export function installErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError | BrainstemError, request, reply) => {
    let e: BrainstemError;
    if (error instanceof BrainstemError) e = error;
    else if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') e = bodyTooLarge(app, reply);
    else if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      e = new BrainstemError('INVALID_REQUEST', 'Send the body as application/json.');
    } else if (error.code === 'FST_ERR_CTP_EMPTY_JSON_BODY') {
      e = new BrainstemError('BAD_JSON', 'The request body is empty; send a JSON object.');
    } else if (error.statusCode && error.statusCode >= 400 && error.statusCode < 500) {
      e = new BrainstemError('INVALID_REQUEST', error.message);
    } else {
      request.log.error({ err: error }, 'unhandled error');
      e = new BrainstemError('INTERNAL');
    }
    // Decided on the matched route, as auth is: a guard that refuses a front call before its handler.
    const botApi = request.routeOptions.url !== undefined && request.routeOptions.config.errors === 'bot-api';
    retryHeaders(reply, e);
    return reply
      .status(e.status)
      .send(
        botApi
          ? { ok: false, error_code: e.status, description: e.message }
          : openAiError({ message: e.message, type: e.type, code: e.code, param: e.param }),
      );
  });
  app.setNotFoundHandler((request, reply) => {
    reply.status(404).send(
      openAiError({
        ...errorCodes.NOT_FOUND,
        code: 'NOT_FOUND',
        message: notFoundMessage(request.method, request.url),
      }),
    );
  });
}

/**
 * A body over the limit, said with the limit and the setting that raises it; the client may still be
 * sending it. "too large" stays in the words: after the SDK's `413 ` it is what OpenClaw (2026.9.6,
 * @openclaw/ai dist/internal/runtime.mjs, CONTEXT_OVERFLOW_PATTERN_SCOPES "failover-explicit":
 * `/413[\s\S]*too large/i`) reads as a request too large, as Anthropic's 413 request_too_large: it
 * compacts the history, the images in it too, and sends the turn again. Worded otherwise, its
 * classifier finds no reason ("unclassified"), nothing is compacted, and every later turn sends the
 * same history into the same 413.
 */
export function bodyTooLarge(app: FastifyInstance, reply: FastifyReply): BrainstemError {
  lingerOnTooLarge(reply);
  return new BrainstemError(
    'BODY_TOO_LARGE',
    `The request body is too large: over the limit of ${limitText(app.initialConfig.bodyLimit)} (server.bodyLimitBytes in brainstem.json).`,
  );
}

function limitText(bytes: number | undefined): string {
  if (bytes === undefined) return 'this server';
  const mib = bytes / 1024 / 1024;
  return mib >= 1 ? `${Number(mib.toFixed(1))} MiB (${bytes} bytes)` : `${bytes} bytes`;
}
