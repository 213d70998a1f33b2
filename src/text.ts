import { createHash } from 'node:crypto';
import type { ChatMessage } from '../brains/types.js';

/** The text of a message whatever its shape: a string, or an array of parts of which only text counts. */
export function contentText(content: ChatMessage['content']): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content
    .map((p) => (p.type === 'text' && typeof p.text === 'string' ? p.text : ''))
    .filter(Boolean)
    .join('\n');
}

/** The user messages after the last assistant message: the turn a resumed session needs. */
export function newTurnText(messages: ChatMessage[]): string {
  let lastAssistant = -1;
  messages.forEach((m, i) => {
    if (m.role === 'assistant') lastAssistant = i;
  });
  return messages
    .slice(lastAssistant + 1)
    .filter((m) => m.role === 'user')
    .map((m) => contentText(m.content))
    .filter((t) => t.length > 0)
    .join('\n\n');
}

export function hasAssistant(messages: ChatMessage[]): boolean {
  return messages.some((m) => m.role === 'assistant');
}

/**
 * OpenClaw prefixes user text with `[Tue 2026-11-24 04:10 UTC] ` and may append
 * a `Runtime: …` line; neither says anything about the conversation's identity
 * or intent, so both are removed before fingerprinting or intent matching.
 */
export function stripClientDecorations(text: string): string {
  return text
    .replace(/^\s*\[[A-Z][a-z]{2} \d{4}-\d{2}-\d{2} \d{2}:\d{2}(?::\d{2})? [A-Z]{2,5}\]\s*/, '')
    .replace(/\n\s*Runtime: [^\n]*$/m, '')
    .trim();
}

/**
 * A conversation key for clients that send no session header: OpenAI clients
 * resend the whole history each turn, so the first user message is stable for
 * the life of a conversation.
 */
export function conversationFingerprint(messages: ChatMessage[]): string {
  const first = messages.find((m) => m.role === 'user');
  const text = first ? stripClientDecorations(contentText(first.content)) : '';
  return `fp:${createHash('sha256').update(text).digest('hex').slice(0, 24)}`;
}

/** Text of the user's latest words, decorations and OpenClaw's internal context removed. */
export function latestUserWords(newTurn: string): string {
  return stripClientDecorations(
    newTurn.replace(/<<<BEGIN_OPENCLAW_INTERNAL_CONTEXT>>>[\s\S]*?<<<END_OPENCLAW_INTERNAL_CONTEXT>>>/g, ''),
  );
}
