import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { DEPTH_HEADER } from '../../brains/claude-code/mcp.js';
import type { Core } from '../../src/core.js';
import { BrainstemError } from '../../src/errors.js';
import { resultText, type ToolRegistry } from '../../src/tools/registry.js';
import { afterDelivery, callerGone } from './caller.js';
import { bodyTooLarge } from './errors.js';
import { RunningCalls } from './mcp-calls.js';
import { ProgressFeed } from './mcp-progress.js';
import {
  answer,
  cancelledRequest,
  errorResponse,
  isRequest,
  type McpTools,
  PROTOCOL_VERSIONS,
  parseMessages,
  RpcCode,
  RpcError,
  type RpcNotification,
} from './mcp-protocol.js';
import { SseWriter } from './sse.js';

const INSTRUCTIONS =
  'brainstem infrastructure tools: git, make, tests, lint, incus, files, web search and fetch, sessions, usage, mode switching, self-upgrade. Each is allow-listed by brainstem.json and audited.';

/**
 * The tool registry as an MCP server at /mcp (Streamable HTTP), so Claude Code
 * calls brainstem's tools natively. Stateless: each POST is answered on its
 * own, and nothing is kept between requests but the tool calls under way (for
 * a client to cancel one), so restarts lose nothing. The
 * answer is JSON, or an event stream once a tool call sends progress.
 *
 * brainstem serves MCP's four tool methods itself (mcp-protocol.ts) instead of
 * through the MCP SDK's server: every Claude CLI that starts (the spare's
 * included, at idle) connects here, and the SDK built a server, a transport
 * and Web requests and answers for each POST, and kept its schemas and a
 * second HTTP stack (undici's Web streams) resident after the first.
 *
 * The Bearer token is asked by auth.ts, as on every route not marked public.
 * A Claude brain's calls say how many brains deep they come from
 * (DEPTH_HEADER), so brains calling brains end.
 */
export function registerMcp(app: FastifyInstance, core: Core, registry: ToolRegistry): void {
  const info = { name: 'brainstem', version: core.version, instructions: INSTRUCTIONS };
  const running = new RunningCalls();
  const { maxOutputChars } = core.config.tools;
  // A body refused before the handler runs is answered in JSON-RPC's shape, as every refusal
  // here: an MCP client reads no other. The rest (the token's 401) goes to the server's handler.
  const errorHandler = (error: Error, _request: FastifyRequest, reply: FastifyReply) => {
    const refusal = bodyRefusal(app, error, reply);
    if (!refusal) throw error;
    return reply.status(refusal.status).send(errorResponse(null, refusal.code, refusal.message));
  };
  app.post('/mcp', { errorHandler }, async (request, reply) => {
    let depth: number;
    let parsed: ReturnType<typeof parseMessages>;
    let initialize: boolean;
    try {
      refuseHeaders(request);
      depth = callDepth(request.headers[DEPTH_HEADER]);
      parsed = parseMessages(request.body);
      initialize = parsed.messages.some((m) => m.method === 'initialize');
      if (!initialize) refuseVersion(request);
    } catch (e) {
      if (!(e instanceof RpcError)) throw e;
      const status = e instanceof HttpRpcError ? e.status : 400;
      return reply.status(status).send(errorResponse(null, e.code, e.message));
    }
    const session = sessionOf(request);
    for (const m of parsed.messages) {
      const cancelled = cancelledRequest(m);
      if (cancelled && session !== undefined) running.cancel(session, cancelled.requestId, cancelled.reason);
    }
    if (initialize) reply.header(SESSION_HEADER, randomUUID());
    const requests = parsed.messages.filter(isRequest);
    // Notifications (initialized, cancelled) and answers to requests (brainstem sends none) need no reply.
    if (requests.length === 0 && parsed.refused.length === 0) return reply.status(202).send();

    const gone = callerGone(reply);
    const tools: McpTools = {
      info,
      list: () =>
        registry.list().map((t) => ({
          name: t.name,
          description: t.description,
          inputSchema: t.inputSchema,
          annotations: { readOnlyHint: t.mutating === false },
        })),
      call: async (id, name, args, onOutput) => {
        const call = running.start(session, id, gone);
        try {
          // Progress carries no more than the result may, and is left out while the client is not reading.
          const feed =
            onOutput && new ProgressFeed(maxOutputChars, onOutput, () => !reply.raw.writableNeedDrain);
          // A cancelled call's last output (the command's end as it is killed) is for nobody: its progress token is gone.
          const output =
            feed &&
            ((chunk: string) => {
              if (!call.cancelled) feed.push(chunk);
            });
          const r = await registry.call(name, args, {
            caller: 'mcp',
            signal: call.signal,
            depth,
            onOutput: output,
          });
          afterDelivery(reply, r.afterDelivery);
          // Output left out at the end, with no progress after it to say so: said before the result.
          if (!call.cancelled) feed?.end();
          return call.cancelled
            ? undefined
            : { content: [{ type: 'text', text: resultText(r) }], isError: !r.ok };
        } finally {
          call.end();
        }
      },
    };
    const sse = new SseWriter(reply.raw);
    const stream = () => {
      if (sse.started) return;
      reply.hijack();
      sse.start();
    };
    const notify = (notification: RpcNotification) => {
      stream();
      sse.data(notification, 'message');
    };
    const answered = await Promise.all(
      requests.map((r) =>
        answer(tools, r, notify).catch((err: unknown) => {
          request.log.error({ err, method: r.method }, 'mcp request failed');
          return errorResponse(
            r.id,
            RpcCode.INTERNAL_ERROR,
            'Internal error: the cause is in the brainstem log.',
          );
        }),
      ),
    );
    // A batch's answers may come in any order (JSON-RPC 2.0, section 6): a client matches them by id.
    const responses = [...parsed.refused, ...answered.filter((r) => r !== undefined)];
    if (!sse.started && responses.length > 0) {
      return reply.type('application/json').send(parsed.batch ? responses : responses[0]);
    }
    // Every request cancelled: a POST that held requests is still answered with JSON or a stream, here an empty one.
    stream();
    for (const r of responses) sse.data(r, 'message');
    sse.end(null);
  });
  // Stateless: no server-initiated stream to open (GET) and no session kept to end (DELETE).
  const notAllowed = async (_request: FastifyRequest, reply: FastifyReply) =>
    reply
      .status(405)
      .header('allow', 'POST')
      .send(
        errorResponse(null, RpcCode.REFUSED, 'Method not allowed: this MCP server is stateless; use POST.'),
      );
  app.get('/mcp', notAllowed);
  app.delete('/mcp', notAllowed);
}

/**
 * Handed out at initialize, and sent back by a client with each request after
 * it, only to tell its cancels from another client's (RunningCalls). Nothing
 * is kept per session and none is checked or ended, so brainstem stays
 * stateless: after a restart, a client's session goes on as before.
 */
const SESSION_HEADER = 'mcp-session-id';

function sessionOf(request: FastifyRequest): string | undefined {
  const session = request.headers[SESSION_HEADER];
  return typeof session === 'string' && session !== '' ? session : undefined;
}

/** A message the transport refuses whole, with the HTTP status it answers. */
class HttpRpcError extends RpcError {
  constructor(
    readonly status: number,
    code: number,
    message: string,
  ) {
    super(code, message);
  }
}

/** What MCP's Streamable HTTP asks of every POST: JSON in, JSON or an event stream accepted back. */
function refuseHeaders(request: FastifyRequest): void {
  // Media types are case-insensitive (RFC 9110 §8.3.1): `Application/JSON` asks for the same.
  const accept = (request.headers.accept ?? '').toLowerCase();
  if (!accept.includes('application/json') || !accept.includes('text/event-stream')) {
    throw new HttpRpcError(
      406,
      RpcCode.REFUSED,
      'Not Acceptable: an MCP client must accept both application/json and text/event-stream.',
    );
  }
  const type = request.headers['content-type']?.split(';')[0]?.trim().toLowerCase();
  if (type !== 'application/json') throw unsupportedMediaType();
}

/** A body without a JSON content type: without one at all (seen here), or of a type fastify has no parser for. */
const unsupportedMediaType = () =>
  new HttpRpcError(415, RpcCode.REFUSED, 'Unsupported Media Type: send the body as application/json.');

/** fastify's refusal of a body before the handler runs, as /mcp answers it; undefined for any other error. */
function bodyRefusal(app: FastifyInstance, error: Error, reply: FastifyReply): HttpRpcError | undefined {
  const code = (error as { code?: string }).code;
  if (code === 'FST_ERR_CTP_EMPTY_JSON_BODY') {
    return new HttpRpcError(400, RpcCode.PARSE_ERROR, 'Parse error: the request body is empty');
  }
  if (error instanceof BrainstemError && ['BAD_JSON', 'JSON_TOO_DEEP'].includes(error.code)) {
    return new HttpRpcError(400, RpcCode.PARSE_ERROR, `Parse error: ${error.message}`);
  }
  if (code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return unsupportedMediaType();
  if (error instanceof BrainstemError && error.code === 'UNSUPPORTED_MEDIA_TYPE') {
    return new HttpRpcError(415, RpcCode.REFUSED, `Unsupported Media Type: ${error.message}`);
  }
  if (code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    const tooLarge = bodyTooLarge(app, reply);
    return new HttpRpcError(tooLarge.status, RpcCode.REFUSED, `Payload Too Large: ${tooLarge.message}`);
  }
  return undefined;
}

/** After initialize, a client names the revision agreed on; one brainstem does not speak is refused. */
function refuseVersion(request: FastifyRequest): void {
  const version = request.headers['mcp-protocol-version'];
  if (version === undefined || (typeof version === 'string' && PROTOCOL_VERSIONS.includes(version))) return;
  throw new HttpRpcError(
    400,
    RpcCode.REFUSED,
    `Bad Request: unsupported MCP protocol version ${String(version)} (brainstem speaks ${PROTOCOL_VERSIONS.join(', ')}).`,
  );
}

/**
 * Absent for an outside client (a person's own tool), which stands at depth 0. A bad one is
 * refused in JSON-RPC's shape, as every refusal here: an MCP client reads no other.
 */
function callDepth(header: string | string[] | undefined): number {
  if (header === undefined) return 0;
  if (typeof header === 'string' && /^\d{1,2}$/.test(header)) return Number(header);
  throw new HttpRpcError(
    400,
    RpcCode.REFUSED,
    `Bad Request: the ${DEPTH_HEADER} header must be one small whole number.`,
  );
}
