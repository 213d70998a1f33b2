import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import type { ApprovalRequest, Approver } from '../brains/types.js';
import { ProgressFeed } from '../handlers/http/mcp-progress.js';
import { type FakeAnthropic, text, toolUse } from './fakes/anthropic.js';
import { collect } from './helpers/claude-harness.js';
import { startClaudeService, startTestService, type TestService } from './helpers/service.js';

let svc: TestService;
let fake: FakeAnthropic;
let closeClaude: (() => Promise<void>) | undefined;
let repo: string;
const clients: Client[] = [];

async function connect(token: string | undefined): Promise<Client> {
  const transport = new StreamableHTTPClientTransport(new URL(`${svc.url}/mcp`), {
    requestInit: token === undefined ? {} : { headers: { Authorization: `Bearer ${token}` } },
  });
  const client = new Client({ name: 'brainstem-test', version: '1.0.0' });
  await client.connect(transport);
  clients.push(client);
  return client;
}

beforeAll(async () => {
  repo = mkdtempSync(path.join(tmpdir(), 'bst-mcp-'));
  execFileSync('git', ['init', '-q', '-b', 'main'], { cwd: repo });
  writeFileSync(
    path.join(repo, 'Makefile'),
    // `progress` prints "two" only once the test has seen "one" (it then creates `go`):
    // the call can end only if its output reached the client while it ran.
    'progress:\n\t@echo one; while [ ! -e go ]; do sleep 0.02; done; rm go; echo two\nmark:\n\t@touch marked.txt\n' +
      // A build log of 700 KB: 7,000 lines of 100 bytes.
      `flood:\n\t@yes ${'x'.repeat(99)} | head -n 7000\n`,
  );
  ({
    fake,
    svc,
    close: closeClaude,
  } = await startClaudeService({
    parts: { tools: true },
    config: {
      claude: { approvalTimeoutMs: 1_000 },
      tools: {
        git: { repo },
        make: { targets: ['progress', 'mark', 'flood'] },
        // A test suite that writes (a snapshot, say), and a lint the owner says only reads.
        tests: { argv: ['make', 'mark'] },
        lint: { argv: ['git', 'status', '--short'], readOnly: true },
      },
    },
  }));
});

afterAll(async () => {
  for (const c of clients) await c.close().catch(() => undefined);
  await closeClaude?.();
  rmSync(repo, { recursive: true, force: true });
});

describe('/mcp with the MCP SDK client', () => {
  it('refuses a client without the token, or with a wrong one', async () => {
    await expect(connect(undefined)).rejects.toThrow(/401|nauthorized/);
    await expect(connect('wrong-token-0123456789')).rejects.toThrow(/401|nauthorized/);
  });

  it('refuses a malformed depth header, naming it', async () => {
    const res = await post({ jsonrpc: '2.0', id: 1, method: 'tools/list' }, { 'x-brainstem-depth': '-1' });
    expect(res.status).toBe(400);
    // JSON-RPC's shape, as every other refusal of /mcp: an MCP client reads no other.
    expect(await res.json()).toEqual({
      jsonrpc: '2.0',
      id: null,
      error: {
        code: -32000,
        message: 'Bad Request: the x-brainstem-depth header must be one small whole number.',
      },
    });
    const transport = new StreamableHTTPClientTransport(new URL(`${svc.url}/mcp`), {
      requestInit: { headers: { Authorization: `Bearer ${svc.token}`, 'x-brainstem-depth': 'two' } },
    });
    const client = new Client({ name: 'brainstem-test', version: '1.0.0' });
    clients.push(client);
    await expect(client.connect(transport)).rejects.toThrow(
      /Error POSTing to endpoint: \{"jsonrpc":"2.0",.*x-brainstem-depth header must be one small whole number/,
    );
  });

  it('answers a body that is not JSON with JSON-RPC’s parse error', async () => {
    const empty = await post('');
    expect(empty.status).toBe(400);
    expect(await empty.json()).toMatchObject({
      error: { code: -32700, message: 'Parse error: the request body is empty' },
    });
    const res = await post('{"jsonrpc": "2.0", "id": 1,');
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({
      jsonrpc: '2.0',
      id: null,
      error: {
        code: -32700,
        message: expect.stringMatching(/^Parse error: The request body is not valid JSON/),
      },
    });
  });

  it('lists the registry tools with their input schemas', async () => {
    const client = await connect(svc.token);
    const { tools } = await client.listTools();
    const names = tools.map((t) => t.name);
    expect(names).toEqual(
      expect.arrayContaining(['git_status', 'make_target', 'read_file', 'web_fetch', 'self_upgrade']),
    );
    const make = tools.find((t) => t.name === 'make_target');
    expect(make?.inputSchema).toMatchObject({ type: 'object', required: ['target'] });
    expect(make?.annotations?.readOnlyHint).toBe(false);
    expect(tools.find((t) => t.name === 'git_log')?.annotations?.readOnlyHint).toBe(true);
  });

  it('calls a tool and audits the call as coming from mcp', async () => {
    const client = await connect(svc.token);
    const r = await client.callTool({ name: 'git_status', arguments: {} });
    expect(r.isError).toBe(false);
    expect((r.content as { type: string; text: string }[])[0]?.text).toContain('## No commits yet on main');
    const audit = svc.service.core.db
      .prepare('SELECT tool, caller, ok FROM audit ORDER BY id DESC LIMIT 1')
      .get();
    expect(audit).toEqual({ tool: 'git_status', caller: 'mcp', ok: 1 });
  });

  it('returns a refusal as a tool error the model can read', async () => {
    const client = await connect(svc.token);
    const r = await client.callTool({ name: 'make_target', arguments: { target: 'deploy' } });
    expect(r.isError).toBe(true);
    expect((r.content as { text: string }[])[0]?.text).toContain('make target "deploy" is not allowed');
    const invalid = await client.callTool({ name: 'git_log', arguments: { max: 'many' } });
    expect(invalid.isError).toBe(true);
    expect((invalid.content as { text: string }[])[0]?.text).toContain('git_log: max:');
  });

  it('sends command output as progress notifications while it runs', async () => {
    const client = await connect(svc.token);
    const errors: Error[] = [];
    client.onerror = (e) => errors.push(e);
    const progress: string[] = [];
    const r = await client.callTool({ name: 'make_target', arguments: { target: 'progress' } }, undefined, {
      onprogress: (p) => {
        progress.push(p.message ?? '');
        if (p.message === 'one\n') writeFileSync(path.join(repo, 'go'), '');
      },
    });
    expect(r.isError).toBe(false);
    expect(progress).toEqual(['one\n', 'two\n']);
    // The stream ends with the answer: nothing after it that the client fails to read.
    expect(errors).toEqual([]);
  });

  it('sends no more output as progress than the result may carry, and says so', async () => {
    const client = await connect(svc.token);
    const progress: string[] = [];
    const r = await client.callTool({ name: 'make_target', arguments: { target: 'flood' } }, undefined, {
      onprogress: (p) => {
        progress.push(p.message ?? '');
      },
    });
    expect(r.isError).toBe(false);
    // tools.maxOutputChars (200,000 by default) caps the result, and now the progress too: not 700 KB of it.
    const note = progress.at(-1) ?? '';
    expect(note).toMatch(
      /\[Output past 200000 characters is not sent as progress; the result holds its head and tail\.\]\n$/,
    );
    // Output left out while the client did not keep up is counted in a note of its own: the first
    // 200,000 characters (2,000 lines) are either sent or said to be left out, no more.
    const line = `${'x'.repeat(99)}\n`;
    let sent = 0;
    let skipped = 0;
    for (const message of progress) {
      const rest = message.replace(
        /\[(\d+) characters of output not sent as progress: the client was not reading; the result holds its head and tail\.\]\n/,
        (_, n: string) => {
          skipped += Number(n);
          return '';
        },
      );
      const lines = message === note ? rest.slice(0, rest.indexOf('[Output past')) : rest;
      expect(lines).toBe(line.repeat(lines.length / 100));
      sent += lines.length;
    }
    expect(sent + skipped).toBe(200_000);
    expect(textOf(r).length).toBeLessThan(201_000);
  });
});

describe('/mcp progress while the client is not reading', () => {
  it('says how much output it left out even when no progress follows (the note comes before the result)', async () => {
    // 8 MB of output, more than a loopback connection holds unread (4 MB of send buffer, the
    // receiver's window), under a cap that keeps it all: progress is left out, and none comes after.
    const dir = mkdtempSync(path.join(tmpdir(), 'bst-mcp-unread-'));
    writeFileSync(path.join(dir, 'Makefile'), `unread:\n\t@yes ${'x'.repeat(9_999)} | head -n 800\n`);
    const own = await startTestService({
      parts: { tools: true },
      config: { tools: { maxOutputChars: 10_000_000, make: { dir, targets: ['unread'] } } },
    });
    onTestFinished(async () => {
      await own.close();
      rmSync(dir, { recursive: true, force: true });
    });
    // The client reads nothing of the call's stream until the call has ended at brainstem.
    let open!: () => void;
    const opened = new Promise<void>((resolve) => {
      open = resolve;
    });
    let held = false;
    const holdingFetch = async (url: string | URL, init?: RequestInit): Promise<Response> => {
      const res = await fetch(url, init);
      if (held || !res.body || !res.headers.get('content-type')?.includes('text/event-stream')) return res;
      held = true;
      const reader = res.body.getReader();
      const body = new ReadableStream<Uint8Array>(
        {
          async pull(c) {
            await opened;
            const { done, value } = await reader.read();
            if (done) c.close();
            else c.enqueue(value);
          },
          cancel: (why) => reader.cancel(why),
        },
        { highWaterMark: 0 },
      );
      return new Response(body, { status: res.status, headers: res.headers });
    };
    const transport = new StreamableHTTPClientTransport(new URL(`${own.url}/mcp`), {
      requestInit: { headers: { Authorization: `Bearer ${own.token}` } },
      fetch: holdingFetch,
    });
    const client = new Client({ name: 'brainstem-test', version: '1.0.0' });
    await client.connect(transport);
    clients.push(client);
    const progress: string[] = [];
    const result = client.callTool({ name: 'make_target', arguments: { target: 'unread' } }, undefined, {
      onprogress: (p) => {
        progress.push(p.message ?? '');
      },
      timeout: 120_000,
    });
    // The call is audited once it has ended, its output all read: no output is left to carry a note.
    const audited = () => own.service.core.db.prepare("SELECT 1 FROM audit WHERE tool = 'make_target'").get();
    await vi.waitFor(() => expect(audited()).toBeDefined(), { timeout: 60_000, interval: 50 });
    open();
    const r = await result;
    expect(r.isError).toBe(false);
    const note =
      /\[(\d+) characters of output not sent as progress: the client was not reading; the result holds its head and tail\.\]\n/g;
    let sent = 0;
    let skipped = 0;
    for (const message of progress) {
      for (const m of message.matchAll(note)) skipped += Number(m[1]);
      sent += message.replace(note, '').length;
    }
    // Output was left out, and every character of it is either sent or counted in a note.
    expect(skipped).toBeGreaterThan(0);
    expect(sent + skipped).toBe(8_000_000);
  }, 180_000);

  it('leaves output out while the stream waits for drain, says how much with the next progress, and still caps', () => {
    const sent: string[] = [];
    let reading = true;
    const feed = new ProgressFeed(
      1_000,
      (m) => sent.push(m),
      () => reading,
    );
    feed.push('a\n');
    // res.write said false: nothing more is queued behind the client's unread bytes.
    reading = false;
    feed.push('b\n');
    feed.push('c\n');
    expect(sent).toEqual(['a\n']);
    reading = true;
    feed.push('d\n');
    expect(sent.at(-1)).toBe(
      '[4 characters of output not sent as progress: the client was not reading; the result holds its head and tail.]\nd\n',
    );
    // What was left out counts toward the cap, as sent output does: progress covers the output's first 1,000 characters.
    reading = false;
    feed.push('e'.repeat(1_500));
    expect(sent.slice(2)).toEqual([
      '[992 characters of output not sent as progress: the client was not reading; the result holds its head and tail.]\n' +
        '[Output past 1000 characters is not sent as progress; the result holds its head and tail.]\n',
    ]);
    reading = true;
    feed.push('f\n');
    expect(sent).toHaveLength(3);
    // The call's end says nothing more: what was left out was said with the cap's note.
    feed.end();
    expect(sent).toHaveLength(3);
  });
});

/** The text of a tool result that is one text block, as brainstem sends every one. */
function textOf(result: Awaited<ReturnType<Client['callTool']>>): string {
  expect(result.content).toEqual([{ type: 'text', text: expect.any(String) }]);
  return (result.content as { text: string }[])[0]?.text ?? '';
}

/** One POST to /mcp as a client sends it, without the SDK: what the SDK's client never sends (a string goes as it is). */
function post(body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${svc.url}/mcp`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${svc.token}`,
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      ...headers,
    },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

const initialize = (protocolVersion: string) => ({
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion, capabilities: {}, clientInfo: { name: 'edge', version: '1' } },
});

describe('/mcp at the edges of the protocol', () => {
  it('answers initialize in the revision the client asks for, or offers its newest', async () => {
    for (const [asked, offered] of [
      ['2024-11-05', '2024-11-05'],
      ['2025-06-18', '2025-06-18'],
      ['1999-01-01', '2025-11-25'],
    ]) {
      const res = await post(initialize(asked as string));
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({
        jsonrpc: '2.0',
        id: 1,
        result: { protocolVersion: offered, capabilities: { tools: {} }, serverInfo: { name: 'brainstem' } },
      });
    }
  });

  it('refuses a revision it does not speak, named in the header after initialize', async () => {
    const res = await post(
      { jsonrpc: '2.0', id: 2, method: 'tools/list' },
      { 'mcp-protocol-version': '2023-01-01' },
    );
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { message: string } }).error.message).toBe(
      'Bad Request: unsupported MCP protocol version 2023-01-01 (brainstem speaks 2025-11-25, 2025-06-18, 2025-03-26, 2024-11-05, 2024-10-07).',
    );
  });

  it('names the methods it serves when asked for another, and the field at fault in bad params', async () => {
    const unknown = await post({ jsonrpc: '2.0', id: 'r1', method: 'resources/list' });
    expect(await unknown.json()).toEqual({
      jsonrpc: '2.0',
      id: 'r1',
      error: {
        code: -32601,
        message:
          'Method not found: resources/list (brainstem serves initialize, ping, tools/list and tools/call).',
      },
    });
    const noName = await post({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { arguments: {} } });
    expect(await noName.json()).toMatchObject({
      id: 7,
      error: { code: -32602, message: expect.stringMatching(/^Invalid params for tools\/call: name: /) },
    });
  });

  it('answers a batch in order, and a notification with 202 and nothing else', async () => {
    const batch = await post([
      { jsonrpc: '2.0', id: 1, method: 'ping' },
      { jsonrpc: '2.0', method: 'notifications/initialized' },
      { jsonrpc: '2.0', id: 2, method: 'tools/list' },
    ]);
    const answers = (await batch.json()) as { id: number; result: { tools?: unknown[] } }[];
    expect(answers.map((a) => a.id)).toEqual([1, 2]);
    expect(answers[0]?.result).toEqual({});
    expect(answers[1]?.result.tools?.length).toBeGreaterThan(10);
    const note = await post({ jsonrpc: '2.0', method: 'notifications/initialized' });
    expect(note.status).toBe(202);
    expect(await note.text()).toBe('');
  });

  it('refuses a body that is not JSON by its content type with 415 in JSON-RPC’s shape', async () => {
    for (const type of ['text/plain', 'application/x-www-form-urlencoded']) {
      const res = await post({ jsonrpc: '2.0', id: 1, method: 'ping' }, { 'content-type': type });
      expect(res.status).toBe(415);
      expect(await res.json()).toEqual({
        jsonrpc: '2.0',
        id: null,
        error: { code: -32000, message: 'Unsupported Media Type: send the body as application/json.' },
      });
    }
    // Declared in another charset: said the same way, with what to send instead.
    const latin = await post(
      { jsonrpc: '2.0', id: 1, method: 'ping' },
      { 'content-type': 'application/json; charset=latin1' },
    );
    expect(latin.status).toBe(415);
    expect(await latin.json()).toEqual({
      jsonrpc: '2.0',
      id: null,
      error: {
        code: -32000,
        message:
          'Unsupported Media Type: The request body is declared as charset=latin1; JSON is read as UTF-8 only: send it in UTF-8 (charset=utf-8, or no charset).',
      },
    });
  });

  it('answers each invalid message of a batch with its own error, and the valid ones as usual', async () => {
    const batch = await post([
      { jsonrpc: '2.0', id: 1, method: 'ping' },
      { jsonrpc: '1.0', id: 'old', method: 'ping' },
      42,
      { jsonrpc: '2.0', method: 'notifications/initialized' },
      { jsonrpc: '2.0', id: 2, method: 'ping' },
    ]);
    expect(batch.status).toBe(200);
    const answers = (await batch.json()) as { id: unknown }[];
    const invalid = (id: string | number | null, where: number) => ({
      jsonrpc: '2.0',
      id,
      error: {
        code: -32600,
        message: expect.stringMatching(
          new RegExp(`^Invalid Request: not a JSON-RPC 2\\.0 message \\(${where}`),
        ),
      },
    });
    expect(answers).toHaveLength(4);
    expect(answers).toEqual(
      expect.arrayContaining([
        invalid('old', 1),
        invalid(null, 2),
        { jsonrpc: '2.0', id: 1, result: {} },
        { jsonrpc: '2.0', id: 2, result: {} },
      ]),
    );
    // Nothing valid to answer still answers the invalid.
    const none = await post([{ jsonrpc: '2.0', id: 3 }]);
    expect(await none.json()).toEqual([invalid(3, 0)]);
  });

  it('refuses what is not a JSON-RPC message, and a client that cannot take an event stream', async () => {
    const notRpc = await post({ hello: 'world' });
    expect(notRpc.status).toBe(400);
    expect(await notRpc.json()).toMatchObject({
      id: null,
      error: { code: -32600, message: expect.stringContaining('not a JSON-RPC 2.0 message (jsonrpc: ') },
    });
    const alone = await post([initialize('2025-06-18'), { jsonrpc: '2.0', id: 2, method: 'ping' }]);
    expect(alone.status).toBe(400);
    const jsonOnly = await post({ jsonrpc: '2.0', id: 1, method: 'ping' }, { accept: 'application/json' });
    expect(jsonOnly.status).toBe(406);
  });

  it('reads the Accept header’s media types whatever their case, as HTTP says they are', async () => {
    const res = await post(
      { jsonrpc: '2.0', id: 1, method: 'ping' },
      { accept: 'Application/JSON, Text/Event-Stream' },
    );
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ jsonrpc: '2.0', id: 1, result: {} });
  });

  it('says how to authenticate in a 401, as RFC 6750 asks: Bearer, and invalid_token for a wrong one', async () => {
    const at = (route: string, method: string, token?: string) =>
      fetch(`${svc.url}${route}`, {
        method,
        headers: {
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
        },
        ...(method === 'POST' ? { body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }) } : {}),
      });
    for (const [route, method] of [
      ['/mcp', 'POST'],
      ['/v1/models', 'GET'],
      ['/api/mode', 'GET'],
    ] as const) {
      const none = await at(route, method);
      expect(none.status, route).toBe(401);
      expect(none.headers.get('www-authenticate'), route).toBe('Bearer realm="brainstem"');
      const wrong = await at(route, method, 'wrong-token-0123456789');
      expect(wrong.status, route).toBe(401);
      expect(wrong.headers.get('www-authenticate'), route).toBe(
        'Bearer realm="brainstem", error="invalid_token"',
      );
    }
  });

  it('stops a tool call whose client goes away, and audits it as stopped', async () => {
    const res = await post(
      {
        jsonrpc: '2.0',
        id: 9,
        method: 'tools/call',
        params: { name: 'make_target', arguments: { target: 'progress' }, _meta: { progressToken: 'p' } },
      },
      {},
    );
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    let seen = '';
    // The first progress event: the command runs and waits for `go`, which nobody creates.
    while (!seen.includes('"message":"one\\n"')) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`the stream ended before any progress: ${seen}`);
      seen += new TextDecoder().decode(value);
    }
    expect(seen).toContain('event: message\ndata: {"jsonrpc":"2.0","method":"notifications/progress"');
    // The client goes away: cancelling the body closes its connection.
    await reader.cancel();
    await vi.waitFor(
      () =>
        expect(
          svc.service.core.db
            .prepare("SELECT ok, error FROM audit WHERE tool = 'make_target' ORDER BY id DESC LIMIT 1")
            .get(),
        ).toEqual({ ok: 0, error: expect.stringContaining('TOOL_ABORTED') }),
      { timeout: 10_000, interval: 20 },
    );
  });
});

describe('/mcp cancellation', () => {
  it('stops the call a client cancels, that client’s only, audits it as stopped and answers it nothing', async () => {
    const { db } = svc.service.core;
    const lastAudit = (db.prepare('SELECT max(id) AS id FROM audit').get() as { id: number | null }).id ?? 0;
    // Two fresh clients number their requests alike (initialize 0, this call 1): the session tells them apart.
    const [a, b] = [await connect(svc.token), await connect(svc.token)];
    const errors: Error[] = [];
    a.onerror = (e) => errors.push(e);
    const running = (client: Client, signal?: AbortSignal) => {
      let started = () => {};
      const seen = new Promise<void>((resolve) => {
        started = resolve;
      });
      const result = client.callTool({ name: 'make_target', arguments: { target: 'progress' } }, undefined, {
        signal,
        onprogress: (p) => {
          if (p.message === 'one\n') started();
        },
      });
      return { seen, result };
    };
    const stop = new AbortController();
    const first = running(a, stop.signal);
    const second = running(b);
    await Promise.all([first.seen, second.seen]);
    // The SDK sends notifications/cancelled in a POST of its own and leaves the call's open.
    stop.abort('changed my mind');
    await expect(first.result).rejects.toThrow('changed my mind');
    const audited = () =>
      db
        .prepare("SELECT ok, error FROM audit WHERE tool = 'make_target' AND id > ? ORDER BY id")
        .all(lastAudit);
    await vi.waitFor(
      () => expect(audited()).toEqual([{ ok: 0, error: expect.stringContaining('TOOL_ABORTED') }]),
      {
        timeout: 10_000,
        interval: 20,
      },
    );
    // The other client's call with the same id runs on, to its end.
    writeFileSync(path.join(repo, 'go'), '');
    const r = await second.result;
    expect(r.isError).toBe(false);
    expect(audited()).toEqual([
      { ok: 0, error: expect.stringContaining('TOOL_ABORTED') },
      { ok: 1, error: null },
    ]);
    // No answer came for the cancelled request: the SDK reports one for an unknown id as an error.
    expect(errors).toEqual([]);
  });
});

describe('the real claude CLI using brainstem tools over /mcp', () => {
  /** A Telegram turn of the mode `assistant`; its approval requests go to `approve`. */
  const telegramTurn = (sessionKey: string, content: string, approve: Approver) =>
    collect(
      svc.service.core.chat.run(
        {
          model: 'assistant',
          sessionKey,
          messages: [{ role: 'user', content }],
          source: 'telegram',
          approve,
        },
        new AbortController().signal,
      ),
    );

  it('completes a round trip: tool_use → /mcp → tool_result → answer', async () => {
    fake.script(() => toolUse('mcp__brainstem__git_status', {}, text('The repository has no commits yet.')));
    const r = await svc.client.chat.completions.create({
      model: 'assistant',
      messages: [{ role: 'user', content: 'what is the git status?' }],
    });
    expect(r.choices[0]?.message.content).toContain('The repository has no commits yet.');
    const main = fake.mainRequests();
    // Loaded from the first request on (alwaysLoad), even where the CLI defers MCP tools behind
    // ToolSearch: no search round before the call.
    expect(main[0]?.tools).toContain('mcp__brainstem__git_status');
    expect(main).toHaveLength(2);
    const last = main.at(-1);
    expect(last?.toolResults).toHaveLength(1);
    expect(last?.toolResults[0]?.isError).toBe(false);
    expect(last?.toolResults[0]?.content).toContain('## No commits yet on main');
    const audit = svc.service.core.db
      .prepare("SELECT caller, ok FROM audit WHERE tool = 'git_status' ORDER BY id DESC LIMIT 1")
      .get();
    expect(audit).toEqual({ caller: 'mcp', ok: 1 });
  }, 60_000);

  it('asks the approver before a mutating brainstem tool; unanswered, it is denied and never runs', async () => {
    fake.script(() =>
      toolUse('mcp__brainstem__make_target', { target: 'mark' }, text('It was not allowed.')),
    );
    const { db } = svc.service.core;
    const lastAudit = (db.prepare('SELECT max(id) AS id FROM audit').get() as { id: number | null }).id ?? 0;
    const asked: ApprovalRequest[] = [];
    // Nobody answers: the approval times out.
    const events = await telegramTurn('test:mutating', 'mark it', (req) => {
      asked.push(req);
      return new Promise(() => {});
    });
    expect(asked).toEqual([
      expect.objectContaining({ tool: 'mcp__brainstem__make_target', input: { target: 'mark' } }),
    ]);
    expect(events.find((e) => e.type === 'approval')).toMatchObject({
      decision: { behavior: 'deny' },
      source: 'timeout',
    });
    expect(existsSync(path.join(repo, 'marked.txt'))).toBe(false);
    expect(fake.mainRequests().at(-1)?.toolResults[0]?.isError).toBe(true);
    const audit = db
      .prepare("SELECT tool, args FROM audit WHERE tool LIKE '%make_target' AND id > ? ORDER BY id")
      .all(lastAudit);
    expect(audit).toEqual([
      { tool: 'approval:mcp__brainstem__make_target', args: expect.stringContaining('"by":"timeout"') },
    ]);
  }, 60_000);

  it('denies unasked a brainstem tool call that brainstem would refuse anyway (a make target not allowed), saying why', async () => {
    fake.script(() =>
      toolUse('mcp__brainstem__make_target', { target: '-f/etc/passwd' }, text('It was refused.')),
    );
    const asked: ApprovalRequest[] = [];
    const events = await telegramTurn('test:refused', 'read the password file through make', async (req) => {
      asked.push(req);
      return { behavior: 'allow', scope: 'once' };
    });
    // Nobody was asked a question whose "Allow" would have changed nothing.
    expect(asked).toEqual([]);
    expect(events.find((e) => e.type === 'approval')).toMatchObject({
      decision: { behavior: 'deny' },
      source: 'refused',
    });
    const notice = events.find((e) => e.type === 'notice' && e.text.includes('-f/etc/passwd'));
    expect(notice).toMatchObject({
      text: expect.stringMatching(
        /^⚙️ \[proxy\] Claude wanted to use mcp__brainstem__make_target \(.*\), which brainstem refuses, so nobody was asked: .*"-f\/etc\/passwd"/,
      ),
    });
    const result = fake.mainRequests().at(-1)?.toolResults[0];
    expect(result?.isError).toBe(true);
    expect(result?.content).toContain('brainstem refuses this call of mcp__brainstem__make_target');
  }, 60_000);

  it('asks before run_tests, whose configured command may write, and runs a lint said to only read unasked', async () => {
    expect(svc.service.core.mcp.readOnlyTools).toContain('lint');
    expect(svc.service.core.mcp.readOnlyTools).not.toContain('run_tests');
    const asked: ApprovalRequest[] = [];
    const turn = (sessionKey: string) =>
      telegramTurn(sessionKey, 'check the code', async (req) => {
        asked.push(req);
        return { behavior: 'deny', message: 'no' };
      });
    fake.script(() => toolUse('mcp__brainstem__run_tests', {}, text('It was not allowed.')));
    await turn('test:run-tests');
    expect(asked).toEqual([expect.objectContaining({ tool: 'mcp__brainstem__run_tests' })]);
    expect(existsSync(path.join(repo, 'marked.txt'))).toBe(false);
    fake.script(() => toolUse('mcp__brainstem__lint', {}, text('Clean.')));
    await turn('test:lint');
    expect(asked).toHaveLength(1);
    const audit = svc.service.core.db
      .prepare("SELECT caller, ok FROM audit WHERE tool = 'lint' ORDER BY id DESC LIMIT 1")
      .get();
    expect(audit).toEqual({ caller: 'mcp', ok: 1 });
  }, 60_000);

  it('runs a read-only brainstem tool without asking', async () => {
    fake.script(() => toolUse('mcp__brainstem__git_log', {}, text('No history yet.')));
    const asked: ApprovalRequest[] = [];
    const events = await telegramTurn('test:read-only', 'show the log', async (req) => {
      asked.push(req);
      return { behavior: 'deny', message: 'no' };
    });
    expect(asked).toEqual([]);
    expect(events.some((e) => e.type === 'approval')).toBe(false);
    const audit = svc.service.core.db
      .prepare("SELECT caller FROM audit WHERE tool = 'git_log' ORDER BY id DESC LIMIT 1")
      .get();
    expect(audit).toEqual({ caller: 'mcp' });
    expect(fake.mainRequests().at(-1)?.toolResults).toHaveLength(1);
  }, 60_000);

  it('asks before a Claude turn asks a Claude brain (it could act with that mode’s tools), and the brain asked cannot ask another', async () => {
    const before = fake.mainRequests().length;
    fake.script(() =>
      toolUse(
        'mcp__brainstem__brain_chat',
        { mode: 'assistant', message: 'ask a brain' },
        text('Done asking.'),
      ),
    );
    const asked: string[] = [];
    const events = await collect(
      svc.service.core.chat.run(
        {
          model: 'assistant',
          sessionKey: 'test:nested',
          messages: [{ role: 'user', content: 'ask a brain' }],
          source: 'openai',
          approve: async (r) => {
            asked.push(r.tool);
            return { behavior: 'allow', scope: 'once' };
          },
        },
        new AbortController().signal,
      ),
    );
    expect(events.at(-1)).toEqual({ type: 'done', finishReason: 'stop' });
    expect(asked).toEqual(['mcp__brainstem__brain_chat']);
    // The turn, the brain it asked, and the answer of each to its tool result: nothing deeper.
    const main = fake.mainRequests().slice(before);
    expect(main).toHaveLength(4);
    const results = main.flatMap((r) => r.toolResults);
    expect(results.map((r) => r.isError)).toEqual([true, false]);
    // The brain asked has nobody to ask: its own brain_chat is denied.
    expect(results[0]?.content).toContain('tool approvals are not available for this turn');
    const audit = svc.service.core.db
      .prepare("SELECT ok, error FROM audit WHERE tool = 'brain_chat' ORDER BY id")
      .all();
    expect(audit).toEqual([{ ok: 1, error: null }]);
  }, 120_000);

  it('refuses brain_chat past tools.maxBrainDepth', async () => {
    const res = await post(
      {
        jsonrpc: '2.0',
        id: 1,
        method: 'tools/call',
        params: { name: 'brain_chat', arguments: { mode: 'assistant', message: 'deeper' } },
      },
      { 'x-brainstem-depth': '2' },
    );
    const body = JSON.stringify(await res.json());
    expect(body).toContain(
      'brain_chat refused: brains may call brains only 1 level deep (tools.maxBrainDepth), and this call comes from level 2.',
    );
  });

  it('says when a brain_chat answer was cut at the output limit, so the calling model asks for the rest', async () => {
    // Last in the file: the tests above count every request the fake API saw and every brain_chat audited.
    const client = await connect(svc.token);
    // The CLI asks the model to go on three times, then gives up: the text so far is the answer.
    fake.script(() => text(['Long, '], { stopReason: 'max_tokens' }));
    const r = await client.callTool({
      name: 'brain_chat',
      arguments: { mode: 'assistant', message: 'write a long essay', sessionKey: 'essay' },
    });
    expect(r.isError).toBe(false);
    // No structuredContent: Claude Code (2.1.197 and 2.1.332 alike) then gives the model its JSON
    // alone, not the text, and a Claude brain would get the data without the answer.
    expect(r.structuredContent).toBeUndefined();
    // The data first, with the sessionKey that continues the conversation, then the answer and its note.
    const [data, ...rest] = textOf(r).split('\n\n');
    expect(JSON.parse(data?.replace(/^Data: /, '') ?? '')).toEqual({
      mode: 'assistant',
      sessionKey: 'tool:essay',
      usage: expect.objectContaining({ outputTokens: expect.any(Number) }),
    });
    expect(rest.join('\n\n')).toBe(
      "Long, Long, Long, Long, \n\nNote: the answer was cut at Claude's output-token limit (CLAUDE_CODE_MAX_OUTPUT_TOKENS in claude.env raises it). " +
        'Ask for the rest: brain_chat again with sessionKey "tool:essay" and a message such as "go on".',
    );
    fake.script(() => text('Short.'));
    const whole = await client.callTool({
      name: 'brain_chat',
      arguments: { mode: 'assistant', message: 'be brief', sessionKey: 'essay' },
    });
    expect(textOf(whole)).toMatch(
      /^Data: \{"mode":"assistant","sessionKey":"tool:essay","usage":\{.*\}\}\n\nShort\.$/,
    );
  }, 60_000);
});
