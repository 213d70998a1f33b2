/**
 * How the CLI names brainstem's own MCP tools, and which permission rules
 * would grant them wholesale. It imports nothing: the config checks modes'
 * rules with it, the brain builds its arguments with it.
 */

/** The MCP server name brainstem registers; its tools are `mcp__brainstem__<tool>` to the CLI. */
export const MCP_SERVER_NAME = 'brainstem';

const OWN_PREFIX = `mcp__${MCP_SERVER_NAME}`;

/** The name the CLI gives a brainstem tool. */
export function brainstemToolName(tool: string): string {
  return `${OWN_PREFIX}__${tool}`;
}

/**
 * Whether a CLI permission rule would allow brainstem tools wholesale: the
 * server itself, a name under it, or a wildcard (`mcp__*`, `mcp__brainstem__make_*`)
 * that reaches them.
 */
export function grantsBrainstemTools(rule: string): boolean {
  if (rule === OWN_PREFIX || rule.startsWith(`${OWN_PREFIX}__`)) return true;
  const star = rule.indexOf('*');
  return star >= 0 && `${OWN_PREFIX}__`.startsWith(rule.slice(0, star));
}
