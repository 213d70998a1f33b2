import { registerApi } from '../../handlers/http/api.js';
import { registerMcp } from '../../handlers/http/mcp.js';
import { type Config, ConfigError } from '../config.js';
import type { Core } from '../core.js';
import type { Part } from '../service.js';
import { brainTools } from './brain-tools.js';
import { parseToolsConfig, type ToolsConfig } from './config.js';
import { createRunner } from './exec.js';
import { fileTools } from './files.js';
import { gitTools } from './git.js';
import { incusTools } from './incus.js';
import { localToolbox } from './local-toolbox.js';
import { makeTools } from './make.js';
import { ToolRegistry } from './registry.js';
import { ownCheckout, reportPendingUpgrade, type SelfUpgradeDeps, selfUpgradeTool } from './self-upgrade.js';
import { type ResolvedShortcut, Shortcuts, shortcutAnswerer } from './shortcuts.js';
import { stateTools } from './state-tools.js';
import { webFetchTool } from './web-fetch.js';
import { webSearchTool } from './web-search.js';

export type {
  AuditEntry,
  CallOptions,
  PreparedCall,
  ToolContext,
  ToolError,
  ToolInfo,
  ToolResult,
} from './registry.js';
export { resultText, ToolRegistry } from './registry.js';
export type { ResolvedShortcut, ShortcutInfo } from './shortcuts.js';
export { describeCall } from './shortcuts.js';

/** What the faces use: the registry (call, prepare, list, audit) and the shortcut words. */
export interface Tools {
  registry: ToolRegistry;
  shortcuts: Shortcuts;
  config: ToolsConfig;
  /** The shortcut the words name, if any (`refusal` says why it cannot run here). */
  resolveShortcut(words: string): ResolvedShortcut | undefined;
}

const byCore = new WeakMap<Core, Tools>();

/** The tools of a running core, once toolsPart has started (the Telegram layer calls this). */
export function toolsOf(core: Core): Tools | undefined {
  return byCore.get(core);
}

/**
 * The tools part: builds every tool from `config.tools` (a wrong field stops the
 * start with a ConfigError naming it), answers shortcut words in chats, serves
 * /api and /mcp, and on stop ends running calls with their process trees.
 */
export const toolsPart: Part = async (core) => {
  const config = parseToolsConfig(core.config);
  const run = createRunner({ timeoutMs: config.timeoutMs, maxOutputChars: config.maxOutputChars });
  const registry = new ToolRegistry(core.db, core.logger.child({ part: 'tools' }));
  const upgrade: SelfUpgradeDeps = {
    cfg: config.selfUpgrade,
    repo: config.selfUpgrade.repo ?? ownCheckout(),
    maxOutputChars: config.maxOutputChars,
    run,
    kv: core.kv,
    notifier: core.notifier,
    logger: core.logger.child({ part: 'self-upgrade' }),
  };
  registry.register(
    ...gitTools(config.git, run),
    ...makeTools(config, run),
    ...incusTools(config.incus, run),
    ...fileTools(config.files),
    webSearchTool(config.webSearch, run),
    webFetchTool(config.webFetch, run),
    ...stateTools(core, registry),
    ...brainTools(core, config),
    selfUpgradeTool(upgrade),
  );
  core.mcp.readOnlyTools = readOnlyTools(registry, core.config);
  const shortcuts = new Shortcuts(config.shortcuts, registry, core.config.configPath);
  const tools: Tools = { registry, shortcuts, config, resolveShortcut: (words) => shortcuts.resolve(words) };
  byCore.set(core, tools);
  core.chat.addLocalAnswerer(shortcutAnswerer(shortcuts, registry, config));
  core.chat.setToolbox(localToolbox(registry));
  return {
    routes: (app) => {
      registerApi(app, tools);
      registerMcp(app, core, registry);
    },
    start: () => {
      reportPendingUpgrade(upgrade).catch((err: unknown) =>
        core.logger.warn({ err }, 'could not report the outcome of the last self-upgrade'),
      );
    },
    stop: () => registry.stop(),
  };
};

/**
 * The tools that change nothing: the only ones Claude may run without asking.
 * A mode that names another in `brainstemTools` stops the start with a ConfigError.
 */
function readOnlyTools(registry: ToolRegistry, config: Pick<Config, 'modes' | 'configPath'>): string[] {
  const mutating = new Map(registry.list().map((t) => [t.name, t.mutating]));
  const readOnly = [...mutating].flatMap(([name, m]) => (m === false ? [name] : []));
  const problems = config.modes.flatMap((mode) =>
    (mode.brainstemTools ?? [])
      .filter((name) => mutating.get(name) !== false)
      .map(
        (name) =>
          `${config.configPath}: modes.${mode.id}.brainstemTools: "${name}" ${mutating.has(name) ? 'can change things, so Claude must ask before each call' : 'is not a brainstem tool'} (read-only tools: ${readOnly.join(', ')})`,
      ),
  );
  if (problems.length > 0) throw new ConfigError(problems);
  return readOnly;
}
