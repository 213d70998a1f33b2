import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CONFIG_DOCS_PATH, renderConfigDocs } from '../scripts/config-docs.js';

describe('docs/configuration.md', () => {
  it('is what the schemas say now (run `npm run config-docs` after changing a config field)', () => {
    expect(readFileSync(CONFIG_DOCS_PATH, 'utf8')).toBe(renderConfigDocs());
  });

  it('lists every field with what it does', () => {
    const rows = renderConfigDocs()
      .split('\n')
      .filter((l) => l.startsWith('| `'));
    for (const field of ['server.host', 'claude.warm.idleMs', 'modes.<id>.kind', 'tools.incus.commands']) {
      expect(rows.some((r) => r.startsWith(`| \`${field}\` |`))).toBe(true);
    }
    // The last column (what it does) is never empty.
    for (const r of rows) expect(r.split(' | ').at(-1)?.replace(/\|$/, '').trim(), r).not.toBe('');
  });
});
