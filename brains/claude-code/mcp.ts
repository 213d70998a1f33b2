import { chmod, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { mcpServerEntry } from './cli-compat.js';
import { MCP_SERVER_NAME } from './tool-names.js';

export interface McpOptions {
  url: string;
  token: string;
  configDir: string;
  /**
   * brainstem tools that change nothing (the registry's `mutating: false`), known
   * once the tools are registered: the only ones the CLI may run without asking.
   */
  readOnlyTools: string[];
  /**
   * Why brainstem would refuse a call of one of its tools (an input its schema refuses, a make
   * target not allowed, a tool not configured), known once the tools are registered: such a call
   * is denied with that reason before an approver is asked a question whose "Allow" changes nothing.
   */
  refusal?: (tool: string, input: Record<string, unknown>) => { message: string; fr?: string } | undefined;
}

/**
 * How many brains stand between a person and an MCP call: a Claude turn that a
 * person asked for calls with 1, a turn that brain_chat started from there
 * with 2. /mcp reads it to bound brains calling brains.
 */
export const DEPTH_HEADER = 'x-brainstem-depth';

/**
 * Writes the `--mcp-config` file that points Claude Code at brainstem's MCP
 * endpoint, one per mode and depth of the turns it serves. The token lives in
 * this 0600 file, never in argv (visible to every user through /proc) or in logs.
 */
export async function writeMcpConfig(opts: McpOptions, modeId: string, turnDepth: number): Promise<string> {
  await mkdir(opts.configDir, { recursive: true, mode: 0o700 });
  const file = path.join(opts.configDir, `claude-mcp-${modeId}-d${turnDepth}.json`);
  const headers = { Authorization: `Bearer ${opts.token}`, [DEPTH_HEADER]: String(turnDepth + 1) };
  const config = { mcpServers: { [MCP_SERVER_NAME]: mcpServerEntry(opts.url, headers) } };
  await writeFile(file, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
  // `mode` applies only when the file is created; an older file keeps its bits otherwise.
  await chmod(file, 0o600);
  return file;
}
