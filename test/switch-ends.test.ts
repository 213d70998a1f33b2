import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SwitchEnds } from '../src/switch-ends.js';
import { recordingLogger } from './helpers/logs.js';

/**
 * The file where the ends of switches wait for the database (the two-process test in
 * switch-restart.test.ts drives it through brainstem). That its writes are synced is not seen
 * here: only a power loss would show it.
 */
describe('the switch-ends file', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'bst-switch-ends-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('is written whole, 0600, with no temporary file left, read back by the next start, and goes once empty', async () => {
    const { logger, logs } = recordingLogger('info');
    const ends = new SwitchEnds(dir, logger);
    const notice = {
      ts: 1,
      kind: 'switch_failed' as const,
      text: 'Switch to <b>x</b> failed',
      dedupeKey: 'k',
    };
    ends.note({ cut: 'record', queued: ['a'], notices: [notice] });
    ends.note({ queued: ['b'], notices: [notice], sent: [7] });
    expect((await stat(ends.file)).mode & 0o777).toBe(0o600);
    expect(JSON.parse(await readFile(ends.file, 'utf8'))).toEqual({
      cut: 'record',
      queued: ['a', 'b'],
      notices: [notice],
      sent: [7],
    });
    expect(await readdir(dir)).toEqual([path.basename(ends.file)]);
    const next = new SwitchEnds(dir, logger);
    expect(next.cutEnded('record')).toBe(true);
    expect(next.queuedBegan('b')).toBe(true);
    expect(next.pending.notices).toEqual([notice]);
    expect(next.pending.sent).toEqual([7]);
    next.written({ cut: 'record', queued: ['a', 'b'] });
    expect(await readdir(dir)).toEqual([path.basename(ends.file)]);
    next.written({ notices: ['k'] });
    expect(await readdir(dir)).toEqual([path.basename(ends.file)]);
    next.written({ sent: [7] });
    expect(await readdir(dir)).toEqual([]);
    expect(logs.filter((l) => (l.level as number) >= 50)).toEqual([]);
  });

  it('keeps the switch records and the other notices when one notice is of a kind this version does not know', async () => {
    const { logger, logs } = recordingLogger('info');
    const known = { ts: 1, kind: 'switch_failed', text: 'failed', dedupeKey: 'k' };
    const newer = { ts: 2, kind: 'a_newer_kind', text: 'from a newer brainstem', dedupeKey: 'n' };
    await writeFile(
      path.join(dir, 'brainstem.sqlite-switch-ends'),
      JSON.stringify({ cut: 'record', queued: ['a'], notices: [newer, known] }),
    );
    const ends = new SwitchEnds(dir, logger);
    expect(ends.cutEnded('record')).toBe(true);
    expect(ends.queuedBegan('a')).toBe(true);
    expect(ends.pending.notices).toEqual([known]);
    expect(logs.map((l) => l.msg)).toContain('a notice kept for this start is not readable: not sent');
  });
});
