import {
  audioPartProblem,
  LOCAL_AUDIO_FORMATS,
  LOCAL_PART_TYPES,
  refusedAudioFormat,
  unreadPartLine,
} from '../../src/content-parts.js';
import { imageMention, isImagePart } from '../../src/images.js';
import type { ChatMessage, ContentPart, GenerationOptions } from '../types.js';

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
 * - A part of a type llama-server reads in no message (a `file`…: LOCAL_PART_TYPES), or audio
 *   in a format it refuses (LOCAL_AUDIO_FORMATS), becomes such a line too, in an earlier turn (the new turn's was refused by
 *   LlamaLocalBrain.refuse), as a Claude mode's history replay tells it: sent as
 *   it came, every request of that conversation would fail.
 * - Without `hears` (its server refused audio: a model without an audio --mmproj,
 *   Ollama), every audio part becomes such a line: only an earlier turn's is left
 *   (LlamaLocalBrain.run refuses the new turn's), for the same reason.
 */
export function upstreamMessages(
  messages: ChatMessage[],
  persona: string | undefined,
  extraContext: string | undefined,
  vision = true,
  hears = true,
): ChatMessage[] {
  const readable = messages.map((m) => withoutUnreadParts(m, hears));
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

/** An earlier turn's audio in a format llama-server refuses (the new turn's was refused by LlamaLocalBrain.refuse). */
function refusedAudioMention(format: string): string {
  const shown = format === 'none' ? 'no format' : format.replace(/^"|"$/g, '');
  return `[an input_audio part (${shown}), not shown to the local model, which takes ${LOCAL_AUDIO_FORMATS.join(' or ')}]`;
}

/** An earlier turn's audio, in a format it takes, to a model whose server said it hears none. */
function unheardAudioMention(p: ContentPart): string {
  return `[an input_audio part (${audioFormatShown(p)}), not heard by the local model, which takes no audio]`;
}

/** An earlier turn's audio part that holds no audio (no data, not base64: the new turn's is refused). */
function emptyAudioMention(p: ContentPart): string {
  return `[an input_audio part (${audioFormatShown(p)}) without its audio, not shown to the local model]`;
}

/** An audio part's format as its line says it: the client's string, or "no format". */
function audioFormatShown(p: ContentPart): string {
  const audio = (p as { input_audio?: { format?: unknown } }).input_audio;
  const format = typeof audio === 'object' && audio !== null ? audio.format : undefined;
  return typeof format === 'string' ? format : 'no format';
}

/** What of `p` the server would refuse, as the line that takes its place; undefined when it reads it. */
function unreadLine(p: ContentPart, hears: boolean): string | undefined {
  if (!LOCAL_PART_TYPES.has(p.type)) return unreadPartLine(p.type, 'the local model');
  // Whatever its format: converted, the model would not hear it either.
  if (!hears && p.type === 'input_audio' && audioPartProblem(p) === undefined) return unheardAudioMention(p);
  const format = refusedAudioFormat(p);
  if (format !== undefined) return refusedAudioMention(format);
  return audioPartProblem(p) !== undefined ? emptyAudioMention(p) : undefined;
}

function withoutUnreadParts(m: ChatMessage, hears: boolean): ChatMessage {
  if (!Array.isArray(m.content) || m.content.every((p) => unreadLine(p, hears) === undefined)) return m;
  return {
    ...m,
    content: m.content.map((p) => {
      const line = unreadLine(p, hears);
      return line === undefined ? p : { type: 'text', text: line };
    }),
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
