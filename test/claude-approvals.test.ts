/**
 * Tool approvals with the real `claude` CLI (`--permission-prompt-tool stdio`):
 * the fake Anthropic API asks for a tool outside the mode's allow-list and the
 * turn's approver decides. Each test has its own fake, HOME, database and cwd.
 */

import { mkdtempSync, writeFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { summarize } from '../brains/claude-code/approval-summary.js';
import type { ApprovalDecision, ApprovalRequest, Approver, TurnEvent, TurnRequest } from '../brains/types.js';
import { type FakeAnthropic, type FakeReply, text, toolUse } from './fakes/anthropic.js';
import { CLAUDE_CLI } from './helpers/claude-bin.js';
import { type ClaudeHarness, collect, harness, textOf, userTurn } from './helpers/claude-harness.js';
import { startClaudeService, type TestService } from './helpers/service.js';

/** An approver that records what it was asked and whether it was told to stop waiting. */
function approver(decide: (req: ApprovalRequest, signal: AbortSignal) => Promise<ApprovalDecision>) {
  const asked: ApprovalRequest[] = [];
  const unwanted: string[] = [];
  const approve: Approver = (req, signal) => {
    asked.push(req);
    signal.addEventListener('abort', () => unwanted.push(req.id), { once: true });
    return decide(req, signal);
  };
  return { approve, asked, unwanted };
}

const allowOnce = async (): Promise<ApprovalDecision> => ({ behavior: 'allow', scope: 'once' });
const bash = (command: string) => toolUse('Bash', { command, description: 'a test command' }, text('Done.'));
const withApprover = (req: TurnRequest, approve?: Approver): TurnRequest => ({ ...req, approve });
const exists = (file: string) =>
  stat(file).then(
    () => true,
    () => false,
  );
const approvals = (events: TurnEvent[]) => events.filter((e) => e.type === 'approval');
const notices = (events: TurnEvent[]) => events.flatMap((e) => (e.type === 'notice' ? [e.text] : []));
const toolResults = (h: ClaudeHarness) => h.fake.mainRequests().flatMap((r) => r.toolResults);
const signal = () => new AbortController().signal;

describe.concurrent('tool approvals with the real CLI', { timeout: 120_000 }, () => {
  it('asks about a tool outside the allow-list; allowed once, it runs', async (ctx) => {
    const { expect } = ctx;
    const h = await harness(ctx);
    h.fake.script(() => bash('touch approved.txt'));
    const a = approver(allowOnce);

    const events = await collect(h.brain.turn(withApprover(userTurn('make it'), a.approve), signal()));

    expect(a.asked).toEqual([
      {
        id: expect.any(String),
        sessionKey: 'test:1',
        mode: 'assistant',
        tool: 'Bash',
        input: { command: 'touch approved.txt', description: 'a test command' },
        summary: 'touch approved.txt',
      },
    ]);
    const pending = events.findIndex((e) => e.type === 'approval_pending');
    const decided = events.findIndex((e) => e.type === 'approval');
    expect(events[pending]).toEqual({ type: 'approval_pending', request: a.asked[0] });
    expect(events[decided]).toEqual({
      type: 'approval',
      request: a.asked[0],
      decision: { behavior: 'allow', scope: 'once' },
      source: 'approver',
      waitedMs: expect.any(Number),
    });
    expect(pending).toBeLessThan(decided);
    expect(await exists(path.join(h.cwd, 'approved.txt'))).toBe(true);
    expect(toolResults(h)).toEqual([expect.objectContaining({ isError: false })]);
    expect(textOf(events)).toBe('Done.');
    expect(events.at(-1)).toEqual({ type: 'done', finishReason: 'stop' });
  });

  it('denied: the model gets the message as an error result and the CLI lists the denial', async (ctx) => {
    const { expect } = ctx;
    const h = await harness(ctx);
    h.fake.script(() => bash('touch denied.txt'));
    const a = approver(async () => ({ behavior: 'deny', message: 'Not now, thanks.' }));

    const events = await collect(h.brain.turn(withApprover(userTurn('make it'), a.approve), signal()));

    expect(a.asked).toHaveLength(1);
    expect(approvals(events)).toMatchObject([
      { decision: { behavior: 'deny', message: 'Not now, thanks.' }, source: 'approver' },
    ]);
    expect(toolResults(h)).toEqual([expect.objectContaining({ content: 'Not now, thanks.', isError: true })]);
    expect(await exists(path.join(h.cwd, 'denied.txt'))).toBe(false);
    const finished = h.logs.find((l) => l.msg === 'claude turn finished');
    expect(finished?.permissionDenials).toEqual(['Bash']);
  });

  it('denies when nobody answers in time, tells the user and the approver', async (ctx) => {
    const { expect } = ctx;
    const h = await harness(ctx, { claude: { approvalTimeoutMs: 1_000 } });
    h.fake.script(() => bash('touch late.txt'));
    // Answers only when told the answer is no longer wanted (too late by then), noting why it was told.
    let why: unknown;
    const a = approver(
      (_req, s) =>
        new Promise((resolve) =>
          s.addEventListener(
            'abort',
            () => {
              why = s.reason;
              resolve({ behavior: 'allow', scope: 'once' });
            },
            { once: true },
          ),
        ),
    );

    // A French user's turn: the notice speaks French (the English words are in telegram-approvals).
    const turn = { ...withApprover(userTurn('make it'), a.approve), lang: 'fr' as const };
    const events = await collect(h.brain.turn(turn, signal()));

    expect(a.unwanted).toEqual([a.asked[0]?.id]);
    // The face shows "no answer in time", not "stopped": its own clock started after the brain's.
    expect(why).toBe('timeout');
    expect(notices(events)).toEqual([
      '⚙️ [proxy] Personne n’a répondu à la demande d’approbation pour Bash (touch late.txt) en 1 s, donc c’est refusé.',
    ]);
    expect(approvals(events)).toMatchObject([{ decision: { behavior: 'deny' }, source: 'timeout' }]);
    const [result] = toolResults(h);
    expect(result?.isError).toBe(true);
    expect(result?.content).toMatch(/nobody answered the approval request within 1 s/);
    expect(await exists(path.join(h.cwd, 'late.txt'))).toBe(false);
    expect(events.at(-1)).toEqual({ type: 'done', finishReason: 'stop' });
  });

  it('"allow for this session" allows the same command again in that conversation only', async (ctx) => {
    const { expect } = ctx;
    const h = await harness(ctx);
    h.fake.script((req) => bash(req.lastUserText === 'other' ? 'touch other.txt' : 'touch session.txt'));
    const a = approver(async (req) =>
      req.summary === 'touch session.txt' && req.sessionKey === 'test:1'
        ? { behavior: 'allow', scope: 'session' }
        : { behavior: 'allow', scope: 'once' },
    );
    const history = [
      { role: 'user' as const, content: 'make' },
      { role: 'assistant' as const, content: 'Done.' },
    ];
    const turn = (words: string, key = 'test:1', earlier = history) =>
      collect(h.brain.turn(withApprover(userTurn(words, { key, history: earlier }), a.approve), signal()));

    const first = await turn('make', 'test:1', []);
    const again = await turn('again');
    const other = await turn('other');
    const elsewhere = await turn('make', 'test:2', []);

    expect(a.asked.map((r) => [r.sessionKey, r.summary])).toEqual([
      ['test:1', 'touch session.txt'],
      ['test:1', 'touch other.txt'],
      ['test:2', 'touch session.txt'],
    ]);
    expect(approvals(first)).toMatchObject([{ decision: { scope: 'session' }, source: 'approver' }]);
    expect(approvals(again)).toMatchObject([
      {
        decision: { behavior: 'allow', scope: 'session' },
        source: 'session',
        request: { summary: 'touch session.txt' },
      },
    ]);
    expect(again.some((e) => e.type === 'approval_pending')).toBe(false);
    expect(approvals(other)).toMatchObject([{ source: 'approver' }]);
    expect(approvals(elsewhere)).toMatchObject([{ source: 'approver' }]);
    expect(toolResults(h).map((r) => r.isError)).toEqual([false, false, false, false]);
  });

  it('denies without an approver and says approvals are not available', async (ctx) => {
    const { expect } = ctx;
    const h = await harness(ctx);
    h.fake.script(() => bash('touch nobody.txt'));

    const events = await collect(h.brain.turn(userTurn('make it'), signal()));

    expect(approvals(events)).toMatchObject([{ decision: { behavior: 'deny' }, source: 'unavailable' }]);
    expect(notices(events)).toEqual([
      '⚙️ [proxy] Claude wanted to use Bash (touch nobody.txt), which needs approval; approvals are not available for this turn, so it was denied.',
    ]);
    const [result] = toolResults(h);
    expect(result?.isError).toBe(true);
    expect(result?.content).toBe(
      'Permission to use Bash was denied: tool approvals are not available for this turn.',
    );
    expect(await exists(path.join(h.cwd, 'nobody.txt'))).toBe(false);
  });

  it('a notebook edit is asked with the cell and its new source; a Write without an approver is named by its file alone', async (ctx) => {
    const { expect } = ctx;
    const h = await harness(ctx);
    const notebook = path.join(h.cwd, 'n.ipynb');
    await mkdir(h.cwd, { recursive: true });
    const cell = {
      id: 'c1',
      cell_type: 'code',
      source: 'x = 1',
      metadata: {},
      outputs: [],
      execution_count: null,
    };
    await writeFile(
      notebook,
      JSON.stringify({ cells: [cell], metadata: {}, nbformat: 4, nbformat_minor: 5 }),
    );
    const edit = {
      notebook_path: notebook,
      cell_id: 'c1',
      new_source: 'x = 2\nprint(x)',
      edit_mode: 'replace',
    };
    // The CLI edits only a notebook it has read in the conversation.
    h.fake.script((req) =>
      req.lastUserText === 'edit'
        ? toolUse('Read', { file_path: notebook }, toolUse('NotebookEdit', edit, text('Done.')))
        : toolUse('Write', { file_path: 'long.txt', content: 'y'.repeat(500) }, text('Done.')),
    );
    const a = approver(allowOnce);

    await collect(h.brain.turn(withApprover(userTurn('edit'), a.approve), signal()));
    const unasked = await collect(h.brain.turn(userTurn('write', { key: 'test:2' }), signal()));

    expect(a.asked.map((r) => r.summary)).toEqual([
      `${notebook}\ncell_id: c1, edit_mode: replace\n+ x = 2\n+ print(x)`,
    ]);
    expect(notices(unasked)).toEqual([
      `⚙️ [proxy] Claude wanted to use Write (${path.join(h.cwd, 'long.txt')}), which needs approval; approvals are not available for this turn, so it was denied.`,
    ]);
  });

  it('the words before a tool come before its approval question, in the message after a refusal too', async (ctx) => {
    const { expect } = ctx;
    const h = await harness(ctx);
    let asked!: () => void;
    const early = new Promise<void>((resolve) => (asked = resolve));
    const a = approver(async () => {
      asked();
      return { behavior: 'allow', scope: 'once' };
    });
    const refused = text(['I can', 'not'], { stopReason: 'refusal' });
    // The message's end waits for the question, should the CLI ask on the tool's block alone (a
    // real API sends the end a moment later); a CLI that asks only after the end gets it in 5 s.
    const tool = toolUse(
      'Bash',
      { command: 'touch retried.txt', description: 'a test command' },
      text('Done.'),
      {
        preamble: 'Let me try another way.',
        endGate: () => Promise.race([early, sleep(5000)]),
      },
    );
    // The current CLI goes on once after a refusal; the pinned one ends the turn there.
    const retries = CLAUDE_CLI === 'current';
    h.fake.script(() => (h.fake.mainRequests().length === 1 ? refused : tool));

    const events = await collect(h.brain.turn(withApprover(userTurn('make it'), a.approve), signal()));

    const shown = events.flatMap((e) =>
      e.type === 'text' ? [e.text] : e.type === 'approval_pending' ? [`<asked: ${e.request.summary}>`] : [],
    );
    expect(shown.join('')).toBe(
      retries ? 'I cannot\n\nLet me try another way.<asked: touch retried.txt>\n\nDone.' : 'I cannot',
    );
    expect(notices(events)).toEqual(retries ? [] : [expect.stringContaining('safety classifier stopped')]);
  });

  it("the owner's own Claude settings allow nothing: their rules still ask the approver", async (ctx) => {
    const { expect } = ctx;
    const h = await harness(ctx);
    // Rules made for the owner's terminal, in the two files that are theirs, not the project's.
    const allowAll = JSON.stringify({ permissions: { allow: ['Bash', 'Write', 'mcp__brainstem'] } });
    await mkdir(path.join(h.cli.home, '.claude'), { recursive: true });
    await writeFile(path.join(h.cli.home, '.claude', 'settings.json'), allowAll);
    await mkdir(path.join(h.cwd, '.claude'), { recursive: true });
    await writeFile(path.join(h.cwd, '.claude', 'settings.local.json'), allowAll);
    h.fake.script(() => bash('touch unasked.txt'));
    const a = approver(async () => ({ behavior: 'deny', message: 'not now' }));

    await collect(h.brain.turn(withApprover(userTurn('make it'), a.approve), signal()));

    expect(a.asked.map((r) => r.summary)).toEqual(['touch unasked.txt']);
    expect(await exists(path.join(h.cwd, 'unasked.txt'))).toBe(false);
  });

  it("the project's CLAUDE.md reaches Claude, the owner's ~/.claude/CLAUDE.md does not", async (ctx) => {
    const { expect } = ctx;
    const h = await harness(ctx);
    await mkdir(h.cwd, { recursive: true });
    await writeFile(path.join(h.cwd, 'CLAUDE.md'), 'The project says: tabs, never spaces.');
    await mkdir(path.join(h.cli.home, '.claude'), { recursive: true });
    await writeFile(path.join(h.cli.home, '.claude', 'CLAUDE.md'), 'The owner says: answer in haiku.');
    h.fake.script(() => text('Noted.'));

    await collect(h.brain.turn(userTurn('hello'), signal()));

    const sent = JSON.stringify(h.fake.mainRequests()[0]?.body);
    expect({ project: sent.includes('tabs, never spaces'), owner: sent.includes('answer in haiku') }).toEqual(
      {
        project: true,
        owner: false,
      },
    );
  });

  it('"allow for this session" on a file edit covers that file only', async (ctx) => {
    const { expect } = ctx;
    const h = await harness(ctx);
    const notes = path.join(h.cwd, 'notes.txt');
    const other = path.join(h.cwd, 'other.txt');
    h.fake.script((req) =>
      toolUse(
        'Write',
        { file_path: req.lastUserText === 'other' ? other : notes, content: 'x' },
        text('Done.'),
      ),
    );
    const a = approver(async () => ({ behavior: 'allow', scope: 'session' }));
    const history = [
      { role: 'user' as const, content: 'write' },
      { role: 'assistant' as const, content: 'Done.' },
    ];
    const turn = (words: string, earlier = history) =>
      collect(
        h.brain.turn(withApprover(userTurn(words, { key: 'test:1', history: earlier }), a.approve), signal()),
      );

    await turn('write', []);
    const again = await turn('again');
    await turn('other');

    expect(a.asked.map((r) => r.summary)).toEqual([`${notes}\n+ x`, `${other}\n+ x`]);
    expect(approvals(again)).toMatchObject([{ source: 'session' }]);
    expect(await exists(other)).toBe(true);
  });

  it('"allow for this session" on a read-only tool covers what was shown: WebFetch that host, Read that file', async (ctx) => {
    const { expect } = ctx;
    const h = await harness(ctx);
    // No fetch reaches the network: the CLI's domain check is off and `.invalid` names never resolve.
    await mkdir(path.join(h.cwd, '.claude'), { recursive: true });
    await writeFile(path.join(h.cwd, '.claude', 'settings.json'), '{"skipWebFetchPreflight":true}');
    const outside = await mkdtemp(path.join(tmpdir(), 'bst-read-'));
    ctx.onTestFinished(() => rm(outside, { recursive: true, force: true }));
    const inputs: Record<string, [string, Record<string, unknown>]> = {
      page: ['WebFetch', { url: 'http://docs.invalid/a', prompt: 'summarise' }],
      'same host': ['WebFetch', { url: 'http://docs.invalid/b', prompt: 'summarise' }],
      internal: ['WebFetch', { url: 'http://127.0.0.1:9/admin', prompt: 'summarise' }],
      file: ['Read', { file_path: path.join(outside, 'notes.txt') }],
      secret: ['Read', { file_path: path.join(outside, 'secret.txt') }],
    };
    await writeFile(path.join(outside, 'notes.txt'), 'notes');
    await writeFile(path.join(outside, 'secret.txt'), 'secret');
    h.fake.script((req) => {
      const [tool, input] = inputs[req.lastUserText] ?? ['Read', {}];
      return toolUse(tool, input, text('Done.'));
    });
    const a = approver(async (req) =>
      req.summary.includes('secret') || req.summary.includes('127.0.0.1')
        ? { behavior: 'deny', message: 'no' }
        : { behavior: 'allow', scope: 'session' },
    );
    const sources: Record<string, unknown[]> = {};
    let history: { role: 'user' | 'assistant'; content: string }[] = [];
    for (const words of Object.keys(inputs)) {
      const events = await collect(
        h.brain.turn(withApprover(userTurn(words, { key: 'test:1', history }), a.approve), signal()),
      );
      sources[words] = approvals(events).map((e) => e.source);
      history = [...history, { role: 'user', content: words }, { role: 'assistant', content: 'Done.' }];
    }

    expect(sources).toEqual({
      page: ['approver'],
      'same host': ['session'],
      internal: ['approver'],
      file: ['approver'],
      secret: ['approver'],
    });
  });

  it('Claude cannot edit its own settings or the project’s MCP servers: refused without asking, even by an approver who allows all', async (ctx) => {
    const { expect } = ctx;
    const h = await harness(ctx);
    const own = path.join(h.cli.home, '.claude', 'settings.json');
    const project = path.join(h.cwd, '.claude', 'settings.json');
    // The CLI starts the servers of the cwd's .mcp.json, commands included, at every start.
    const servers = path.join(h.cwd, '.mcp.json');
    const grant = JSON.stringify({ permissions: { allow: ['Bash'] } });
    const server = JSON.stringify({ mcpServers: { x: { command: 'touch', args: ['ran'] } } });
    await mkdir(path.dirname(own), { recursive: true });
    await writeFile(own, '{}');
    h.fake.script(() =>
      toolUse(
        'Write',
        { file_path: own, content: grant },
        toolUse(
          'Write',
          { file_path: project, content: grant },
          toolUse('Write', { file_path: servers, content: server }, text('Done.')),
        ),
      ),
    );
    const a = approver(async () => ({ behavior: 'allow', scope: 'session' }));

    await collect(h.brain.turn(withApprover(userTurn('grant yourself Bash'), a.approve), signal()));

    expect(a.asked).toEqual([]);
    expect(toolResults(h).map((r) => r.isError)).toEqual([true, true, true]);
    expect(await readFile(own, 'utf8')).toBe('{}');
    expect(await exists(project)).toBe(false);
    expect(await exists(servers)).toBe(false);
  });

  it('runs a tool on the allow-list without asking', async (ctx) => {
    const { expect } = ctx;
    const h = await harness(ctx, { mode: { allowedTools: ['Bash(touch *)'] } });
    h.fake.script(() => bash('touch listed.txt'));
    const a = approver(allowOnce);

    const events = await collect(h.brain.turn(withApprover(userTurn('make it'), a.approve), signal()));

    expect(a.asked).toEqual([]);
    expect(events.some((e) => e.type === 'approval' || e.type === 'approval_pending')).toBe(false);
    expect(await exists(path.join(h.cwd, 'listed.txt'))).toBe(true);
    expect(toolResults(h)).toEqual([expect.objectContaining({ isError: false })]);
  });

  // The real CLI cannot be made to ask in that window on purpose (between brainstem's interrupt and the
  // CLI reading it); a stand-in speaking the same stream-json asks exactly there, every time.
  it('reports a permission asked after the turn stopped, before the CLI saw it: denied, nobody asked', async (ctx) => {
    const { expect } = ctx;
    const dir = await mkdtemp(path.join(tmpdir(), 'late-permission-'));
    ctx.onTestFinished(() => rm(dir, { recursive: true, force: true }));
    const answers = path.join(dir, 'answers.jsonl');
    const bin = path.join(dir, 'claude.mjs');
    await writeFile(
      bin,
      `#!${process.execPath}
import { appendFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
const out = (line) => process.stdout.write(JSON.stringify(line) + '\\n');
let interrupt;
for await (const line of createInterface({ input: process.stdin })) {
  const m = JSON.parse(line);
  if (m.type === 'user') out({ type: 'system', subtype: 'init', session_id: 'stand-in' });
  else if (m.request?.subtype === 'interrupt') {
    interrupt = m.request_id;
    out({ type: 'control_request', request_id: 'late', request: { subtype: 'can_use_tool', tool_name: 'Bash', input: { command: 'touch late.txt' } } });
  } else if (m.response?.request_id === 'late') {
    appendFileSync(${JSON.stringify(answers)}, line + '\\n');
    out({ type: 'control_response', response: { subtype: 'success', request_id: interrupt } });
    out({ type: 'result', subtype: 'error_during_execution', is_error: true, session_id: 'stand-in', total_cost_usd: 0 });
  }
}
`,
    );
    await chmod(bin, 0o755);
    const h = await harness(ctx, { claude: { bin } });
    const a = approver(allowOnce);
    const stop = new AbortController();
    const events: TurnEvent[] = [];
    for await (const e of h.brain.turn(withApprover(userTurn('make it'), a.approve), stop.signal)) {
      events.push(e);
      if (e.type === 'session') stop.abort();
    }

    expect(a.asked).toEqual([]);
    expect(events.some((e) => e.type === 'approval_pending')).toBe(false);
    expect(approvals(events)).toMatchObject([
      {
        request: { tool: 'Bash', summary: 'touch late.txt' },
        decision: { behavior: 'deny' },
        source: 'cancelled',
      },
    ]);
    expect(events.at(-1)).toMatchObject({ type: 'error', error: { kind: 'aborted' } });
    // The CLI still got its answer: a denial.
    const [answer] = (await readFile(answers, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(answer.response.response).toEqual({
      behavior: 'deny',
      message: 'The turn was stopped before the approval was answered.',
    });
  });
});

describe('approval decisions in the audit log', { timeout: 120_000 }, () => {
  let fake: FakeAnthropic;
  let svc: TestService;
  let close: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    ({ fake, svc: svc, close } = await startClaudeService());
  });
  afterAll(async () => {
    await close?.();
  });

  it('records every decision: a chat turn with its approver, the OpenAI endpoint with the default one', async () => {
    const { chat, db } = svc.service.core;
    fake.script((req) => bash(`touch ${req.lastUserText.replaceAll(' ', '-')}.txt`));

    const denied = chat.run(
      {
        model: 'assistant',
        sessionKey: 'telegram:42',
        messages: [{ role: 'user', content: 'chat turn' }],
        source: 'telegram',
        approve: async () => ({ behavior: 'deny', message: 'No from the chat.' }),
      },
      signal(),
    );
    expect((await collect(denied)).filter((e) => e.type === 'approval')).toHaveLength(1);

    // The test plays the bot's part: it fills the chat port the bot fills when it runs.
    svc.service.ports.approver = async () => ({ behavior: 'allow', scope: 'session' });
    const r = await svc.client.chat.completions.create(
      { model: 'assistant', messages: [{ role: 'user', content: 'endpoint turn' }] },
      { headers: { 'x-session-key': 'openclaw:main' } },
    );
    expect(r.choices[0]?.message.content).toBe('Done.');

    svc.service.ports.approver = undefined;
    await svc.client.chat.completions.create(
      { model: 'assistant', messages: [{ role: 'user', content: 'unanswered turn' }] },
      { headers: { 'x-session-key': 'openclaw:other' } },
    );

    const rows = db
      .prepare("SELECT tool, caller, args, ok, error FROM audit WHERE tool LIKE 'approval:%' ORDER BY id")
      .all();
    expect(rows).toEqual([
      {
        tool: 'approval:Bash',
        caller: 'telegram:42',
        args: JSON.stringify({ summary: 'touch chat-turn.txt', by: 'approver' }),
        ok: 0,
        error: 'No from the chat.',
      },
      {
        tool: 'approval:Bash',
        caller: 'openclaw:main',
        args: JSON.stringify({ summary: 'touch endpoint-turn.txt', by: 'approver', scope: 'session' }),
        ok: 1,
        error: null,
      },
      {
        tool: 'approval:Bash',
        caller: 'openclaw:other',
        args: JSON.stringify({ summary: 'touch unanswered-turn.txt', by: 'unavailable' }),
        ok: 0,
        error: 'Permission to use Bash was denied: tool approvals are not available for this turn.',
      },
    ]);
  });
});

describe('the service with its tools', { timeout: 120_000 }, () => {
  const ownLogin = mkdtempSync(path.join(tmpdir(), 'brainstem-own-login-'));
  writeFileSync(
    path.join(ownLogin, '.credentials.json'),
    JSON.stringify({
      claudeAiOauth: { accessToken: 'sk-ant-oat01-OWN-LOGIN', expiresAt: Date.now() + 3_600_000 },
    }),
    { mode: 0o600 },
  );
  let fake: FakeAnthropic;
  let svc: TestService;
  let close: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    ({
      fake,
      svc: svc,
      close,
    } = await startClaudeService({
      parts: { tools: true },
      // A mode that may read anything unasked, as README's example allows it.
      config: {
        modes: {
          reader: { kind: 'claude', description: 'reads', allowedTools: ['Read'] },
          // A login of its own, in a config dir of its own: as secret as claude.env's.
          ownlogin: { kind: 'claude', description: 'own login', env: { CLAUDE_CONFIG_DIR: ownLogin } },
        },
      },
    }));
  });
  afterAll(async () => {
    await close?.();
  });

  it('a mode allowed Read never reads brainstem’s own secrets (its API token, the MCP config holding it, its config), and no approval writes them nor the process groups the next start kills', async () => {
    const data = path.join(svc.dir, 'data');
    const notes = path.join(svc.dir, 'notes.txt');
    await writeFile(notes, 'notes');
    const read = (file: string, then: FakeReply) => toolUse('Read', { file_path: file }, then);
    // One turn: the MCP config holding the token is written before it starts.
    fake.script(() =>
      read(
        path.join(data, 'api-token'),
        read(
          path.join(data, 'claude-mcp-reader-d0.json'),
          read(
            path.join(svc.dir, 'brainstem.json'),
            // Nor written, even approved: one edit of brainstem.json would grant any tool from the next start.
            toolUse(
              'Write',
              { file_path: path.join(data, 'claude-mcp-x.json'), content: '{}' },
              // Nor the list of process groups the next start kills: a pid written there would be.
              toolUse(
                'Write',
                { file_path: path.join(data, 'process-groups.json'), content: '{}' },
                read(notes, text('Done.')),
              ),
            ),
          ),
        ),
      ),
    );
    const asked: string[] = [];
    const before = fake.mainRequests().length;
    await collect(
      svc.service.core.chat.run(
        {
          model: 'reader',
          sessionKey: 'telegram:7',
          messages: [{ role: 'user', content: 'read them' }],
          source: 'telegram',
          approve: async (r) => {
            asked.push(r.summary);
            return { behavior: 'allow', scope: 'once' };
          },
        },
        signal(),
      ),
    );
    const results = fake
      .mainRequests()
      .slice(before)
      .flatMap((r) => r.toolResults.map((t) => [t.isError, t.content]));
    const denied = [true, expect.stringContaining('denied by your permission settings')];
    expect(results).toEqual([
      denied,
      denied,
      denied,
      [true, expect.stringContaining('denied')],
      [true, expect.stringContaining('denied')],
      [false, expect.stringContaining('notes')],
    ]);
    expect(asked).toEqual([]);
  });

  it('a mode allowed Read never reads the credentials file of another mode’s own CLAUDE_CONFIG_DIR', async () => {
    fake.script(() =>
      toolUse('Read', { file_path: path.join(ownLogin, '.credentials.json') }, text('Done.')),
    );
    const before = fake.mainRequests().length;
    await collect(
      svc.service.core.chat.run(
        {
          model: 'reader',
          sessionKey: 'telegram:8',
          messages: [{ role: 'user', content: 'read it' }],
          source: 'telegram',
          approve: async () => ({ behavior: 'allow', scope: 'once' }),
        },
        signal(),
      ),
    );
    const results = fake
      .mainRequests()
      .slice(before)
      .flatMap((r) => r.toolResults.map((t) => [t.isError, t.content]));
    expect(results).toEqual([[true, expect.stringContaining('denied by your permission settings')]]);
    expect(JSON.stringify(results)).not.toContain('OWN-LOGIN');
  });

  it('asks again for what was allowed "for this session" before the sessions tool cleared it', async () => {
    fake.script(() => bash('touch cleared.txt'));
    let asked = 0;
    const approve: Approver = async () => {
      asked++;
      return { behavior: 'allow', scope: 'session' };
    };
    const turn = (messages: TurnRequest['messages']) =>
      collect(
        svc.service.core.chat.run(
          { model: 'assistant', sessionKey: 'telegram:5', messages, source: 'telegram', approve },
          signal(),
        ),
      );
    const followUp: TurnRequest['messages'] = [
      { role: 'user', content: 'make' },
      { role: 'assistant', content: 'Done.' },
      { role: 'user', content: 'again' },
    ];
    await turn([{ role: 'user', content: 'make' }]);
    await turn(followUp);
    expect(asked).toBe(1);

    const res = await fetch(`${svc.url}/api/sessions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${svc.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ action: 'clear', sessionKey: 'telegram:5' }),
    });
    expect(((await res.json()) as { data: { removed: number } }).data.removed).toBe(1);
    await turn(followUp);
    expect(asked).toBe(2);
  });
});

describe('what an approval question shows of a change to a file', () => {
  it('each edit of a MultiEdit, in order, replace_all noted', () => {
    const edits = [
      { old_string: 'a', new_string: 'b' },
      { old_string: 'c\nd', new_string: '', replace_all: true },
    ];
    expect(summarize('MultiEdit', { file_path: '/w/f.txt', edits })).toBe(
      '/w/f.txt\nedit 1/2:\n- a\n+ b\nedit 2/2 (replace_all):\n- c\n- d',
    );
  });

  it('a notebook cell deleted or inserted says so; its source, ignored by a delete, is not shown for one', () => {
    const nb = { notebook_path: '/w/n.ipynb', new_source: 'gone' };
    expect(summarize('NotebookEdit', { ...nb, cell_id: 'c1', edit_mode: 'delete' })).toBe(
      '/w/n.ipynb\ncell_id: c1, edit_mode: delete',
    );
    expect(summarize('NotebookEdit', { ...nb, cell_type: 'markdown', edit_mode: 'insert' })).toBe(
      '/w/n.ipynb\ncell_type: markdown, edit_mode: insert\n+ gone',
    );
  });

  it('an input not of the shape the tool takes is shown whole, not as its path alone', () => {
    const odd = { file_path: '/w/f.txt', content: 42, more: 'x' };
    expect(summarize('Write', odd)).toBe(JSON.stringify(odd));
  });
});
