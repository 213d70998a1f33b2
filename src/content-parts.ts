import type { ChatMessage, ContentPart } from '../brains/types.js';
import { lastAssistantIndex } from './text.js';

/**
 * The content part types a local mode's server reads: llama-server (tools/server,
 * oaicompat_chat_params_parse) takes text, images (image_url) and audio (input_audio), and refuses
 * any other, in a message of any role, with a 400 "unsupported content[].type" that names neither
 * the part nor its type. A `refusal` part is made text before any brain sees it (openai-schema.ts).
 */
export const LOCAL_PART_TYPES: ReadonlySet<string> = new Set(['text', 'image_url', 'input_audio']);

/**
 * The `input_audio.format`s llama-server takes: exactly these, OpenAI's two (it decodes flac too, but
 * refuses it with the rest). Any other is refused with "input_audio.format must be either 'wav' or
 * 'mp3'", which names neither the part nor the format it got.
 */
export const LOCAL_AUDIO_FORMATS: readonly string[] = ['wav', 'mp3'];

/**
 * The format of an `input_audio` part llama-server would refuse, as a message shows it (`"ogg"`,
 * `none`); undefined for a format it takes and for any other part.
 */
export function refusedAudioFormat(part: ContentPart): string | undefined {
  if (part.type !== 'input_audio') return undefined;
  const audio = part.input_audio;
  const format =
    typeof audio === 'object' && audio !== null ? (audio as { format?: unknown }).format : undefined;
  if (typeof format === 'string' && LOCAL_AUDIO_FORMATS.includes(format)) return undefined;
  if (format === undefined || format === null) return 'none';
  // Clipped: it is the client's own words, said back in the error.
  return JSON.stringify(typeof format === 'string' ? format.slice(0, 40) : format)?.slice(0, 60) ?? 'none';
}

/**
 * The first part of the new turn (the messages after the last assistant one) whose type is not in
 * `readable`, as the param a 400 names (`messages.N.content.M`). Earlier turns' parts are not
 * looked at: each brain tells them as a line, so a history holding one does not fail every turn.
 */
export function newTurnPartOutside(
  messages: readonly ChatMessage[],
  readable: ReadonlySet<string>,
): { param: string; type: string } | undefined {
  return newTurnPartWhere(messages, (part) => !readable.has(part.type));
}

/** The first part of the new turn that `refused` picks, as newTurnPartOutside names it. */
export function newTurnPartWhere(
  messages: readonly ChatMessage[],
  refused: (part: ContentPart) => boolean,
): { param: string; type: string; part: ContentPart } | undefined {
  for (let i = lastAssistantIndex(messages) + 1; i < messages.length; i++) {
    const content = messages[i]?.content;
    if (!Array.isArray(content)) continue;
    for (const [j, part] of content.entries()) {
      if (refused(part)) return { param: `messages.${i}.content.${j}`, type: part.type, part };
    }
  }
  return undefined;
}
