import { createHash } from 'node:crypto';
import type { ChatMessage } from '../brains/types.js';
import { imageMarks } from './images.js';
import { ANY_MODE_TAG } from './mode-tag.js';

/** The text of a message whatever its shape: a string, or an array of parts of which only text counts. */
export function contentText(content: ChatMessage['content']): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content
    .map((p) => (p.type === 'text' && typeof p.text === 'string' ? p.text : ''))
    .filter(Boolean)
    .join('\n');
}

/**
 * The text of the user messages after the last assistant message: where brainstem reads a switch
 * request or a shortcut word (a tool's result is nobody's request). A Claude brain builds what it is
 * told of the turn from the messages themselves (brains/claude-code/prompt.ts).
 */
export function newTurnText(messages: ChatMessage[]): string {
  return messages
    .slice(lastAssistantIndex(messages) + 1)
    .filter((m) => m.role === 'user')
    .map((m) => contentText(m.content))
    .filter((t) => t.length > 0)
    .join('\n\n');
}

/**
 * Whether the user messages after the last assistant message hold a part that
 * is neither text nor an image (`input_audio`): content too, which a local
 * model gets as it is (a part neither mode reads, a `file`, is refused by name
 * before this, as a Claude mode refuses audio).
 */
export function newTurnHasOtherParts(messages: ChatMessage[]): boolean {
  return messages
    .slice(lastAssistantIndex(messages) + 1)
    .some(
      (m) =>
        m.role === 'user' &&
        Array.isArray(m.content) &&
        m.content.some((p) => p.type !== 'text' && p.type !== 'image_url'),
    );
}

export function hasAssistant(messages: ChatMessage[]): boolean {
  return messages.some((m) => m.role === 'assistant');
}

/**
 * OpenClaw prefixes user text with `[Tue 2026-11-24 04:10 UTC] ` and may append
 * a `Runtime: …` line; neither says anything about the conversation's identity
 * or intent, so both are removed before digesting a history or matching intents.
 */
export function stripClientDecorations(text: string): string {
  return text
    .replace(/^\s*\[[A-Z][a-z]{2} \d{4}-\d{2}-\d{2} \d{2}:\d{2}(?::\d{2})? [A-Z]{2,5}\]\s*/, '')
    .replace(/\n\s*Runtime: [^\n]*$/m, '')
    .trim();
}

/** Index of the last assistant message, -1 when there is none. */
export function lastAssistantIndex(messages: readonly ChatMessage[]): number {
  for (let i = messages.length - 1; i >= 0; i--) if (messages[i]?.role === 'assistant') return i;
  return -1;
}

/**
 * A digest of what a conversation has said, for clients that send no session
 * header: two requests continue the same conversation only when everything
 * said so far is the same. What a client may re-render between two requests
 * does not count: system and developer messages, OpenClaw's timestamp prefix,
 * `Runtime:` line and internal context, the mode tag brainstem put in front of
 * an answer, whitespace, tool call ids and how arguments JSON is spaced.
 */
export function historyDigest(messages: ChatMessage[]): string {
  const said = messages.flatMap((m) => {
    const entry = normalisedMessage(m);
    return entry ? [entry] : [];
  });
  return createHash('sha256').update(JSON.stringify(said)).digest('hex');
}

function normalisedMessage(m: ChatMessage): unknown[] | undefined {
  const text = (t: string) => t.replace(/\s+/g, ' ').trim();
  switch (m.role) {
    case 'user': {
      const words = text(latestUserWords(contentText(m.content)));
      // Images count too (a photo without a caption is something said); a text-only message keeps its old digest.
      const images = imageMarks(m);
      if (images.length > 0) return ['u', words, images];
      return words ? ['u', words] : undefined;
    }
    case 'assistant': {
      const words = text(contentText(m.content)).replace(ANY_MODE_TAG, '');
      const calls = (m.tool_calls ?? []).map((c) => [c.function.name, canonicalJson(c.function.arguments)]);
      return words || calls.length ? ['a', words, calls] : undefined;
    }
    case 'tool':
      return ['t', text(contentText(m.content))];
    default:
      return undefined;
  }
}

function canonicalJson(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text));
  } catch {
    return text.trim();
  }
}

/** Text of the user's latest words, decorations and OpenClaw's internal context removed. */
export function latestUserWords(newTurn: string): string {
  return stripClientDecorations(
    newTurn.replace(/<<<BEGIN_OPENCLAW_INTERNAL_CONTEXT>>>[\s\S]*?<<<END_OPENCLAW_INTERNAL_CONTEXT>>>/g, ''),
  );
}

/**
 * Whether cutting `text` at `at` parts the two halves of a surrogate pair (an
 * emoji, say): Telegram, the Messages API and llama-server all refuse a lone half.
 */
const partsPair = (text: string, at: number): boolean => {
  const before = text.charCodeAt(at - 1);
  const after = text.charCodeAt(at);
  return before >= 0xd800 && before <= 0xdbff && after >= 0xdc00 && after <= 0xdfff;
};

/** The first `max` characters of `text` at most: one fewer rather than half an emoji. */
export function headChars(text: string, max: number): string {
  return text.slice(0, partsPair(text, max) ? max - 1 : max);
}

/** The last `max` characters of `text` at most: one fewer rather than half an emoji. */
export function tailChars(text: string, max: number): string {
  const at = Math.max(0, text.length - max);
  return text.slice(partsPair(text, at) ? at + 1 : at);
}

/** `text` cut to `max` characters, an ellipsis saying so: what came from outside, before it is shown back. */
export function shorten(text: string, max: number): string {
  return text.length <= max ? text : `${headChars(text, max - 1)}…`;
}
