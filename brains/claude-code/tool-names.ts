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

/** The brainstem tool a CLI tool name is (`mcp__brainstem__make_target`: `make_target`), else undefined. */
export function ownToolOf(cliName: string): string | undefined {
  return cliName.startsWith(`${OWN_PREFIX}__`) ? cliName.slice(OWN_PREFIX.length + 2) : undefined;
}

/**
 * Whether a CLI permission rule would allow brainstem tools wholesale: the
 * server itself, a name under it, or a wildcard (`mcp__*`, `mcp__brainstem__make_*`)
 * that reaches them. The CLI reads one argument as several rules, cut at
 * commas and spaces outside parentheses (`Read,mcp__brainstem` is two): each
 * is judged.
 */
export function grantsBrainstemTools(rule: string): boolean {
  return cliRules(rule).some((one) => {
    if (one === OWN_PREFIX || one.startsWith(`${OWN_PREFIX}__`)) return true;
    const star = one.indexOf('*');
    return star >= 0 && `${OWN_PREFIX}__`.startsWith(one.slice(0, star));
  });
}

/** The rules the CLI reads in one argument: cut at commas and whitespace outside parentheses. */
function cliRules(arg: string): string[] {
  const rules: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of arg) {
    if (ch === '(') depth++;
    else if (ch === ')') depth = Math.max(0, depth - 1);
    if (depth === 0 && (ch === ',' || /\s/.test(ch))) {
      if (current) rules.push(current);
      current = '';
    } else current += ch;
  }
  if (current) rules.push(current);
  return rules;
}
