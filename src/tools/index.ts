import type { LocalAnswerer, LocalToolbox } from '../chat/ports.js';
import { notifyChatsOf } from '../config.js';
import type { Core } from '../core.js';
import { BrainstemError } from '../errors.js';
import { ownFiles } from '../own-files.js';
import type { Part } from '../part.js';
import { brainTools } from './brain-tools.js';
import { checkToolWarnings } from './check-tools.js';
import type { ToolsConfig } from './config.js';
import { configuredSecrets, createRunner } from './exec.js';
import { fileTools } from './files.js';
import { gitTools } from './git.js';
import { incusTools } from './incus.js';
import { localToolbox } from './local-toolbox.js';
import { makeTools } from './make.js';
import { readOnlyTools } from './read-only.js';
import { ToolRegistry } from './registry.js';
import { ownCheckout, reportPendingUpgrade, type SelfUpgradeDeps, selfUpgradeTool } from './self-upgrade.js';
import { type ResolvedShortcut, Shortcuts, shortcutAnswerer } from './shortcuts.js';
import { stateTools } from './state-tools.js';
import { webFetchTool } from './web-fetch.js';
import { webSearchTool } from './web-search.js';

export type { ToolResult } from './registry.js';
export type { ResolvedShortcut } from './shortcuts.js';
export { describeCall } from './shortcuts.js';

/**
 * brainstem's infra tools, built once from `config.tools`. The faces serve
 * them (/api and /mcp over HTTP, /run and the shortcut words in Telegram);
 * the chat core gets the shortcut answerer and the read-only toolbox through
 * its ports. On stop, running calls end with their process trees.
 */
export interface Tools extends Part {
  registry: ToolRegistry;
  shortcuts: Shortcuts;
  config: ToolsConfig;
  /** The shortcut the words name, if any (`refusal` says why it cannot run here). */
  resolveShortcut(words: string): ResolvedShortcut | undefined;
  /** Shortcut words in any chat answered by their tool, without a brain. */
  answerer: LocalAnswerer;
  /** The read-only tools, for a local model whose client brought none. */
  toolbox: LocalToolbox;
}

/** Builds every tool from `config.tools` (checked by loadConfig). */
export function buildTools(core: Core): Tools {
  const config = core.config.tools;
  const run = createRunner({
    timeoutMs: config.timeoutMs,
    maxOutputChars: config.maxOutputChars,
    hiddenEnv: configuredSecrets(core.config),
  });
  const registry = new ToolRegistry(core.audit, core.logger.child({ part: 'tools' }));
  const upgrade: SelfUpgradeDeps = {
    cfg: config.selfUpgrade,
    repo: config.selfUpgrade.repo ?? ownCheckout(),
    maxOutputChars: config.maxOutputChars,
    run,
    hiddenEnv: configuredSecrets(core.config),
    kv: core.kv,
    notifier: core.notifier,
    notifyChats: notifyChatsOf(core.config.telegram),
    logger: core.logger.child({ part: 'self-upgrade' }),
  };
  registry.register(
    ...gitTools(config, run),
    ...makeTools(config, run),
    ...incusTools(config.incus, run),
    ...fileTools(config, ownFiles(core.config)),
    webSearchTool(config.webSearch, run),
    webFetchTool(config, run),
    ...stateTools(core, registry),
    ...brainTools(core, config),
    selfUpgradeTool(upgrade),
  );
  // loadConfig has checked that each mode's brainstemTools names only these.
  core.mcp.readOnlyTools = readOnlyTools(config);
  core.mcp.refusal = (tool, input) => {
    try {
      registry.prepare(tool, input);
      return undefined;
    } catch (err) {
      if (err instanceof BrainstemError) return err;
      throw err;
    }
  };
  const warnings = checkToolWarnings(registry, config, core.config);
  const shortcuts = new Shortcuts(config.shortcuts, registry);
  return {
    registry,
    shortcuts,
    config,
    resolveShortcut: (words) => shortcuts.resolve(words),
    answerer: shortcutAnswerer(shortcuts, registry, config),
    toolbox: localToolbox(registry),
    start: () => {
      // Said once the server listens, like every part's start: a second instance that cannot listen says nothing.
      for (const w of warnings) core.logger.warn({ mode: w.mode, tools: w.tools }, w.message);
      reportPendingUpgrade(upgrade).catch((err: unknown) =>
        core.logger.warn({ err }, 'could not report the outcome of the last self-upgrade'),
      );
    },
    stop: () => registry.stop(),
  };
}
