/**
 * What a year of use leaves on a small box: state brainstem keeps only as long as it can be used,
 * checked on the real service started on a data dir whose rows are dated as a year ago.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openDb } from '../src/db/index.js';
import { startTestService, type TestService } from './helpers/service.js';

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;

let svc: TestService | undefined;
let dir: string | undefined;
afterEach(async () => {
  await svc?.close();
  svc = undefined;
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

describe('Claude sessions', () => {
  it('those unused for longer than claude.sessionTtlHours are removed at start, with the instructions they held', async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'bst-retention-'));
    const db = openDb(path.join(dir, 'data'));
    const insert = db.prepare(
      `INSERT INTO sessions (session_key, mode, brain_session_id, cwd, created_at, updated_at, instructions)
       VALUES (?, 'assistant', ?, '/w', ?, ?, ?)`,
    );
    const now = Date.now();
    // A year of OpenClaw sessions (a new id each day), each told OpenClaw's ~50,000-character prompt.
    for (let day = 365; day >= 8; day--) {
      const at = now - day * DAY_MS;
      insert.run(`openclaw-${day}:0`, `id-${day}`, at, at, 'x'.repeat(50_000));
    }
    insert.run('today:0', 'id-today', now - HOUR_MS, now - HOUR_MS, 'x'.repeat(50_000));
    db.close();

    svc = await startTestService({ dir, config: { claude: { sessionTtlHours: 168 } } });
    const left = svc.service.core.db
      .prepare<[], { session_key: string }>('SELECT session_key FROM sessions')
      .all()
      .map((r) => r.session_key);
    expect(left).toEqual(['today:0']);
  });

  it('those that expired while brainstem ran are removed as a new one is recorded', async () => {
    svc = await startTestService();
    const { sessions, db } = svc.service.core;
    const now = Date.now();
    sessions.set('old:0', 'assistant', 'id-old', '/w');
    db.prepare('UPDATE sessions SET updated_at = ? WHERE session_key = ?').run(now - 30 * DAY_MS, 'old:0');
    sessions.set('new:0', 'assistant', 'id-new', '/w');
    const left = db
      .prepare<[], { session_key: string }>('SELECT session_key FROM sessions')
      .all()
      .map((r) => r.session_key);
    expect(left).toEqual(['new:0']);
  });
});
