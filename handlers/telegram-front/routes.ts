import type { FastifyReply, FastifyRequest } from 'fastify';
import { tokenMatches } from '../../src/api-token.js';
import { isBusy } from '../../src/db/kept-writes.js';
import type { Logger } from '../../src/logger.js';
import { callerGone } from '../http/caller.js';
import { keepWhileFlowing } from '../http/request-timeout.js';
import type { RouteSet } from '../http/server.js';
import { apiError, type BotApiAnswer, NOT_FOUND, redactBotPaths, UNAUTHORIZED } from './bot-api.js';
import { type LocalMethod, readParams } from './local-methods.js';
import type { Passthrough } from './passthrough.js';
import { readCallBody } from './request-body.js';

/**
 * The front's HTTP surface, under its prefix: `/bot<TOKEN>/<method>` and
 * `/file/bot<TOKEN>/<path>`, the Bot API's own layout, so OpenClaw only
 * changes its `apiRoot`. An encapsulated plugin: its own catch-all body
 * parser leaves every body unread, so a passed-through call streams from
 * OpenClaw to Telegram without fastify buffering or parsing it. The token in
 * the path is the auth (checked in constant time; anything else gets
 * Telegram's 401 and reaches nothing), so the routes opt out of the Bearer
 * check; the token never appears in a log line or an error.
 */

/** What fastify routes by default: the front takes them all, and answers GET and POST (and HEAD for a file). */
const FRONT_HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'];

const API_PATH = /^\/bot([^/]+)\/([A-Za-z0-9_]+)$/;
const FILE_PATH = /^\/file\/bot([^/]+)\/(.+)$/;
/** A body brainstem may rewrite (sendMessage's text) is read whole; this is far above any text call. */
const MAX_REWRITE_BYTES = 1024 * 1024;

/** An outgoing call brainstem changes before it reaches Telegram (see notice-dedupe.ts). */
export interface OutgoingRewrite {
  /** Lower-case method names it looks at. */
  methods: ReadonlySet<string>;
  /** The new body, or undefined to send it as it came. */
  rewrite(method: string, contentType: string, body: Buffer): Buffer | undefined;
}

export interface FrontRouteOptions {
  prefix: string;
  token: string;
  local: ReadonlyMap<string, LocalMethod>;
  passthrough: Passthrough;
  rewrite?: OutgoingRewrite;
  /**
   * An upload passed on to Telegram is not cut at server.requestTimeoutMs while its body keeps
   * coming (it comes at the uplink's speed); only after this long without a byte.
   */
  uploadIdleMs: number;
  /** brainstem is stopping: each answer closes its connection. */
  stopping: () => boolean;
  logger: Logger;
}

export function frontRoutes(opts: FrontRouteOptions): RouteSet {
  return async (app) => {
    await app.register(
      async (scope) => {
        scope.removeAllContentTypeParsers();
        scope.addContentTypeParser('*', (_request, _payload, done) => done(null));
        // Once brainstem stops, OpenClaw's next call on a kept connection (its long poll's, ended
        // then) would get fastify's 503 of no Bot API shape, or a connection cut mid-call: OpenClaw
        // drops a message after either. A refused connection it makes again.
        scope.addHook('onSend', async (_request, reply) => {
          if (opts.stopping()) reply.header('connection', 'close');
        });
        // Every method and the bare prefix too: a path under the prefix is the front's, so what it
        // refuses (a PUT, an OPTIONS) is refused in Telegram's shape, not as the OpenAI endpoint's
        // missing Bearer token.
        for (const url of ['/', '/*']) {
          scope.route({
            method: FRONT_HTTP_METHODS,
            url,
            ...(url === '/' ? { prefixTrailingSlash: 'no-slash' as const } : {}),
            config: { auth: 'own', errors: 'bot-api' },
            handler: (request, reply) => guarded(opts, request, reply),
          });
        }
      },
      { prefix: opts.prefix },
    );
  };
}

/**
 * How long OpenClaw is told to wait before it calls again when another process holds the state
 * database: its Bot API client (grammY's auto-retry) waits `retry_after` and retries, as after
 * Telegram's flood control, instead of backing off for minutes as after a 500.
 */
const LOCKED_RETRY_S = 2;

const METHOD_NOT_ALLOWED = apiError(405, 'Method Not Allowed: use GET or POST');

/** Whatever fails is answered in Telegram's shape, and logged without the token. */
async function guarded(opts: FrontRouteOptions, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  try {
    await handle(opts, request, reply);
  } catch (err) {
    if (isBusy(err)) {
      opts.logger.warn(
        { retryAfterS: LOCKED_RETRY_S },
        'front: a call of OpenClaw that writes to the state database is refused while another process (a sqlite3 shell, a backup) holds it; OpenClaw is told to retry',
      );
      if (!reply.sent)
        answer(
          reply,
          apiError(
            429,
            `Too Many Requests: retry after ${LOCKED_RETRY_S} (brainstem's state database is locked by another process)`,
            { retry_after: LOCKED_RETRY_S },
          ),
        );
      return;
    }
    const reason = redactBotPaths((err as Error).message || String(err));
    opts.logger.error({ err: reason }, 'front: a call failed');
    if (!reply.sent) answer(reply, apiError(500, 'Internal Server Error: see the brainstem log'));
  }
}

async function handle(opts: FrontRouteOptions, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const url = request.raw.url ?? '';
  const q = url.indexOf('?');
  const path = (q === -1 ? url : url.slice(0, q)).slice(opts.prefix.length);
  const search = q === -1 ? '' : url.slice(q);
  const api = API_PATH.exec(path);
  const file = api ? undefined : FILE_PATH.exec(path);
  const given = api?.[1] ?? file?.[1];
  if (given === undefined) return answer(reply, NOT_FOUND);
  if (!tokenMatches(opts.token, decoded(given))) {
    opts.logger.warn({ ip: request.ip }, 'front: refused a call with a wrong bot token');
    return answer(reply, UNAUTHORIZED);
  }

  // Aborts the upstream call (or ends a long poll) when OpenClaw goes away before the answer.
  const gone = callerGone(reply);

  // The Bot API takes its calls by GET and POST: anything else acts on nothing.
  if (!['GET', 'HEAD', 'POST'].includes(request.method)) {
    return answer(reply.header('allow', 'GET, POST'), METHOD_NOT_ALLOWED);
  }
  if (file) {
    const filePath = fileOnly(file[2] ?? '');
    if (filePath === undefined) return answer(reply, NOT_FOUND);
    const httpMethod = request.method === 'HEAD' ? 'HEAD' : 'GET';
    const sent = await relay(
      opts,
      reply,
      'file',
      gone,
      () => opts.passthrough.download(filePath, httpMethod, request.headers, gone),
      FILE_HEADERS,
    );
    // Telegram's own paths are never absolute: this one is a local Bot API server's, on its disk,
    // which that server itself never serves by HTTP. Its 404 goes on as it came; the owner is told why.
    if (reply.statusCode === 404 && filePath.startsWith('/')) {
      opts.logger.warn(
        'front: the Bot API server (run with --local) gave OpenClaw a file as a path on its disk, and nothing at telegram.apiRoot serves that path: the Bot API server serves no files itself. Put a web server in front of it that serves its files under /file/bot<token>/ (as aiogram/telegram-bot-api’s nginx example does, local paths included), or run it without --local',
      );
    }
    return sent;
  }

  // fastify answers HEAD with the GET route; a method call acts (sendMessage,
  // getUpdates' offset), which a HEAD must never do, so it is refused here.
  if (request.method === 'HEAD') return answer(reply.header('allow', 'GET, POST'), METHOD_NOT_ALLOWED);

  const method = api?.[2] ?? '';
  const lower = method.toLowerCase();
  const local = opts.local.get(lower);
  if (local) {
    const read = await readParams(request.raw, search);
    return answer(reply, read.ok ? await local(read.params, gone) : read.answer);
  }

  const httpMethod = request.method === 'GET' ? 'GET' : 'POST';
  let body: Buffer | typeof request.raw | undefined = httpMethod === 'POST' ? request.raw : undefined;
  if (body === request.raw) {
    keepWhileFlowing(request.raw, reply.raw, opts.uploadIdleMs, () =>
      opts.logger.warn(
        { method, idleMs: opts.uploadIdleMs },
        'front: an upload from OpenClaw sent nothing for server.requestTimeoutMs; its connection was cut',
      ),
    );
  }
  if (httpMethod === 'POST' && opts.rewrite?.methods.has(lower)) {
    const read = await readCallBody(request.raw, MAX_REWRITE_BYTES);
    if (!read.ok) return answer(reply, read.answer);
    // Decoded: it goes on uncompressed (passthrough.ts sends a Buffer without Content-Encoding).
    body =
      opts.rewrite.rewrite(lower, String(request.headers['content-type'] ?? ''), read.bytes) ?? read.bytes;
  }
  return relay(opts, reply, method, gone, () =>
    opts.passthrough.forward(method, { httpMethod, search, headers: request.headers, body }, gone),
  );
}

/** The headers of Telegram's answer to a method call passed back: the body's type and length. */
const CALL_HEADERS = ['content-type', 'content-length'] as const;
/**
 * And to a file download: what a client resuming a cut download needs, as Telegram's file server
 * gives them (the span it got, that spans may be asked, the file's validators for If-Range).
 */
const FILE_HEADERS = [...CALL_HEADERS, 'content-range', 'accept-ranges', 'etag', 'last-modified'] as const;

/** Telegram's answer, streamed back as it came: status, `headers` and body. */
async function relay(
  opts: FrontRouteOptions,
  reply: FastifyReply,
  what: string,
  gone: AbortSignal,
  call: () => ReturnType<Passthrough['forward']>,
  headers: readonly string[] = CALL_HEADERS,
): Promise<void> {
  let res: Awaited<ReturnType<Passthrough['forward']>>;
  try {
    res = await call();
  } catch (err) {
    // OpenClaw went away first (an upload or download it abandoned, its own timeout): the call to
    // Telegram was ended for that, and nobody is left to answer. Not a failure to reach Telegram.
    if (gone.aborted) {
      opts.logger.info(
        { method: what },
        'front: OpenClaw went away before Telegram answered; its call was ended',
      );
      return;
    }
    const reason = redactBotPaths((err as Error).message || String(err));
    const code = connectFailure(err);
    opts.logger.warn({ method: what, err: reason, ...(code ? { code } : {}) }, 'front: Telegram not reached');
    // OpenClaw makes a send again only after a 429, or a failure that proves it was not sent (its
    // own connection refused, say): a 5xx may have been acted on, and its answer would be dropped.
    if (code) {
      return answer(
        reply,
        apiError(
          429,
          `Too Many Requests: retry after ${UNREACHED_RETRY_S} (brainstem could not connect to Telegram: ${code}; the call was not made)`,
          { retry_after: UNREACHED_RETRY_S },
        ),
      );
    }
    return answer(reply, apiError(502, `Bad Gateway: brainstem could not reach Telegram (${reason})`));
  }
  reply.code(res.statusCode);
  for (const name of headers) {
    const value = res.headers[name];
    if (typeof value === 'string') reply.header(name, value);
  }
  // A HEAD's answer has no body (fastify keeps the Content-Length it was given for a HEAD), nor a 304's.
  if (reply.request.method === 'HEAD' || res.statusCode === 304) {
    await res.body.dump();
    return reply.send();
  }
  return reply.send(res.body);
}

/** Failures before any connection to Telegram was made: the call never left, so making it again is safe. */
const NOT_CONNECTED = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ENETUNREACH',
  'ENETDOWN',
  'EHOSTUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
]);
/** How long OpenClaw is told to wait before it makes again a call brainstem could not connect to Telegram for. */
const UNREACHED_RETRY_S = 5;

/** The code of a failure to connect (also inside the AggregateError of Node's address family attempts), or undefined. */
function connectFailure(err: unknown): string | undefined {
  const e = err as { code?: unknown; cause?: { code?: unknown }; errors?: { code?: unknown }[] };
  for (const code of [e?.code, e?.cause?.code, e?.errors?.[0]?.code]) {
    if (typeof code === 'string' && NOT_CONNECTED.has(code)) return code;
  }
  return undefined;
}

function answer(reply: FastifyReply, a: BotApiAnswer): FastifyReply {
  return reply.code(a.status).header('content-type', 'application/json').send(a.body);
}

/**
 * A download's path as Telegram gives it (`photos/file_1.jpg`), or as a
 * self-hosted Bot API server run with `--local` gives it: absolute, on its
 * disk (`/var/lib/telegram-bot-api/<token>/photos/file_1.jpg`), which the web
 * server in front of it serves under the same URL (`/file/bot<T>//var/lib/…`,
 * as in aiogram's nginx example) and a client asks as it asks any path.
 * Undefined when it could reach anything else once resolved: a `.` or `..`
 * segment (`/file/bot<T>/../../bot<T>/logOut` would be a method call), an
 * encoded slash or backslash, an empty segment (but the leading one of an
 * absolute path).
 */
function fileOnly(raw: string): string | undefined {
  for (const segment of (raw.startsWith('/') ? raw.slice(1) : raw).split('/')) {
    const plain = decoded(segment);
    if (plain === '' || plain === '.' || plain === '..' || /[/\\]/.test(plain)) return undefined;
  }
  return raw;
}

function decoded(token: string): string {
  try {
    return decodeURIComponent(token);
  } catch {
    return token;
  }
}
