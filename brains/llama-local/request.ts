import { LOCAL_PART_TYPES } from '../../src/content-parts.js';
import { imageMention, isImagePart } from '../../src/images.js';
import type { ChatMessage, GenerationOptions } from '../types.js';

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
 * - `image_url` parts go as they came to a model that takes images; to one
 *   that does not (the core refused images in the new turn already), an image
 *   of an earlier turn becomes a line saying one was there.
 * - A part of a type llama-server reads in no message (a `file`…: LOCAL_PART_TYPES)
 *   becomes such a line too, in an earlier turn (the new turn's was refused by
 *   LlamaLocalBrain.refuse), as a Claude mode's history replay tells it: sent as
 *   it came, every request of that conversation would fail.
 */
export function upstreamMessages(
  messages: ChatMessage[],
  persona: string | undefined,
  extraContext: string | undefined,
  vision = true,
): ChatMessage[] {
  const readable = messages.map(withoutUnreadParts);
  const seen = vision ? readable : readable.map(withoutImages);
  const out: ChatMessage[] =
    persona === undefined
      ? seen.map((m) => (m.role === 'developer' ? { ...m, role: 'system' } : m))
      : [
          { role: 'system', content: persona },
          ...seen.filter((m) => m.role !== 'system' && m.role !== 'developer'),
        ];
  if (!extraContext) return out;
  const first = out[0];
  if (first?.role === 'system') {
    return [{ ...first, content: appendText(first.content, extraContext) }, ...out.slice(1)];
  }
  return [{ role: 'system', content: extraContext }, ...out];
}

/** What an earlier turn's part no local model reads is told as (a Claude mode says it the same way). */
function unreadPartMention(type: string): string {
  return `[a ${type} part, not shown to the local model]`;
}

function withoutUnreadParts(m: ChatMessage): ChatMessage {
  if (!Array.isArray(m.content) || m.content.every((p) => LOCAL_PART_TYPES.has(p.type))) return m;
  return {
    ...m,
    content: m.content.map((p) =>
      LOCAL_PART_TYPES.has(p.type) ? p : { type: 'text', text: unreadPartMention(p.type) },
    ),
  };
}

function withoutImages(m: ChatMessage): ChatMessage {
  if (!Array.isArray(m.content) || !m.content.some(isImagePart)) return m;
  return {
    ...m,
    content: m.content.map((p) => (isImagePart(p) ? { type: 'text', text: imageMention(p) } : p)),
  };
}

function appendText(content: ChatMessage['content'], text: string): ChatMessage['content'] {
  if (Array.isArray(content)) return [...content, { type: 'text', text }];
  return content ? `${content}\n\n${text}` : text;
}

/**
 * The client's sampling and output controls, passed on unchanged under their
 * OpenAI names (llama-server and Ollama take them all); unset ones are left out.
 */
export function upstreamOptions(options: GenerationOptions | undefined): Record<string, unknown> {
  return Object.fromEntries(Object.entries(options ?? {}).filter(([, v]) => v !== undefined));
}
