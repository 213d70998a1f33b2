import { describe, expect, it } from 'vitest';
import { importCycles, importGraph } from './helpers/import-graph.js';

/**
 * The shape of the code (DESIGN.md): brains know no face, the core knows no
 * face, and only src/main.ts hands the faces of handlers/ to the service.
 * Files import each other in one direction only: no cycle, type-only
 * imports included.
 */
const graph = importGraph('.', ['src', 'brains', 'handlers']);

describe('architecture', () => {
  it('reads the imports it checks (static, type-only and dynamic)', () => {
    expect(graph.get('src/main.ts')).toEqual(expect.arrayContaining(['handlers/index.ts', 'src/service.ts']));
    expect(graph.get('handlers/index.ts')).toContain('handlers/telegram/index.ts');
    expect(graph.get('src/chat/service.ts')).toContain('src/chat/facts.ts');
  });

  it('no file of src/ or brains/ imports from handlers/, except src/main.ts', () => {
    const intoFaces = [...graph]
      .filter(([file]) => (file.startsWith('src/') || file.startsWith('brains/')) && file !== 'src/main.ts')
      .flatMap(([file, deps]) => deps.filter((d) => d.startsWith('handlers/')).map((d) => `${file} → ${d}`));
    expect(intoFaces).toEqual([]);
  });

  it('no import cycle between files', () => {
    expect(importCycles(graph).map((cycle) => cycle.join(' → '))).toEqual([]);
  });

  it('the cycle finder finds cycles, long and short, and nothing else', () => {
    const planted = new Map([
      ['a.ts', ['b.ts']],
      ['b.ts', ['c.ts', 'd.ts']],
      ['c.ts', ['a.ts']],
      ['d.ts', ['e.ts']],
      ['e.ts', []],
      ['f.ts', ['f.ts']],
    ]);
    expect(importCycles(planted)).toEqual([
      ['a.ts', 'b.ts', 'c.ts', 'a.ts'],
      ['f.ts', 'f.ts'],
    ]);
  });
});
