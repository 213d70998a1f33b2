import type { Db } from './db/index.js';
import type { KeptWrites } from './db/kept-writes.js';
import { scrubText } from './redact.js';
import { headChars } from './text.js';

/**
 * The audit table: one row per infra tool call and per tool approval
 * decision, whoever made it. Rows are cut to their column limits and the error
 * text is scrubbed here, so no writer can store a secret or an unbounded
 * string. A write is never thrown: the answer matters more than its audit
 * line. One the database refuses because another process holds it is kept
 * until the lock is gone (see KeptWrites); any other failure is logged.
 */

export interface AuditLine {
  /** When the call (or the question) started. */
  ts: number;
  /** The tool's name, or `approval:<tool>` for an approval decision. */
  tool: string;
  /** Who asked: `api`, `mcp`, `telegram:<user id>`, a session key … */
  caller: string;
  /** The arguments, already redacted (see redactValue). */
  args: string;
  ok: boolean;
  exitCode?: number;
  durationMs: number;
  error?: string;
}

export interface AuditEntry {
  id: number;
  ts: number;
  tool: string;
  caller: string;
  args: string;
  ok: boolean;
  exitCode: number | null;
  durationMs: number;
  error: string | null;
}

interface AuditRow {
  id: number;
  ts: number;
  tool: string;
  caller: string;
  args: string;
  ok: number;
  exit_code: number | null;
  duration_ms: number;
  error: string | null;
}

export class AuditLog {
  private readonly insert;

  constructor(
    private readonly db: Db,
    private readonly kept: KeptWrites,
  ) {
    this.insert = db.prepare(
      'INSERT INTO audit (ts, tool, caller, args, ok, exit_code, duration_ms, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    );
  }

  write(line: AuditLine): void {
    const tool = headChars(line.tool, 100);
    const caller = headChars(line.caller, 100);
    const error = line.error === undefined ? null : headChars(scrubText(line.error), 500);
    this.kept.run(`the audit row of ${tool} by ${caller}`, () =>
      this.insert.run(
        line.ts,
        tool,
        caller,
        line.args,
        line.ok ? 1 : 0,
        line.exitCode ?? null,
        line.durationMs,
        error,
      ),
    );
  }

  /** The latest rows, newest first, of one tool or of all. */
  recent(limit: number, tool?: string): AuditEntry[] {
    const rows =
      tool === undefined
        ? this.db.prepare<[number], AuditRow>('SELECT * FROM audit ORDER BY id DESC LIMIT ?').all(limit)
        : this.db
            .prepare<[string, number], AuditRow>(
              'SELECT * FROM audit WHERE tool = ? ORDER BY id DESC LIMIT ?',
            )
            .all(tool, limit);
    return rows.map((r) => ({
      id: r.id,
      ts: r.ts,
      tool: r.tool,
      caller: r.caller,
      args: r.args,
      ok: r.ok === 1,
      exitCode: r.exit_code,
      durationMs: r.duration_ms,
      error: r.error,
    }));
  }
}
