import { z } from 'zod';

/**
 * The part of the Model Context Protocol brainstem serves, over JSON-RPC 2.0:
 * a server of tools (initialize, ping, tools/list, tools/call) and nothing
 * else. These four read the same in every revision below, so brainstem
 * answers a client in the revision it asks for, and offers the newest to a
 * client that asks for one it does not know (the client then decides).
 * The transport (HTTP, one POST per message) is handlers/http/mcp.ts.
 */
export const PROTOCOL_VERSIONS: readonly string[] = [
  '2025-11-25',
  '2025-06-18',
  '2025-03-26',
  '2024-11-05',
  '2024-10-07',
];

/** JSON-RPC's error codes, and MCP's one for a request its transport refuses. */
export const RpcCode = {
  PARSE_ERROR: -32700,
  INVALID_REQUEST: -32600,
  METHOD_NOT_FOUND: -32601,
  INVALID_PARAMS: -32602,
  INTERNAL_ERROR: -32603,
  REFUSED: -32000,
} as const;

export class RpcError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
    this.name = 'RpcError';
  }
}

/**
 * The schemas of what a client sends, built on the first /mcp call rather than
 * at start-up, which serves no MCP (~1.5 ms of a start).
 */
let built: ReturnType<typeof buildSchemas> | undefined;
const schemas = () => (built ??= buildSchemas());

function buildSchemas() {
  const rpcId = z.union([z.string(), z.number().int()]);
  /**
   * A request has a method and an id, a notification a method and no id, and a
   * response (to a request of the server's: brainstem sends none) no method.
   */
  const message = z
    .object({
      jsonrpc: z.literal('2.0'),
      id: rpcId.optional(),
      method: z.string().min(1).optional(),
      params: z.record(z.string(), z.unknown()).optional(),
    })
    .loose()
    .refine((m) => m.method !== undefined || 'result' in m || 'error' in m, {
      message: 'a message needs a method, or a result or an error',
    });
  const initialize = z.object({ protocolVersion: z.string() }).loose();
  const call = z
    .object({
      name: z.string().min(1),
      arguments: z.record(z.string(), z.unknown()).optional(),
      _meta: z
        .object({ progressToken: z.union([z.string(), z.number()]).optional() })
        .loose()
        .optional(),
    })
    .loose();
  // What a client sends to stop one of its requests (`reason` is only for logs).
  const cancelled = z.object({ requestId: rpcId, reason: z.string().optional() }).loose();
  return { message, initialize, call, cancelled };
}

export type RpcMessage = z.infer<ReturnType<typeof schemas>['message']>;
export type RpcId = string | number;
export type RpcRequest = RpcMessage & { id: RpcId; method: string };

/**
 * The most messages one POST may carry. Revisions 2025-03-26 and before allow a batch, later
 * ones send none; brainstem, stateless, takes one whatever the revision, as the SDK's server does.
 */
const MAX_BATCH = 100;

/**
 * The messages of one POST body: one message, or a batch of them. A single
 * message that is not JSON-RPC is refused whole (thrown); in a batch, each
 * such item gets its own error, with its id when it has a readable one, and
 * the others are still answered (JSON-RPC 2.0, section 6).
 */
export function parseMessages(body: unknown): {
  messages: RpcMessage[];
  refused: RpcResponse[];
  batch: boolean;
} {
  const batch = Array.isArray(body);
  const items: unknown[] = batch ? body : [body];
  if (items.length === 0 || items.length > MAX_BATCH) {
    throw new RpcError(RpcCode.INVALID_REQUEST, `Invalid Request: a batch holds 1 to ${MAX_BATCH} messages.`);
  }
  const messages: RpcMessage[] = [];
  const refused: RpcResponse[] = [];
  items.forEach((item, i) => {
    const parsed = schemas().message.safeParse(item);
    if (parsed.success) {
      messages.push(parsed.data);
      return;
    }
    const issue = parsed.error.issues[0];
    const where = [...(batch ? [i] : []), ...(issue?.path ?? [])].join('.');
    const error = new RpcError(
      RpcCode.INVALID_REQUEST,
      `Invalid Request: not a JSON-RPC 2.0 message${where ? ` (${where}: ${issue?.message})` : `: ${issue?.message}`}.`,
    );
    if (!batch) throw error;
    refused.push(errorResponse(readableId(item), error.code, error.message));
  });
  if (items.length > 1 && messages.some((m) => m.method === 'initialize')) {
    throw new RpcError(
      RpcCode.INVALID_REQUEST,
      'Invalid Request: initialize must come alone, not in a batch.',
    );
  }
  return { messages, refused, batch };
}

/** The id of a message that is not valid otherwise, when it is one JSON-RPC allows; else null. */
function readableId(item: unknown): string | number | null {
  const id = schemas().message.shape.id.safeParse((item as { id?: unknown } | null)?.id);
  return id.success && id.data !== undefined ? id.data : null;
}

export function isRequest(m: RpcMessage): m is RpcRequest {
  return m.method !== undefined && m.id !== undefined;
}

/** The request a `notifications/cancelled` names, with its reason; undefined for any other message. */
export function cancelledRequest(
  m: RpcMessage,
): { requestId: RpcId; reason?: string | undefined } | undefined {
  if (m.method !== 'notifications/cancelled' || m.id !== undefined) return undefined;
  const parsed = schemas().cancelled.safeParse(m.params ?? {});
  return parsed.success ? parsed.data : undefined;
}

export interface McpTool {
  name: string;
  description: string;
  inputSchema: Record<string, unknown>;
  annotations: { readOnlyHint: boolean };
}

export interface McpToolResult {
  content: { type: 'text'; text: string }[];
  isError: boolean;
}

/** What the protocol asks of the tools behind it, for one POST. */
export interface McpTools {
  info: { name: string; version: string; instructions: string };
  list(): McpTool[];
  /**
   * `id` is the request's, which a client's cancel names; `onOutput` is set when the client asked for
   * progress: output as it comes. Undefined when the client cancelled the call, which then gets no answer.
   */
  call(
    id: RpcId,
    name: string,
    args: Record<string, unknown>,
    onOutput?: (chunk: string) => void,
  ): Promise<McpToolResult | undefined>;
}

export type RpcNotification = { jsonrpc: '2.0'; method: string; params: Record<string, unknown> };

export type RpcResponse =
  | { jsonrpc: '2.0'; id: string | number; result: unknown }
  | { jsonrpc: '2.0'; id: string | number | null; error: { code: number; message: string } };

export function errorResponse(id: string | number | null, code: number, message: string): RpcResponse {
  return { jsonrpc: '2.0', id, error: { code, message } };
}

/**
 * The answer to one request. `notify` sends a notification about it (progress)
 * before the answer. A tool that fails answers with `isError`, which the model
 * reads; a JSON-RPC error is for a request brainstem cannot take at all.
 * Undefined for a request its client cancelled: MCP sends such a request no answer.
 */
export async function answer(
  tools: McpTools,
  request: RpcRequest,
  notify: (notification: RpcNotification) => void,
): Promise<RpcResponse | undefined> {
  try {
    return await dispatch(tools, request, notify);
  } catch (e) {
    if (e instanceof RpcError) return errorResponse(request.id, e.code, e.message);
    throw e;
  }
}

async function dispatch(
  tools: McpTools,
  request: RpcRequest,
  notify: (notification: RpcNotification) => void,
): Promise<RpcResponse | undefined> {
  const { id } = request;
  const ok = (result: unknown): RpcResponse => ({ jsonrpc: '2.0', id, result });
  switch (request.method) {
    case 'initialize': {
      const { protocolVersion } = params(schemas().initialize, request);
      const { name, version, instructions } = tools.info;
      return ok({
        protocolVersion: PROTOCOL_VERSIONS.includes(protocolVersion) ? protocolVersion : PROTOCOL_VERSIONS[0],
        capabilities: { tools: {} },
        serverInfo: { name, version },
        instructions,
      });
    }
    case 'ping':
      return ok({});
    case 'tools/list':
      // One page: brainstem has a few dozen tools, so it ignores a `cursor` and sends no next one.
      return ok({ tools: tools.list() });
    case 'tools/call': {
      const p = params(schemas().call, request);
      const token = p._meta?.progressToken;
      let progress = 0;
      const onOutput =
        token === undefined
          ? undefined
          : (chunk: string) =>
              notify({
                jsonrpc: '2.0',
                method: 'notifications/progress',
                params: { progressToken: token, progress: ++progress, message: chunk },
              });
      const result = await tools.call(id, p.name, p.arguments ?? {}, onOutput);
      return result && ok(result);
    }
    default:
      return errorResponse(
        id,
        RpcCode.METHOD_NOT_FOUND,
        `Method not found: ${request.method} (brainstem serves initialize, ping, tools/list and tools/call).`,
      );
  }
}

function params<T extends z.ZodType>(schema: T, request: RpcRequest): z.output<T> {
  const parsed = schema.safeParse(request.params ?? {});
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  throw new RpcError(
    RpcCode.INVALID_PARAMS,
    `Invalid params for ${request.method}: ${issue?.path.join('.') || 'params'}: ${issue?.message}.`,
  );
}
