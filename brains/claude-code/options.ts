import { LOCAL_AUDIO_FORMATS, LOCAL_PART_TYPES, newTurnPartOutside } from '../../src/content-parts.js';
import type { ChatMessage, GenerationOptions, Refusal, TurnRequest } from '../types.js';

/**
 * What a Claude mode does with the Chat Completions controls. Claude Code
 * samples with its own settings and has no flag for them, so a sampling field
 * is refused unless it holds the value Claude uses anyway (the API default):
 * a client that asks for something else must hear that it will not get it.
 * `max_tokens` is accepted and not applied: Claude Code sizes each API call of
 * its agent loop itself (a file it writes is one long tool call), and
 * OpenClaw sends a cap with every request.
 */

/** Each field and the value that asks for nothing (undefined = any value asks for something). */
const DEFAULTS: { [K in keyof GenerationOptions]-?: (v: NonNullable<GenerationOptions[K]>) => boolean } = {
  temperature: (v) => v === 1,
  top_p: (v) => v === 1,
  stop: (v) => v.length === 0,
  seed: () => false,
  presence_penalty: (v) => v === 0,
  frequency_penalty: (v) => v === 0,
  logit_bias: (v) => Object.keys(v).length === 0,
  logprobs: (v) => v === false,
  top_logprobs: (v) => v === 0,
  response_format: (v) => v.type === 'text',
  reasoning_effort: () => false,
  // Client tools never reach Claude Code (it has its own), so how it would call them does not matter.
  parallel_tool_calls: () => true,
};

const LOCAL_ONLY = 'Claude Code has no setting for it; leave it out, or send it to a local mode';
const WHY: Partial<Record<keyof GenerationOptions, string>> = {
  reasoning_effort: 'brainstem does not pass it to Claude Code (its --effort is per process); leave it out',
  response_format: `Claude Code answers in text; ask for JSON in the prompt, or send it to a local mode`,
};

/** The content parts Claude Code reads: text, and images (sent to it as image blocks). */
const CLAUDE_PARTS: ReadonlySet<string> = new Set(['text', 'image_url']);

/**
 * The first part of the new turn Claude Code could not read (a file, audio):
 * refused rather than left out, so the client knows the model never saw it.
 * Earlier turns' parts are only told of in the history replay. A local mode is
 * named as the way out only for a part its server reads (audio): none reads a
 * file part (LOCAL_PART_TYPES), so its text is what to send.
 */
function unreadablePart(messages: readonly ChatMessage[]): Refusal | undefined {
  const part = newTurnPartOutside(messages, CLAUDE_PARTS);
  if (!part) return undefined;
  // Audio is the one part a local mode's server reads and Claude Code does not (LOCAL_PART_TYPES), in
  // its formats only (llama-server): an ogg voice note sent there would fail too.
  const instead = LOCAL_PART_TYPES.has(part.type)
    ? `send what is said as text, or use a local mode whose model hears audio, as ${LOCAL_AUDIO_FORMATS.join(' or ')}`
    : part.type === 'file'
      ? 'send the file’s text as a text part (local modes read no file part either)'
      : 'send its content as a text part (local modes do not read it either)';
  return {
    param: part.param,
    message: `${part.type} parts are not supported by Claude modes: Claude Code reads text and images (image_url); ${instead}.`,
  };
}

export function claudeRefusal(
  req: Pick<TurnRequest, 'options' | 'toolChoice' | 'messages'>,
): Refusal | undefined {
  const part = unreadablePart(req.messages);
  if (part) return part;
  const options = req.options ?? {};
  for (const field of Object.keys(DEFAULTS) as (keyof GenerationOptions)[]) {
    const value = options[field];
    if (value === undefined) continue;
    const isDefault = DEFAULTS[field] as (v: unknown) => boolean;
    if (!isDefault(value)) {
      return {
        param: field,
        message: `${field} is not supported by Claude modes: ${WHY[field] ?? LOCAL_ONLY}.`,
      };
    }
  }
  const choice = req.toolChoice;
  if (choice === 'required' || (typeof choice === 'object' && choice !== null)) {
    return {
      param: 'tool_choice',
      message:
        'tool_choice cannot force a tool in Claude modes: Claude Code uses its own tools, not the client’s. Send "auto" or "none", or use a local mode.',
    };
  }
  return undefined;
}
