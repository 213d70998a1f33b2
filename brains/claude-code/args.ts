import type { ModeConfig } from '../../src/config.js';
import { UNSERVED_TOOLS } from './cli-compat.js';
import { brainstemToolName, grantsBrainstemTools } from './tool-names.js';

export interface ArgsInput {
  mode: ModeConfig;
  resumeId?: string;
  appendSystemPrompt?: string;
  mcpConfigPath?: string;
  /** brainstem tools the CLI may run without asking (read-only ones, chosen by the core). */
  preallowed?: string[];
  /** `--max-budget-usd`: the CLI stops the turn once its cost reaches this. */
  maxBudgetUsd?: number;
  /**
   * A directory the CLI's tools may use besides the cwd (`--add-dir`): the
   * folder of every conversation's outbox. The same for every process of a
   * mode, so a spare started ahead fits any conversation.
   */
  addDir?: string | undefined;
  /** Absolute paths (globs) never read nor written whatever the mode allows: brainstem's own secrets (src/own-files.ts). */
  unreadable?: readonly string[];
}

/**
 * Claude may never edit the settings the CLI reads its permissions from (the
 * owner's and the project's), nor the project's `.mcp.json`, whose servers'
 * commands the CLI starts at every start: one approved edit there would allow
 * it any tool, or any command, unasked, in every later process. Edit rules
 * cover every tool that writes a file (Write, Edit, MultiEdit, NotebookEdit);
 * `./` is the process's cwd.
 */
const OWN_SETTINGS_EDITS = ['Edit(~/.claude/**)', 'Edit(./.claude/**)', 'Edit(./.mcp.json)'];

/**
 * The mode's argv for a CLI process; the protocol flags are added by
 * ClaudeProcess and the prompt comes on stdin. Permission mode "default" works
 * as root (bypassPermissions is refused there): tools on `--allowedTools` run
 * at once, those on `--disallowedTools` are refused, and the CLI asks brainstem
 * about any other. brainstem's own tools are allowed one by one, never as a
 * server: a mutating one must reach the approver, as it would from a chat.
 */
export function buildArgs({
  mode,
  resumeId,
  appendSystemPrompt,
  mcpConfigPath,
  preallowed,
  maxBudgetUsd,
  addDir,
  unreadable = [],
}: ArgsInput): string[] {
  const args = ['-p', '--output-format', 'stream-json', '--include-partial-messages', '--verbose'];
  args.push('--permission-mode', 'default');
  // Of the CLI's own settings, only the project's (the cwd's .claude/settings.json, and its
  // CLAUDE.md). The owner's ~/.claude/settings.json and the cwd's .claude/settings.local.json are
  // made for their terminal: an allow rule there (`Bash`, `mcp__brainstem`) would run tools here
  // without the approver. The owner's ~/.claude/CLAUDE.md goes with them (the CLI ties the two).
  args.push('--setting-sources', 'project');
  if (mode.model) args.push('--model', mode.model);
  if (resumeId) args.push('--resume', resumeId);
  if (appendSystemPrompt) args.push('--append-system-prompt', appendSystemPrompt);
  if (mcpConfigPath) args.push('--mcp-config', mcpConfigPath);
  if (maxBudgetUsd !== undefined) args.push('--max-budget-usd', String(maxBudgetUsd));
  if (addDir) args.push('--add-dir', addDir);
  // The config refuses such rules; a mode built in code (the claude_code tool) is held to the same.
  const allowed = mode.allowedTools.filter((rule) => !grantsBrainstemTools(rule));
  if (mcpConfigPath) allowed.push(...(preallowed ?? []).map(brainstemToolName));
  // One argv element per rule: a rule such as `Bash(git log:*)` may hold spaces.
  if (allowed.length > 0) args.push('--allowedTools', ...allowed);
  // A deny rule wins over an allow: a mode allowed `Read` reads anything else unasked, not these.
  // Nor are they edited, even approved: one edit of brainstem.json would allow Claude any tool from
  // the next start, as one of its own settings would. `//` starts an absolute path in a rule (a
  // single `/` is the settings file's folder); Edit rules cover every tool that writes a file.
  const ownSecrets = unreadable.flatMap((p) => [`Read(/${p})`, `Edit(/${p})`]);
  args.push(
    '--disallowedTools',
    ...OWN_SETTINGS_EDITS,
    ...ownSecrets,
    ...UNSERVED_TOOLS,
    ...mode.deniedTools,
  );
  return args;
}
