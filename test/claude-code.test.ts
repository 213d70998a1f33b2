/**
 * ClaudeCodeBrain against the real `claude` CLI talking to a fake Anthropic API.
 * Each test has its own fake, HOME, database and cwd, so they run concurrently.
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, type ExpectStatic, expect, it } from 'vitest';
import { buildArgs } from '../brains/claude-code/args.js';
import { classifyFailure, type FailureSignals, isMissingSession } from '../brains/claude-code/errors.js';
import { ClaudeCodeBrain } from '../brains/claude-code/index.js';
import { answerDigest, planPrompt } from '../brains/claude-code/prompt.js';
import { RunReader } from '../brains/claude-code/run-reader.js';
import { parseCliLine } from '../brains/claude-code/stream-json.js';
import { grantsBrainstemTools } from '../brains/claude-code/tool-names.js';
import type { Brain, ChatMessage, TurnEvent } from '../brains/types.js';
import { openDb } from '../src/db/index.js';
import { KeptWrites } from '../src/db/kept-writes.js';
import { SessionStore } from '../src/sessions.js';
import { createGate, httpError, text, toolUse, usageLimitHeaders } from './fakes/anthropic.js';
import { CLAUDE_CLI } from './helpers/claude-bin.js';
import { collect, groupAfterKill, harness, textOf, userTurn } from './helpers/claude-harness.js';
import { recordingLogger } from './helpers/logs.js';
import { modeConfig } from './helpers/mode-config.js';
import { killPidIn } from './helpers/procs.js';
import { startTestService } from './helpers/service.js';

const terminal = (events: TurnEvent[]) => events.filter((e) => e.type === 'done' || e.type === 'error');
const errorOf = (events: TurnEvent[]) => {
  const last = events.at(-1);
  if (last?.type !== 'error') throw new Error(`expected an error, got ${JSON.stringify(last)}`);
  return last.error;
};

// Each CLI run costs about a second of CPU; on a busy two-core runner a test can take many seconds.
describe.concurrent('ClaudeCodeBrain with the real CLI', { timeout: 90_000 }, () => {
  it('streams text deltas while the API is still answering, then usage and one done', async (ctx) => {
    const { expect } = ctx;
    const h = await harness(ctx);
    const gate = createGate();
    h.fake.script(() =>
      text(['Hello ', 'world', '!'], {
        gate: gate.promise,
        usage: {
          input_tokens: 1234,
          output_tokens: 56,
          cache_read_input_tokens: 300,
          cache_creation_input_tokens: 40,
        },
      }),
    );
    const events: TurnEvent[] = [];
    for await (const e of h.brain.turn(userTurn('hi'), new AbortController().signal)) {
      events.push(e);
      // The fake holds everything after "Hello " until the consumer has seen it.
      if (e.type === 'text') gate.open();
    }
    const firstText = events.findIndex((e) => e.type === 'text');
    expect(events[firstText]).toEqual({ type: 'text', text: 'Hello ' });
    expect(textOf(events)).toBe('Hello world!'); // not repeated from the whole `assistant` message
    expect(events[0]?.type).toBe('session');
    expect(events.some((e) => e.type === 'tool_call')).toBe(false);
    expect(terminal(events)).toEqual([{ type: 'done', finishReason: 'stop' }]);
    const usage = events.find((e) => e.type === 'usage');
    expect(usage).toEqual({
      type: 'usage',
      usage: {
        costUsd: expect.any(Number),
        inputTokens: 1234,
        outputTokens: 56,
        cacheReadTokens: 300,
        cacheWriteTokens: 40,
      },
    });
    expect(usage?.type === 'usage' && usage.usage.costUsd).toBeGreaterThan(0);
    expect(events.indexOf(usage as TurnEvent)).toBe(events.length - 2);
  });

  // Cut off mid-word, the CLI asks the model to pick up mid-thought in a new message.
  for (const stop of ['max_tokens', 'model_context_window_exceeded']) {
    it(`does not split a sentence that the CLI goes on with after a ${stop} stop`, async (ctx) => {
      const { expect } = ctx;
      const h = await harness(ctx);
      let requests = 0;
      h.fake.script(() =>
        requests++ === 0 ? text(['The quick br'], { stopReason: stop }) : text(['own fox.']),
      );
      const events = await collect(h.brain.turn(userTurn('hi'), new AbortController().signal));
      expect(h.fake.mainRequests()).toHaveLength(2);
      expect(textOf(events)).toBe('The quick brown fox.');
    });
  }

  // After three requests to go on, the CLI gives up with an error of its own ("…exceeded the 64000 output token maximum").
  it('ends an answer that keeps reaching the output-token limit as cut at its length, with the text so far', async (ctx) => {
    const { expect } = ctx;
    const h = await harness(ctx);
    let requests = 0;
    h.fake.script(() => text([`part ${++requests}, `], { stopReason: 'max_tokens' }));
    const events = await collect(h.brain.turn(userTurn('write a lot'), new AbortController().signal));
    expect(textOf(events)).toBe('part 1, part 2, part 3, part 4, ');
    expect(events.filter((e) => e.type === 'notice')).toEqual([
      { type: 'notice', text: expect.stringMatching(/^⚙️ \[proxy\] Claude's answer was cut: /) },
    ]);
    expect(terminal(events)).toEqual([{ type: 'done', finishReason: 'length' }]);
  });

  // The CLI takes a turn starting with "/" for one of its commands: no API request, an empty answer
  // ("Unknown command" only in its result), or a session silently cleared.
  it('sends a message starting with "/" to the model as written, never to the CLI\'s own commands', async (ctx) => {
    const { expect } = ctx;
    const h = await harness(ctx);
    h.fake.script((req) => text([`echo:${req.lastUserText.trim()}`]));
    // One conversation: the first message opens it, the others follow on its warm process (one CLI
    // start, not four), each written to the same stdin as a first turn's. "/clear" comes before two
    // more, so a session it cleared would show: the next request would lack the earlier turns.
    const messages = ['/foo what does this do?', '/clear', '/tmp/x is full, why?', '/cost'];
    const history: ChatMessage[] = [];
    for (const [i, message] of messages.entries()) {
      const events = await collect(
        h.brain.turn(userTurn(message, { history }), new AbortController().signal),
      );
      expect(textOf(events)).toBe(`echo:${message}`);
      expect(terminal(events)).toEqual([{ type: 'done', finishReason: 'stop' }]);
      expect(h.fake.mainRequests()[i]?.userTexts.map((t) => t.trim())).toEqual(messages.slice(0, i + 1));
      history.push({ role: 'user', content: message }, { role: 'assistant', content: textOf(events) });
    }
  });

  // The two ways a conversation goes on: its warm process still holds it, or a new process `--resume`s it.
  for (const path of ['on its warm process', 'with --resume on a new process'] as const) {
    it(`continues a conversation ${path}, sending only the new user turn`, async (ctx) => {
      const { expect } = ctx;
      const warm = path === 'on its warm process';
      const h = await harness(ctx, {
        mode: { systemPrompt: 'Answer like a pirate.' },
        claude: { warm: { enabled: warm, idleMs: 600_000, max: 4 } },
      });
      // The second answer depends on the first exchange reaching the API again: lost history, wrong answer.
      h.fake.script((req) => {
        if (req.lastUserText.endsWith('first question')) return text('first answer');
        const earlier = JSON.stringify(req.body?.messages);
        return text(
          earlier.includes('first question') && earlier.includes('first answer')
            ? 'second answer'
            : 'no memory',
        );
      });
      // Over the 128 KiB Linux limit for one argv string: it must travel on stdin.
      const system = { role: 'system' as const, content: `CLIENT SYSTEM PROMPT ${'x'.repeat(200 * 1024)}` };
      const signal = new AbortController().signal;

      const turn1 = await collect(h.brain.turn(userTurn('first question', { history: [system] }), signal));
      const id1 = turn1.find((e) => e.type === 'session');
      const history = [
        system,
        { role: 'user' as const, content: 'first question' },
        { role: 'assistant' as const, content: textOf(turn1) },
      ];
      const turn2 = await collect(h.brain.turn(userTurn('second question', { history }), signal));

      expect(textOf(turn2)).toBe('second answer');
      const [s1, s2] = h.logs.filter((l) => l.msg === 'claude turn started');
      expect(s2).toMatchObject({ resumed: true, warm });
      if (warm) expect(s2?.pid).toBe(s1?.pid);
      else expect(s2?.pid).not.toBe(s1?.pid);
      expect(turn2.find((e) => e.type === 'session')).toEqual(id1);
      const [first, second] = h.fake.mainRequests();
      expect(first?.userTexts).toHaveLength(1);
      expect(first?.userTexts[0]).toContain(system.content);
      // The CLI's own history holds turn 1; we added exactly one user message.
      expect(second?.userTexts).toEqual([first?.userTexts[0], 'second question']);
      // The mode prompt is a system prompt on every run, never repeated in the conversation.
      for (const req of [first, second])
        expect(JSON.stringify(req?.body?.system)).toContain('Answer like a pirate.');
      expect(h.sessions.get('test:1', 'assistant')?.brainSessionId).toBe(
        id1?.type === 'session' && id1.sessionId,
      );
    });
  }

  it('a resumed session hears what changed in the client’s instructions, and nothing when they stand, across a restart too', async (ctx) => {
    const { expect } = ctx;
    const h = await harness(ctx);
    h.fake.script(() => text('noted'));
    const system = (date: string) => ({
      role: 'system' as const,
      content: `${'You are the assistant of a busy household.\n'.repeat(20)}Current date: ${date}\nTime zone: UTC`,
    });
    const signal = new AbortController().signal;
    const history = (date: string, turns: number) => [
      system(date),
      ...Array.from({ length: turns }, (_, i) => [
        { role: 'user' as const, content: `question ${i + 1}` },
        { role: 'assistant' as const, content: 'noted' },
      ]).flat(),
    ];
    await collect(h.brain.turn(userTurn('question 1', { history: history('2026-12-05', 0) }), signal));
    await collect(h.brain.turn(userTurn('question 2', { history: history('2026-12-05', 1) }), signal));
    await collect(h.brain.turn(userTurn('question 3', { history: history('2026-12-06', 2) }), signal));
    // brainstem restarted: a new brain over the same state database, no warm process.
    await h.brain.close();
    const restarted = new ClaudeCodeBrain({ ...h.options, warm: undefined });
    ctx.onTestFinished(() => restarted.close());
    await collect(restarted.turn(userTurn('question 4', { history: history('2026-12-06', 3) }), signal));
    await collect(restarted.turn(userTurn('question 5', { history: history('2026-12-07', 4) }), signal));

    const added = h.fake.mainRequests().map((r) => r.userTexts.at(-1) ?? '');
    expect(added[0]).toContain('Current date: 2026-12-05');
    expect(added[1]).toBe('question 2');
    expect(added[2]).toContain('- Current date: 2026-12-05\n+ Current date: 2026-12-06');
    expect(added[2]).not.toContain('busy household');
    expect(added[2]).toMatch(/question 3$/);
    // The session resumed (turn 4 sees turns 1 to 3) and was told nothing again.
    expect(h.fake.mainRequests()[3]?.userTexts.length).toBeGreaterThan(3);
    expect(added[3]).toBe('question 4');
    expect(added[4]).toContain('- Current date: 2026-12-06\n+ Current date: 2026-12-07');
    expect(added[4]).not.toContain('busy household');
  });

  it('a resumed session hears the turns another mode answered since its own last answer, after a restart too', async (ctx) => {
    const { expect } = ctx;
    const h = await harness(ctx);
    h.fake.script(() => text('ok'));
    const signal = new AbortController().signal;
    await collect(h.brain.turn(userTurn('my name is Zed', { key: 'k' }), signal));
    // brainstem restarted (a new brain over the same state database), the conversation went on in a local mode and back.
    await h.brain.close();
    const restarted = new ClaudeCodeBrain({ ...h.options, warm: undefined });
    ctx.onTestFinished(() => restarted.close());
    const history = [
      { role: 'user' as const, content: 'my name is Zed' },
      { role: 'assistant' as const, content: '**[assistant]** ok' },
      { role: 'user' as const, content: 'the secret word is PINEAPPLE' },
      { role: 'assistant' as const, content: '**[local]** noted' },
    ];
    await collect(restarted.turn(userTurn('what is the secret word?', { key: 'k', history }), signal));

    const [first, second] = h.fake.mainRequests();
    // Resumed: the session's own turn is not replayed, the local mode's is.
    expect(second?.userTexts[0]).toBe(first?.userTexts[0]);
    expect(second?.lastUserText).toBe(
      '<history source="client">\nuser: the secret word is PINEAPPLE\n\nassistant: **[local]** noted\n</history>\n\nwhat is the secret word?',
    );
  });

  it('starts fresh when the stored session is unknown to the CLI, and stores the new id', async (ctx) => {
    const { expect } = ctx;
    const h = await harness(ctx);
    const stale = randomUUID();
    h.sessions.set('test:1', 'assistant', stale, h.cwd);
    h.fake.script(() => text('fresh answer'));
    const history = [
      { role: 'system' as const, content: 'CLIENT SYSTEM PROMPT' },
      { role: 'user' as const, content: 'earlier' },
      { role: 'assistant' as const, content: 'earlier answer' },
    ];

    const events = await collect(h.brain.turn(userTurn('again', { history }), new AbortController().signal));

    expect(textOf(events)).toBe('fresh answer');
    expect(terminal(events)).toEqual([{ type: 'done', finishReason: 'stop' }]);
    const session = events.filter((e) => e.type === 'session');
    expect(session).toHaveLength(1);
    const stored = h.sessions.get('test:1', 'assistant')?.brainSessionId;
    expect(stored).not.toBe(stale);
    expect(session[0]).toEqual({ type: 'session', sessionId: stored });
    // A fresh session gets the setup again, not just the new turn.
    expect(h.fake.mainRequests()[0]?.lastUserText).toContain('CLIENT SYSTEM PROMPT');
    expect(h.logs.some((l) => l.msg === 'stored Claude session is gone; starting fresh')).toBe(true);
  });

  it('ends quickly with renewal help when the credentials are refused', async (ctx) => {
    const { expect } = ctx;
    const h = await harness(ctx);
    h.fake.script(() => httpError(401, { shouldRetry: false, message: 'invalid x-api-key' }));
    const events = await collect(h.brain.turn(userTurn('hi'), new AbortController().signal));
    const error = errorOf(events);
    expect(error.kind).toBe('auth');
    expect(error.status).toBe(401);
    expect(error.message).toMatch(/^⚙️ \[proxy\] Claude refused its credentials/);
    // The harness's CLI runs on an API key, which Claude Code uses before any login: logging in
    // again would change nothing, so the help says to replace the key.
    expect(error.message).toContain(
      'They come from ANTHROPIC_API_KEY, which Claude Code uses before any login',
    );
    expect(error.message).not.toContain('claude /login');
    expect(error.message).toContain('/creds');
    // A French Telegram user reads it in French, the CLI's own reason quoted as it is.
    expect(error.fr).toMatch(
      /^⚙️ \[proxy\] Claude a refusé ses identifiants \(.+\)\. Ils viennent de ANTHROPIC_API_KEY/,
    );
    expect(terminal(events)).toHaveLength(1);
    // One request: a retried 401 would take minutes.
    expect(h.fake.mainRequests()).toHaveLength(1);
  });

  it('says to make a new setup-token when the refused credentials are CLAUDE_CODE_OAUTH_TOKEN', async (ctx) => {
    const { expect } = ctx;
    const h = await harness(ctx, { auth: 'oauth' });
    h.fake.script(() => httpError(401, { shouldRetry: false, message: 'OAuth token has been revoked' }));
    const error = errorOf(await collect(h.brain.turn(userTurn('hi'), new AbortController().signal)));
    expect(error.kind).toBe('auth');
    expect(error.message).toContain(
      'They come from CLAUDE_CODE_OAUTH_TOKEN: on the host run `claude setup-token`',
    );
    expect(error.message).not.toContain('claude /login');
  });

  it('says to log in within the config dir the CLI ran with, when its login is what failed', async (ctx) => {
    const { expect } = ctx;
    // No key nor token: the CLI reads the login in its CLAUDE_CONFIG_DIR, where there is none.
    const h = await harness(ctx, { mode: { env: { ANTHROPIC_API_KEY: '', CLAUDE_CODE_OAUTH_TOKEN: '' } } });
    const error = errorOf(await collect(h.brain.turn(userTurn('hi'), new AbortController().signal)));
    expect(error.kind).toBe('auth');
    // A bare `claude /login` would log in to ~/.claude, which this CLI does not read.
    expect(error.message).toContain(
      `To renew them on the host run \`CLAUDE_CONFIG_DIR=${path.join(h.cli.home, '.claude')} claude\` and /login there`,
    );
  });

  it('reports a subscription usage limit with its reset time (OAuth credentials)', async (ctx) => {
    const { expect } = ctx;
    const h = await harness(ctx, { auth: 'oauth' });
    const resetSec = Math.floor(Date.UTC(2031, 0, 2, 7, 3) / 1000);
    h.fake.script(() => httpError(429, { headers: usageLimitHeaders(resetSec), shouldRetry: false }));
    const error = errorOf(await collect(h.brain.turn(userTurn('hi'), new AbortController().signal)));
    expect(error.kind).toBe('usage_limit');
    expect(error.resetsAt).toBe(resetSec * 1000);
    expect(error.message).toBe(
      "⚙️ [proxy] Claude's subscription usage limit is reached (5-hour limit); it resets at 2031-01-02 07:03 UTC.",
    );
  });

  /** A turn saying `hi`, aborted as its first words come: every event it gave. */
  const abortedAtFirstWords = async (brain: Brain): Promise<TurnEvent[]> => {
    const ac = new AbortController();
    const events: TurnEvent[] = [];
    for await (const e of brain.turn(userTurn('hi'), ac.signal)) {
      events.push(e);
      if (e.type === 'text') ac.abort();
    }
    return events;
  };

  it('kills the CLI and its process group when the caller aborts mid-stream', async (ctx) => {
    const { expect } = ctx;
    const h = await harness(ctx);
    h.fake.script(() => text(['first words', ' never sent'], { gate: new Promise(() => {}) }));
    const events = await abortedAtFirstWords(h.brain);
    // The upstream holds the rest forever: only the abort can have ended the turn.
    expect(textOf(events)).toBe('first words');
    expect(errorOf(events).kind).toBe('aborted');
    expect(terminal(events)).toHaveLength(1);
    const pid = h.lastPid();
    expect(await groupAfterKill(pid)).toEqual([]);
    expect(() => process.kill(pid, 0)).toThrow(/ESRCH/);
  });

  // Claude Code starts each Bash command in a session (and process group) of its own: the CLI's
  // group does not hold it, so a CLI that dies mid-command (the OOM killer, an operator's kill,
  // brainstem's own SIGTERM) used to leave the command running on with nobody to read it.
  it.for(['SIGKILL', 'SIGTERM'] as const)(
    'stops the command a Bash tool was running when the CLI is killed mid-tool (%s)',
    async (sig, ctx) => {
      const { expect } = ctx;
      const h = await harness(ctx, { mode: { allowedTools: ['Bash'] } });
      const fifo = path.join(h.cwd, '..', 'started');
      execFileSync('mkfifo', [fifo]);
      h.fake.script(() =>
        toolUse(
          'Bash',
          { command: `echo $$ > ${fifo}; exec sleep 1000`, description: 'long' },
          text('Done.'),
        ),
      );
      const events = collect(h.brain.turn(userTurn('run the long command'), new AbortController().signal));
      // Opening the FIFO waits for the command to write its pid: it runs from here on.
      const command = Number((await readFile(fifo, 'utf8')).trim());
      expect(command).toBeGreaterThan(1);
      process.kill(h.lastPid(), sig);
      const error = errorOf(await events);
      expect(error.message).toMatch(/Claude Code stopped without an answer/);
      // It had begun (the command ran): sent again, the turn would run it again.
      expect(error.noRetry).toBe(true);
      expect(await groupAfterKill(command)).toEqual([]);
    },
  );

  // What a command of an earlier turn started in the background (a dev server, a tmux session) is
  // the user's: that turn ended. Killing the CLI in a later turn took it down with the command then
  // running, since it carries the same mark.
  it('leaves be what an earlier turn started in the background when the CLI is killed in a later one', async (ctx) => {
    const { expect } = ctx;
    const h = await harness(ctx, { mode: { allowedTools: ['Bash'] } });
    const fifo = path.join(h.cwd, '..', 'started');
    const server = path.join(h.cwd, '..', 'server.pid');
    execFileSync('mkfifo', [fifo]);
    h.fake.script((req) =>
      req.lastUserText.includes('start the server')
        ? toolUse(
            'Bash',
            {
              command: `nohup sleep 1001 >/dev/null 2>&1 </dev/null & echo $! > ${server}`,
              description: 'server',
            },
            text('Started.'),
          )
        : toolUse(
            'Bash',
            { command: `echo $$ > ${fifo}; exec sleep 1000`, description: 'long' },
            text('Done.'),
          ),
    );
    const first = await collect(h.brain.turn(userTurn('start the server'), new AbortController().signal));
    expect(terminal(first)).toEqual([{ type: 'done', finishReason: 'stop' }]);
    // Read when the test ends, and only a real pid signalled: an empty file's Number('') is 0, and
    // process.kill(0) would kill the test run's whole process group.
    ctx.onTestFinished(() => killPidIn(server, 'SIGKILL'));
    const background = Number((await readFile(server, 'utf8')).trim());
    expect(background).toBeGreaterThan(1);
    const cli = h.lastPid();
    const history = [
      { role: 'user' as const, content: 'start the server' },
      { role: 'assistant' as const, content: textOf(first) },
    ];
    const events = collect(
      h.brain.turn(userTurn('run the long command', { history }), new AbortController().signal),
    );
    const command = Number((await readFile(fifo, 'utf8')).trim());
    // The same warm process runs the second turn.
    expect(h.lastPid()).toBe(cli);
    process.kill(cli, 'SIGKILL');
    expect(errorOf(await events).message).toMatch(/Claude Code stopped without an answer/);
    expect(await groupAfterKill(command)).toEqual([]);
    // Still running: its stat's state is not a zombie's.
    const state = (await readFile(`/proc/${background}/stat`, 'utf8')).split(') ')[1]?.[0];
    expect(state).toMatch(/^[RSD]$/);
  });

  it('kills the CLI when the consumer stops reading', async (ctx) => {
    const { expect } = ctx;
    const h = await harness(ctx);
    h.fake.script(() => text(['first words', ' never sent'], { gate: new Promise(() => {}) }));
    for await (const e of h.brain.turn(userTurn('hi'), new AbortController().signal)) {
      if (e.type === 'text') break;
    }
    expect(await groupAfterKill(h.lastPid())).toEqual([]);
  });

  it('stops a turn at the time limit and says so', async (ctx) => {
    const { expect } = ctx;
    const h = await harness(ctx, { claude: { turnTimeoutMs: 2_500 } });
    h.fake.script(() => text(['slow', ' never'], { gate: new Promise(() => {}) }));
    const error = errorOf(await collect(h.brain.turn(userTurn('hi'), new AbortController().signal)));
    expect(error.kind).toBe('upstream_error');
    expect(error.message).toContain('stopped after 3 s');
    expect(await groupAfterKill(h.lastPid())).toEqual([]);
  });

  /** Call 1 finishes (a tool use, 20k tokens in); call 2 says its first words and then nothing. */
  const costlyThenStuck = () =>
    toolUse(
      'Bash',
      { command: 'true', description: 'x' },
      text(['started', ' never'], { gate: new Promise(() => {}) }),
      {
        usage: { input_tokens: 20_000, output_tokens: 500 },
      },
    );

  /** Call 1 whole, and what the CLI counted of call 2 before it was cut. */
  const expectCost = (expect: ExpectStatic, events: TurnEvent[]) => {
    const usage = events.find((e) => e.type === 'usage');
    if (usage?.type !== 'usage') throw new Error('no usage event');
    expect(usage.usage.inputTokens).toBeGreaterThanOrEqual(20_000);
    expect(usage.usage.outputTokens).toBeGreaterThanOrEqual(500);
    expect(usage.usage.costUsd).toBeGreaterThan(0);
    expect(terminal(events)).toHaveLength(1);
  };

  it('reports what a turn cost when the caller aborts it after an API call finished', async (ctx) => {
    const { expect } = ctx;
    const h = await harness(ctx);
    h.fake.script(costlyThenStuck);
    // Aborted at call 2's first words: call 1 is over.
    const events = await abortedAtFirstWords(h.brain);
    expect(errorOf(events).kind).toBe('aborted');
    expectCost(expect, events);
  });

  it('counts the input of the API call an abort cut, which 2.1.197’s result leaves out, as an estimate', async (ctx) => {
    const { expect } = ctx;
    const h = await harness(ctx);
    // One call, cut after its first words: the API read its 30 000 tokens and billed them.
    h.fake.script(() =>
      text(['first words', ' never sent'], {
        gate: new Promise(() => {}),
        usage: { input_tokens: 30_000, output_tokens: 1 },
      }),
    );
    const events = await abortedAtFirstWords(h.brain);
    expect(errorOf(events).kind).toBe('aborted');
    const usage = events.find((e) => e.type === 'usage');
    if (usage?.type !== 'usage') throw new Error('no usage event');
    // 2.1.197's result leaves the cut call out (its cost 0): counted from the stream, as an estimate.
    // 2.1.332's counts it itself, and is taken at its word.
    expect(usage.usage.costBasis).toBe(CLAUDE_CLI === 'pinned' ? 'estimated' : undefined);
    expect(usage.usage.inputTokens).toBeGreaterThanOrEqual(30_000);
    expect(usage.usage.costUsd).toBeGreaterThan(0);
  });

  it('reports what a turn cost when the time limit stops it after an API call finished', async (ctx) => {
    const { expect } = ctx;
    const h = await harness(ctx);
    const signal = new AbortController().signal;
    // A warm process first: the limit counts from the turn's start, and on a warm process call 1
    // ends well within it. Should a loaded machine still make call 1 outlast it, the turn is asked
    // again with twice the limit: the cost is checked on a turn whose call 2 came, never skipped.
    h.fake.script(() => text('ready'));
    await collect(h.brain.turn(userTurn('warm up'), signal));
    h.fake.script(costlyThenStuck);
    for (let limit = 3_000; ; limit *= 2) {
      if (limit > 48_000) throw new Error('call 1 never ended within the time limit, even at 48 s');
      h.options.claude.turnTimeoutMs = limit;
      const before = h.fake.mainRequests().length;
      const events = await collect(h.brain.turn(userTurn(`within ${limit} ms`), signal));
      expect(errorOf(events).kind).toBe('upstream_error');
      if (h.fake.mainRequests().length - before < 2) continue;
      expectCost(expect, events);
      return;
    }
  });

  it('runs turns of two conversations at the same time', async (ctx) => {
    const { expect } = ctx;
    const h = await harness(ctx);
    // Both streams are held until the fake has both requests in hand: they can only finish if they overlap.
    const bothArrived = createGate();
    h.fake.script((req) => {
      if (h.fake.mainRequests().length === 2) bothArrived.open();
      return text([`answer to ${req.lastUserText}: `, 'done'], { gate: bothArrived.promise });
    });
    const signal = new AbortController().signal;
    const [a, b] = await Promise.all([
      collect(h.brain.turn(userTurn('A', { key: 'chat:a' }), signal)),
      collect(h.brain.turn(userTurn('B', { key: 'chat:b' }), signal)),
    ]);
    expect(textOf(a)).toBe('answer to A: done');
    expect(textOf(b)).toBe('answer to B: done');
    const idA = h.sessions.get('chat:a', 'assistant')?.brainSessionId;
    const idB = h.sessions.get('chat:b', 'assistant')?.brainSessionId;
    expect(idA).toBeDefined();
    expect(idA).not.toBe(idB);
  });

  it('keeps its own tool use internal and applies the allow-list', async (ctx) => {
    const { expect } = ctx;
    const h = await harness(ctx, { mode: { allowedTools: ['Bash(touch *)'] } });
    h.fake.script((req) =>
      req.lastUserText === 'allowed'
        ? toolUse('Bash', { command: 'touch made-by-tool', description: 'touch' }, text('Touched.'), {
            preamble: 'Let me touch it.',
          })
        : toolUse('Write', { file_path: 'denied.txt', content: 'x' }, text('not written')),
    );
    const signal = new AbortController().signal;
    const allowed = await collect(h.brain.turn(userTurn('allowed'), signal));
    // The refused call in the same conversation, on its warm process: the allow-list is that
    // process's (its argv), so one CLI start shows both sides of it.
    const history = [
      { role: 'user' as const, content: 'allowed' },
      { role: 'assistant' as const, content: textOf(allowed) },
    ];
    const denied = await collect(h.brain.turn(userTurn('denied', { history }), signal));

    // The texts before and after the tool use are two messages: kept apart, not glued together.
    expect(textOf(allowed)).toBe('Let me touch it.\n\nTouched.');
    expect([...allowed, ...denied].some((e) => e.type === 'tool_call')).toBe(false);
    await expect(stat(path.join(h.cwd, 'made-by-tool'))).resolves.toBeDefined();
    await expect(stat(path.join(h.cwd, 'denied.txt'))).rejects.toThrow(/ENOENT/);
    const results = h.fake.mainRequests().flatMap((r) => r.toolResults);
    expect(results.map((r) => r.isError)).toEqual([false, true]);
  });

  // The current CLI defers its rarely used tools (TaskList among them) behind ToolSearch; the pinned one offers them.
  it('calls a tool the CLI defers once ToolSearch has loaded it, as a model must', async (ctx) => {
    const { expect } = ctx;
    const h = await harness(ctx, { mode: { allowedTools: ['TaskList'] } });
    h.fake.script(() => toolUse('TaskList', {}, text('No tasks.')));
    const events = await collect(h.brain.turn(userTurn('any tasks?'), new AbortController().signal));
    expect(textOf(events)).toBe('No tasks.');
    const main = h.fake.mainRequests();
    const deferred = !main[0]?.tools.includes('TaskList');
    if (deferred) {
      expect(main[0]?.tools).toContain('ToolSearch');
      const loaded = main[1]?.body?.messages?.at(-1)?.content;
      expect(JSON.stringify(loaded)).toContain('{"type":"tool_reference","tool_name":"TaskList"}');
    }
    expect(main).toHaveLength(deferred ? 3 : 2);
    // The call went out only in a request where the model could see the tool, and it ran.
    expect(main.at(-2)?.tools).toContain('TaskList');
    expect(main.at(-1)?.toolResults).toEqual([expect.objectContaining({ isError: false })]);
  });

  it('searches once for a tool the CLI refuses, then calls it and gets the refusal', async (ctx) => {
    const { expect } = ctx;
    const h = await harness(ctx, { mode: { deniedTools: ['TaskList'] } });
    h.fake.script(() => toolUse('TaskList', {}, text('Could not list them.')));
    const events = await collect(h.brain.turn(userTurn('any tasks?'), new AbortController().signal));
    expect(textOf(events)).toBe('Could not list them.');
    const main = h.fake.mainRequests();
    expect(main[0]?.tools).not.toContain('TaskList');
    expect(main).toHaveLength(main[0]?.tools.includes('ToolSearch') ? 3 : 2);
    expect(main.at(-1)?.toolResults).toEqual([expect.objectContaining({ isError: true })]);
  });

  it('offers the MCP server through a 0600 file, never with the token in argv, read-only tools by name', async (ctx) => {
    const { expect } = ctx;
    const token = 'secret-mcp-token-123456';
    const h = await harness(ctx, {
      mcp: { url: 'http://127.0.0.1:9/mcp', token, readOnlyTools: ['git_status', 'git_log', 'web_fetch'] },
      // The mode narrows the read-only tools; a mutating one it names is never pre-allowed.
      mode: { brainstemTools: ['git_log', 'web_fetch', 'make_target'] },
    });
    const gate = createGate();
    h.fake.script(() => text(['a', 'b'], { gate: gate.promise }));
    let cmdline = '';
    for await (const e of h.brain.turn(userTurn('hi'), new AbortController().signal)) {
      if (e.type === 'text' && !cmdline) {
        cmdline = (await readFile(`/proc/${h.lastPid()}/cmdline`, 'utf8')).split('\0').join(' ');
        gate.open();
      }
    }
    const file = cmdline.match(/--mcp-config (\S+)/)?.[1] as string;
    expect(cmdline).toContain('--allowedTools mcp__brainstem__git_log mcp__brainstem__web_fetch --');
    expect(cmdline.split(' ')).not.toContain('mcp__brainstem');
    expect(cmdline).not.toContain(token);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual({
      mcpServers: {
        brainstem: {
          type: 'http',
          url: 'http://127.0.0.1:9/mcp',
          headers: { Authorization: `Bearer ${token}`, 'x-brainstem-depth': '1' },
          alwaysLoad: true,
        },
      },
    });
    expect(JSON.stringify(h.logs)).not.toContain(token);
  });

  it("gives the CLI an environment built on purpose: what it needs and claude.env, none of brainstem's secrets", async (ctx) => {
    const { expect } = ctx;
    const secrets = {
      BRAINSTEM_API_TOKEN: 'bst-test-secret-api-token',
      TELEGRAM_BOT_TOKEN: '123456:test-secret-bot-token',
      BRAVE_API_KEY: 'test-secret-brave-key',
      OPENCLAW_GATEWAY_TOKEN: 'test-secret-gateway-token',
      // Not a secret's value, but the owner's keys: whoever holds the agent's socket signs with them.
      SSH_AUTH_SOCK: '/tmp/test-secret-ssh-agent.sock',
    };
    const saved = Object.keys(secrets).map((k) => [k, process.env[k]] as const);
    Object.assign(process.env, secrets);
    ctx.onTestFinished(() => {
      for (const [k, v] of saved) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    });
    const h = await harness(ctx, { claude: { env: { MODE_EXTRA_SETTING: 'from-claude-env' } } });
    const gate = createGate();
    h.fake.script(() => text(['a', 'b'], { gate: gate.promise }));
    let environ = '';
    for await (const e of h.brain.turn(userTurn('hi'), new AbortController().signal)) {
      if (e.type === 'text' && !environ) {
        environ = await readFile(`/proc/${h.lastPid()}/environ`, 'utf8');
        gate.open();
      }
    }
    const env = Object.fromEntries(
      environ.split('\0').map((kv) => [kv.split('=')[0], kv.slice(kv.indexOf('=') + 1)]),
    );
    expect(env.MODE_EXTRA_SETTING).toBe('from-claude-env');
    expect(env.PATH).toBe(process.env.PATH);
    expect(env.ANTHROPIC_BASE_URL).toBe(h.fake.url);
    for (const [name, value] of Object.entries(secrets)) {
      expect(env[name]).toBeUndefined();
      expect(environ).not.toContain(value);
    }
  });

  it('refuses a turn over claude.maxProcesses, closing an idle warm process first to make room', async (ctx) => {
    const { expect } = ctx;
    const h = await harness(ctx, { claude: { maxProcesses: 1 } });
    const gate = createGate();
    h.fake.script((r) =>
      r.lastUserText === 'first' ? text(['a', 'b'], { gate: gate.promise }) : text('ok'),
    );
    const signal = new AbortController().signal;
    const first = h.brain.turn(userTurn('first', { key: 'k1' }), signal)[Symbol.asyncIterator]();
    const firstEvents: TurnEvent[] = [];
    while (!firstEvents.some((e) => e.type === 'text')) {
      const next = await first.next();
      if (next.done) break;
      firstEvents.push(next.value);
    }

    const refused = await collect(h.brain.turn(userTurn('second', { key: 'k2' }), signal));
    expect(refused).toEqual([
      {
        type: 'error',
        error: {
          kind: 'rate_limit',
          status: 429,
          message:
            '⚙️ [proxy] 1 Claude Code process is running already, the most allowed (claude.maxProcesses); try again when one of the running answers has finished.',
          fr: '⚙️ [proxy] 1 processus Claude Code tourne déjà, le maximum permis (claude.maxProcesses) ; réessayez quand l’une des réponses en cours sera finie.',
        },
      },
    ]);
    expect(h.fake.mainRequests()).toHaveLength(1);

    gate.open();
    for (let next = await first.next(); !next.done; next = await first.next()) firstEvents.push(next.value);
    expect(firstEvents.at(-1)).toEqual({ type: 'done', finishReason: 'stop' });
    expect(h.warm?.size).toBe(1);
    // The idle warm process of the first conversation makes way for a turn of another one.
    const third = await collect(h.brain.turn(userTurn('third', { key: 'k3' }), signal));
    expect(textOf(third)).toBe('ok');
    expect(third.at(-1)).toEqual({ type: 'done', finishReason: 'stop' });
  });

  it('holds the place a turn found under claude.maxProcesses: two turns waiting for the same idle process to close never both start', async (ctx) => {
    const { expect } = ctx;
    const h = await harness(ctx, { claude: { maxProcesses: 1 } });
    const gate = createGate();
    let late = 0;
    h.fake.script((r) => {
      if (r.lastUserText === 'first') return text('ok');
      // Both started: the cap let them through, and nothing is left to wait for.
      if (++late === 2) gate.open();
      return text(['a', 'b'], { gate: gate.promise });
    });
    const signal = new AbortController().signal;
    await collect(h.brain.turn(userTurn('first', { key: 'k1' }), signal));
    expect(h.warm?.size).toBe(1);

    // Both find the idle warm process of k1 in the way and wait for it to close.
    const turns = ['k2', 'k3'].map((key) => collect(h.brain.turn(userTurn('late', { key }), signal)));
    const refused = await Promise.race(turns);
    expect(refused).toEqual([
      { type: 'error', error: expect.objectContaining({ kind: 'rate_limit', status: 429 }) },
    ]);
    gate.open();
    const ends = (await Promise.all(turns)).map((events) => events.at(-1)?.type);
    expect(ends.sort()).toEqual(['done', 'error']);
    expect(h.fake.mainRequests()).toHaveLength(2);
  });

  it('under claude.maxProcesses, counts on a process already leaving instead of closing another warm one', async (ctx) => {
    const { expect } = ctx;
    const h = await harness(ctx, { claude: { maxProcesses: 2 } });
    h.fake.script(() => text('ok'));
    const signal = new AbortController().signal;
    const turn = async (key: string) => textOf(await collect(h.brain.turn(userTurn('hi', { key }), signal)));
    const evicted = () =>
      h.logs.filter((l) => l.msg === 'closing warm Claude process' && l.why === 'evicted');
    // Stopped, a process being closed stays on its way out until its grace time ends it (SIGKILL).
    const closeStopped = (pid: number) => {
      process.kill(pid, 'SIGSTOP');
      ctx.onTestFinished(() => {
        try {
          process.kill(pid, 'SIGCONT');
        } catch {}
      });
      h.warm?.evict(1);
    };
    await turn('k1');
    const k1 = h.lastPid();
    await turn('k2');
    const k2 = h.lastPid();

    closeStopped(k1);
    expect(await turn('k3')).toBe('ok');
    // k1's place was enough: k2's warm process was kept.
    expect(evicted()).toHaveLength(1);

    // Two turns, one leaving process: the second closes an idle one (k3's) for its own place.
    closeStopped(k2);
    expect(await Promise.all([turn('k4'), turn('k5')])).toEqual(['ok', 'ok']);
    expect(evicted()).toHaveLength(3);
  });

  it('is ready when the CLI runs and is logged in (`claude auth status`)', async (ctx) => {
    const { expect } = ctx;
    const h = await harness(ctx);
    expect(await h.brain.ready()).toEqual({
      ok: true,
      detail: {
        en: 'logged in (API key from ANTHROPIC_API_KEY)',
        fr: 'connecté (clé API depuis ANTHROPIC_API_KEY)',
      },
    });
    const oauth = await harness(ctx, { auth: 'oauth' });
    expect(await oauth.brain.ready()).toEqual({
      ok: true,
      detail: { en: 'logged in (OAuth token)', fr: 'connecté (jeton OAuth)' },
    });
  });

  it('is not ready, and says how to fix it, with no credentials at all', async (ctx) => {
    const { expect } = ctx;
    const h = await harness(ctx, { claude: { env: { ANTHROPIC_API_KEY: '', CLAUDE_CODE_OAUTH_TOKEN: '' } } });
    expect(await h.brain.ready()).toEqual({
      ok: false,
      reason: { en: 'not logged in: run `claude /login`', fr: 'pas connecté : lancez `claude /login`' },
      final: true,
      kind: 'not signed in',
    });
  });
});

describe.concurrent('ClaudeCodeBrain without a usable CLI', () => {
  it('names CLAUDE_BIN when the binary is missing', async (ctx) => {
    const { expect } = ctx;
    const h = await harness(ctx, { claude: { bin: '/nonexistent/claude' } });
    const ready = await h.brain.ready();
    expect(ready.ok).toBe(false);
    expect(!ready.ok && ready.reason.en).toContain('CLAUDE_BIN');
    expect(!ready.ok && ready.reason.fr).toContain('CLAUDE_BIN');
    const error = errorOf(await collect(h.brain.turn(userTurn('hi'), new AbortController().signal)));
    expect(error.kind).toBe('upstream_down');
    expect(error.message).toContain('CLAUDE_BIN');
  });

  it('fails a switch to its mode at once, naming CLAUDE_BIN, instead of waiting for a binary that is not there', async (ctx) => {
    const { expect } = ctx;
    const svc = await startTestService({
      config: { claude: { bin: '/nonexistent/claude' }, defaultMode: 'local' },
    });
    ctx.onTestFinished(() => svc.close());
    const outcome = await svc.service.core.switcher.switchTo('assistant', { source: 'api' });
    expect(outcome).toMatchObject({
      ok: false,
      from: 'local',
      to: 'assistant',
      reason: 'Claude Code CLI not found: "/nonexistent/claude" (install it or set CLAUDE_BIN to its path)',
    });
    expect(svc.service.core.switcher.active().id).toBe('local');
  });

  it('says why when its working folder cannot be made, starts no CLI, and works once it can', async (ctx) => {
    const { expect } = ctx;
    const h = await harness(ctx);
    await writeFile(h.cwd, 'a file where the folder should be');
    const error = errorOf(await collect(h.brain.turn(userTurn('hi'), new AbortController().signal)));
    expect(error.kind).toBe('internal');
    expect(error.message).toMatch(/Claude Code could not be prepared: EEXIST/);
    expect(h.logs.some((l) => l.msg === 'claude turn started')).toBe(false);
    await rm(h.cwd);
    h.fake.script(() => text(['ok']));
    const events = await collect(h.brain.turn(userTurn('again'), new AbortController().signal));
    expect(textOf(events)).toBe('ok');
  });

  it('reports a CLI that exits without a result', async (ctx) => {
    const { expect } = ctx;
    const h = await harness(ctx, { claude: { bin: '/bin/false' } });
    const error = errorOf(await collect(h.brain.turn(userTurn('hi'), new AbortController().signal)));
    expect(error).toEqual({
      kind: 'upstream_error',
      message: '⚙️ [proxy] Claude Code stopped without an answer (exit code 1).',
      fr: '⚙️ [proxy] Claude Code s’est arrêté sans répondre (code de sortie 1).',
    });
  });

  it('gives the CLI 30 s to connect to brainstem’s MCP server, or what the owner set', async (ctx) => {
    const { expect } = ctx;
    // A CLI that writes the environment it got, then stops.
    const dir = await mkdtemp(path.join(tmpdir(), 'env-cli-'));
    ctx.onTestFinished(() => rm(dir, { recursive: true, force: true }));
    const dump = path.join(dir, 'environ');
    const bin = path.join(dir, 'claude');
    await writeFile(bin, `#!/bin/sh\nenv > '${dump}'\n`);
    await chmod(bin, 0o755);
    const h = await harness(ctx);
    // The suite's CLI environment sets its own (test/fakes/anthropic.ts): without it, as an owner's.
    const { MCP_CONNECT_TIMEOUT_MS: _suite, ...env } = h.options.claude.env;
    const timeoutGiven = async (claudeEnv: Record<string, string>) => {
      const brain = new ClaudeCodeBrain({
        ...h.options,
        warm: undefined,
        claude: { ...h.options.claude, bin, env: claudeEnv },
      });
      await collect(brain.turn(userTurn('hi'), new AbortController().signal));
      return /^MCP_CONNECT_TIMEOUT_MS=(.*)$/m.exec(await readFile(dump, 'utf8'))?.[1];
    };
    expect(await timeoutGiven(env)).toBe('30000');
    expect(await timeoutGiven({ ...env, MCP_CONNECT_TIMEOUT_MS: '90000' })).toBe('90000');
  });

  it('says why a CLI crashed without its source: the error line, never a path or a line of code', async (ctx) => {
    const { expect } = ctx;
    // A program that dies as a Node program does: location, code line, caret, error, stack, version.
    const dir = await mkdtemp(path.join(tmpdir(), 'crashing-cli-'));
    ctx.onTestFinished(() => rm(dir, { recursive: true, force: true }));
    const bin = path.join(dir, 'claude');
    await writeFile(bin, `#!${process.execPath}\nconst internal = { run() { null.x; } };\ninternal.run();\n`);
    await chmod(bin, 0o755);
    const h = await harness(ctx, { claude: { bin } });
    const error = errorOf(await collect(h.brain.turn(userTurn('hi'), new AbortController().signal)));
    expect(error).toEqual({
      kind: 'upstream_error',
      message:
        "⚙️ [proxy] Claude Code stopped without an answer (exit code 1: TypeError: Cannot read properties of null (reading 'x')).",
      fr: "⚙️ [proxy] Claude Code s’est arrêté sans répondre (code de sortie 1 : TypeError: Cannot read properties of null (reading 'x')).",
    });
  });

  it('forgets a conversation', async (ctx) => {
    const { expect } = ctx;
    const h = await harness(ctx);
    h.sessions.set('test:1', 'assistant', randomUUID(), h.cwd);
    h.brain.forget('test:1');
    expect(h.sessions.get('test:1', 'assistant')).toBeUndefined();
  });
});

describe('argv and prompt', () => {
  const mode = modeConfig({ id: 'm', kind: 'claude' });

  it('passes tool rules as single arguments and never the prompt', () => {
    const args = buildArgs({
      mode: {
        ...mode,
        model: 'sonnet',
        allowedTools: ['Read', 'Bash(git log *)'],
        deniedTools: ['WebFetch'],
      },
      resumeId: 'abc',
      mcpConfigPath: '/x/mcp.json',
    });
    expect(args).toEqual([
      '-p',
      '--output-format',
      'stream-json',
      '--include-partial-messages',
      '--verbose',
      '--permission-mode',
      'default',
      '--setting-sources',
      'project',
      '--model',
      'sonnet',
      '--resume',
      'abc',
      '--mcp-config',
      '/x/mcp.json',
      '--allowedTools',
      'Read',
      'Bash(git log *)',
      '--disallowedTools',
      'Edit(~/.claude/**)',
      'Edit(./.claude/**)',
      'Edit(./.mcp.json)',
      'Monitor',
      'ScheduleWakeup',
      'WebFetch',
    ]);
  });

  it('allows brainstem tools one by one, never the whole server or a wildcard reaching it', () => {
    const rules = [
      'Read',
      'mcp__brainstem',
      'mcp__brainstem__make_target',
      'mcp__*',
      'mcp__brainstem__make_*',
    ];
    const args = buildArgs({
      mode: { ...mode, allowedTools: [...rules, 'mcp__github__get_*'] },
      mcpConfigPath: '/x/mcp.json',
      preallowed: ['git_status', 'read_file'],
    });
    const allowed = args.slice(args.indexOf('--allowedTools') + 1, args.indexOf('--disallowedTools'));
    expect(allowed).toEqual([
      'Read',
      'mcp__github__get_*',
      'mcp__brainstem__git_status',
      'mcp__brainstem__read_file',
    ]);
    expect(rules.map(grantsBrainstemTools)).toEqual([false, true, true, true, true]);
    // The CLI reads one argument as several rules, cut at commas and spaces outside parentheses.
    expect(
      [
        'Read,mcp__brainstem',
        'Read mcp__brainstem',
        ' mcp__brainstem',
        'Bash(git log:*)',
        'Bash(echo a,mcp__brainstem)',
      ].map(grantsBrainstemTools),
    ).toEqual([true, true, true, false, false]);
    // Without the MCP server there is nothing of brainstem's to allow.
    expect(buildArgs({ mode, preallowed: ['git_status'] })).not.toContain('--allowedTools');
  });

  it('tells a resumed session what changed in the client’s instructions: nothing, the lines, or all when unknown', () => {
    const prompt = (date: string) =>
      `${'You are the assistant of a busy household.\n'.repeat(200)}Current date: ${date}\nTime zone: UTC`;
    const req = (date: string) =>
      userTurn('and now?', { history: [{ role: 'system', content: prompt(date) }] });
    expect(planPrompt(req('2026-12-05'), mode, true, prompt('2026-12-05')).stdin).toBe('and now?');
    const dayAfter = planPrompt(req('2026-12-06'), mode, true, prompt('2026-12-05')).stdin;
    expect(dayAfter).toContain('- Current date: 2026-12-05\n+ Current date: 2026-12-06');
    expect(dayAfter).not.toContain('busy household');
    expect(dayAfter).toMatch(/and now\?$/);
    // A session whose instructions are not known (stored before they were kept): all of them.
    expect(planPrompt(req('2026-12-06'), mode, true).stdin).toContain(prompt('2026-12-06'));
  });

  it('tells a resumed session all of the client’s instructions when lines moved or repeat, which no diff of lines says', () => {
    const told = `${'You are the assistant of a busy household.\n'.repeat(20)}Be brief.\nAnswer in French.`;
    const req = (instructions: string) =>
      userTurn('and now?', { history: [{ role: 'system', content: instructions }] });
    const moved = `${'You are the assistant of a busy household.\n'.repeat(20)}Answer in French.\nBe brief.`;
    const repeated = `${told}\nBe brief.`;
    // Moved, and a line more: the diff would say the new line, not the move.
    const movedAndNew = `${moved}\nCurrent date: 2026-12-06`;
    for (const now of [moved, repeated, movedAndNew])
      expect(planPrompt(req(now), mode, true, told).stdin).toBe(
        `<instructions source="client">\nThe client’s instructions given earlier in this conversation have changed; these replace them:\n\n${now}\n</instructions>\n\nand now?`,
      );
  });

  it('tells a resumed session what came after its own last answer, or the new turn alone when that answer is not in the history', () => {
    const req = userTurn('and now?', {
      history: [
        { role: 'user', content: 'one' },
        { role: 'assistant', content: '**[assistant]** Claude said this' },
        { role: 'user', content: 'two' },
        { role: 'assistant', content: 'a local model said that' },
      ],
    });
    expect(planPrompt(req, mode, true, '', answerDigest('Claude said  this')).stdin).toBe(
      '<history source="client">\nuser: two\n\nassistant: a local model said that\n</history>\n\nand now?',
    );
    // Its answer is the last one, or not in the history (a client that compacted it): the new turn only.
    expect(planPrompt(req, mode, true, '', answerDigest('a local model said that')).stdin).toBe('and now?');
    expect(planPrompt(req, mode, true, '', answerDigest('compacted away')).stdin).toBe('and now?');
  });

  it('moves a long mode prompt out of argv and into the first turn only', () => {
    const long = 'p'.repeat(40 * 1024);
    const req = { ...userTurn('question', { extraContext: 'usage: 3%' }) };
    const fresh = planPrompt(req, { ...mode, systemPrompt: long }, false);
    expect(fresh.appendSystemPrompt).toBeUndefined();
    expect(fresh.stdin).toContain(long);
    expect(fresh.stdin).toMatch(/<context source="brainstem">\nusage: 3%\n<\/context>\n\nquestion$/);
    const resumed = planPrompt(req, { ...mode, systemPrompt: long }, true);
    expect(resumed.stdin).not.toContain(long);
    expect(resumed.stdin).toContain('usage: 3%');
    expect(planPrompt(req, { ...mode, systemPrompt: 'short' }, true).appendSystemPrompt).toBe('short');
  });
});

// Lines of CLI 2.1.197 given "/foo what does this do?" as it stood (unused fields dropped): its own
// answer, with no stream event. Brainstem no longer sends such a turn; whatever else the CLI answers so is not lost.
describe('CLI output without stream events', () => {
  it('gives the text of a successful result that the CLI did not stream', () => {
    const reader = new RunReader(() => {});
    const lines = [
      { type: 'system', subtype: 'init', session_id: 's' },
      {
        type: 'assistant',
        message: {
          model: '<synthetic>',
          content: [{ type: 'text', text: 'Unknown command: /foo. Did you mean /loop?' }],
        },
        parent_tool_use_id: null,
      },
      {
        type: 'result',
        subtype: 'success',
        is_error: false,
        result: 'Unknown command: /foo. Did you mean /loop?',
        session_id: 's',
        total_cost_usd: 0,
        usage: {
          input_tokens: 0,
          output_tokens: 0,
          cache_read_input_tokens: 0,
          cache_creation_input_tokens: 0,
        },
        modelUsage: {},
      },
    ];
    const events = lines.flatMap((l) => reader.read(parseCliLine(JSON.stringify(l))));
    const usage = { costUsd: 0, inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0 };
    events.push(...reader.settle(usage));
    expect(textOf(events)).toBe('Unknown command: /foo. Did you mean /loop?');
  });
});

// Lines as CLI 2.1.197 printed them (unused fields dropped): an `assistant` line per content block, each
// with the usage of its message's start; the output count comes in the end with `message_delta`.
describe('the cost of a turn whose result never came', () => {
  it('adds up the calls the stream showed, each once, and prices only the models it knows', () => {
    const reader = new RunReader(() => {});
    const usage = (input: number, output: number, cacheRead = 0, cacheWrite = 0) => ({
      input_tokens: input,
      output_tokens: output,
      cache_read_input_tokens: cacheRead,
      cache_creation_input_tokens: cacheWrite,
    });
    const assistant = (id: string, model: string, u: object, parent: string | null = null) => ({
      type: 'assistant',
      message: { id, model, content: [], usage: u },
      parent_tool_use_id: parent,
    });
    const event = (e: object, parent: string | null = null) => ({
      type: 'stream_event',
      event: e,
      parent_tool_use_id: parent,
    });
    const lines = [
      event({
        type: 'message_start',
        message: { id: 'msg_1', model: 'claude-sonnet-4-5-20250929', usage: usage(1000, 1, 200, 300) },
      }),
      assistant('msg_1', 'claude-sonnet-4-5-20250929', usage(1000, 1, 200, 300)),
      assistant('msg_1', 'claude-sonnet-4-5-20250929', usage(1000, 1, 200, 300)),
      event({ type: 'message_delta', delta: { stop_reason: 'tool_use' }, usage: { output_tokens: 500 } }),
      // A subagent's call.
      event(
        { type: 'message_start', message: { id: 'msg_2', model: 'claude-haiku-4-5', usage: usage(400, 1) } },
        'toolu_1',
      ),
      event(
        { type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 40 } },
        'toolu_1',
      ),
      assistant('msg_3', 'claude-mystery-9', usage(50, 5)),
    ];
    for (const l of lines) expect(reader.read(parseCliLine(JSON.stringify(l)))).toEqual([]);
    // $0.011685 for the first call, as the CLI prices it, and $0.0006 for the subagent's.
    expect(reader.calls.estimate()).toEqual({
      usage: {
        costUsd: expect.closeTo(0.011685 + 0.0006, 9),
        inputTokens: 1450,
        outputTokens: 545,
        cacheReadTokens: 200,
        cacheWriteTokens: 300,
        costBasis: 'unknown',
      },
      unpriced: ['claude-mystery-9'],
    });
  });
});

/** Failure lines as CLI 2.1.197 printed them (unused fields dropped), for the cases not run live above. */
describe('failure classification from CLI output', () => {
  const result = (fields: Record<string, unknown>) => ({
    type: 'result',
    subtype: 'success',
    is_error: true,
    session_id: 's',
    total_cost_usd: 0,
    usage: { input_tokens: 0, output_tokens: 0, cache_read_input_tokens: 0, cache_creation_input_tokens: 0 },
    ...fields,
  });
  const assistantError = (error: string) => ({
    type: 'assistant',
    message: {},
    parent_tool_use_id: null,
    error,
  });
  function signalsOf(lines: object[], stderr = ''): FailureSignals {
    const s: FailureSignals = { stderr, exitCode: 1 };
    for (const line of lines) {
      const ev = parseCliLine(JSON.stringify(line));
      if (ev?.type === 'result') s.result = ev.result;
      if (ev?.type === 'api_error') s.apiError = ev.error;
      if (ev?.type === 'rate_limit') s.rateLimit = ev.info;
    }
    return s;
  }

  it('a plain 429 is a rate limit', () => {
    const s = signalsOf([
      assistantError('rate_limit'),
      result({ api_error_status: 429, result: 'API Error: Request rejected (429) · rate_limit_error' }),
    ]);
    expect(classifyFailure(s)).toMatchObject({ kind: 'rate_limit', status: 429 });
  });

  it('an expired OAuth token and a missing login are auth failures', () => {
    const expired = signalsOf([
      assistantError('authentication_failed'),
      result({
        api_error_status: 401,
        result: 'Failed to authenticate. API Error: 401 OAuth token has expired',
      }),
    ]);
    expect(classifyFailure(expired)).toMatchObject({ kind: 'auth', status: 401 });
    const notLoggedIn = signalsOf([
      result({ api_error_status: null, result: 'Not logged in · Please run /login' }),
    ]);
    expect(classifyFailure(notLoggedIn).message).toContain('Not logged in');
  });

  it('the usage-limit text alone still means usage_limit, in the words of either CLI', () => {
    // 2.1.197 says "session limit" for the five-hour window, 2.1.332 "5-hour limit".
    for (const said of [
      "You've hit your weekly limit · resets Jan 3",
      "You've hit your 5-hour limit · resets 5pm",
    ]) {
      const s = signalsOf([result({ api_error_status: 429, result: said })]);
      expect(classifyFailure(s)).toMatchObject({ kind: 'usage_limit', resetsAt: undefined });
    }
  });

  it('a 500 keeps a short, scrubbed reason', () => {
    const s = signalsOf([
      assistantError('server_error'),
      result({
        api_error_status: 500,
        result: 'API Error: 500 key sk-ant-api03-abcdefghijkl failed\n    at x (y.js:1:1)',
      }),
    ]);
    expect(classifyFailure(s)).toEqual({
      kind: 'upstream_error',
      status: 500,
      message: '⚙️ [proxy] Claude Code failed: API Error: 500 key [redacted] failed',
      fr: '⚙️ [proxy] Claude Code a échoué : API Error: 500 key [redacted] failed',
    });
  });

  it('a prompt too long is a context overflow, the reason kept once', () => {
    const s = signalsOf([
      result({
        api_error_status: 400,
        result: 'Prompt is too long · the request is ~210000 tokens (limit 200000)',
        errors: ['Prompt is too long'],
      }),
    ]);
    const e = classifyFailure(s);
    expect(e).toMatchObject({ kind: 'context_overflow', status: 400 });
    expect(e.message).toMatch(
      /^⚙️ \[proxy\] Prompt is too long for Claude's context \(the request is ~210000 tokens \(limit 200000\)\)\. /,
    );
  });

  it('a reply stopped at the context window is a context overflow, in the words OpenClaw reads', () => {
    const s = signalsOf([
      result({
        api_error_status: null,
        result: 'API Error: The model has reached its context window limit.',
      }),
    ]);
    const e = classifyFailure(s);
    expect(e).toMatchObject({ kind: 'context_overflow' });
    expect(e.message).toMatch(
      /^⚙️ \[proxy\] Prompt is too long for Claude's context \(API Error: The model has reached its context window limit\)\. /,
    );
  });

  it('an unknown session is recognised for the fresh retry', () => {
    const msg = 'No conversation found with session ID: 1111';
    const s = signalsOf([result({ subtype: 'error_during_execution', errors: [msg] })], `${msg}\n`);
    expect(isMissingSession(s)).toBe(true);
  });

  it('a child killed by a signal is named', () => {
    const failure = classifyFailure({ stderr: '', signal: 'SIGKILL' });
    expect(failure.message).toBe('⚙️ [proxy] Claude Code stopped without an answer (killed by SIGKILL).');
    // Brainstem's words around the signal are the reader's: no English in the French.
    expect(failure.fr).toBe('⚙️ [proxy] Claude Code s’est arrêté sans répondre (tué par SIGKILL).');
  });
});

describe('the session store', () => {
  it('keeps the instructions a session was told and its last answer, for that session only', async (ctx) => {
    const dir = await mkdtemp(path.join(tmpdir(), 'sessions-'));
    const db = openDb(path.join(dir, 'data'));
    ctx.onTestFinished(async () => {
      db.close();
      await rm(dir, { recursive: true, force: true });
    });
    const sessions = new SessionStore(db, new KeptWrites(db, recordingLogger().logger), 3_600_000);
    sessions.set('chat:1', 'assistant', 'session-a', '/work');
    expect(sessions.get('chat:1', 'assistant')?.instructions).toBeUndefined();
    sessions.setInstructions('chat:1', 'assistant', 'session-a', 'Be brief.');
    sessions.setAnswered('chat:1', 'assistant', 'session-a', 'digest-a');
    sessions.set('chat:1', 'assistant', 'session-a', '/work');
    expect(sessions.get('chat:1', 'assistant')).toMatchObject({
      instructions: 'Be brief.',
      answered: 'digest-a',
    });
    // A session that replaced it was told nothing yet, and a late write for the old one is not its.
    sessions.set('chat:1', 'assistant', 'session-b', '/work');
    sessions.setInstructions('chat:1', 'assistant', 'session-a', 'Be brief.');
    sessions.setAnswered('chat:1', 'assistant', 'session-a', 'digest-a');
    expect(sessions.get('chat:1', 'assistant')?.instructions).toBeUndefined();
    expect(sessions.get('chat:1', 'assistant')?.answered).toBeUndefined();
  });
});
