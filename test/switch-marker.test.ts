import { describe, expect, it } from 'vitest';
import { SwitchMarkerFilter } from '../src/switch-marker.js';

function runSplit(text: string, at: number[]) {
  const f = new SwitchMarkerFilter();
  let out = '';
  let prev = 0;
  for (const cut of [...at, text.length]) {
    out += f.push(text.slice(prev, cut));
    prev = cut;
  }
  out += f.flush();
  return { out, found: f.found };
}

describe('SwitchMarkerFilter', () => {
  const text = 'Sure, switching now. [SWITCH:local] See you there.';

  it('removes a marker split at every position', () => {
    for (let i = 1; i < text.length; i++) {
      for (const j of [i + 1, i + 3, i + 7]) {
        if (j >= text.length) continue;
        const { out, found } = runSplit(text, [i, j]);
        expect(out, `cut at ${i},${j}`).toBe('Sure, switching now.  See you there.');
        expect(found).toEqual(['local']);
      }
    }
  });

  it('passes plain text at once and keeps brackets that are not markers', () => {
    const f = new SwitchMarkerFilter();
    expect(f.push('hello ')).toBe('hello ');
    expect(f.push('[see note] and [SW')).toBe('[see note] and ');
    expect(f.push('ORD]')).toBe('[SWORD]');
    expect(f.push(' a [S')).toBe(' a ');
    expect(f.flush()).toBe('[S');
    expect(f.found).toEqual([]);
  });

  it('finds several markers, any case, with spaces', () => {
    const { out, found } = runSplit('[switch: Assistant]a[SWITCH:local]', [3, 20]);
    expect(out).toBe('a');
    expect(found).toEqual(['assistant', 'local']);
  });

  it('keeps a quoted marker as text, wherever the chunks are cut, and follows the real one', () => {
    const quoted = [
      'Write `[SWITCH:x]` or ``a `[SWITCH:y]` b``, "[SWITCH:z]", « [SWITCH:w] ».',
      '~~~md\n[SWITCH:v]\n```\n[SWITCH:v]\n~~~',
      '  > quoted: [SWITCH:u]',
      'a lone ` then [SWITCH:t]',
      'Going now. [SWITCH:local]',
    ].join('\n');
    const shown = quoted.replace('[SWITCH:t]', '').replace('[SWITCH:local]', '');
    for (let i = 1; i < quoted.length; i++) {
      const { out, found } = runSplit(quoted, [i]);
      expect(out, `cut at ${i}`).toBe(shown);
      expect(found, `cut at ${i}`).toEqual(['t', 'local']);
    }
  });
});
