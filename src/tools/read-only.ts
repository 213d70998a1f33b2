import type { ToolsConfig } from './config.js';
import { isToolName, mutatingIn, readOnlySetting, TOOL_INPUTS, type ToolName } from './inputs.js';

/** The tools that change nothing with this `tools` section: the only ones Claude may run without asking. */
export function readOnlyTools(tools: ToolsConfig): ToolName[] {
  return (Object.keys(TOOL_INPUTS) as ToolName[]).filter((name) => mutatingIn(name, tools) === false);
}

/**
 * Each tool a mode's `brainstemTools` names that Claude may not run unasked: one that can change
 * things, or no tool at all. From the `tools` section alone, so loadConfig names these with the
 * rest of the file's problems, and doctor with them, before anything starts.
 */
export function brainstemToolProblems(
  // Structural, not ModeConfig: config.ts calls this, and its type would make an import cycle.
  modes: { id: string; brainstemTools?: string[] | undefined }[],
  tools: ToolsConfig,
): string[] {
  const readOnly = readOnlyTools(tools);
  return modes.flatMap((mode) =>
    (mode.brainstemTools ?? [])
      .filter((name) => !(readOnly as string[]).includes(name))
      .map((name) => {
        const setting = readOnlySetting(name);
        const why = !isToolName(name)
          ? 'is not a brainstem tool'
          : `can change things, so Claude must ask before each call${setting ? `; set ${setting} to true if its command only reads` : ''}`;
        return `modes.${mode.id}.brainstemTools: "${name}" ${why} (read-only tools: ${readOnly.join(', ')})`;
      }),
  );
}
