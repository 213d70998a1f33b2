import type { ChatMessage } from '../brains/types.js';

/** What brainstem puts in front of an answer when `server.modeTag` is on: `**[local]** `. */
export function modeTag(modeId: string): string {
  return `**[${modeId}]** `;
}

/**
 * Any mode's tag at the start of a text, whatever modes exist now: for what only compares or keeps
 * words (a history's digest, a Telegram chat's own history), where a mode since removed still counts.
 */
export const ANY_MODE_TAG = /^\*\*\[[a-z0-9_-]+\]\*\*\s*/;

/**
 * The messages with brainstem's own mode tag taken off the front of each
 * assistant message: a client (OpenClaw, a chat UI) sends its history back as
 * it got it, and a model that reads its earlier answers tagged starts its own
 * answers with the tag (which brainstem then tags again: `**[local]** **[local]** …`)
 * or takes it for something said. Only the tag exactly as modeTag writes it,
 * for a mode this configuration has: anything else may be the model's own words.
 * Whatever `server.modeTag` is now, since the history may be older than the setting.
 */
export function withoutModeTags(messages: ChatMessage[], modeIds: readonly string[]): ChatMessage[] {
  const tags = modeIds.map(modeTag);
  const untag = (text: string) => {
    const tag = tags.find((t) => text.startsWith(t));
    return tag === undefined ? text : text.slice(tag.length);
  };
  let changed = false;
  const out = messages.map((m) => {
    if (m.role !== 'assistant') return m;
    const { content } = m;
    // The tag goes in front of the answer's first words: a string, or a first text part.
    const first = Array.isArray(content) ? content[0] : undefined;
    const text = typeof content === 'string' ? content : first?.type === 'text' ? first.text : undefined;
    if (typeof text !== 'string') return m;
    const untagged = untag(text);
    if (untagged === text) return m;
    changed = true;
    return {
      ...m,
      content: Array.isArray(content)
        ? [{ ...first, type: 'text', text: untagged }, ...content.slice(1)]
        : untagged,
    };
  });
  return changed ? out : messages;
}
