import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import { httpError, text } from './fakes/anthropic.js';
import { type FakeLlama, startFakeLlama } from './fakes/llama.js';
import { claudeOnFake } from './helpers/claude-fake.js';
import { type McpToolAnswer, mcpToolCall } from './helpers/mcp-call.js';
import { CLAUDE_BIN, startTestService, type TestService } from './helpers/service.js';

// biome-ignore lint/suspicious/noExplicitAny: answers are read by path; a wrong path fails the assertion.
type Answer = Record<string, any>;

let svc: TestService;
/** The same service without warm processes: a follow-up `--resume`s on a new CLI process. */
let cold: TestService;
let llama: FakeLlama;
let taskDir: string;
const claude = claudeOnFake();

async function api(tool: string, body: unknown, s = svc) {
  const res = await fetch(`${s.url}/api/${tool}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${s.token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Answer };
}

const ledger = (mode: string, s = svc) =>
  s.service.core.db.prepare('SELECT source, error FROM usage WHERE mode = ? ORDER BY id').all(mode);

beforeAll(async () => {
  taskDir = mkdtempSync(path.join(tmpdir(), 'bst-brain-tools-'));
  llama = await startFakeLlama();
  const start = (warm: boolean) =>
    startTestService({
      parts: { tools: true },
      config: {
        claude: { bin: CLAUDE_BIN, env: claude.cli.env, maxRetries: 0, warm: { enabled: warm } },
        server: { modeTag: false },
        tools: { claudeCode: { cwd: taskDir, allowedTools: ['Read', 'Grep'] } },
      },
      env: { LLAMA_BASE_URL: llama.baseUrl },
    });
  svc = await start(true);
  cold = await start(false);
});

afterAll(async () => {
  await svc?.close();
  await cold?.close();
  await llama?.close();
  rmSync(taskDir, { recursive: true, force: true });
});

describe('brain_chat', () => {
  it("sends a message to a mode's brain and returns the answer and usage, in the ledger as a tool turn", async () => {
    const { status, body } = await api('brain_chat', { mode: 'local', message: 'hello brain' });
    expect(status).toBe(200);
    expect(body.output).toBe('echo: hello brain');
    expect(body.truncated).toBe(false);
    expect(body.note).toBeUndefined();
    expect(body.data.mode).toBe('local');
    expect(body.data.usage.outputTokens).toBeGreaterThan(0);
    expect(ledger('local')).toEqual([{ source: 'tool', error: null }]);
  });

  it("marks a local model's answer cut at its output limit as truncated, and says what to do", async () => {
    llama.script(() => ({ chunks: ['The first', ' half'], finishReason: 'length' }));
    onTestFinished(() => llama.script());
    const { status, body } = await api('brain_chat', { mode: 'local', message: 'write a long essay' });
    expect(status).toBe(200);
    expect(body).toMatchObject({
      ok: true,
      output: 'The first half',
      truncated: true,
      note: "the answer was cut at the local model's output limit (llama-server's --n-predict, or its context size). Ask for a shorter answer, or for the rest in a message that quotes where this one stops.",
    });
  });

  it('streams the answer to onOutput as it comes', async () => {
    const tools = svc.service.tools;
    const chunks: string[] = [];
    const r = await tools?.registry.call(
      'brain_chat',
      { mode: 'lical', message: 'one two three' },
      { caller: 'telegram:7', onOutput: (c) => chunks.push(c) },
    );
    expect(r?.ok).toBe(true);
    expect(chunks.length).toBeGreaterThan(1);
    expect(chunks.join('')).toBe('echo: one two three');
  });

  for (const path of ['on its warm process', 'with --resume on a new process'] as const) {
    it(`continues a Claude conversation given its session key ${path}, sending only the new message`, async () => {
      const s = path === 'on its warm process' ? svc : cold;
      // The answer depends on the first exchange reaching the API again: lost history, wrong answer.
      claude.fake.script((r) => {
        if (!r.lastUserText.includes('which fruit')) return text('noted');
        const earlier = JSON.stringify(r.body?.messages);
        return text(earlier.includes('remember kiwi') && earlier.includes('noted') ? 'kiwi' : 'no memory');
      });
      const say = (message: string) =>
        api('brain_chat', { mode: 'assistant', message, sessionKey: 'tool-conv' }, s);
      expect((await say('remember kiwi')).body.output).toBe('noted');
      expect((await say('which fruit?')).body.output).toBe('kiwi');
      const last = claude.fake.mainRequests().at(-1);
      // The CLI went on with its session: it holds the first turn itself, and no placeholder history reached it.
      expect(last?.userTexts).toEqual(['remember kiwi', 'which fruit?']);
      expect(ledger('assistant', s)).toHaveLength(2);
      // Cleared, it starts afresh: a warm process must not go on answering from the old session.
      const cleared = await api('sessions', { action: 'clear', sessionKey: 'tool:tool-conv' }, s);
      expect(cleared.body.data.removed).toBe(1);
      expect((await say('which fruit?')).body.output).toBe('no memory');
    }, 60_000);
  }

  it('gives the brain the words a person would have had brainstem act on, and keeps its conversation under tool:', async () => {
    const active = svc.service.core.switcher.active().id;
    const { body } = await api('brain_chat', {
      mode: 'local',
      message: 'mode local',
      sessionKey: 'telegram:42',
    });
    // A switch phrase or a shortcut word from a brain is the brain's to answer, never brainstem's to run.
    expect(body.output).toBe('echo: mode local');
    expect(svc.service.core.switcher.active().id).toBe(active);
    expect(body.data.sessionKey).toBe('tool:telegram:42');
    const again = await api('brain_chat', { mode: 'local', message: 'hi', sessionKey: body.data.sessionKey });
    expect(again.body.data.sessionKey).toBe('tool:telegram:42');
  });

  it('asks first when the brain asked is Claude (it acts with its own tools), not when it is a local model', () => {
    const registry = svc.service.tools?.registry;
    expect(registry?.prepare('brain_chat', { mode: 'assistant', message: 'x' }).mutating).toBe(true);
    expect(registry?.prepare('brain_chat', { mode: 'local', message: 'x' }).mutating).toBe(false);
  });

  it('answers a loading model and a rate limit as the OpenAI endpoint does: 503 and 429 with Retry-After', async () => {
    onTestFinished(() => llama.script());
    // llama-server loading its model gives no wait: a model loads in seconds to a minute, 10 s is said.
    llama.reply({ status: 503, error: 'Loading model' });
    const loading = await fetch(`${svc.url}/api/brain_chat`, {
      method: 'POST',
      headers: { authorization: `Bearer ${svc.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ mode: 'local', message: 'are you there?' }),
    });
    expect(loading.status).toBe(503);
    expect(loading.headers.get('retry-after')).toBe('10');
    const body = (await loading.json()) as Answer;
    expect(body.error).toMatchObject({ code: 'brain_unavailable' });
    expect(body.result.error).toMatchObject({ code: 'BRAIN_UNAVAILABLE', retryAfterS: 10 });
    // A proxy's 429 with its own wait: passed on.
    llama.reply({ status: 429, error: 'slow down', headers: { 'retry-after': '7' } });
    const limited = await fetch(`${svc.url}/api/brain_chat`, {
      method: 'POST',
      headers: { authorization: `Bearer ${svc.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ mode: 'local', message: 'and now?' }),
    });
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('7');
  });

  it('over MCP, a loading model’s failure says the wait the HTTP answer would put in Retry-After', async () => {
    onTestFinished(() => llama.script());
    llama.reply({ status: 503, error: 'Loading model' });
    const res = await mcpToolCall(svc.url, svc.token, 'brain_chat', {
      mode: 'local',
      message: 'are you there?',
    });
    const answer = (await res.json()) as McpToolAnswer;
    expect(answer.result.isError).toBe(true);
    expect(answer.result.content[0]?.text).toMatch(/^Error \(brain_unavailable\): .* Try again in 10 s\.$/s);
  });

  it('refuses an unknown mode, naming the field', async () => {
    const { status, body } = await api('brain_chat', { mode: 'gpt-9', message: 'hi' });
    expect(status).toBe(404);
    expect(body.error.param).toBe('mode');
  });
});

describe('claude_code', () => {
  it('runs a one-shot task in its cwd, without brainstem tools, and records its usage as spent like a chat turn', async () => {
    claude.fake.script(() => text('task done'));
    // The credit watcher hears of every spend through this event.
    const heard: { billing?: string; costUsd: number }[] = [];
    svc.service.core.chat.on('turn', (t) => heard.push(t));
    const { status, body } = await api('claude_code', {
      prompt: 'summarise the files here',
      allowedTools: ['Read'],
    });
    expect(status).toBe(200);
    expect(body.output).toBe('task done');
    expect(body.data.usage.costUsd).toBeGreaterThanOrEqual(0);
    const offered = (claude.fake.mainRequests().at(-1)?.body?.tools ?? []).map(
      (t) => (t as { name: string }).name,
    );
    expect(offered.some((n) => n.startsWith('mcp__'))).toBe(false);
    expect(ledger('claude_code')).toEqual([{ source: 'tool', error: null }]);
    // The CLI here runs on an API key: billed to it, as a chat turn of a Claude mode would be.
    const billing = svc.service.core.db.prepare("SELECT billing FROM usage WHERE mode = 'claude_code'").all();
    expect(billing).toEqual([{ billing: 'api_key' }]);
    expect(heard).toEqual([
      {
        mode: expect.objectContaining({ id: 'claude_code' }),
        billing: 'api_key',
        costUsd: body.data.usage.costUsd,
      },
    ]);
    expect(svc.service.core.sessions.list().some((s) => s.mode === 'claude_code')).toBe(false);
  }, 60_000);

  it('answers while another process holds the database, and records its usage once the lock is gone', async () => {
    claude.fake.script(() => text('done under the lock'));
    const { db, config, sessions } = svc.service.core;
    // Each refused write fails within milliseconds, not after the 5 s brainstem waits for a lock.
    db.pragma('busy_timeout = 50');
    onTestFinished(() => void db.pragma('busy_timeout = 5000'));
    const before = ledger('claude_code').length;
    const other = new Database(path.join(config.dataDir, 'brainstem.sqlite'), { timeout: 0 });
    other.exec('BEGIN IMMEDIATE');
    let answer: Awaited<ReturnType<typeof api>>;
    try {
      answer = await api('claude_code', { prompt: 'under the lock' });
    } finally {
      other.exec('ROLLBACK');
      other.close();
    }
    expect([answer.status, answer.body.output]).toEqual([200, 'done under the lock']);
    await vi.waitFor(() => expect(ledger('claude_code')).toHaveLength(before + 1), { timeout: 20_000 });
    // Recorded as the CLI named it, then forgotten: in that order, once the lock is gone.
    expect(sessions.list().some((s) => s.mode === 'claude_code')).toBe(false);
  }, 60_000);

  it('marks a task answer cut at the output-token limit as truncated, and says what to do', async () => {
    // The CLI asks the model to go on three times, then gives up: the text so far is the answer.
    claude.fake.script(() => text(['Long, '], { stopReason: 'max_tokens' }));
    const { status, body } = await api('claude_code', { prompt: 'write a long essay' });
    expect(status).toBe(200);
    expect(body).toMatchObject({
      ok: true,
      output: 'Long, Long, Long, Long, ',
      truncated: true,
      note: "the answer was cut at Claude's output-token limit (CLAUDE_CODE_MAX_OUTPUT_TOKENS in claude.env raises it). A one-shot task cannot be continued: ask for less in one task, or split it.",
    });
  }, 60_000);

  it('answers Claude refusing its own login as a 502 brain_auth that is not retried, never the 401 of a wrong token to brainstem', async () => {
    // A 401 says the caller's Bearer token is wrong: a client (OpenClaw's failover reads 401 as its
    // own key refused) would change its key to brainstem, when brainstem's Claude login needs renewing.
    claude.fake.script(() => httpError(401, { shouldRetry: false, message: 'invalid x-api-key' }));
    const res = await fetch(`${svc.url}/api/claude_code`, {
      method: 'POST',
      headers: { authorization: `Bearer ${svc.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'anything' }),
    });
    expect(res.status).toBe(502);
    // Sending it again fails the same way: the openai and Anthropic SDKs obey this and do not.
    expect(res.headers.get('x-should-retry')).toBe('false');
    expect(res.headers.get('www-authenticate')).toBeNull();
    const body = (await res.json()) as Answer;
    expect(body.error).toMatchObject({ code: 'brain_auth', type: 'server_error' });
    // What to do, as /v1 says it: the harness's CLI runs on ANTHROPIC_API_KEY, and /creds checks.
    expect(body.error.message).toMatch(/^⚙️ \[proxy\] Claude refused its credentials/);
    expect(body.error.message).toContain('ANTHROPIC_API_KEY');
    expect(body.error.message).toContain('/creds');
    expect(body.result.error).toMatchObject({ code: 'BRAIN_AUTH', status: 502, noRetry: true });
    // brain_chat to a Claude mode is answered the same way.
    claude.fake.script(() => httpError(401, { shouldRetry: false, message: 'invalid x-api-key' }));
    const chat = await api('brain_chat', { mode: 'assistant', message: 'hi' });
    expect(chat.status).toBe(502);
    expect(chat.body.error.code).toBe('brain_auth');
  }, 60_000);

  it('refuses tools beyond what the configuration grants', async () => {
    const { status, body } = await api('claude_code', {
      prompt: 'rm everything',
      allowedTools: ['Read', 'Bash'],
    });
    expect(status).toBe(403);
    expect(body.error.param).toBe('allowedTools');
    expect(body.error.message).toContain('Not granted to claude_code: Bash');
  });
});
