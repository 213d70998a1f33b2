import { describe, expect, it } from 'vitest';
import { EscapingDecoder } from '../src/tools/escaping-decoder.js';

describe('EscapingDecoder', () => {
  // UTF-8 of 2, 3 and 4 bytes, a lone continuation byte, bytes no UTF-8 has, a lead cut by a space, an overlong slash, a surrogate.
  const bytes = Buffer.concat([
    Buffer.from('café → 🚀 '),
    Buffer.from([0x80, 0x20, 0xff, 0xfe, 0x20, 0xe2, 0x82, 0x20, 0xc0, 0xaf, 0x20, 0xed, 0xa0, 0x80]),
    Buffer.from(' end'),
  ]);
  const expected = 'café → 🚀 \\200 \\377\\376 \\342\\202 \\300\\257 \\355\\240\\200 end';

  it('escapes each byte that is not UTF-8 as \\ooo and keeps the rest as it is', () => {
    expect(new EscapingDecoder().decode(bytes)).toBe(expected);
  });

  it('reads a character cut between two chunks as the character, wherever the cut falls', () => {
    for (let cut = 0; cut <= bytes.length; cut++) {
      const decoder = new EscapingDecoder();
      const text =
        decoder.decode(bytes.subarray(0, cut), { stream: true }) +
        decoder.decode(bytes.subarray(cut), { stream: true }) +
        decoder.decode();
      expect(text, `cut at ${cut}`).toBe(expected);
    }
  });

  it('escapes the bidi controls, which would show the line reordered', () => {
    // Shown, U+202E made `evil<RLO>txt.exe` read `evilexe.txt`.
    expect(new EscapingDecoder().decode(Buffer.from('evil\u202etxt.exe é'))).toBe(
      'evil\\342\\200\\256txt.exe é',
    );
  });

  it('escapes the start of a sequence the output ends in', () => {
    const decoder = new EscapingDecoder();
    expect(decoder.decode(Buffer.from([0x61, 0xf0, 0x9f]), { stream: true })).toBe('a');
    expect(decoder.decode()).toBe('\\360\\237');
  });
});
