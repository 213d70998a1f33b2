import { describe, expect, it } from 'vitest';
import type { ChatMessage } from '../brains/types.js';
import { conversationFingerprint, latestUserWords, newTurnText } from '../src/text.js';

// The shape OpenClaw sends (see DESIGN.md): two user messages on the first turn, parts arrays, a timestamp prefix.
const first: ChatMessage[] = [
  { role: 'system', content: 'x'.repeat(1000) },
  {
    role: 'user',
    content: '[Tue 2026-11-24 04:10 UTC] hello there\nRuntime: agent=main | session=abc | sessionId=123',
  },
  {
    role: 'user',
    content: [
      {
        type: 'text',
        text: '<<<BEGIN_OPENCLAW_INTERNAL_CONTEXT>>> stuff <<<END_OPENCLAW_INTERNAL_CONTEXT>>>',
      },
    ],
  },
];

describe('conversation helpers', () => {
  it('takes every user message after the last assistant message', () => {
    const second: ChatMessage[] = [
      ...first,
      { role: 'assistant', content: 'hi!' },
      { role: 'user', content: [{ type: 'text', text: '[Tue 2026-11-24 04:11 UTC] passe en mode local' }] },
    ];
    expect(newTurnText(first)).toContain('hello there');
    expect(newTurnText(second)).toBe('[Tue 2026-11-24 04:11 UTC] passe en mode local');
    expect(latestUserWords(newTurnText(second))).toBe('passe en mode local');
    expect(latestUserWords(newTurnText(first))).toBe('hello there');
  });

  it('fingerprints a conversation by its first user message, stable across turns', () => {
    const later: ChatMessage[] = [
      ...first,
      { role: 'assistant', content: 'hi' },
      { role: 'user', content: 'more' },
    ];
    expect(conversationFingerprint(later)).toBe(conversationFingerprint(first));
    const other: ChatMessage[] = [{ role: 'user', content: '[Tue 2026-11-24 04:10 UTC] something else' }];
    expect(conversationFingerprint(other)).not.toBe(conversationFingerprint(first));
  });
});
