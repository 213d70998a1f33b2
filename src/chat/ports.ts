import type { Approver, BrainError, ToolDefinition } from '../../brains/types.js';
import type { ModeConfig } from '../config.js';
import type { Lang } from '../i18n.js';

/**
 * Something that answers certain words without a brain (tool shortcuts):
 * returns the streamed answer, or undefined when the words are not its own.
 */
/** `caller`: the conversation the words came from, recorded as the caller of what they run. */
export type LocalAnswerer = (
  words: string,
  lang: Lang,
  signal: AbortSignal,
  caller: string,
) => AsyncIterable<string> | undefined;

/**
 * brainstem's own tools offered to a local model that got none from its
 * client; the answer loop runs the calls and hands the results back.
 */
export interface LocalToolbox {
  /** OpenAI function definitions of the tools named in `allowed` (`*` = all) and not in `denied` that never mutate. */
  definitions(allowed: string[], denied: string[]): ToolDefinition[];
  /** Runs one call; the result (or the error) as text for the model. */
  run(
    name: string,
    args: string,
    ctx: { caller: string; signal: AbortSignal; allowed: string[]; denied: string[]; depth: number },
  ): Promise<string>;
}

/**
 * What the chat core uses of the parts wired around it. The tools and the
 * Telegram bot are built from the core, so they cannot be handed to it when
 * it is built: main fills this one object in while it wires them, before the
 * server listens, and the core reads it on every turn. Each field stays empty
 * when its part does not run.
 */
export interface ChatPorts {
  /** Words answered by a tool without a brain (the tools' shortcuts). */
  answerer?: LocalAnswerer;
  /** The shortcut words `answerer` runs in this configuration, for the help (those their tool refuses go to the brain). */
  shortcutWords?: () => readonly string[];
  /** brainstem's read-only tools, for a local model whose client brought none. */
  toolbox?: LocalToolbox;
  /** Who is asked about tools outside a mode's allow-list when a turn brings no approver (the OpenAI endpoint). */
  approver?: Approver;
  /**
   * The mode that answers in place of `mode` until the limit `error` reports resets: the one the
   * usage-limit fallback that this limit engaged switches to (filled by the core once its watcher is built).
   */
  fallbackFor?: (mode: ModeConfig, error: BrainError) => ModeConfig | undefined;
}
