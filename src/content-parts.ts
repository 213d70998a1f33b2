import type { ChatMessage } from '../brains/types.js';
import { lastAssistantIndex } from './text.js';

/**
 * The content part types a local mode's server reads: llama-server (tools/server,
 * oaicompat_chat_params_parse) takes text, images (image_url) and audio (input_audio), and refuses
 * any other, in a message of any role, with a 400 "unsupported content[].type" that names neither
 * the part nor its type. A `refusal` part is made text before any brain sees it (openai-schema.ts).
 */
export const LOCAL_PART_TYPES: ReadonlySet<string> = new Set(['text', 'image_url', 'input_audio']);

/**
 * The first part of the new turn (the messages after the last assistant one) whose type is not in
 * `readable`, as the param a 400 names (`messages.N.content.M`). Earlier turns' parts are not
 * looked at: each brain tells them as a line, so a history holding one does not fail every turn.
 */
export function newTurnPartOutside(
  messages: readonly ChatMessage[],
  readable: ReadonlySet<string>,
): { param: string; type: string } | undefined {
  for (let i = lastAssistantIndex(messages) + 1; i < messages.length; i++) {
    const content = messages[i]?.content;
    if (!Array.isArray(content)) continue;
    for (const [j, part] of content.entries()) {
      if (!readable.has(part.type)) return { param: `messages.${i}.content.${j}`, type: part.type };
    }
  }
  return undefined;
}
