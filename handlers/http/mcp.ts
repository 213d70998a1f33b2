import type { Server } from '@modelcontextprotocol/sdk/server/index.js';
import type { jsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/types.js';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { DEPTH_HEADER } from '../../brains/claude-code/mcp.js';
import type { Core } from '../../src/core.js';
import { BrainstemError } from '../../src/errors.js';
import { undici } from '../../src/http-client.js';
import { onFirstUse } from '../../src/lazy.js';
import { resultText, type ToolRegistry } from '../../src/tools/registry.js';

/**
 * The tool registry as an MCP server (Streamable HTTP) at /mcp, so Claude Code
 * calls brainstem's tools natively. Stateless: each POST gets its own server
 * and transport, so nothing is kept between requests and restarts lose nothing.
 * The Bearer token is asked by auth.ts, as on every route not marked public.
 * A Claude brain's calls say how many brains deep they come from
 * (DEPTH_HEADER), so brains calling brains end.
 */
export function registerMcp(app: FastifyInstance, core: Core, registry: ToolRegistry): void {
  app.post('/mcp', async (request, reply) => {
    const depth = callDepth(request.headers[DEPTH_HEADER]);
    const sdk = await loadSdk();
    const server = mcpServer(sdk, core, registry, reply, depth);
    const transport = new sdk.StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    reply.raw.on('close', () => {
      void transport.close();
      void server.close();
    });
    await server.connect(transport);
    reply.hijack();
    await transport.handleRequest(request.raw, reply.raw, request.body);
  });
  // Stateless: no server-initiated stream to open (GET) and no session to end (DELETE).
  const notAllowed = async (_request: FastifyRequest, reply: FastifyReply) =>
    reply
      .status(405)
      .header('allow', 'POST')
      .send({
        jsonrpc: '2.0',
        error: { code: -32000, message: 'Method not allowed: this MCP server is stateless; use POST.' },
        id: null,
      });
  app.get('/mcp', notAllowed);
  app.delete('/mcp', notAllowed);
}

/** Absent for an outside client (a person's own tool), which stands at depth 0. */
function callDepth(header: string | string[] | undefined): number {
  if (header === undefined) return 0;
  if (typeof header === 'string' && /^\d{1,2}$/.test(header)) return Number(header);
  throw new BrainstemError('INVALID_REQUEST', `The ${DEPTH_HEADER} header must be one small whole number.`);
}

/**
 * The SDK loads on the first /mcp call: it costs ~400 ms of start-up otherwise.
 * undici loads before it, so that the Web `Request` and `Response` its
 * transport builds are undici's, not Node's second copy (src/http-client.ts).
 */
const loadSdk = onFirstUse(async () => {
  await undici();
  const [{ Server }, { StreamableHTTPServerTransport }, { CallToolRequestSchema, ListToolsRequestSchema }] =
    await Promise.all([
      import('@modelcontextprotocol/sdk/server/index.js'),
      import('@modelcontextprotocol/sdk/server/streamableHttp.js'),
      import('@modelcontextprotocol/sdk/types.js'),
    ]);
  return { Server, StreamableHTTPServerTransport, CallToolRequestSchema, ListToolsRequestSchema };
});
type Sdk = Awaited<ReturnType<typeof loadSdk>>;

/**
 * The SDK's server checks a client's answer to an elicitation against the
 * schema it asked with, and nothing else. brainstem asks no elicitation. Given
 * this, the SDK does not build its default validator, an Ajv instance with its
 * formats, for every /mcp request (each gets its own Server), and the bundle
 * leaves ajv out (scripts/build.ts): ~0.6 ms less CPU a request, under 1 MB less resident.
 */
const NO_ELICITATION: jsonSchemaValidator = {
  getValidator() {
    throw new Error('brainstem asks MCP clients no elicitation, so it validates no answer to one.');
  },
};

function mcpServer(sdk: Sdk, core: Core, registry: ToolRegistry, reply: FastifyReply, depth: number): Server {
  const { Server, CallToolRequestSchema, ListToolsRequestSchema } = sdk;
  const server = new Server(
    { name: 'brainstem', version: core.version },
    {
      capabilities: { tools: {} },
      jsonSchemaValidator: NO_ELICITATION,
      instructions:
        'brainstem infrastructure tools: git, make, tests, lint, incus, files, web search and fetch, sessions, usage, mode switching, self-upgrade. Each is allow-listed by brainstem.json and audited.',
    },
  );
  server.setRequestHandler(ListToolsRequestSchema, async () => ({
    tools: registry.list().map((t) => ({
      name: t.name,
      description: t.description,
      inputSchema: t.inputSchema as { type: 'object'; [key: string]: unknown },
      annotations: { readOnlyHint: t.mutating === false },
    })),
  }));
  server.setRequestHandler(CallToolRequestSchema, async (req, extra) => {
    const token = req.params._meta?.progressToken;
    let progress = 0;
    const r = await registry.call(req.params.name, req.params.arguments ?? {}, {
      caller: 'mcp',
      signal: extra.signal,
      depth,
      // Live output as progress notifications, for clients that asked for them.
      onOutput:
        token === undefined
          ? undefined
          : (chunk) =>
              void extra
                .sendNotification({
                  method: 'notifications/progress',
                  params: { progressToken: token, progress: ++progress, message: chunk },
                })
                .catch(() => undefined),
    });
    if (r.afterDelivery) reply.raw.once('close', r.afterDelivery);
    return { content: [{ type: 'text' as const, text: resultText(r) }], isError: !r.ok };
  });
  return server;
}
