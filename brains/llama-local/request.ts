import type { ChatMessage, ToolDefinition } from '../types.js';

/**
 * The messages sent upstream.
 *
 * - With a persona prompt, every incoming system/developer message is dropped
 *   and the persona takes their place.
 * - Otherwise `developer` becomes `system`: llama-server hands roles to the
 *   model's chat template, and most templates only know `system`.
 * - Extra context goes into the leading system message rather than a second
 *   one, because several chat templates (Gemma, Mistral, …) reject a system
 *   message anywhere but first.
 */
export function upstreamMessages(
  messages: ChatMessage[],
  persona: string | undefined,
  extraContext: string | undefined,
): ChatMessage[] {
  const out: ChatMessage[] =
    persona === undefined
      ? messages.map((m) => (m.role === 'developer' ? { ...m, role: 'system' } : m))
      : [
          { role: 'system', content: persona },
          ...messages.filter((m) => m.role !== 'system' && m.role !== 'developer'),
        ];
  if (!extraContext) return out;
  const first = out[0];
  if (first?.role === 'system') {
    return [{ ...first, content: appendText(first.content, extraContext) }, ...out.slice(1)];
  }
  return [{ role: 'system', content: extraContext }, ...out];
}

function appendText(content: ChatMessage['content'], text: string): ChatMessage['content'] {
  if (Array.isArray(content)) return [...content, { type: 'text', text }];
  return content ? `${content}\n\n${text}` : text;
}

/** The client's tools this mode allows: `['*']` passes all, an empty list none. */
export function allowedTools(tools: ToolDefinition[] | undefined, allowed: string[]): ToolDefinition[] {
  if (!tools || allowed.length === 0) return [];
  if (allowed.includes('*')) return tools;
  return tools.filter((t) => allowed.includes(t.function.name));
}

/**
 * `tool_choice` only makes sense with tools, and a choice naming a tool that
 * was filtered out would make the upstream reject the request: fall back to
 * the upstream's default then.
 */
export function allowedToolChoice(choice: unknown, tools: ToolDefinition[]): unknown {
  if (tools.length === 0 || choice === undefined) return undefined;
  const named = (choice as { function?: { name?: unknown } } | null)?.function?.name;
  if (typeof named === 'string' && !tools.some((t) => t.function.name === named)) return undefined;
  return choice;
}
