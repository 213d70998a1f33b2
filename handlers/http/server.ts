import type { Socket } from 'node:net';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyListenOptions,
  type FastifyReply,
  LogController,
} from 'fastify';
import type { Core } from '../../src/core.js';
import type { HttpFace } from '../../src/service.js';
import type { Tools } from '../../src/tools/index.js';
import { loggedPath } from '../telegram-front/bot-api.js';
import { registerApi } from './api.js';
import { installAuth } from './auth.js';
import { boundSocket } from './bound-socket.js';
import { installErrorHandler, openAiError } from './errors.js';
import { registerHealth } from './health.js';
import { installHostGuard } from './host-guard.js';
import { installJsonParser } from './json-body.js';
import { registerMcp } from './mcp.js';
import { registerOpenAi } from './openai.js';
import { outlivesRequestTimeout } from './request-timeout.js';
import { cutUnreadBody } from './too-large.js';
import { registerUsageChart } from './usage-chart.js';

/** Routes another face serves over HTTP (the Telegram bot's Bot API front). */
export type RouteSet = (app: FastifyInstance) => void | Promise<void>;

/** The HTTP face, its routes registered; fastify takes routes only until it listens. */
export interface HttpServer extends HttpFace {
  app: FastifyInstance;
}

/**
 * The HTTP face: /health, the OpenAI endpoint and the usage chart always,
 * with the tools /api and /mcp, and the routes of other faces (`extra`).
 * Every route asks for the API token unless it is marked otherwise (auth.ts).
 */
export async function buildHttpFace(
  core: Core,
  tools: Tools | undefined,
  extra: RouteSet[] = [],
): Promise<HttpServer> {
  const log = core.logger.child({ part: 'http' });
  const app = Fastify({
    loggerInstance: log as FastifyBaseLogger,
    bodyLimit: core.config.server.bodyLimitBytes,
    // One line per request, written by the onResponse hook below, instead of fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    forceCloseConnections: 'idle',
    // fastify turns off Node's whole-request timeout (0); without it a client, token or not, may
    // send its body a byte now and then for ever. Given to Node's server too, which then keeps its
    // headers timeout within it (a longer one stops Node from applying either). Node checks them on
    // a clock of its own: a quarter of the timeout, at most Node's default 30 s.
    requestTimeout: core.config.server.requestTimeoutMs,
    http: {
      requestTimeout: core.config.server.requestTimeoutMs,
      connectionsCheckingInterval: Math.min(30_000, Math.ceil(core.config.server.requestTimeoutMs / 4)),
    },
    // Its 503 is in no client's shape and says nothing of when to come back: the closing hook answers.
    return503OnClosing: false,
    // Requests are checked with zod in each route, never with fastify's JSON schemas: its
    // compilers (ajv, fast-json-stringify) are left out of the bundle (scripts/build.ts).
    schemaController: { compilersFactory: { buildValidator: noSchemas, buildSerializer: noSchemas } },
    // A path fastify cannot decode (`%ZZ`) never reaches a route or a hook: answered and logged here.
    frameworkErrors: (error, request, reply) => {
      const url = loggedPath(request.url, core.config.telegram.token);
      const badUrl = error.code === 'FST_ERR_BAD_URL';
      request.log.warn({ method: request.method, url, code: error.code }, 'refused before any route');
      const status = badUrl ? 400 : (error.statusCode ?? 400);
      // No route matched, so the shape follows the path: under the front's prefix, the Bot API's.
      const { enabled, prefix } = core.config.telegram.front;
      const front = enabled && (request.url === prefix || request.url.startsWith(`${prefix}/`));
      (reply as unknown as FastifyReply).status(status).send(
        front
          ? {
              ok: false,
              error_code: status,
              description: badUrl
                ? 'Bad Request: the path is not a valid URL (a malformed %-escape?)'
                : `Bad Request: ${error.message}`,
            }
          : openAiError({
              message: badUrl
                ? 'The request path is not a valid URL (a malformed %-escape?).'
                : error.message,
              type: 'invalid_request_error',
              code: 'INVALID_REQUEST',
            }),
      );
    },
    // What Node's HTTP parser refuses (an unknown method, a bad content-length): a short answer and a line.
    clientErrorHandler: (err, socket) => {
      const code = (err as { code?: string }).code;
      // The client went away: a reset, or its end of the connection closed before its request's end
      // (an upload it abandoned, HPE_INVALID_EOF_STATE). Nothing was refused and nobody reads an answer.
      if (code === 'ECONNRESET' || code === 'HPE_INVALID_EOF_STATE' || !socket.writable)
        return socket.destroy();
      // An upload a route let in and streams on (the Bot API front's) goes on while its body comes.
      if (code === 'ERR_HTTP_REQUEST_TIMEOUT' && outlivesRequestTimeout(socket as Socket)) {
        log.info(
          { ip: socket.remoteAddress, requestTimeoutMs: core.config.server.requestTimeoutMs },
          'an upload outlasts server.requestTimeoutMs: kept while its body keeps coming',
        );
        return;
      }
      log.warn({ code, ip: socket.remoteAddress }, 'refused: a request Node could not parse');
      const [status, line, message] =
        code === 'HPE_HEADER_OVERFLOW'
          ? [431, 'Request Header Fields Too Large', 'The request headers are too large.']
          : code === 'ERR_HTTP_REQUEST_TIMEOUT'
            ? [408, 'Request Timeout', 'The request took too long to arrive.']
            : [400, 'Bad Request', 'The request is not valid HTTP.'];
      const body = JSON.stringify(
        openAiError({ message, type: 'invalid_request_error', code: 'INVALID_REQUEST' }),
      );
      // Written, then the connection closed at once, as fastify's own handler does: nothing lingers.
      socket.write(
        `HTTP/1.1 ${status} ${line}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
      socket.destroy();
    },
  });
  limitConnections(app, core.config.server.maxConnections, log);
  let answered: () => void = () => undefined;
  const firstAnswered = new Promise<void>((resolve) => {
    answered = resolve;
  });
  /** Set by close(): a connection kept alive after its answer would hold the stop (service.ts). */
  let closing = false;
  app.addHook('onResponse', async (request, reply) => {
    answered();
    // fastify's close ends the connections idle at that moment (forceCloseConnections above); one
    // whose answer was still going (a stream, a long poll of the front) is idle only now: ended now.
    if (closing) setImmediate(() => app.server.closeIdleConnections());
    cutUnreadBody(request, core.config.server.bodyAfterAnswerMs);
    request.log.info(
      {
        method: request.method,
        url: loggedPath(request.url, core.config.telegram.token),
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime),
      },
      'request',
    );
  });
  installErrorHandler(app);
  // First of the hooks. While the server closes (service.ts's stop), a request on a connection still
  // open (its previous answer was under way) is refused in its route's shape with the wait for the
  // restarted brainstem (Retry-After), and its connection closed: the retry connects anew.
  app.addHook('onRequest', async (_request, reply) => {
    if (!closing) return;
    reply.header('connection', 'close');
    throw core.chat.shutdownRefusal();
  });
  installJsonParser(app);
  // Order matters: a foreign Host or Origin is refused before the token is even looked at.
  installHostGuard(app, { bindHost: core.config.server.host, allowedHosts: core.config.server.allowedHosts });
  installAuth(app, core.apiToken.token);
  registerHealth(app, core);
  registerOpenAi(app, core);
  registerUsageChart(app, core);
  if (tools) {
    registerApi(app, tools);
    registerMcp(app, core, tools.registry);
  }
  for (const routes of extra) await routes(app);
  const { host, port } = core.config.server;
  return {
    app,
    firstAnswered,
    listen: async () => {
      // Bound once the plugins are ready: a socket bound but never adopted would stay open.
      await app.ready();
      const handle = boundSocket(host, port);
      // fastify passes its options on to node:http's listen, which adopts the handle (fastify's types omit it).
      await app.listen({ host, port, ...(handle ? { handle } : {}) } as FastifyListenOptions);
      const address = app.server.address();
      return typeof address === 'object' && address ? address.port : port;
    },
    close: () => {
      closing = true;
      return app.close();
    },
  };
}

/** Lines logged for a flood of refused connections: the first, then one per this many. */
const DROPS_PER_LINE = 1000;

/**
 * Node closes a connection past `max` as it comes, before any byte is read;
 * the first and then every thousandth is logged, so a flood neither goes
 * unseen nor fills the log.
 */
function limitConnections(app: FastifyInstance, max: number, log: FastifyBaseLogger): void {
  app.server.maxConnections = max;
  let dropped = 0;
  app.server.on('drop', (data?: { remoteAddress?: string }) => {
    if (dropped++ % DROPS_PER_LINE !== 0) return;
    log.warn(
      { ip: data?.remoteAddress, dropped, maxConnections: max },
      'refused a connection: server.maxConnections are open',
    );
  });
}

/** Fastify calls its compiler factories only for a route that declares a schema, which none does. */
function noSchemas(): never {
  throw new Error('fastify route schemas are not used: brainstem checks requests with zod');
}
