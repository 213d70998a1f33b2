import type { ChatMessage, ContentPart } from '../brains/types.js';
import { BrainstemError } from './errors.js';
import { lastAssistantIndex } from './text.js';

/**
 * The content part types a local mode's server reads: llama-server (tools/server,
 * oaicompat_chat_params_parse) takes text, images (image_url) and audio (input_audio), and refuses
 * any other, in a message of any role, with a 400 "unsupported content[].type" that names neither
 * the part nor its type. A `refusal` part is made text before any brain sees it (openai-schema.ts).
 */
export const LOCAL_PART_TYPES: ReadonlySet<string> = new Set(['text', 'image_url', 'input_audio']);

/**
 * The line an earlier turn's part stands as where a brain does not send it on (a Claude mode's
 * replayed history, a local model's messages), so the model knows one was there:
 * `[an input_audio part, not shown to Claude Code]`, `[a file part, not shown to the local model]`.
 * "an" before a type that starts with a vowel (`input_audio`, `input_file`).
 */
export function unreadPartLine(type: string, reader: string): string {
  return `[${/^[aeiou]/i.test(type) ? 'an' : 'a'} ${type} part, not shown to ${reader}]`;
}

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

/** Any character base64 does not use (a negated class: fast over megabytes, as images.ts checks them). */
const NOT_BASE64 = /[^A-Za-z0-9+/=]/;

/**
 * What is wrong with an `input_audio` part, as a 400 says it; undefined for one in OpenAI's shape,
 * `{ data: <the file's bytes as base64>, format: "wav" | "mp3" | … }` (its format is each mode's
 * to take or refuse). Unchecked, llama-server decodes what base64 it finds (none in an empty part,
 * a few bytes of a data: URL) and fails on it with a 500 a client sends again, and a part without
 * its format was said to be in format "none".
 */
export function audioPartProblem(part: ContentPart): string | undefined {
  if (part.type !== 'input_audio') return undefined;
  const audio = (part as { input_audio?: unknown }).input_audio;
  if (typeof audio !== 'object' || audio === null || Array.isArray(audio)) {
    return 'an audio part holds input_audio: { data: the audio file’s bytes as base64, format: "wav" or "mp3" }.';
  }
  const { data, format } = audio as { data?: unknown; format?: unknown };
  if (typeof data !== 'string' || data.length === 0) {
    return 'input_audio.data is missing: put the audio file’s bytes there, as base64.';
  }
  if (/^data:/i.test(data)) {
    return 'input_audio.data is a data: URL: send the base64 after its comma alone (OpenAI’s input_audio shape).';
  }
  const pad = data.indexOf('=');
  if (data.length % 4 === 1 || NOT_BASE64.test(data) || (pad !== -1 && !/^=*$/.test(data.slice(pad)))) {
    return 'input_audio.data is not valid base64.';
  }
  if (typeof format !== 'string' || format.length === 0) {
    return 'input_audio.format is missing: say the audio’s format ("wav" or "mp3").';
  }
  return undefined;
}

/**
 * Refuses (400 naming the part) the first audio part of the new turn that holds no audio a server
 * could play (audioPartProblem). An earlier turn's is told as a line where it is not sent (the
 * brains' histories), never refused: that would fail every later message of the conversation.
 */
export function checkNewTurnAudio(messages: readonly ChatMessage[]): void {
  const found = newTurnPartWhere(messages, (p) => audioPartProblem(p) !== undefined);
  if (!found) return;
  throw new BrainstemError('INVALID_REQUEST', `${found.param}: ${audioPartProblem(found.part)}`, found.param);
}
