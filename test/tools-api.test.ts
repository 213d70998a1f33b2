import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { commandNames } from '../handlers/telegram/commands/table.js';
import { renderConfigDocs } from '../scripts/config-docs.js';
import { loadConfig } from '../src/config.js';
import { formerChatKey } from '../src/former-chats.js';
import { type FakeClaudeCli, startFakeClaudeCli } from './fakes/claude-cli.js';
import { startTestService, type TestService } from './helpers/service.js';

// biome-ignore lint/suspicious/noExplicitAny: answers are read by path; a wrong path fails the assertion.
type Answer = Record<string, any>;

let svc: TestService;
let scripts: string;
/** A logged-in `claude` that answers its readiness probe at once, so switches to Claude modes go through. */
let claude: FakeClaudeCli;

/** A command that runs for a minute unless stopped; writes its pid first so the test can watch it. */
const SLOW = `
const fs = require('node:fs');
// Written aside, then renamed: the test reads the file as soon as it exists, and a busy machine can
// let it read the file writeFileSync has created but not yet written.
fs.writeFileSync(process.argv[2] + '.part', String(process.pid));
fs.renameSync(process.argv[2] + '.part', process.argv[2]);
console.log('working…');
setTimeout(() => console.log('done'), 60_000);
`;

async function api(method: string, route: string, body?: unknown, token: string | null = svc.token) {
  const headers: Record<string, string> = {};
  if (token !== null) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${svc.url}${route}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Answer };
}

/**
 * The slow command still runs as `pid`: a zombie (killed, not yet reaped by its parent) does not,
 * nor a process that got the pid since (pids wrap at 32768 here, and the suite starts thousands).
 */
const alive = (pid: number) => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The state follows the command name in parentheses: "123 (node) S …".
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('slow.cjs');
  } catch {
    return false;
  }
};

/** Polls what a test waits for; the bound only ends a failing test (a loaded 2-core runner is slow). */
async function until(cond: () => boolean, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(20);
  }
}

beforeAll(async () => {
  scripts = mkdtempSync(path.join(tmpdir(), 'bst-tools-api-'));
  writeFileSync(path.join(scripts, 'slow.cjs'), SLOW);
  claude = await startFakeClaudeCli({ loggedIn: true });
  svc = await startTestService({
    parts: { tools: true },
    config: {
      claude: { bin: claude.bin },
      tools: {
        tests: {
          argv: [process.execPath, path.join(scripts, 'slow.cjs'), path.join(scripts, 'slow.pid')],
          cwd: scripts,
        },
        lint: { argv: [process.execPath, '-e', 'console.log("lint ok")'], cwd: scripts },
      },
    },
    env: { LLAMA_BASE_URL: 'http://127.0.0.1:9/v1' },
  });
});

afterAll(async () => {
  await svc?.close();
  await claude?.close();
});

describe('/api and /mcp authentication', () => {
  it('refuses a call without a token, and with a wrong one, before running anything', async () => {
    for (const token of [null, 'wrong-token-0123456789']) {
      const list = await api('GET', '/api', undefined, token);
      expect(list.status).toBe(401);
      expect(list.body.error.code).toBe('unauthorized');
      const call = await api('POST', '/api/lint', {}, token);
      expect(call.status).toBe(401);
      const mcp = await api('POST', '/mcp', { jsonrpc: '2.0', id: 1, method: 'tools/list' }, token);
      expect(mcp.status).toBe(401);
    }
    const audited = svc.service.core.db
      .prepare('SELECT COUNT(*) AS n FROM audit WHERE tool = ?')
      .get('lint') as {
      n: number;
    };
    expect(audited.n).toBe(0);
  });

  it('leaves /health open', async () => {
    const res = await fetch(`${svc.url}/health`);
    expect(res.status).toBe(200);
  });
});

describe('GET /api', () => {
  it('lists every tool with the JSON Schema of its input and whether it mutates', async () => {
    const { status, body } = await api('GET', '/api');
    expect(status).toBe(200);
    const names = body.tools.map((t: { name: string }) => t.name);
    for (const n of [
      'git_status',
      'git_log',
      'git_diff',
      'make_target',
      'run_tests',
      'lint',
      'incus_list',
      'incus_exec',
      'read_file',
      'web_search',
      'web_fetch',
      'sessions',
      'usage',
      'mode',
      'audit',
      'brain_chat',
      'claude_code',
      'self_upgrade',
    ]) {
      expect(names).toContain(n);
    }
    const exec = body.tools.find((t: { name: string }) => t.name === 'incus_exec');
    expect(exec.mutating).toBe(true);
    expect(exec.inputSchema.type).toBe('object');
    expect(exec.inputSchema.required).toEqual(expect.arrayContaining(['instance', 'command']));
    expect(exec.inputSchema.properties.command.type).toBe('array');
    expect(body.tools.find((t: { name: string }) => t.name === 'self_upgrade').mutating).toBe('depends');
    expect(body.shortcuts.map((s: { word: string }) => s.word)).toContain('deploy');
  });

  it('the README names every tool Claude is asked for whatever its input, as the approvals do', async () => {
    const { body } = await api('GET', '/api');
    const depends = body.tools
      .filter((t: { mutating: unknown }) => t.mutating === 'depends')
      .map((t: { name: string }) => t.name)
      .sort();
    // Claude Code allows a tool by name, not by input: one that changes things only with some inputs is never pre-allowed.
    for (const name of depends) expect(svc.service.core.mcp.readOnlyTools).not.toContain(name);
    const readme = readFileSync(path.join(import.meta.dirname, '..', 'README.md'), 'utf8').replace(
      /\s+/g,
      ' ',
    );
    const list = /every call of ((?:`\w+`(?:, | and ))+`\w+`), whatever its input/.exec(readme)?.[1] ?? '';
    expect([...list.matchAll(/`(\w+)`/g)].map((m) => m[1]).sort()).toEqual(depends);
  });
});

/**
 * The README names only what exists: each class of claim it makes checked
 * against the code, so an edit to either that leaves the other behind fails here.
 */
describe('what the README names', () => {
  const root = path.join(import.meta.dirname, '..');
  const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
  /** The text of every `code span`, in order. */
  const spans = [...readme.matchAll(/`([^`\n]+)`/g)].map((m) => m[1] ?? '');
  /** The rows of the Markdown table under the line `header`. */
  const tableRows = (header: string) => {
    const lines = readme.split('\n');
    const start = lines.indexOf(header);
    expect(start, header).toBeGreaterThan(-1);
    const end = lines.findIndex((l, i) => i > start && !l.startsWith('|'));
    return lines.slice(start + 2, end);
  };
  /** The command names (`/mode …` → mode) in a table row's first cell. */
  const commandsIn = (row: string) =>
    [...(row.split(' | ')[0] ?? '').matchAll(/`\/(\w+)/g)].map((m) => m[1] ?? '');

  it('every npm script, repository file and config field', () => {
    const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    };
    // `npm start`, `npm test`, `npm run x`, `npm run -s x`; not npm's own commands (install, ci…).
    const scripts = [...readme.matchAll(/\bnpm (?:run (?:-s )?([\w-]+)|(start|test)\b)/g)].map(
      (m) => m[1] ?? m[2] ?? '',
    );
    expect(scripts.length).toBeGreaterThan(10);
    expect(scripts.filter((s) => pkg.scripts[s] === undefined)).toEqual([]);

    // Paths in the repository; bench/results/ holds what the bench writes.
    const files = spans.filter(
      (s) =>
        /^(?:src|brains|handlers|test|bench|scripts|docs|\.ci)\/[\w./-]*$/.test(s) &&
        !s.startsWith('bench/results/'),
    );
    expect(files.length).toBeGreaterThan(20);
    expect(files.filter((f) => !existsSync(path.join(root, f)))).toEqual([]);

    // A dotted name whose first part is a section of brainstem.json, e.g. `claude.credit.monthlyUsd`
    // or `modes.local.toolFilter.allow` (a mode's fields are listed under `modes.<id>`).
    const fields = renderConfigDocs()
      .split('\n')
      .flatMap((l) => /^\| `([^`]+)` \|/.exec(l)?.[1] ?? []);
    const sections = new Set(fields.map((f) => f.split('.')[0]));
    const named = spans.filter(
      (s) =>
        /^[a-z]\w*(?:\.[\w<>]+)+$/.test(s) && sections.has(s.split('.')[0]) && !/\.(?:ts|json|md)$/.test(s),
    );
    expect(named.length).toBeGreaterThan(40);
    const unknown = named
      .map((s) => s.replace(/^modes\.(?!<id>)[\w-]+\./, 'modes.<id>.'))
      .filter((s) => !fields.some((f) => f === s || f.startsWith(`${s}.`)));
    expect(unknown).toEqual([]);
  });

  it('every variable of its table changes the configuration, and every variable the config reads is named', () => {
    // A value of each variable the table lists, other than its default.
    const samples: Record<string, string> = {
      BRAINSTEM_CONFIG: 'other.json',
      BRAINSTEM_DATA_DIR: 'elsewhere',
      BRAINSTEM_HOST: '10.0.0.1',
      BRAINSTEM_PORT: '1234',
      BRAINSTEM_API_TOKEN: 'a-token-of-twenty-chars',
      TELEGRAM_BOT_TOKEN: '123:abc',
      TELEGRAM_API_ROOT: 'http://127.0.0.1:1',
      TELEGRAM_ALLOWED_USERS: '5',
      CLAUDE_BIN: '/opt/claude',
      CLAUDE_CREDENTIALS_FILE: '/opt/credentials.json',
      LLAMA_BASE_URL: 'http://127.0.0.1:2/v1',
      BRAVE_API_KEY: 'brave-key',
      LOG_LEVEL: 'debug',
    };
    const listed = tableRows('| variable | default | meaning |').flatMap((row) =>
      [...(row.split(' | ')[0] ?? '').matchAll(/`([A-Z_]+)`/g)].map((m) => m[1] ?? ''),
    );
    expect(listed.sort()).toEqual(Object.keys(samples).sort());
    const dir = mkdtempSync(path.join(scripts, 'readme-'));
    const base = JSON.stringify(loadConfig({ HOME: dir }, dir));
    for (const [name, value] of Object.entries(samples)) {
      expect(JSON.stringify(loadConfig({ HOME: dir, [name]: value }, dir)), name).not.toBe(base);
    }
    const read = readFileSync(path.join(root, 'src', 'config.ts'), 'utf8').matchAll(/\benv\.([A-Z][A-Z_]+)/g);
    expect([...read].map((m) => m[1] ?? '').filter((v) => !spans.includes(v))).toEqual([]);
  });

  it('every route it names is served', async () => {
    // `GET /props` is llama-server's; `POST /api/generate` Ollama's (the unload a switch sends it).
    const theirs = new Set(['/props', '/api/generate']);
    const routes = [...readme.matchAll(/\b(GET|POST) `?(\/[^\s`?,)]*)/g)]
      .map(([, method, route]) => ({ method: method ?? '', route: route ?? '' }))
      .filter((r) => !theirs.has(r.route));
    expect(routes.length).toBeGreaterThan(8);
    for (const { method, route } of routes) {
      const url = route.replace('{id}', 'active').replace('<tool>', 'mode');
      // A parameter a route does not take is refused before it runs (the chart is not drawn); a route
      // that reads no query ignores it. A missing route is a 404 either way.
      const res = await fetch(`${svc.url}${url}${method === 'GET' ? '?readme=1' : ''}`, {
        method,
        headers: { authorization: `Bearer ${svc.token}`, 'content-type': 'application/json' },
        body: method === 'POST' ? '{}' : undefined,
      });
      await res.arrayBuffer();
      expect([404, 405], `${method} ${route}`).not.toContain(res.status);
    }
  });

  it('its Telegram tables list every command brainstem answers, and no other, with the front off and on', () => {
    const off = tableRows('| command | what it does |').flatMap(commandsIn);
    expect(off.sort()).toEqual([...commandNames(false, true)].sort());
    const on = tableRows('| you type | answered by |')
      .filter((row) => /\| brainstem(?:'s|\b)[^|]*\|$/.test(row))
      .flatMap(commandsIn);
    expect(on.sort()).toEqual([...commandNames(true, true)].sort());
  });

  it('every brainstem.json it shows loads', () => {
    const blocks = [...readme.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => m[1] ?? '');
    // A block is one file, or one file a line (the alternatives of a section).
    const files = blocks.flatMap((b) => {
      try {
        return [JSON.parse(b) as unknown];
      } catch {
        return b.split('\n').flatMap((l) => (l.trim() ? [JSON.parse(l) as unknown] : []));
      }
    });
    expect(files.length).toBeGreaterThanOrEqual(4);
    const dir = mkdtempSync(path.join(scripts, 'readme-'));
    const file = path.join(dir, 'brainstem.json');
    for (const f of files) {
      writeFileSync(file, JSON.stringify(f));
      expect(() => loadConfig({ HOME: dir, BRAINSTEM_CONFIG: file }, dir), JSON.stringify(f)).not.toThrow();
    }
  });
});

describe('POST /api/<tool>', () => {
  it('runs a tool and answers its result', async () => {
    const { status, body } = await api('POST', '/api/lint', {});
    expect(status).toBe(200);
    expect(body).toMatchObject({ tool: 'lint', ok: true, exitCode: 0, truncated: false });
    expect(body.output).toContain('lint ok');
    expect(body.durationMs).toBeGreaterThanOrEqual(0);
  });

  it('accepts a call with no body at all', async () => {
    const res = await fetch(`${svc.url}/api/lint`, {
      method: 'POST',
      headers: { authorization: `Bearer ${svc.token}` },
    });
    expect(res.status).toBe(200);
  });

  it('names the field of a validation error', async () => {
    const wrongType = await api('POST', '/api/git_log', { max: 'ten' });
    expect(wrongType.status).toBe(400);
    expect(wrongType.body.error.param).toBe('max');
    expect(wrongType.body.error.message).toMatch(/^git_log: max: /);
    const unknownField = await api('POST', '/api/audit', { limt: 3 });
    expect(unknownField.status).toBe(400);
    expect(unknownField.body.error.param).toBe('limt');
    // Two unknown fields: the first is the one at fault, the message names both (not one field `limt.sinse`).
    const unknownFields = await api('POST', '/api/audit', { limt: 3, sinse: '1d' });
    expect(unknownFields.body.error.param).toBe('limt');
    expect(unknownFields.body.error.message).toMatch(/"limt", "sinse"/);
    const missing = await api('POST', '/api/incus_exec', { instance: 'web' });
    expect(missing.body.error.param).toBe('command');
  });

  it('answers an unknown tool with 404 and the list of tools', async () => {
    const { status, body } = await api('POST', '/api/rm_rf', {});
    expect(status).toBe(404);
    expect(body.error.code).toBe('tool_unknown');
    expect(body.error.message).toContain('git_status');
  });

  it('says how to configure a tool that is not configured', async () => {
    const git = await api('POST', '/api/git_status', {});
    expect(git.status).toBe(501);
    expect(git.body.error.message).toContain('tools.git.repo');
    const search = await api('POST', '/api/web_search', { query: 'x' });
    expect(search.body.error.message).toContain('BRAVE_API_KEY');
    // The audit row keeps it too: worded "API key: set BRAVE_API_KEY…", the scrubber read a `key:`
    // header there and the row said "web_search needs a Brave Search API key: [redacted]".
    const { body } = await api('POST', '/api/audit', { tool: 'web_search', limit: 1 });
    expect(body.data.calls[0].error).toContain('set BRAVE_API_KEY');
    const read = await api('POST', '/api/read_file', { path: 'README.md' });
    expect(read.body.error.message).toContain('tools.files.roots');
    const make = await api('POST', '/api/make_target', { target: 'all' });
    expect(make.status).toBe(403);
    expect(make.body.error.message).toContain('tools.make.targets');
    const incus = await api('POST', '/api/incus_exec', { instance: 'web', command: ['ls'] });
    expect(incus.body.error.message).toContain('tools.incus.instances');
  });
});

describe('conveniences', () => {
  it('GET /api/usage counts a basic group upgraded to a supergroup as the supergroup, one session, as /usage does', async () => {
    const [group, supergroup] = [-4_121, -1_000_000_004_121];
    // As the Telegram face records an upgrade (test/telegram-commands.test.ts drives that end to end).
    svc.service.core.kv.set(formerChatKey(supergroup), String(group));
    // Out of the other tests' periods (24h and less): their totals stay their own.
    const monthAgo = Date.now() - 30 * 86_400_000;
    for (const [chat, costUsd] of [
      [group, 0.9],
      [supergroup, 0.8],
    ] as const)
      svc.service.core.ledger.record({
        ...{ ts: monthAgo, mode: 'assistant', sessionKey: `telegram:${chat}`, source: 'telegram', costUsd },
        ...{ inputTokens: 10, outputTokens: 5, cacheReadTokens: 0, cacheWriteTokens: 0, durationMs: 100 },
      });
    const { body } = await api('GET', '/api/usage?since=all');
    const sessions = (body.data.bySession as { sessionKey: string; costUsd: number; turns: number }[]).filter(
      (s) => s.sessionKey.endsWith('4121'),
    );
    expect(sessions).toEqual([
      expect.objectContaining({
        sessionKey: `telegram:${supergroup}`,
        costUsd: expect.closeTo(1.7),
        turns: 2,
      }),
    ]);
  });

  it('GET /api/usage?since= reads the usage ledger through the usage tool', async () => {
    svc.service.core.ledger.record({
      ts: Date.now(),
      mode: 'assistant',
      sessionKey: 'k',
      source: 'openai',
      costUsd: 0.25,
      inputTokens: 10,
      outputTokens: 5,
      cacheReadTokens: 0,
      cacheWriteTokens: 0,
      durationMs: 100,
    });
    const { status, body } = await api('GET', '/api/usage?since=24h');
    expect(status).toBe(200);
    expect(body.data.totals.costUsd).toBeCloseTo(0.25);
    expect(body.output).toContain('$0.25');
    const bad = await api('GET', '/api/usage?since=yesteryear');
    expect(bad.status).toBe(400);
    expect(bad.body.error.param).toBe('since');
    // ISO's 24:00 ends the day it names, and a day the month lacks is no date.
    expect((await api('GET', '/api/usage?since=2026-01-31T24:00Z')).status).toBe(200);
    expect((await api('GET', '/api/usage?since=2026-02-30')).status).toBe(400);
    // A time with its zone as an offset is read in that zone: an hour from now in UTC+02:00 is
    // ahead of the row recorded now, an hour ago is not.
    const inUtcPlus2 = (ms: number) => `${new Date(ms + 2 * 3_600_000).toISOString().slice(0, 19)}+02:00`;
    const since = async (ms: number) =>
      (await api('GET', `/api/usage?since=${encodeURIComponent(inUtcPlus2(ms))}`)).body.data.totals.costUsd;
    expect(await since(Date.now() - 3_600_000)).toBeCloseTo(0.25);
    expect(await since(Date.now() + 3_600_000)).toBe(0);
  });

  it('GET /api/mode and POST /api/mode switch through the orchestrator', async () => {
    const before = await api('GET', '/api/mode');
    expect(before.body.data.active).toBe('assistant');
    expect(before.body.data.modes.map((m: { id: string }) => m.id)).toContain('anklume');
    const unknown = await api('POST', '/api/mode', { mode: 'nope' });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.param).toBe('mode');
    const sw = await api('POST', '/api/mode', { mode: 'ank' });
    expect(sw.status).toBe(200);
    expect(sw.body.data).toMatchObject({ active: 'anklume', from: 'assistant' });
    expect((await api('GET', '/api/mode')).body.data.active).toBe('anklume');
    await api('POST', '/api/mode', { mode: 'assistant' });
  });

  it('GET /api/sessions lists sessions; the sessions tool clears one', async () => {
    svc.service.core.sessions.set('chat:1', 'assistant', 'sess-1', '/tmp');
    const list = await api('GET', '/api/sessions');
    expect(list.body.data.sessions).toEqual([
      expect.objectContaining({ sessionKey: 'chat:1', mode: 'assistant' }),
    ]);
    const noKey = await api('POST', '/api/sessions', { action: 'clear' });
    expect(noKey.body.error.param).toBe('sessionKey');
    const cleared = await api('POST', '/api/sessions', { action: 'clear', sessionKey: 'chat:1' });
    expect(cleared.body.data.removed).toBe(1);
    expect((await api('GET', '/api/sessions')).body.data.sessions).toEqual([]);
  });

  it('the sessions tool lists only those of the mode and the conversation it is given', async () => {
    const { sessions } = svc.service.core;
    sessions.set('k1', 'assistant', 'sess-a', '/tmp');
    sessions.set('k1', 'anklume', 'sess-b', '/tmp');
    sessions.set('k2', 'assistant', 'sess-c', '/tmp');
    const listed = async (filter: Record<string, string>) =>
      (await api('POST', '/api/sessions', { action: 'list', ...filter })).body.data.sessions.map(
        (s: { sessionKey: string; mode: string }) => `${s.sessionKey}/${s.mode}`,
      );
    try {
      expect(await listed({ sessionKey: 'k1' })).toEqual(
        expect.arrayContaining(['k1/assistant', 'k1/anklume']),
      );
      expect(await listed({ sessionKey: 'k1' })).toHaveLength(2);
      // A mode is named as anywhere else, by an alias too.
      expect(await listed({ mode: 'ank' })).toEqual(['k1/anklume']);
      expect(await listed({ mode: 'assistant', sessionKey: 'k1' })).toEqual(['k1/assistant']);
      expect(await listed({ mode: 'anklume', sessionKey: 'k2' })).toEqual([]);
      const unknown = await api('POST', '/api/sessions', { action: 'list', mode: 'nope' });
      expect(unknown.body.error.param).toBe('mode');
      // The GET routes take the same filters in their query, and refuse one they do not take.
      const got = (await api('GET', '/api/sessions?sessionKey=k1&mode=ank')).body.data.sessions;
      expect(got.map((s: { sessionKey: string; mode: string }) => `${s.sessionKey}/${s.mode}`)).toEqual([
        'k1/anklume',
      ]);
      for (const [route, param] of [
        ['/api/sessions?key=k1', 'key'],
        ['/api/mode?mode=local', 'mode'],
        ['/api/usage?sinse=7d', 'sinse'],
      ] as const) {
        const refused = await api('GET', route);
        expect(refused.status, route).toBe(400);
        expect(refused.body.error, route).toMatchObject({
          param,
          message: expect.stringMatching(/Unrecognized key/),
        });
      }
      expect((await api('GET', '/api?verbose=1')).body.error).toMatchObject({ param: 'verbose' });
      // A POST takes its input as its body: one put in the query is refused, never run with the defaults.
      const before = (await api('POST', '/api/audit', { limit: 200 })).body.data.calls.length;
      const queried = await api('POST', '/api/sessions?mode=ank', { action: 'list' });
      expect(queried.status).toBe(400);
      expect(queried.body.error).toMatchObject({
        param: 'mode',
        message:
          'mode: POST /api/sessions takes its input as the JSON body ({"mode": …}), not in the query string.',
      });
      expect((await api('POST', '/api/audit', { limit: 200 })).body.data.calls.length).toBe(before + 1);
    } finally {
      for (const key of ['k1', 'k2']) sessions.delete(key);
    }
  });
});

describe('audit', () => {
  it('records every call (refusals too) with the caller, and never a secret', async () => {
    await api('POST', '/api/audit', { limit: 5, apiKey: 'sk-very-secret', token: 'also-secret' });
    const { body } = await api('POST', '/api/audit', { limit: 50 });
    const calls = body.data.calls as {
      tool: string;
      caller: string;
      args: string;
      ok: boolean;
      error: string | null;
    }[];
    const refused = calls.find((c) => c.args.includes('apiKey'));
    expect(refused).toMatchObject({ tool: 'audit', caller: 'api', ok: false });
    expect(refused?.error).toContain('INVALID_REQUEST');
    expect(refused?.args).not.toContain('sk-very-secret');
    expect(refused?.args).not.toContain('also-secret');
    expect(refused?.args).toContain('[redacted]');
    expect(calls.some((c) => c.tool === 'lint' && c.ok)).toBe(true);
    expect(calls.some((c) => c.tool === 'rm_rf' && !c.ok)).toBe(true);
  });

  it('keeps an emoji whole where a row is cut: the tool name, the caller, an argument, the error', async () => {
    const registry = svc.service.tools?.registry;
    if (!registry) throw new Error('no tools');
    const emoji = '😀';
    // The arguments' JSON is cut at 2,000 characters: an emoji is put where that cut falls.
    const wide = Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`k${i}`, 'p'.repeat(180)]));
    const json = JSON.stringify(wide);
    expect(json.slice(1_999, 2_001)).toBe('pp');
    const many = JSON.parse(`${json.slice(0, 1_999)}${emoji}${json.slice(2_001)}`) as Record<string, string>;
    // tool (cut at 100), caller (100) and an argument (200) with an emoji at their cut.
    await registry.call(
      `${'z'.repeat(99)}${emoji}`,
      { note: `${'y'.repeat(199)}${emoji}` },
      {
        caller: `${'x'.repeat(99)}${emoji}`,
      },
    );
    // The error (cut at 500): "TOOL_UNKNOWN: Unknown tool \"" is 28 characters.
    await registry.call(`${'w'.repeat(471)}${emoji}`, many, { caller: 'test' });
    const [wideCall, cut] = registry.recentAudit(2);
    expect(cut).toMatchObject({
      tool: 'z'.repeat(99),
      caller: 'x'.repeat(99),
      args: `{"note":"${'y'.repeat(199)}…(201 chars)"}`,
    });
    expect(wideCall?.error).toBe(`TOOL_UNKNOWN: Unknown tool "${'w'.repeat(471)}`);
    expect(wideCall?.args).toBe(`${json.slice(0, 1_999)}…`);
  });
});

describe('a long command blocks nothing', () => {
  it('answers /health and other tools while a 60 s command runs, then stops it with its caller', async () => {
    const pidFile = path.join(scripts, 'slow.pid');
    const controller = new AbortController();
    let finished = false;
    const slow = fetch(`${svc.url}/api/run_tests`, {
      method: 'POST',
      headers: { authorization: `Bearer ${svc.token}`, 'content-type': 'application/json' },
      body: '{}',
      signal: controller.signal,
    })
      .catch(() => undefined)
      .finally(() => {
        finished = true;
      });
    await until(() => existsSync(pidFile));
    const pid = Number(readFileSync(pidFile, 'utf8'));
    expect(alive(pid)).toBe(true);

    const health = await fetch(`${svc.url}/health`);
    expect(health.status).toBe(200);
    const [lint, mode] = await Promise.all([api('POST', '/api/lint', {}), api('GET', '/api/mode')]);
    expect(lint.body.ok).toBe(true);
    expect(mode.status).toBe(200);
    // All of that answered while the command was still running.
    expect(finished).toBe(false);
    expect(alive(pid)).toBe(true);

    controller.abort();
    await slow;
    await until(() => !alive(pid));
    // The call ends, and its audit row is written, once brainstem has reaped the command: a moment
    // after it is gone from the process table (a zombie until then, which alive() counts as gone).
    await vi.waitFor(
      async () => {
        const { body } = await api('POST', '/api/audit', { tool: 'run_tests', limit: 1 });
        expect(body.data.calls[0]).toMatchObject({
          ok: false,
          error: expect.stringContaining('TOOL_ABORTED'),
        });
      },
      { timeout: 30_000, interval: 50 },
    );
  });

  it('stops running commands when the service stops', async () => {
    const extra = await startTestService({
      parts: { tools: true },
      config: {
        claude: { bin: claude.bin },
        tools: {
          tests: {
            argv: [process.execPath, path.join(scripts, 'slow.cjs'), path.join(scripts, 'slow2.pid')],
            cwd: scripts,
          },
        },
      },
    });
    const tools = extra.service.tools;
    expect(tools).toBeDefined();
    const running = tools?.registry.call('run_tests', {}, { caller: 'test' });
    const pidFile = path.join(scripts, 'slow2.pid');
    await until(() => existsSync(pidFile));
    const pid = Number(readFileSync(pidFile, 'utf8'));
    await extra.close();
    const r = await running;
    expect(r?.error?.code).toBe('TOOL_ABORTED');
    await until(() => !alive(pid));
  });
});
