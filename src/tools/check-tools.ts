import type { Config } from '../config.js';
import type { ToolsConfig } from './config.js';
import { readOnlySetting } from './inputs.js';
import type { ToolRegistry } from './registry.js';

/** The tools a local model checks its own work with, and the `tools` section of each one's command. */
const CHECK_TOOLS = { run_tests: 'tests', lint: 'lint' } as const;

export interface CheckToolWarning {
  mode: string;
  tools: string[];
  message: string;
}

/**
 * What keeps the test and lint tools from a llama mode's model, for a warning at start. A local
 * model is offered only the read-only tools its mode's `allowedTools` names (it cannot be asked
 * to confirm a call mid-answer), so a list that leaves out a read-only check tool, or names one
 * that can change things, drops it without a word: the model answers without checking its work.
 */
export function checkToolWarnings(
  registry: ToolRegistry,
  tools: ToolsConfig,
  config: Pick<Config, 'modes' | 'configPath'>,
): CheckToolWarning[] {
  const mutating = registry.mutability();
  const names = Object.keys(CHECK_TOOLS) as (keyof typeof CHECK_TOOLS)[];
  return config.modes.flatMap((mode): CheckToolWarning[] => {
    if (mode.kind !== 'llama') return [];
    const setting = `modes.${mode.id}.allowedTools`;
    const all = mode.allowedTools.includes('*');
    // Named in deniedTools: kept from the model on purpose, nothing to warn about.
    const wanted = names.filter((n) => !mode.deniedTools.includes(n));
    const left = wanted.filter((n) => mutating.get(n) === false && !all && !mode.allowedTools.includes(n));
    const warnings: CheckToolWarning[] = [];
    if (left.length > 0) {
      const quoted = left.map((n) => `"${n}"`).join(' and ');
      warnings.push({
        mode: mode.id,
        tools: left,
        message: `mode ${mode.id}: ${setting} leaves out ${left.join(' and ')}, so its local model cannot check its work with them; add ${quoted} to ${setting} in ${config.configPath} to give them back, or to modes.${mode.id}.deniedTools to keep them from it without this warning`,
      });
    }
    for (const n of wanted.filter((n) => mode.allowedTools.includes(n) && mutating.get(n) !== false)) {
      const section = CHECK_TOOLS[n];
      const readOnly = readOnlySetting(n);
      const why = tools[section]
        ? `its command may change things (${readOnly} is false) and a local model is offered only tools that change nothing: set ${readOnly} to true in ${config.configPath} if it only reads`
        : `it has no command: set tools.${section}.argv in ${config.configPath}, and ${readOnly} to true if it only reads (a local model is offered only tools that change nothing)`;
      warnings.push({
        mode: mode.id,
        tools: [n],
        message: `mode ${mode.id}: ${setting} names ${n}, but its model is not offered it: ${why}`,
      });
    }
    return warnings;
  });
}
