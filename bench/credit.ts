/**
 * The Agent SDK credit's figures, measured:
 *
 * - `ledgerVsCli`: a scripted day of Claude turns through the service (fresh
 *   conversations, warm follow-ups, tool use, a turn stopped by its cap, API-key
 *   turns, a refused request), with the real CLI behind a wrapper that copies
 *   its stdout to a file. Each turn's cost in the ledger against the CLI's own
 *   `total_cost_usd` (a running total per process: the differences of one
 *   process's results), and the meter against the sum.
 * - `meter`: computing the meter over a year of ledger rows, with the
 *   (billing, ts, cost_usd) index and without it.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { CreditMeter } from '../src/credit/meter.js';
import { CreditSource } from '../src/credit/plan.js';
import { KvStore, openDb } from '../src/db/index.js';
import { KeptWrites } from '../src/db/kept-writes.js';
import { type Billing, UsageLedger } from '../src/usage.js';
import {
  claudeTestEnv,
  type FakeReply,
  httpError,
  startFakeAnthropic,
  text,
  toolUse,
} from '../test/fakes/anthropic.js';
import { startFakeLlama } from '../test/fakes/llama.js';
import { CLAUDE_BIN } from '../test/helpers/claude-bin.js';
import { startTestService } from '../test/helpers/service.js';
import { median, now, round } from './stats.js';

const DAY_MS = 86_400_000;

export async function creditBench(): Promise<Record<string, unknown>> {
  return { ledgerVsCli: await ledgerVsCli(), meter: meterCost() };
}

/** A `claude` that runs the real one and appends every stdout line, with its pid, to `log`. */
function teeWrapper(dir: string, log: string): string {
  const file = path.join(dir, 'claude-tee.mjs');
  writeFileSync(
    file,
    `#!${process.execPath}
import { spawn } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
const child = spawn(${JSON.stringify(CLAUDE_BIN)}, process.argv.slice(2), { stdio: ['inherit', 'pipe', 'inherit'] });
createInterface({ input: child.stdout }).on('line', (line) => {
  appendFileSync(${JSON.stringify(log)}, JSON.stringify({ pid: child.pid, line }) + '\\n');
  process.stdout.write(line + '\\n');
});
for (const s of ['SIGTERM', 'SIGINT']) process.on(s, () => child.kill(s));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
`,
  );
  chmodSync(file, 0o755);
  return file;
}

interface Step {
  model: string;
  session: string;
  reply: FakeReply;
}

/** A day of turns: four conversations of four turns, tool use, a capped turn, an API key, a refusal. */
function dayScript(): Step[] {
  const steps: Step[] = [];
  const sizes = [
    { input_tokens: 1200, output_tokens: 180, cache_read_input_tokens: 0, cache_creation_input_tokens: 9000 },
    {
      input_tokens: 300,
      output_tokens: 640,
      cache_read_input_tokens: 9000,
      cache_creation_input_tokens: 800,
    },
    {
      input_tokens: 5200,
      output_tokens: 1500,
      cache_read_input_tokens: 9800,
      cache_creation_input_tokens: 0,
    },
    {
      input_tokens: 90,
      output_tokens: 35,
      cache_read_input_tokens: 15000,
      cache_creation_input_tokens: 2200,
    },
  ];
  for (let c = 0; c < 4; c++) {
    for (const [i, usage] of sizes.entries()) {
      steps.push({ model: 'assistant', session: `day-${c}`, reply: text(`answer ${c}.${i}`, { usage }) });
    }
  }
  steps.push({
    model: 'assistant',
    session: 'day-tools',
    reply: toolUse('Bash', { command: 'echo ok' }, text('done', { usage: sizes[1] }), { usage: sizes[0] }),
  });
  steps.push({
    model: 'capped',
    session: 'day-capped',
    reply: toolUse('Bash', { command: 'echo never' }, text('never'), { usage: { output_tokens: 3000 } }),
  });
  steps.push({ model: 'keyed', session: 'day-key', reply: text('on the key', { usage: sizes[2] }) });
  steps.push({ model: 'keyed', session: 'day-key', reply: text('on the key again', { usage: sizes[3] }) });
  steps.push({
    model: 'assistant',
    session: 'day-refused',
    reply: httpError(529, { shouldRetry: false, message: 'fake: overloaded' }),
  });
  return steps;
}

async function ledgerVsCli(): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(path.join(tmpdir(), 'bst-credit-'));
  const log = path.join(dir, 'claude-stdout.jsonl');
  writeFileSync(log, '');
  const fake = await startFakeAnthropic();
  const llama = await startFakeLlama();
  const cli = await claudeTestEnv(fake.url, { auth: 'oauth' });
  const svc = await startTestService({
    dir,
    config: {
      dataDir: path.join(dir, 'data'),
      claude: {
        bin: teeWrapper(dir, log),
        env: cli.env,
        maxRetries: 0,
        credit: { monthlyUsd: 100 },
      },
      llama: { baseUrl: llama.baseUrl },
      modes: {
        assistant: { kind: 'claude', allowedTools: ['Bash'] },
        capped: { kind: 'claude', allowedTools: ['Bash'], budget: { turnUsd: 0.01 } },
        keyed: { kind: 'claude', env: { ANTHROPIC_API_KEY: 'sk-bench-key' } },
      },
    },
    parts: { tools: true },
  });
  try {
    const history = new Map<string, { role: 'user' | 'assistant'; content: string }[]>();
    const day = dayScript();
    for (const [i, step] of day.entries()) {
      fake.script(() => step.reply);
      const messages = [
        ...(history.get(step.session) ?? []),
        { role: 'user' as const, content: `turn ${i}` },
      ];
      const r = await svc.client.chat.completions
        .create({ model: step.model, messages }, { headers: { 'x-session-key': step.session } })
        .catch(() => undefined);
      history.set(step.session, [
        ...messages,
        { role: 'assistant', content: r?.choices[0]?.message.content ?? '(failed)' },
      ]);
    }
    // Close the warm processes so every result line is in the log.
    await Promise.all([...svc.service.core.brains.values()].map((b) => b.close?.()));

    const rows = svc.service.core.db
      .prepare<[], { session: string | null; cost: number; billing: Billing | null; error: string | null }>(
        'SELECT brain_session_id AS session, cost_usd AS cost, billing, error FROM usage ORDER BY id',
      )
      .all();
    const stoppedByCap = rows.filter((r) => r.error?.startsWith('usage_limit:turn_budget')).length;
    const failed = rows.filter((r) => r.error && !r.error.startsWith('usage_limit:turn_budget')).length;
    // A day that went otherwise (every turn failing costs nothing on both sides) would agree to the cent.
    if (rows.length !== day.length || stoppedByCap !== 1 || failed !== 1) {
      throw new Error(
        `the day's ${day.length} turns left ${rows.length} ledger rows, ${stoppedByCap} stopped by the cap and ${failed} failed (1 and 1 scripted)`,
      );
    }
    // The CLI's per-turn costs: per process, each result's total minus the one before.
    const previous = new Map<number, number>();
    const cliTurns: { session: string; cost: number }[] = [];
    for (const entry of readFileSync(log, 'utf8').split('\n').filter(Boolean)) {
      const { pid, line } = JSON.parse(entry) as { pid: number; line: string };
      // The readiness probe's `claude auth status --json` goes through the wrapper too, pretty-printed.
      if (!line.startsWith('{"')) continue;
      const ev = JSON.parse(line) as { type: string; session_id?: string; total_cost_usd?: number };
      if (ev.type !== 'result') continue;
      const total = ev.total_cost_usd ?? 0;
      cliTurns.push({ session: ev.session_id ?? '', cost: total - (previous.get(pid) ?? 0) });
      previous.set(pid, total);
    }
    const bySession = (xs: { session: string | null; cost: number }[]) => {
      const m = new Map<string, number[]>();
      for (const x of xs) m.set(x.session ?? '', [...(m.get(x.session ?? '') ?? []), x.cost]);
      return m;
    };
    const ours = bySession(rows);
    const theirs = bySession(cliTurns);
    let maxDiff = 0;
    let matched = 0;
    for (const [session, costs] of theirs) {
      const mine = ours.get(session) ?? [];
      for (const [i, cost] of costs.entries()) {
        maxDiff = Math.max(maxDiff, Math.abs(cost - (mine[i] ?? 0)));
        matched++;
      }
    }
    const ledgerUsd = rows.reduce((n, r) => n + r.cost, 0);
    const cliUsd = cliTurns.reduce((n, r) => n + r.cost, 0);
    const meter = svc.service.core.meter.reading();
    const apiSessions = new Set(rows.filter((r) => r.billing === 'api_key').map((r) => r.session));
    const cliSubscription = cliTurns
      .filter((t) => !apiSessions.has(t.session))
      .reduce((n, t) => n + t.cost, 0);
    return {
      turns: rows.length,
      cliResults: cliTurns.length,
      matchedTurns: matched,
      ledgerUsd: round(ledgerUsd, 6),
      cliUsd: round(cliUsd, 6),
      maxPerTurnDiffUsd: round(maxDiff, 9),
      meterSpentUsd: round(meter.spent, 6),
      meterApiSpentUsd: round(meter.apiSpent, 6),
      cliSubscriptionUsd: round(cliSubscription, 6),
      agreesToTheCent:
        Math.abs(ledgerUsd - cliUsd) < 0.005 &&
        maxDiff < 0.005 &&
        Math.abs(meter.spent - cliSubscription) < 0.005 &&
        Math.abs(meter.spent + meter.apiSpent - cliUsd) < 0.005,
      stoppedByCap,
      failed,
    };
  } finally {
    await svc.close();
    await fake.close();
    await llama.close();
    await cli.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A year of a busy assistant: 200 turns a day over three modes, a tenth on an API key. */
function meterCost(): Record<string, unknown> {
  const dir = mkdtempSync(path.join(tmpdir(), 'bst-meter-'));
  const db = openDb(dir);
  try {
    const ledger = new UsageLedger(db, new KeptWrites(db, pino({ level: 'silent' })));
    const end = Date.now();
    const perDay = 200;
    const modes = ['assistant', 'anklume', 'local'];
    db.transaction(() => {
      for (let i = 0; i < 365 * perDay; i++) {
        const mode = modes[i % 3] as string;
        ledger.record({
          ts: end - 365 * DAY_MS + Math.floor((i * DAY_MS) / perDay),
          mode,
          sessionKey: `s${i % 50}`,
          source: 'telegram',
          costUsd: mode === 'local' ? 0 : 0.01 + (i % 7) * 0.003,
          inputTokens: 1000,
          outputTokens: 200,
          cacheReadTokens: 5000,
          cacheWriteTokens: 300,
          durationMs: 4000,
          billing: mode === 'local' ? undefined : i % 10 === 0 ? 'api_key' : 'subscription',
        });
      }
    })();
    const config = { monthlyUsd: 100, resetDay: 1 };
    const meter = new CreditMeter({
      ledger,
      source: new CreditSource(config, path.join(dir, 'no-credentials.json')),
      config,
      kv: new KvStore(db),
    });
    const time = (runs: number) => {
      const ms: number[] = [];
      for (let i = 0; i < runs; i++) {
        const t0 = now();
        meter.reading();
        ms.push(now() - t0);
      }
      const sorted = [...ms].sort((a, b) => a - b);
      return {
        medianMs: round(median(ms), 3),
        p95Ms: round(sorted[Math.floor(sorted.length * 0.95)] ?? 0, 3),
        maxMs: round(Math.max(...ms), 3),
      };
    };
    time(5); // warm-up: prepared statements, page cache
    const indexed = time(50);
    db.exec('DROP INDEX usage_billing_ts');
    const withoutIndex = time(20);
    return {
      rows: 365 * perDay,
      withIndex: indexed,
      withoutIndex,
      target: '<= 5 ms',
    };
  } finally {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
