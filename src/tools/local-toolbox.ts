import type { ToolDefinition } from '../../brains/types.js';
import type { LocalToolbox } from '../chat/ports.js';
import { headChars, tailChars } from '../text.js';
import { omittedMarker } from './exec.js';
import { resultText, type ToolRegistry } from './registry.js';

/** What a small local model may read back from one tool call; the middle of a longer result is cut with a marker. */
const MAX_RESULT_CHARS = 8_000;

/**
 * The registry as functions a local model can call when no client brought
 * tools of its own (Telegram's direct route, brain_chat). Only tools that never
 * mutate are offered: a model cannot be asked for confirmation mid-answer.
 */
export function localToolbox(registry: ToolRegistry): LocalToolbox {
  return {
    definitions(allowed, denied) {
      const all = allowed.includes('*');
      return registry
        .list()
        .filter((t) => t.mutating === false && (all || allowed.includes(t.name)) && !denied.includes(t.name))
        .map(
          (t): ToolDefinition => ({
            type: 'function',
            function: { name: t.name, description: t.description, parameters: t.inputSchema },
          }),
        );
    },
    async run(name, args, ctx) {
      if (!this.definitions(ctx.allowed, ctx.denied).some((d) => d.function.name === name)) {
        return `Error: the tool "${name}" is not available to this model.`;
      }
      let input: unknown;
      try {
        input = args.trim() ? JSON.parse(args) : {};
      } catch {
        return `Error: the arguments of ${name} are not valid JSON.`;
      }
      return fitted(
        resultText(
          await registry.call(name, input, { caller: ctx.caller, signal: ctx.signal, depth: ctx.depth }),
        ),
      );
    },
  };
}

/**
 * A result within MAX_RESULT_CHARS: its head and its tail, as the registry keeps a command's output.
 * The end says how the call ended (a test run's summary, the exit code, the error, which resultText
 * puts last): cut to its head, a failing run read as lines of passing tests.
 */
function fitted(text: string): string {
  if (text.length <= MAX_RESULT_CHARS) return text;
  const head = headChars(text, MAX_RESULT_CHARS / 2);
  const tail = tailChars(text, MAX_RESULT_CHARS / 2);
  return `${head}${omittedMarker(text.length - head.length - tail.length)}${tail}`;
}
