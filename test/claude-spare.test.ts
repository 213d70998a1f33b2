/**
 * Spare Claude processes: the real `claude` CLI started ahead for the next new
 * conversation, against the fake Anthropic API. Which process answered is read
 * from the brain's log (the CLI's pid); liveness and niceness from /proc.
 */
import { readFileSync } from 'node:fs';
import { getPriority } from 'node:os';
import path from 'node:path';
import { describe, type ExpectStatic, it } from 'vitest';
import { ProcessCap } from '../brains/claude-code/process-cap.js';
import { Spares } from '../brains/claude-code/spares.js';
import type { TurnEvent } from '../brains/types.js';
import { text } from './fakes/anthropic.js';
import { collect, groupAfterKill, harness, textOf, userTurn } from './helpers/claude-harness.js';
import { type LogRecord, recordingLogger } from './helpers/logs.js';
import { killGroupOf, processesIn } from './helpers/procs.js';
import { startClaudeService } from './helpers/service.js';

const signal = () => new AbortController().signal;

/** Bounds the wait for a log record: only a failing test reaches it (each CLI start is seconds of CPU under load). */
const EVENT_TIMEOUT = { timeout: 60_000, interval: 20 };

const starts = (logs: LogRecord[]) =>
  logs
    .filter((l) => l.msg === 'claude turn started')
    .map((l) => ({ pid: l.pid as number, spare: l.spare as boolean, resumed: l.resumed as boolean }));

/** Pids of the spares that answered `initialize`, in order. */
const readySpares = (logs: LogRecord[]) =>
  logs.filter((l) => l.msg === 'spare Claude process ready').map((l) => l.pid as number);

/** Waits for the `n`th spare to be ready (counting from 1) and returns its pid. */
async function spareReady(expect: ExpectStatic, logs: LogRecord[], n: number): Promise<number> {
  await expect.poll(() => readySpares(logs).length, EVENT_TIMEOUT).toBeGreaterThanOrEqual(n);
  return readySpares(logs)[n - 1] as number;
}

/** The nice value of a process (field 19 of /proc/<pid>/stat). */
function niceOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
}

function alive(pid: number): boolean {
  try {
    const state = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0];
    return state !== undefined && state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

const terminal = (events: TurnEvent[]) => events.filter((e) => e.type === 'done' || e.type === 'error');

const followUp = (words: string, key = 'test:1') =>
  userTurn(words, {
    key,
    history: [
      { role: 'user', content: 'first' },
      { role: 'assistant', content: 'answer' },
    ],
  });

describe.concurrent('spare Claude processes with the real CLI', { timeout: 180_000 }, () => {
  it('gives a new conversation the ready spare, which stays its warm process; the next spare starts after the turn', async (ctx) => {
    const { expect } = ctx;
    const h = await harness(ctx, { spares: true });
    h.fake.script((req) => text(req.lastUserText === 'first' ? 'answer' : 'second answer'));
    const spare = await spareReady(expect, h.logs, 1);
    // Started under nice, so that a turn's CLI gets the CPU first.
    expect(niceOf(spare)).toBe(19);
    const requestsBefore = h.fake.mainRequests().length;

    const one = await collect(h.brain.turn(userTurn('first'), signal()));

    expect(textOf(one)).toBe('answer');
    expect(starts(h.logs)[0]).toEqual({ pid: spare, spare: true, resumed: false });
    expect(h.fake.mainRequests().length).toBe(requestsBefore + 1);
    // Given brainstem's own priority back (as root here; without CAP_SYS_NICE it keeps its nice and says so).
    const kept = h.logs.some((l) => String(l.msg).includes('keeps its low priority'));
    expect(niceOf(spare)).toBe(kept ? 19 : getPriority());
    // The conversation keeps it: the follow-up runs on the same process.
    const two = await collect(h.brain.turn(followUp('second'), signal()));
    expect(textOf(two)).toBe('second answer');
    expect(starts(h.logs)[1]).toEqual({ pid: spare, spare: false, resumed: true });

    // The next spare: started only after the turn that took the first one had ended.
    const next = await spareReady(expect, h.logs, 2);
    expect(next).not.toBe(spare);
    const firstEnd = h.logs.findIndex((l) => l.msg === 'claude turn finished');
    const nextStart = h.logs.findIndex((l) => l.msg === 'spare Claude process starting' && l.pid === next);
    expect(nextStart).toBeGreaterThan(firstEnd);
    expect(h.spares?.size).toBe(1);
  });

  it('never gives the spare to a conversation that resumes its session', async (ctx) => {
    const { expect } = ctx;
    // Without warm processes the follow-up must resume on a new process.
    const h = await harness(ctx, {
      spares: true,
      claude: { warm: { enabled: false, idleMs: 600_000, max: 4 } },
    });
    h.fake.script((req) => text(req.lastUserText === 'first' ? 'answer' : 'second answer'));
    const first = await spareReady(expect, h.logs, 1);
    await collect(h.brain.turn(userTurn('first'), signal()));
    expect(starts(h.logs)[0]).toMatchObject({ pid: first, spare: true });
    const second = await spareReady(expect, h.logs, 2);

    const two = await collect(h.brain.turn(followUp('second'), signal()));

    expect(textOf(two)).toBe('second answer');
    const resumed = starts(h.logs)[1];
    expect(resumed).toMatchObject({ spare: false, resumed: true });
    expect(resumed?.pid).not.toBe(second);
    expect(alive(second)).toBe(true);
    expect(h.spares?.size).toBe(1);
    expect(h.fake.mainRequests().at(-1)?.userTexts).toEqual(['first', 'second']);
  });

  it('replaces a spare that died before use, and a new conversation never hears of it', async (ctx) => {
    const { expect } = ctx;
    const h = await harness(ctx, { spares: true });
    h.fake.script(() => text('answer'));
    const first = await spareReady(expect, h.logs, 1);
    killGroupOf(first);
    await expect
      .poll(
        () => h.logs.some((l) => l.msg === 'spare Claude process exited before use' && l.pid === first),
        EVENT_TIMEOUT,
      )
      .toBe(true);
    const second = await spareReady(expect, h.logs, 2);
    expect(second).not.toBe(first);

    // This one dies once its turn is written, before the CLI has worked on it: the turn goes to a new process.
    let killed = false;
    h.fake.script(() => {
      if (!killed) {
        killed = true;
        killGroupOf(second);
      }
      return text('answer');
    });
    const events = await collect(h.brain.turn(userTurn('first'), signal()));

    expect(textOf(events)).toBe('answer');
    expect(terminal(events)).toEqual([{ type: 'done', finishReason: 'stop' }]);
    const [taken, fresh] = starts(h.logs);
    expect(taken).toMatchObject({ pid: second, spare: true });
    expect(fresh).toMatchObject({ spare: false, resumed: false });
    expect(fresh?.pid).not.toBe(second);
  });

  it('kills a spare taken by a turn stopped before the spare was used, instead of leaving it alive and counted', async (ctx) => {
    const { expect } = ctx;
    const h = await harness(ctx, { spares: true });
    const spares = h.spares as NonNullable<typeof h.spares>;
    const spare = await spareReady(expect, h.logs, 1);
    // The stop lands once the turn holds the spare and before it waits for it (e.g. while an
    // image's old copies are swept): the moment it is taken.
    const stop = new AbortController();
    const take = spares.take.bind(spares);
    spares.take = (mode, spec) => {
      const taken = take(mode, spec);
      stop.abort();
      return taken;
    };

    const events = await collect(h.brain.turn(userTurn('never sent', { key: 'stopped' }), stop.signal));

    expect(terminal(events)).toMatchObject([{ type: 'error', error: { kind: 'aborted' } }]);
    expect(h.fake.mainRequests()).toEqual([]);
    // Nobody holds it any more (not a spare, not a warm process): it must not stay alive, counted.
    expect(await groupAfterKill(spare)).toEqual([]);
    // Every process still counted against claude.maxProcesses is a spare (the next one may start).
    await expect.poll(() => h.processes.count - spares.size, EVENT_TIMEOUT).toBe(0);
  });

  it('counts the spare against claude.maxProcesses and closes it first to make room', async (ctx) => {
    const { expect } = ctx;
    const h = await harness(ctx, { spares: true, claude: { maxProcesses: 2 } });
    h.fake.script(() => text('answer'));
    const first = await spareReady(expect, h.logs, 1);
    await collect(h.brain.turn(userTurn('first', { key: 'a' }), signal()));
    const warmA = first;
    const second = await spareReady(expect, h.logs, 2);
    expect(h.processes.count).toBe(2);

    // A capped turn cannot use a spare (its budget is per process): it needs a slot, and the spare gives it up.
    const capped = await collect(
      h.brain.turn({ ...userTurn('capped', { key: 'b' }), maxBudgetUsd: 5 }, signal()),
    );

    expect(textOf(capped)).toBe('answer');
    expect(starts(h.logs)[1]).toMatchObject({ spare: false });
    expect(await groupAfterKill(second)).toEqual([]);
    expect(
      h.logs.some(
        (l) => l.msg === 'closing spare Claude process' && l.pid === second && l.why === 'room for a turn',
      ),
    ).toBe(true);
    // The warm process of `a` was not touched.
    expect(alive(warmA)).toBe(true);
    // Once the capped turn's process is gone, the slot goes to a new spare again, and no further.
    const third = await spareReady(expect, h.logs, 3);
    expect(alive(third)).toBe(true);
    expect(h.processes.count).toBe(2);
  });

  it('keeps starting spares when the ones closed for room never got to start', async (ctx) => {
    const { expect } = ctx;
    // One slot: every turn that cannot take the spare closes it, most likely before it has started.
    const h = await harness(ctx, { spares: true, claude: { maxProcesses: 1 } });
    h.fake.script(() => text('answer'));
    const spawned = () => h.logs.filter((l) => l.msg === 'spare Claude process starting').length;
    for (let i = 1; i <= 3; i++) {
      await expect.poll(spawned, EVENT_TIMEOUT).toBeGreaterThanOrEqual(i);
      // A capped turn never takes a spare: it needs the slot, and the spare is shed.
      const capped = await collect(
        h.brain.turn({ ...userTurn(`capped ${i}`, { key: `k${i}` }), maxBudgetUsd: 5 }, signal()),
      );
      expect(terminal(capped)).toEqual([{ type: 'done', finishReason: 'stop' }]);
    }
    expect(
      h.logs.filter((l) => l.msg === 'closing spare Claude process' && l.why === 'room for a turn'),
    ).toHaveLength(3);

    // Closing them was brainstem's doing, not a failure to start: a fourth spare starts and gets ready.
    await expect.poll(spawned, EVENT_TIMEOUT).toBeGreaterThanOrEqual(4);
    const fourth = h.logs.filter((l) => l.msg === 'spare Claude process starting')[3]?.pid as number;
    await expect.poll(() => readySpares(h.logs), EVENT_TIMEOUT).toContain(fourth);
    expect(h.logs.some((l) => String(l.msg).includes('keep failing to start'))).toBe(false);
  });

  it('closes a spare spawned with other settings instead of using it, and every spare on close()', async (ctx) => {
    const { expect } = ctx;
    const h = await harness(ctx, { spares: true });
    h.fake.script(() => text('answer'));
    const first = await spareReady(expect, h.logs, 1);
    // The environment a conversation would get now differs from the spare's.
    h.options.claude.env = { ...h.options.claude.env, BASH_DEFAULT_TIMEOUT_MS: '1234' };

    const events = await collect(h.brain.turn(userTurn('first'), signal()));

    expect(textOf(events)).toBe('answer');
    expect(starts(h.logs)[0]).toMatchObject({ spare: false });
    expect(starts(h.logs)[0]?.pid).not.toBe(first);
    expect(await groupAfterKill(first)).toEqual([]);
    expect(
      h.logs.some(
        (l) => l.msg === 'closing spare Claude process' && l.pid === first && l.why === 'settings changed',
      ),
    ).toBe(true);

    const next = await spareReady(expect, h.logs, 2);
    await h.brain.close();
    expect(await groupAfterKill(next)).toEqual([]);
    expect(h.spares?.size).toBe(0);
  });

  it('follows the active mode: a switch closes the old mode’s spare, and shutdown leaves no process', async (ctx) => {
    const { expect } = ctx;
    const { logger, logs } = recordingLogger('info');
    const { svc, close } = await startClaudeService({
      logger,
      config: { modes: { other: { kind: 'claude', description: 'another Claude mode' } } },
      parts: { claudeSpares: true },
    });
    ctx.onTestFinished(() => close());
    const first = await spareReady(expect, logs, 1);
    expect(logs.find((l) => l.msg === 'spare Claude process ready')?.mode).toBe('assistant');

    const outcome = await svc.service.core.switcher.switchTo('other', { source: 'api' });

    expect(outcome.ok).toBe(true);
    expect(await groupAfterKill(first)).toEqual([]);
    expect(
      logs.some(
        (l) => l.msg === 'closing spare Claude process' && l.pid === first && l.why === 'mode switched',
      ),
    ).toBe(true);
    const second = await spareReady(expect, logs, 2);
    expect(logs.filter((l) => l.msg === 'spare Claude process ready').at(-1)?.mode).toBe('other');

    // A new conversation of the new mode through the OpenAI endpoint gets it.
    const answer = await svc.client.chat.completions.create({
      model: 'other',
      messages: [{ role: 'user', content: 'hello' }],
    });
    expect(answer.choices[0]?.message.content).toBe('Hello from the fake.');
    expect(starts(logs).at(-1)).toMatchObject({ pid: second, spare: true });
    const third = await spareReady(expect, logs, 3);

    await svc.service.stop(1000);
    expect(await groupAfterKill(third)).toEqual([]);
    expect(await groupAfterKill(second)).toEqual([]);
    expect(processesIn(path.join(svc.dir, 'data'))).toEqual([]);
  });

  it('keeps no spare for a mode whose brain is not logged in, none even before its first probe answers', async (ctx) => {
    const { expect } = ctx;
    const { logger, logs } = recordingLogger('info');
    const { svc, close } = await startClaudeService({
      logger,
      // No API key and an empty HOME: `claude auth status` says not logged in.
      env: { ANTHROPIC_API_KEY: '' },
      parts: { claudeSpares: true },
    });
    ctx.onTestFinished(() => close());
    const { claudeSpares, readiness } = svc.service.core;
    await expect.poll(() => readiness.known('assistant').result, EVENT_TIMEOUT).toMatchObject({ ok: false });
    // None started before the first probe answered either (a CLI start's CPU and memory for nothing).
    expect(logs.filter((l) => l.msg === 'spare Claude process starting')).toEqual([]);
    // What would start one (the mode served again) starts none, through a whole probe.
    claudeSpares.serve('assistant');
    await readiness.probe('assistant', { fresh: true });
    expect(logs.filter((l) => l.msg === 'spare Claude process starting')).toEqual([]);
    expect(claudeSpares.size).toBe(0);
  });
});

describe('spares that keep failing to start', () => {
  it('start no more until the active mode’s brain is ready again; another mode’s readiness does not count', async ({
    expect,
  }) => {
    const { logger, logs } = recordingLogger('info');
    const spares = new Spares(new ProcessCap(4), logger);
    let specs = 0;
    spares.register('assistant', {
      count: 1,
      spec: () => {
        specs++;
        return Promise.reject(new Error('the MCP config could not be written'));
      },
      guard: () => {},
    });
    spares.serve('assistant');
    spares.brainReady('assistant', true);
    const failed = () => logs.filter((l) => l.msg === 'spare Claude process could not be prepared').length;
    await expect.poll(failed, EVENT_TIMEOUT).toBe(3);
    expect(specs).toBe(3);

    // Deciding to start a spare asks for its spec at once: none asked, none started.
    spares.brainReady('other', true);
    spares.brainReady('other', false);
    spares.brainReady('other', true);
    expect(specs).toBe(3);

    spares.brainReady('assistant', false);
    spares.brainReady('assistant', true);
    expect(specs).toBe(4);
    await expect.poll(failed, EVENT_TIMEOUT).toBe(6);
    await spares.stop();
  });
});
