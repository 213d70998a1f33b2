import type { LocalAnswerer } from '../chat/ports.js';
import { BrainstemError, sayError } from '../errors.js';
import { formatDuration, type Lang, t } from '../i18n.js';
import { fold } from '../intents.js';
import { PROXY_TAG } from '../notices.js';
import { headChars, tailChars } from '../text.js';
import type { ToolsConfig } from './config.js';
import type { ToolRegistry, ToolResult } from './registry.js';
import { type ShortcutEntry, type ShortcutInfo, shortcutTable } from './shortcut-table.js';

export interface ResolvedShortcut {
  word: string;
  tool: string;
  /** Validated input, ready for registry.call. */
  input: unknown;
  /** Ask for confirmation before running it. */
  mutating: boolean;
  /** The words ended with a confirmation (`deploy yes`): see CONFIRM. */
  confirmed: boolean;
  /** Why it cannot run with this configuration (the tool refused it; say it with sayError); absent when it can. */
  refusal?: { message: string; fr?: string | undefined };
}

/**
 * Short action words (French and English) answered with a tool call instead of a brain, as the
 * original proxy did: `deploy`, `tests`, `git` … (the built-in ones and tools.shortcuts, see
 * shortcut-table.ts, checked by loadConfig).
 */
export class Shortcuts {
  private readonly byWord: Map<string, ShortcutEntry>;
  private readonly all: ShortcutInfo[];

  constructor(
    configured: ToolsConfig['shortcuts'],
    private readonly registry: ToolRegistry,
  ) {
    ({ byWord: this.byWord, all: this.all } = shortcutTable(configured));
  }

  list(): ShortcutInfo[] {
    return this.all;
  }

  /**
   * The shortcut the words name (a leading slash, case and accents ignored), if any, also when they
   * end with a confirmation (`deploy yes`); a configured word that itself ends like one stays its own.
   */
  resolve(words: string): ResolvedShortcut | undefined {
    const key = fold(words).replace(/^\//, '');
    const whole = this.byWord.get(key);
    const confirmed = !whole && CONFIRM.test(key);
    const s = whole ?? (confirmed ? this.byWord.get(key.replace(CONFIRM, '')) : undefined);
    if (!s) return undefined;
    try {
      const p = this.registry.prepare(s.tool, s.input);
      return { word: s.word, tool: s.tool, input: p.input, mutating: s.mutating ?? p.mutating, confirmed };
    } catch (err) {
      const refusal =
        err instanceof BrainstemError ? { message: err.message, fr: err.fr } : { message: String(err) };
      const mutating = s.mutating ?? true;
      return { word: s.word, tool: s.tool, input: s.input, mutating, confirmed, refusal };
    }
  }
}

/**
 * A confirmation after a shortcut word. Where a person can be asked (Telegram) the words only
 * name the shortcut and its Confirm / Cancel question asks all the same; a completion cannot ask
 * and wait, so over the OpenAI endpoint these words are the confirmation.
 */
const CONFIRM = /\s+(?:yes|oui|confirm|confirme|go)$/;

/**
 * Answers shortcut words in a chat (the OpenAI endpoint, hence OpenClaw and the
 * bot's relay), streaming the command's output as it comes. A shortcut its tool
 * would refuse is left to the brain. A mutating one only runs when the words end
 * with a confirmation ("deploy yes"), since a completion cannot ask and wait.
 */
export function shortcutAnswerer(
  shortcuts: Shortcuts,
  registry: ToolRegistry,
  cfg: Pick<ToolsConfig, 'chatOutputChars'>,
): LocalAnswerer {
  return (words, lang, signal, caller) => {
    const s = shortcuts.resolve(words);
    if (!s || s.refusal) return undefined;
    if (s.mutating && !s.confirmed) return once(confirmationText(s, lang));
    return streamCall(s, registry, cfg.chatOutputChars, lang, signal, caller);
  };
}

async function* once(text: string): AsyncGenerator<string> {
  yield text;
}

function confirmationText(s: ResolvedShortcut, lang: Lang): string {
  return t(
    lang,
    `${PROXY_TAG} \`${s.word}\` runs ${describeCall(s)}, which changes things. Send \`${s.word} yes\` to run it.`,
    `${PROXY_TAG} \`${s.word}\` lance ${describeCall(s)}, qui modifie des choses. Envoyez \`${s.word} oui\` pour le lancer.`,
  );
}

export function describeCall(s: { tool: string; input: unknown }): string {
  const input = s.input as Record<string, unknown>;
  if (s.tool === 'make_target') return `\`make ${String(input.target)}\``;
  const args = Object.keys(input).length > 0 ? ` ${JSON.stringify(input)}` : '';
  return `\`${s.tool}${args}\``;
}

async function* streamCall(
  s: ResolvedShortcut,
  registry: ToolRegistry,
  maxChars: number,
  lang: Lang,
  signal: AbortSignal,
  caller: string,
): AsyncGenerator<string> {
  yield `${PROXY_TAG} \`${s.word}\` → ${describeCall(s)}\n`;
  const queue = new ChunkQueue();
  const call = registry
    .call(s.tool, s.input, { caller: headChars(caller, 100), signal, lang, onOutput: (c) => queue.push(c) })
    .finally(() => queue.end());
  let opened = false;
  let shown = 0;
  let hidden = 0;
  for await (const chunk of queue) {
    if (!opened) yield '```\n';
    opened = true;
    const part = headChars(chunk, Math.max(0, maxChars - shown));
    hidden += chunk.length - part.length;
    // Once a chunk is cut, what follows is hidden: the room an emoji left must not show a later line.
    shown = part.length < chunk.length ? maxChars : shown + part.length;
    if (part) yield part;
  }
  const r = await call;
  if (opened) {
    yield '\n```\n';
    if (hidden > 0 && r.output) {
      const tail = tailChars(r.output, Math.min(2_000, maxChars));
      yield `${t(lang, `[… ${hidden} characters not shown; the end:]`, `[… ${hidden} caractères non affichés ; la fin :]`)}\n\`\`\`\n${tail}\n\`\`\`\n`;
    }
  } else {
    const body = r.output || (r.data === undefined ? '' : JSON.stringify(r.data, null, 2));
    if (body)
      yield `\`\`\`\n${body.length > maxChars ? `${headChars(body, maxChars)}\n[…]` : body}\n\`\`\`\n`;
  }
  yield footer(r, lang);
  r.afterDelivery?.();
}

function footer(r: ToolResult, lang: Lang): string {
  const took = formatDuration(r.durationMs);
  if (r.error) return `❌ ${sayError(r.error, lang)} (${took})`;
  if (r.exitCode !== undefined) {
    return `${r.ok ? '✅' : '❌'} ${t(lang, 'exit', 'code de sortie')} ${r.exitCode} · ${took}${r.truncated ? t(lang, ' · output capped', ' · sortie tronquée') : ''}`;
  }
  return `✅ ${took}`;
}

/** Bridges output callbacks to an async iterable; chunks that arrive together are joined. */
class ChunkQueue implements AsyncIterable<string> {
  private items: string[] = [];
  private done = false;
  private wake: (() => void) | undefined;

  push(chunk: string): void {
    this.items.push(chunk);
    this.wake?.();
  }

  end(): void {
    this.done = true;
    this.wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<string> {
    for (;;) {
      if (this.items.length > 0) {
        yield this.items.splice(0).join('');
        continue;
      }
      if (this.done) return;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
      this.wake = undefined;
    }
  }
}
