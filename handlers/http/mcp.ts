import type { Server } from '@modelcontextprotocol/sdk/server/index.js';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Core } from '../../src/core.js';
import { resultText, type ToolRegistry } from '../../src/tools/registry.js';

/**
 * The tool registry as an MCP server (Streamable HTTP) at /mcp, so Claude Code
 * calls brainstem's tools natively. Stateless: each POST gets its own server
 * and transport, so nothing is kept between requests and restarts lose nothing.
 * The Bearer token is asked by auth.ts, as on every route not marked public.
 */
export function registerMcp(app: FastifyInstance, core: Core, registry: ToolRegistry): void {
  app.post('/mcp', async (request, reply) => {
    const sdk = await loadSdk();
    const server = mcpServer(sdk, core, registry, reply);
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

type Sdk = Awaited<ReturnType<typeof importSdk>>;

const importSdk = async () => {
  const [{ Server }, { StreamableHTTPServerTransport }, { CallToolRequestSchema, ListToolsRequestSchema }] =
    await Promise.all([
      import('@modelcontextprotocol/sdk/server/index.js'),
      import('@modelcontextprotocol/sdk/server/streamableHttp.js'),
      import('@modelcontextprotocol/sdk/types.js'),
    ]);
  return { Server, StreamableHTTPServerTransport, CallToolRequestSchema, ListToolsRequestSchema };
};
let sdkLoad: Promise<Sdk> | undefined;
/** The SDK loads on the first /mcp call: it costs ~400 ms of start-up otherwise. */
const loadSdk = () => {
  sdkLoad ??= importSdk();
  return sdkLoad;
};

function mcpServer(sdk: Sdk, core: Core, registry: ToolRegistry, reply: FastifyReply): Server {
  const { Server, CallToolRequestSchema, ListToolsRequestSchema } = sdk;
  const server = new Server(
    { name: 'brainstem', version: core.version },
    {
      capabilities: { tools: {} },
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
