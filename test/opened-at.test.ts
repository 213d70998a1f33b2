import {
  mkdirSync,
  mkdtempSync,
  realpathSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isOpenedAt } from '../src/opened-at.js';

/**
 * isOpenedAt on real folders and links: what read_file and the uploads folder rely on when a
 * folder on a path judged before its open is swapped for a link in between.
 */
const root = realpathSync(mkdtempSync(path.join(tmpdir(), 'bst-opened-at-')));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('isOpenedAt', () => {
  it('is true for a file opened at the path it was judged on', async () => {
    mkdirSync(path.join(root, 'here'));
    const file = path.join(root, 'here', 'a.txt');
    writeFileSync(file, 'a');
    const fh = await open(file);
    try {
      expect(await isOpenedAt(fh, file)).toBe(true);
    } finally {
      await fh.close();
    }
  });

  it('is false for a file created through a folder swapped for a link to another place', async () => {
    const judged = path.join(root, 'uploads');
    const elsewhere = path.join(root, 'elsewhere');
    mkdirSync(judged);
    mkdirSync(elsewhere);
    // Judged as a plain folder, then swapped before the open: the file lands where the link leads.
    renameSync(judged, `${judged}.real`);
    symlinkSync(elsewhere, judged);
    const fh = await open(path.join(judged, 'b.txt'), 'wx');
    try {
      expect(await isOpenedAt(fh, path.join(judged, 'b.txt'))).toBe(false);
    } finally {
      await fh.close();
    }
  });

  it('is false for a file opened where another file now stands at the path', async () => {
    const file = path.join(root, 'c.txt');
    writeFileSync(file, 'old');
    const fh = await open(file);
    try {
      rmSync(file);
      writeFileSync(file, 'new');
      expect(await isOpenedAt(fh, file)).toBe(false);
    } finally {
      await fh.close();
    }
  });
});
