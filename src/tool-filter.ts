import type { Refusal, ToolDefinition } from '../brains/types.js';
import type { ModeConfig } from './config.js';

/** The client's tools a mode gives its brain, and those it keeps back (with why), so none vanishes unsaid. */
export interface ToolSelection {
  offered: ToolDefinition[];
  /** Names of the client's tools the brain does not get. */
  filtered: string[];
  /** Why they were kept back, for the log. */
  why?: string;
}

/**
 * A llama mode passes the client's tools through its `toolFilter` (none = all
 * pass); a Claude mode never gets them: Claude Code runs its own tools.
 */
export function selectTools(mode: ModeConfig, tools: ToolDefinition[] | undefined): ToolSelection {
  if (!tools?.length) return { offered: [], filtered: [] };
  if (mode.kind === 'claude') {
    return {
      offered: [],
      filtered: tools.map((t) => t.function.name),
      why: 'Claude Code uses its own tools',
    };
  }
  const filter = mode.toolFilter;
  if (!filter) return { offered: tools, filtered: [] };
  const passes = (name: string) =>
    (filter.allow === undefined || filter.allow.includes(name)) && !filter.deny.includes(name);
  const offered = tools.filter((t) => passes(t.function.name));
  const filtered = tools.filter((t) => !passes(t.function.name)).map((t) => t.function.name);
  return { offered, filtered, why: filtered.length ? `modes.${mode.id}.toolFilter` : undefined };
}

/**
 * A `tool_choice` that needs a tool the brain will not get cannot be honoured:
 * refused rather than quietly turned into "auto".
 */
export function toolChoiceRefusal(
  mode: ModeConfig,
  choice: unknown,
  selection: ToolSelection,
): Refusal | undefined {
  // Claude modes refuse a forced tool themselves (ClaudeCodeBrain.refuse).
  if (mode.kind === 'claude' || choice === undefined || choice === null) return undefined;
  const named = (choice as { function?: { name?: unknown } }).function?.name;
  if (typeof named === 'string' && !selection.offered.some((t) => t.function.name === named)) {
    const why = selection.filtered.includes(named)
      ? `mode ${mode.id} keeps it from the model (${selection.why})`
      : 'it is not in tools';
    return { param: 'tool_choice', message: `tool_choice names the tool "${named}", but ${why}.` };
  }
  if (choice === 'required' && selection.offered.length === 0) {
    return {
      param: 'tool_choice',
      message: `tool_choice is "required", but mode ${mode.id} offers the model no tool${selection.filtered.length ? ` (${selection.why} removes ${selection.filtered.join(', ')})` : ''}.`,
    };
  }
  return undefined;
}
