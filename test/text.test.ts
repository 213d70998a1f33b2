import { describe, expect, it } from 'vitest';
import type { ChatMessage } from '../brains/types.js';
import { headChars, historyDigest, latestUserWords, newTurnText, shorten, tailChars } from '../src/text.js';

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

  it('digests what a conversation said, whatever the client re-renders between two requests', () => {
    const answered: ChatMessage[] = [...first, { role: 'assistant', content: '**[local]** hi!' }];
    // The next request's history: no Runtime line, no internal context, another system prompt, other spacing.
    const resent: ChatMessage[] = [
      { role: 'system', content: 'a different system prompt' },
      { role: 'user', content: [{ type: 'text', text: '[Tue 2026-11-24 04:10 UTC]   hello there' }] },
      { role: 'assistant', content: 'hi!\n' },
    ];
    expect(historyDigest(resent)).toBe(historyDigest(answered));
    const call = (args: string): ChatMessage => ({
      role: 'assistant',
      content: null,
      tool_calls: [
        { id: `call_${args.length}`, type: 'function', function: { name: 'read', arguments: args } },
      ],
    });
    expect(historyDigest([...resent, call('{"path": "a"}')])).toBe(
      historyDigest([...resent, call('{"path":"a"}')]),
    );
  });

  it('tells apart conversations that differ anywhere', () => {
    const base: ChatMessage[] = [
      { role: 'user', content: 'hello' },
      { role: 'assistant', content: 'hi, I am A' },
    ];
    const variants: ChatMessage[][] = [
      [
        { role: 'user', content: 'hello' },
        { role: 'assistant', content: 'hi, I am B' },
      ],
      [
        { role: 'user', content: 'hello!' },
        { role: 'assistant', content: 'hi, I am A' },
      ],
      [...base, { role: 'user', content: 'more' }],
      [{ role: 'user', content: 'hello' }],
    ];
    for (const v of variants) expect(historyDigest(v)).not.toBe(historyDigest(base));
  });

  it('shortens text, never between the two halves of an emoji', () => {
    expect(shorten('short', 10)).toBe('short');
    expect(shorten('abcdefghij', 5)).toBe('abcd…');
    const cut = shorten(`abc${'😀'.repeat(5)}`, 5);
    expect(cut).toBe('abc…');
    expect(cut).not.toMatch(/[\ud800-\udbff](?![\udc00-\udfff])/);
  });

  it('keeps the start or the end of a text, one character fewer rather than half an emoji', () => {
    expect(headChars('abcdef', 3)).toBe('abc');
    expect(headChars('ab😀cd', 3)).toBe('ab');
    expect(headChars('ab😀cd', 4)).toBe('ab😀');
    expect(headChars('ab', 5)).toBe('ab');
    expect(tailChars('abcdef', 3)).toBe('def');
    expect(tailChars('ab😀cd', 3)).toBe('cd');
    expect(tailChars('ab😀cd', 4)).toBe('😀cd');
    expect(tailChars('ab', 5)).toBe('ab');
    expect(tailChars('ab', 0)).toBe('');
  });
});
