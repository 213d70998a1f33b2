import type { ModeConfig } from '../../src/config.js';

/** The MCP server name brainstem registers; `mcp__brainstem` allows all of its tools. */
export const MCP_SERVER_NAME = 'brainstem';

export interface ArgsInput {
  mode: ModeConfig;
  resumeId?: string;
  appendSystemPrompt?: string;
  mcpConfigPath?: string;
  /** `--max-budget-usd`: the CLI stops the turn once its cost reaches this. */
  maxBudgetUsd?: number;
}

/**
 * The mode's argv for a CLI process; the protocol flags are added by
 * ClaudeProcess and the prompt comes on stdin. Permission mode "default" works
 * as root (bypassPermissions is refused there): tools on `--allowedTools` run
 * at once, those on `--disallowedTools` are refused, and the CLI asks brainstem
 * about any other.
 */
export function buildArgs({
  mode,
  resumeId,
  appendSystemPrompt,
  mcpConfigPath,
  maxBudgetUsd,
}: ArgsInput): string[] {
  const args = ['-p', '--output-format', 'stream-json', '--include-partial-messages', '--verbose'];
  args.push('--permission-mode', 'default');
  if (mode.model) args.push('--model', mode.model);
  if (resumeId) args.push('--resume', resumeId);
  if (appendSystemPrompt) args.push('--append-system-prompt', appendSystemPrompt);
  if (mcpConfigPath) args.push('--mcp-config', mcpConfigPath);
  if (maxBudgetUsd !== undefined) args.push('--max-budget-usd', String(maxBudgetUsd));
  const allowed = mcpConfigPath ? [...mode.allowedTools, `mcp__${MCP_SERVER_NAME}`] : mode.allowedTools;
  // One argv element per rule: a rule such as `Bash(git log:*)` may hold spaces.
  if (allowed.length > 0) args.push('--allowedTools', ...allowed);
  if (mode.deniedTools.length > 0) args.push('--disallowedTools', ...mode.deniedTools);
  return args;
}
