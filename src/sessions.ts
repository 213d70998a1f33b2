import type { Db } from './db/index.js';
import type { KeptWrites } from './db/kept-writes.js';

export interface StoredSession {
  sessionKey: string;
  mode: string;
  brainSessionId: string;
  cwd: string;
  createdAt: number;
  updatedAt: number;
  /** The client's instructions this session was last told (see setInstructions); undefined: not known. */
  instructions?: string;
  /** The digest of the last answer this session gave (see setAnswered); undefined: not known. */
  answered?: string;
}

interface Row {
  session_key: string;
  mode: string;
  brain_session_id: string;
  cwd: string;
  created_at: number;
  updated_at: number;
  instructions: string | null;
  answered: string | null;
}

const toSession = (r: Row): StoredSession => ({
  sessionKey: r.session_key,
  mode: r.mode,
  brainSessionId: r.brain_session_id,
  cwd: r.cwd,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
  ...(r.instructions !== null ? { instructions: r.instructions } : {}),
  ...(r.answered !== null ? { answered: r.answered } : {}),
});

/**
 * Conversation → brain session map, persisted so a restart resumes the same
 * Claude session. Entries older than the TTL are treated as absent, and removed
 * at start and as a session is recorded: most conversations never come back
 * (OpenClaw starts a new session id each day, each /new, each compaction), and
 * each row holds the client's instructions (about 50,000 characters for
 * OpenClaw's), so a year of them would fill the database. A session
 * is recorded as a turn runs: when another process holds the database it is
 * kept until the lock is gone (see KeptWrites), so the turn goes on; the
 * warm process keeps the session meanwhile.
 */
export class SessionStore {
  // Prepared once: get and set run on every Claude turn.
  private readonly getStmt;
  private readonly setStmt;
  private readonly instructionsStmt;
  private readonly answeredStmt;
  private readonly deleteStmt;
  private readonly deleteModeStmt;
  private readonly listStmt;
  private readonly moveStmt;
  private readonly pruneStmt;

  constructor(
    db: Db,
    private readonly kept: KeptWrites,
    private readonly ttlMs: number,
  ) {
    this.getStmt = db.prepare<[string, string], Row>(
      'SELECT * FROM sessions WHERE session_key = ? AND mode = ?',
    );
    this.setStmt = db.prepare(
      `INSERT INTO sessions (session_key, mode, brain_session_id, cwd, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT(session_key, mode) DO UPDATE SET
         brain_session_id = excluded.brain_session_id, cwd = excluded.cwd, updated_at = excluded.updated_at,
         created_at = CASE WHEN sessions.brain_session_id = excluded.brain_session_id THEN sessions.created_at ELSE excluded.created_at END,
         instructions = CASE WHEN sessions.brain_session_id = excluded.brain_session_id THEN sessions.instructions END,
         answered = CASE WHEN sessions.brain_session_id = excluded.brain_session_id THEN sessions.answered END`,
    );
    // Only the session that was told them: one that replaced it meanwhile was told nothing yet.
    this.instructionsStmt = db.prepare(
      'UPDATE sessions SET instructions = ? WHERE session_key = ? AND mode = ? AND brain_session_id = ?',
    );
    this.answeredStmt = db.prepare(
      'UPDATE sessions SET answered = ? WHERE session_key = ? AND mode = ? AND brain_session_id = ?',
    );
    this.deleteStmt = db.prepare('DELETE FROM sessions WHERE session_key = ?');
    this.deleteModeStmt = db.prepare('DELETE FROM sessions WHERE session_key = ? AND mode = ?');
    this.moveStmt = db.prepare('UPDATE OR IGNORE sessions SET session_key = ? WHERE session_key = ?');
    this.listStmt = db.prepare<[number], Row>(
      'SELECT * FROM sessions WHERE updated_at >= ? ORDER BY updated_at DESC',
    );
    this.pruneStmt = db.prepare('DELETE FROM sessions WHERE updated_at < ?');
    this.kept.run('the removal of expired Claude sessions', () => this.prune(), { latest: true });
  }

  /** Removes the sessions unused for longer than the TTL (never resumed again: `get` ignores them). */
  private prune(): void {
    this.pruneStmt.run(Date.now() - this.ttlMs);
  }

  get(sessionKey: string, mode: string): StoredSession | undefined {
    const row = this.getStmt.get(sessionKey, mode);
    if (!row) return undefined;
    if (Date.now() - row.updated_at > this.ttlMs) {
      this.delete(sessionKey, mode);
      return undefined;
    }
    return toSession(row);
  }

  /** Never throws: a row the database refuses is kept or, on an error waiting cannot cure, logged as lost. */
  set(sessionKey: string, mode: string, brainSessionId: string, cwd: string): void {
    const now = Date.now();
    this.kept.run(`the Claude session of ${sessionKey} in mode ${mode}`, () => {
      this.prune();
      this.setStmt.run(sessionKey, mode, brainSessionId, cwd, now, now);
    });
  }

  /**
   * Records the client's instructions a session now holds, once a turn told them, so that
   * after a restart a resumed session is told only what changed. Never throws, as `set`.
   */
  setInstructions(sessionKey: string, mode: string, brainSessionId: string, instructions: string): void {
    this.kept.run(
      `the instructions the Claude session of ${sessionKey} in mode ${mode} was told`,
      () => this.instructionsStmt.run(instructions, sessionKey, mode, brainSessionId),
      { latest: true },
    );
  }

  /**
   * Records the digest of the answer a session just gave, so that a resumed session, after a
   * restart too, is told the turns another mode answered since. Never throws, as `set`.
   */
  setAnswered(sessionKey: string, mode: string, brainSessionId: string, digest: string): void {
    this.kept.run(
      `the last answer of the Claude session of ${sessionKey} in mode ${mode}`,
      () => this.answeredStmt.run(digest, sessionKey, mode, brainSessionId),
      { latest: true },
    );
  }

  /**
   * Removes one conversation's session in one mode, after the writes kept before it when another
   * process holds the database (its own `set` among them). Never throws.
   */
  forget(sessionKey: string, mode: string): void {
    this.kept.run(`the end of the Claude session of ${sessionKey} in mode ${mode}`, () =>
      this.deleteModeStmt.run(sessionKey, mode),
    );
  }

  /**
   * Gives one conversation's sessions, in every mode, to another key (a Telegram group upgraded to a
   * supergroup: its conversation goes on under the new chat id). A session the new key already has
   * is kept. Never throws, as `set`.
   */
  move(from: string, to: string): void {
    this.kept.run(`the Claude sessions of ${from}, moving to ${to}`, () => this.moveStmt.run(to, from));
  }

  /** Removes one conversation's session in one mode, or in every mode. Returns how many were removed. */
  delete(sessionKey: string, mode?: string): number {
    const r =
      mode === undefined ? this.deleteStmt.run(sessionKey) : this.deleteModeStmt.run(sessionKey, mode);
    return r.changes;
  }

  list(): StoredSession[] {
    const cutoff = Date.now() - this.ttlMs;
    return this.listStmt.all(cutoff).map(toSession);
  }
}
