/**
 * What a year of use leaves on a small box: state brainstem keeps only as long as it can be used,
 * checked on the real service started on a data dir whose rows are dated as a year ago.
 */
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  realpathSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { sweepTranscripts } from '../brains/claude-code/transcripts.js';
import { loadConfig } from '../src/config.js';
import { openDb } from '../src/db/index.js';
import { RETENTION_SWEEP_MS, Retention } from '../src/retention.js';
import { text } from './fakes/anthropic.js';
import { startFakeLlama } from './fakes/llama.js';
import { startFakeTelegram } from './fakes/telegram.js';
import { recordingLogger } from './helpers/logs.js';
import { startClaudeService, startTestService, type TestService } from './helpers/service.js';
import { nextLog, OWNER, startHarness } from './telegram-harness.js';

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

/** A transcript as the CLI leaves one for `cwd` in `configDir`, last written `daysAgo`, with its session folder. */
function transcript(
  configDir: string,
  cwd: string,
  session: string,
  daysAgo: number,
  now = Date.now(),
): void {
  const folder = path.join(configDir, 'projects', realpathSync(cwd).replace(/[^a-zA-Z0-9]/g, '-'));
  mkdirSync(path.join(folder, session, 'subagents'), { recursive: true, mode: 0o700 });
  const file = path.join(folder, `${session}.jsonl`);
  writeFileSync(file, `{"type":"user","message":{"content":"${'x'.repeat(50_000)}"}}\n`);
  const at = new Date(now - daysAgo * DAY_MS);
  utimesSync(file, at, at);
}

const projectFiles = (configDir: string, cwd: string): string[] =>
  readdirSync(path.join(configDir, 'projects', realpathSync(cwd).replace(/[^a-zA-Z0-9]/g, '-'))).sort();

const YEAR_OLD = '11111111-1111-4111-8111-111111111111';
const MONTH_OLD = '22222222-2222-4222-8222-222222222222';
const WEEK_OLD = '33333333-3333-4333-8333-333333333333';

describe("the Claude CLI's transcripts", () => {
  it('of brainstem’s sessions unwritten for longer than the CLI keeps them (30 days) are removed as a turn comes', async () => {
    const s = await startClaudeService();
    try {
      s.fake.script(() => text('hi'));
      const configDir =
        (s.svc.service.core.config.claude.env as Record<string, string>).CLAUDE_CONFIG_DIR ?? '';
      const cwd = path.join(s.svc.dir, 'data', 'workspaces', 'assistant');
      mkdirSync(cwd, { recursive: true });
      transcript(configDir, cwd, YEAR_OLD, 365);
      transcript(configDir, cwd, MONTH_OLD, 31);
      transcript(configDir, cwd, WEEK_OLD, 8);
      const r = await s.svc.client.chat.completions.create({
        model: 'assistant',
        messages: [{ role: 'user', content: 'hello' }],
      });
      expect(r.choices[0]?.message.content).toBe('hi');
      // The sweep runs beside the turn, not before it, and the CLI may write the turn's own transcript
      // after its answer came: both are waited for.
      const gone = [`${YEAR_OLD}.jsonl`, YEAR_OLD, `${MONTH_OLD}.jsonl`];
      await vi.waitFor(
        () => {
          const now = projectFiles(configDir, cwd);
          expect(now.filter((f) => gone.includes(f))).toEqual([]);
          expect(now.filter((f) => f.endsWith('.jsonl'))).toHaveLength(2);
        },
        { timeout: 30_000 },
      );
      const left = projectFiles(configDir, cwd);
      expect(left).not.toContain(`${YEAR_OLD}.jsonl`);
      expect(left).not.toContain(YEAR_OLD);
      expect(left).not.toContain(`${MONTH_OLD}.jsonl`);
      expect(left).toContain(`${WEEK_OLD}.jsonl`);
      expect(left).toContain(WEEK_OLD);
      // The turn's own session is there.
      expect(left.filter((f) => f.endsWith('.jsonl'))).toHaveLength(2);
    } finally {
      await s.close();
    }
  });

  it('are kept as long as the owner’s cleanupPeriodDays says, and never less than claude.sessionTtlHours', async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'bst-retention-'));
    const configDir = path.join(dir, '.claude');
    const cwd = path.join(dir, 'work');
    mkdirSync(cwd, { recursive: true });
    mkdirSync(configDir, { mode: 0o700 });
    const env = { CLAUDE_CONFIG_DIR: configDir };
    const now = Date.now();
    transcript(configDir, cwd, YEAR_OLD, 365, now);
    transcript(configDir, cwd, MONTH_OLD, 31, now);
    transcript(configDir, cwd, WEEK_OLD, 8, now);

    writeFileSync(path.join(configDir, 'settings.json'), JSON.stringify({ cleanupPeriodDays: 400 }));
    expect(await sweepTranscripts(cwd, env, 168, now)).toBe(0);
    writeFileSync(path.join(configDir, 'settings.json'), JSON.stringify({ cleanupPeriodDays: 1 }));
    // A 60-day session TTL: a session brainstem may still resume keeps its transcript.
    expect(await sweepTranscripts(cwd, env, 60 * 24, now)).toBe(1);
    expect(projectFiles(configDir, cwd)).toEqual([
      MONTH_OLD,
      `${MONTH_OLD}.jsonl`,
      WEEK_OLD,
      `${WEEK_OLD}.jsonl`,
    ]);
    expect(await sweepTranscripts(cwd, env, 1, now)).toBe(2);
    expect(projectFiles(configDir, cwd)).toEqual([]);
  });

  it('are kept as long as the cwd’s project settings say, where the owner’s own Claude works in that cwd too', async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'bst-retention-'));
    const configDir = path.join(dir, '.claude');
    const cwd = path.join(dir, 'project');
    mkdirSync(path.join(cwd, '.claude'), { recursive: true });
    mkdirSync(configDir, { mode: 0o700 });
    const env = { CLAUDE_CONFIG_DIR: configDir };
    const now = Date.now();
    transcript(configDir, cwd, MONTH_OLD, 31, now);
    transcript(configDir, cwd, WEEK_OLD, 8, now);
    // The owner's terminal Claude in this project keeps its sessions a year: brainstem keeps them too.
    writeFileSync(path.join(cwd, '.claude', 'settings.json'), JSON.stringify({ cleanupPeriodDays: 365 }));
    expect(await sweepTranscripts(cwd, env, 168, now)).toBe(0);
    writeFileSync(path.join(cwd, '.claude', 'settings.json'), '{}');
    writeFileSync(
      path.join(cwd, '.claude', 'settings.local.json'),
      JSON.stringify({ cleanupPeriodDays: 60 }),
    );
    expect(await sweepTranscripts(cwd, env, 168, now)).toBe(0);
    // The longest of the settings counts: the user settings' 7 days do not cut the project's 60.
    writeFileSync(path.join(configDir, 'settings.json'), JSON.stringify({ cleanupPeriodDays: 7 }));
    expect(await sweepTranscripts(cwd, env, 168, now)).toBe(0);
    writeFileSync(
      path.join(cwd, '.claude', 'settings.local.json'),
      JSON.stringify({ cleanupPeriodDays: 20 }),
    );
    expect(await sweepTranscripts(cwd, env, 168, now)).toBe(1);
    expect(projectFiles(configDir, cwd)).toEqual([WEEK_OLD, `${WEEK_OLD}.jsonl`]);
  });
});

describe('the audit log and the notices', () => {
  it('audit rows older than retention.auditDays and notices delivered more than noticeDays ago are removed at start; recent ones and undelivered notices stay', async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'bst-retention-'));
    const db = openDb(path.join(dir, 'data'));
    const now = Date.now();
    const audit = db.prepare(
      `INSERT INTO audit (ts, tool, caller, args, ok, duration_ms) VALUES (?, ?, 'telegram:111', '{}', 1, 5)`,
    );
    // More than one batch of a year-old log, and one row a day short of the limit.
    for (let i = 0; i < 1_200; i++) audit.run(now - 365 * DAY_MS + i, 'git_status');
    audit.run(now - 29 * DAY_MS, 'recent_call');
    const notice = db.prepare(
      'INSERT INTO notices (ts, kind, dedupe_key, text, sent_at) VALUES (?, ?, ?, ?, ?)',
    );
    notice.run(now - 200 * DAY_MS, 'switch', 'old-sent', 'old', now - 200 * DAY_MS);
    // Never delivered (no notify chat yet): still owed, whatever its age.
    notice.run(now - 200 * DAY_MS, 'credentials', 'old-pending', 'pending', null);
    // Held long, delivered lately: its days count from the delivery.
    notice.run(now - 200 * DAY_MS, 'brain_health', 'held-then-sent', 'held', now - DAY_MS);
    notice.run(now - DAY_MS, 'switch', 'new-sent', 'new', now - DAY_MS);
    db.close();

    const { logger, logs } = recordingLogger('info');
    svc = await startTestService({
      dir,
      config: { retention: { auditDays: 30, noticeDays: 60 } },
      logger,
      parts: {},
    });
    const { core } = svc.service;
    // The sweep the start began (joined, not a second one), in batches between requests.
    await core.retention.sweep();
    const tools = core.db.prepare<[], { tool: string }>('SELECT tool FROM audit').all();
    expect(tools.map((r) => r.tool)).toEqual(['recent_call']);
    const keys = core.db
      .prepare<[], { dedupe_key: string }>('SELECT dedupe_key FROM notices ORDER BY id')
      .all()
      .map((r) => r.dedupe_key);
    expect(keys).toEqual(['old-pending', 'held-then-sent', 'new-sent']);
    expect(logs.find((l) => l.audit === 1_200 && l.notices === 1)?.msg).toMatch(
      /removed 1200 audit row\(s\) older than 30 days and 1 notice\(s\) delivered more than 60 days ago/,
    );
  });

  it('are swept again daily while brainstem runs, and retention 0 keeps them for ever', async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'bst-retention-'));
    const db = openDb(path.join(dir, 'data'));
    const { logger } = recordingLogger('silent');
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'Date'] });
    try {
      const now = Date.now();
      const audit = db.prepare(
        `INSERT INTO audit (ts, tool, caller, args, ok, duration_ms) VALUES (?, 'git_status', 'telegram:112', '{}', 1, 5)`,
      );
      audit.run(now - 10 * DAY_MS + HOUR_MS);
      const retention = new Retention(db, { auditDays: 10, noticeDays: 0 }, logger);
      retention.start();
      expect(await retention.sweep()).toEqual({ audit: 0, notices: 0 });
      db.prepare(
        "INSERT INTO notices (ts, kind, dedupe_key, text, sent_at) VALUES (?, 'switch', 'k', 't', ?)",
      ).run(now - 400 * DAY_MS, now - 400 * DAY_MS);
      // A day on: the row turned eleven days old, and the daily sweep takes it.
      vi.advanceTimersByTime(RETENTION_SWEEP_MS);
      expect(await retention.sweep()).toEqual({ audit: 1, notices: 0 });
      expect(db.prepare('SELECT COUNT(*) AS n FROM audit').get()).toEqual({ n: 0 });
      expect(db.prepare('SELECT COUNT(*) AS n FROM notices').get()).toEqual({ n: 1 });
      retention.stop();
    } finally {
      vi.useRealTimers();
      db.close();
    }
  });

  it('a notice of one occasion (an upgrade’s, its copy for the chat that asked, a credit cycle’s, a mode’s outage) ages out; a recurring cause keeps its latest', async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'bst-retention-'));
    const db = openDb(path.join(dir, 'data'));
    const now = Date.now();
    const notice = db.prepare(
      'INSERT INTO notices (ts, kind, dedupe_key, text, sent_at) VALUES (?, ?, ?, ?, ?)',
    );
    const old = (days: number, kind: string, key: string) =>
      notice.run(now - days * DAY_MS, kind, key, key, now - days * DAY_MS);
    // Two upgrades a year ago, each told the notify chats and the chat that asked (src/tools/self-upgrade.ts).
    for (const days of [400, 300]) {
      old(days, 'upgrade', `upgrade:${now - days * DAY_MS}`);
      old(days, 'upgrade', `upgrade:${now - days * DAY_MS}:chat`);
    }
    // A credit cycle's steps, long over (src/credit/watcher.ts).
    const cycle = now - 200 * DAY_MS;
    old(190, 'credit', `credit:${cycle}:100usd:80`);
    old(180, 'credit', `credit:${cycle}:100usd:forecast`);
    // A mode's outages, each keyed by its start (src/brain-monitor.ts): one of a mode still in the
    // config, one of a mode since removed from it, whose latest was kept for ever.
    old(250, 'brain_health', `brain:down:local:${now - 250 * DAY_MS}`);
    old(150, 'brain_health', `brain:down:local:${now - 150 * DAY_MS}`);
    old(149, 'brain_health', `brain:up:local:${now - 150 * DAY_MS}`);
    old(120, 'brain_health', `brain:down:removed-mode:${now - 120 * DAY_MS}`);
    // A recurring cause: credentials that expired twice. Its latest stays.
    old(300, 'credentials', `credentials:expired:${now - 301 * DAY_MS}`);
    old(200, 'credentials', `credentials:expired:${now - 201 * DAY_MS}`);
    db.close();

    svc = await startTestService({
      dir,
      config: { retention: { auditDays: 30, noticeDays: 60 } },
      logger: recordingLogger('silent').logger,
      parts: {},
    });
    const { core } = svc.service;
    await core.retention.sweep();
    const keys = core.db
      .prepare<[], { dedupe_key: string }>('SELECT dedupe_key FROM notices ORDER BY id')
      .all()
      .map((r) => r.dedupe_key);
    expect(keys).toEqual([`credentials:expired:${now - 201 * DAY_MS}`]);
  });

  it('a notice kept fewer days than a credit cycle is refused at start, saying why', () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'bst-retention-')), 'brainstem.json');
    dir = path.dirname(file);
    writeFileSync(file, JSON.stringify({ retention: { noticeDays: 7 } }));
    expect(() => loadConfig({ BRAINSTEM_CONFIG: file, HOME: dir }, dir)).toThrow(
      /retention\.noticeDays.*at least 32/,
    );
  });
});

describe('a notice due for as long as its cause lasts', () => {
  // The key of a delivered notice is what keeps it from coming again: the sweep removed it after
  // noticeDays, and credentials that stayed expired (no refresh token, never renewed) were told
  // again, every noticeDays, as news.
  it('an expired credential is told once, not again once its notice is older than retention.noticeDays', async (ctx) => {
    const tg = await startFakeTelegram();
    const llama = await startFakeLlama();
    const home = mkdtempSync(path.join(tmpdir(), 'bst-retention-'));
    dir = home;
    ctx.onTestFinished(async () => {
      await tg.close();
      await llama.close();
    });
    // Without a refresh token: Claude Code cannot renew it, and it stays expired until the owner does.
    writeFileSync(
      path.join(home, 'credentials.json'),
      JSON.stringify({
        claudeAiOauth: { accessToken: 'sk-ant-oat01-x', expiresAt: Date.now() - 2 * HOUR_MS },
      }),
    );
    const start = () =>
      startHarness({
        tg,
        llama,
        dir: home,
        parts: { bot: true, credentials: true },
        config: { credentials: { pollIntervalMs: 150 }, retention: { noticeDays: 90 } },
      });
    const told = () => tg.botMessages(OWNER).filter((m) => /Claude credentials expired at/.test(m.text));
    const h = await start();
    try {
      await tg.waitFor(() => told()[0]);
      // Delivered, and marked so.
      await h.service.core.notifier.flush();
      expect(h.service.core.notifier.pending()).toEqual([]);
    } finally {
      await h.stopService();
    }

    // A hundred days on, the credentials still expired.
    const db = openDb(path.join(home, 'data'));
    db.prepare('UPDATE notices SET ts = ts - ?, sent_at = sent_at - ?').run(100 * DAY_MS, 100 * DAY_MS);
    db.close();
    const again = await start();
    try {
      // The sweep the start began, then two checks of the file after it, their notices delivered.
      await again.service.core.retention.sweep();
      await nextLog(again, (l) => l.msg === 'credentials checked')(2);
      await again.service.core.notifier.flush();
      expect(told()).toHaveLength(1);
    } finally {
      await again.stopService();
    }
  });
});
