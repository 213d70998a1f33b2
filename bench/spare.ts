/**
 * The spare Claude process (issue 16), through the built service (as pm2 runs
 * it) on the real CLI against the fake Messages API:
 *
 * - a new conversation's first token as a share of its answer's time, with a
 *   spare ready (mode `spare`, active) and without one (mode `nospare`,
 *   `spares: 0`), alternately in the same run; with a spare, the time from the
 *   message written to its stdin (brainstem's log) to its API request (the fake);
 * - eight conversations at once on their warm processes, each on its second
 *   turn, against one, wall time;
 * - the resident memory of one idle spare.
 *
 * `BENCH_ONLY=spare npm run bench` runs only this (bench/results/spare.json).
 */
import { text } from '../test/fakes/anthropic.js';
import { CLAUDE_CLI } from '../test/helpers/claude-bin.js';
import { type ServiceProcess, spawnService } from '../test/helpers/process.js';
import { type BenchSetup, benchFixture } from './fixture.js';
import { timeStream } from './sse-client.js';
import { cpuTimes, median, now, round, rssMb } from './stats.js';

const READY = '"msg":"spare Claude process ready"';

/** Eight follow-ups at once, and the ninth conversation's alone, each on its warm process. */
const AT_ONCE = 8;

export const SPARE_SETUP: BenchSetup = {
  config: {
    defaultMode: 'spare',
    // Room for nine warm conversations and the spare.
    claude: { warm: { max: 10 }, maxProcesses: 12 },
    modes: { spare: { kind: 'claude' }, nospare: { kind: 'claude', spares: 0 } },
  },
  concurrentTurns: AT_ONCE,
  warmConversations: AT_ONCE + 1,
};

export async function spareBench(runs: number) {
  const fx = await benchFixture('spare', SPARE_SETUP);
  const { anthropic, auth } = fx;
  const svc = await spawnService(fx.env, { from: 'dist' });
  const ours = `${svc.url}/v1/chat/completions`;
  /** The answer the fake is scripted to give now: each timed stream must be it. */
  let answer = '';
  const ask = (model: string, key: string, messages: { role: string; content: string }[]) =>
    timeStream(ours, { model, messages }, { ...auth, 'x-session-key': key }, { answer });
  const seen = new Set<number>();
  try {
    // 1. New conversations: an answer streamed over ~2 s, as in `claude.newConversationTtftOverTotal`.
    const requestAt = new Map<string, number>();
    const twenty = Array.from({ length: 20 }, (_, i) => `tok${i} `);
    answer = twenty.join('');
    anthropic.script((req) => {
      requestAt.set(req.lastUserTurn, Date.now());
      return text(twenty, { delayMs: 100 });
    });
    const withSpare: number[] = [];
    /** From the message written to the spare's stdin to the CLI's API request: the CLI's own work. */
    const cliFirstMessageMs: number[] = [];
    const without: number[] = [];
    let spareRss = 0;
    for (let i = 0; i < runs; i++) {
      // The spare has started (and the CPU it took is spent) before either is timed.
      const pid = await nextSpare(svc, seen);
      if (i === 0) spareRss = rssMb(pid);
      const a = await ask('nospare', `n${i}`, [{ role: 'user', content: `no spare ${i}` }]);
      without.push(a.ttftMs / a.totalMs);
      const b = await ask('spare', `s${i}`, [{ role: 'user', content: `spare ${i}` }]);
      withSpare.push(b.ttftMs / b.totalMs);
      const started = records(svc, 'claude turn started').find((l) => l.pid === pid && l.spare === true);
      if (!started) throw new Error(`the spare ${pid} did not answer the new conversation`);
      const requested = requestAt.get(`spare ${i}`);
      if (requested === undefined) throw new Error(`the fake saw no request for "spare ${i}"`);
      cliFirstMessageMs.push(requested - (started.time as number));
    }

    // 2. Eight follow-ups at once on warm processes vs one (an answer of ~1 s each).
    const ten = Array.from({ length: 10 }, (_, i) => `tok${i} `);
    answer = ten.join('');
    anthropic.script(() => text(ten, { delayMs: 100 }));
    const one: number[] = [];
    const eight: number[] = [];
    /** CPU the CLI spent on each of the eight follow-ups: with 2 cores, 8 × this / 2 is the least the eight can add. */
    const cliCpuMs: number[] = [];
    const rounds = Math.max(3, Math.round(runs / 2));
    for (let r = 0; r < rounds; r++) {
      const first = (i: number) => [{ role: 'user', content: `round ${r} conversation ${i}` }];
      const keys = Array.from({ length: AT_ONCE + 1 }, (_, i) => `w${r}-${i}`);
      for (const [i, key] of keys.entries()) await ask('nospare', key, first(i));
      // The spare started after the last new conversation above is up before anything is timed.
      if (r === 0) await nextSpare(svc, seen);
      const second = (i: number) => [
        ...first(i),
        { role: 'assistant', content: 'earlier answer' },
        { role: 'user', content: 'and then?' },
      ];
      let t0 = now();
      await ask('nospare', keys[0] as string, second(0));
      one.push(now() - t0);
      const pids = records(svc, 'claude turn started')
        .filter((l) => keys.slice(1).includes(l.sessionKey as string))
        .map((l) => l.pid as number);
      const cpuBefore = pids.map((pid) => cpuTimes(pid).ownMs);
      t0 = now();
      await Promise.all(keys.slice(1).map((key, i) => ask('nospare', key, second(i + 1))));
      eight.push(now() - t0);
      // A follow-up that found no warm process (evicted, or refused room) would time a CLI start.
      const warm = records(svc, 'claude turn started').filter(
        (l) => keys.includes(l.sessionKey as string) && l.warm === true,
      ).length;
      if (warm !== keys.length) {
        throw new Error(`round ${r}: ${warm} of the ${keys.length} follow-ups ran on their warm process`);
      }
      pids.forEach((pid, i) => {
        cliCpuMs.push(cpuTimes(pid).ownMs - (cpuBefore[i] as number));
      });
    }
    const warmTurns = records(svc, 'claude turn started').filter((l) => l.warm === true);
    return {
      cli: CLAUDE_CLI,
      newConversation: {
        spareTtftOverTotal: round(median(withSpare), 3),
        noSpareTtftOverTotal: round(median(without), 3),
        cliFirstMessageMs: round(median(cliFirstMessageMs), 0),
        runs,
        target: 'spare <= 0.10',
      },
      warmConcurrency: {
        oneMs: round(median(one)),
        eightMs: round(median(eight)),
        ratio: round(median(eight) / median(one), 3),
        rounds,
        warmTurns: warmTurns.length,
        cliCpuMsPerFollowUp: round(median(cliCpuMs)),
        target: '<= 1.3',
      },
      idleSpareRssMb: round(spareRss, 1),
    };
  } finally {
    await svc.stop();
    await fx.close();
  }
}

/** The pid of the next spare to become ready (one not seen before). */
async function nextSpare(svc: ServiceProcess, seen: Set<number>): Promise<number> {
  // Parsed: the line holds brainstem's own pid first, the CLI's (a child binding) last.
  const pidOf = (line: string) => (JSON.parse(line) as { pid: number }).pid;
  const line = await svc.waitForLog((l) => l.includes(READY) && !seen.has(pidOf(l)), 120_000);
  const pid = pidOf(line);
  seen.add(pid);
  return pid;
}

/** The service's log records with this message. */
function records(svc: ServiceProcess, msg: string): Record<string, unknown>[] {
  return svc.logs
    .filter((l) => l.includes(`"msg":"${msg}"`))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}
