/** What /mcp answers to one tools/call (JSON, not a stream): the tool's result. */
export interface McpToolAnswer {
  result: { isError?: boolean; content: { type: string; text: string }[] };
}

/**
 * One `tools/call` of `name` on brainstem's /mcp at `url`, as a stateless MCP client sends it
 * (JSON-RPC over HTTP, the token as Bearer); the answer is read by the caller.
 */
export function mcpToolCall(
  url: string,
  token: string,
  name: string,
  args: Record<string, unknown>,
): Promise<Response> {
  return fetch(`${url}/mcp`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${token}`,
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
    },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name, arguments: args } }),
  });
}
