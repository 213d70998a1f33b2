import { once } from 'node:events';
import {
  chmodSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { openAiSessionKey } from '../src/session-keys.js';
import { type FakeLlama, startFakeLlama } from './fakes/llama.js';
import { recordingLogger } from './helpers/logs.js';
import { spawnService } from './helpers/process.js';
import { startTestService, type TestService } from './helpers/service.js';

/**
 * The HTTP front as an outsider attacks it: raw requests (node:net, so no
 * client normalises the path) against the real service with tools configured.
 */
let svc: TestService;
let llama: FakeLlama;
let roots: string;
/** The service's own folder (its config, data dir and HOME), also a readable root: its secrets must stay unread. */
let home: string;
let host: string;
/** Every log line of the service, parsed. */
const logs: Record<string, unknown>[] = [];

const SECRET = 'the file an outsider must not read';
const ALLOWED_NAME = 'brainstem.lan';
const LLAMA_PASSWORD = 'llama-upstream-password';
/** What the Claude CLI's `auth status` says on stderr: the upstream's own words, for the owner only. */
const CLI_SAYS = 'quota file /srv/claude-7f3a unreadable';
/** How long a refused request's body may keep coming here (server.bodyAfterAnswerMs): short, so a test waits little. */
const BODY_AFTER_ANSWER_MS = 300;
/**
 * server.requestTimeoutMs here: short, so a test waits little, and still far above the time any
 * other request here takes to arrive, a loaded machine's included.
 */
const REQUEST_TIMEOUT_MS = 2000;
/** server.maxConnections here: few, so a test reaches it with few sockets. */
const MAX_CONNECTIONS = 12;

interface RawAnswer {
  status: number;
  headers: string;
  body: string;
}

/** Sends one HTTP/1.1 request exactly as written and reads the answer until the server closes. */
async function raw(
  method: string,
  target: string,
  opts: { headers?: Record<string, string>; body?: unknown; token?: string } = {},
): Promise<RawAnswer> {
  const body = opts.body === undefined ? '' : JSON.stringify(opts.body);
  const headers: Record<string, string> = {
    host,
    connection: 'close',
    ...(opts.body === undefined ? {} : { 'content-type': 'application/json' }),
    ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
    ...opts.headers,
  };
  const lines = [`${method} ${target} HTTP/1.1`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
  const { port } = new URL(svc.url);
  const socket = net.connect(Number(port), '127.0.0.1');
  // Written, not ended: a half-closed socket would end the answer before it is sent.
  socket.write(`${lines.join('\r\n')}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  const chunks: Buffer[] = [];
  for await (const chunk of socket) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  const [head = '', ...rest] = text.split('\r\n\r\n');
  return { status: Number(head.split(' ')[1]), headers: head, body: rest.join('\r\n\r\n') };
}

const errorCode = (a: RawAnswer) => (JSON.parse(a.body) as { error: { code: string } }).error.code;

const mcpCall = {
  jsonrpc: '2.0',
  id: 1,
  method: 'tools/call',
  params: { name: 'read_file', arguments: { path: 'secret.txt' } },
};

beforeAll(async () => {
  roots = mkdtempSync(path.join(tmpdir(), 'bst-sec-roots-'));
  writeFileSync(path.join(roots, 'secret.txt'), SECRET);
  home = mkdtempSync(path.join(tmpdir(), 'bst-sec-home-'));
  mkdirSync(path.join(home, '.claude'));
  writeFileSync(
    path.join(home, '.claude', '.credentials.json'),
    '{"claudeAiOauth":{"accessToken":"sk-ant-oat01-x"}}',
  );
  symlinkSync(path.join(home, 'data', 'api-token'), path.join(roots, 'token-link'));
  const cli = path.join(home, 'claude');
  writeFileSync(cli, `#!/bin/sh\necho '${CLI_SAYS}' >&2\nexit 1\n`, { mode: 0o755 });
  llama = await startFakeLlama({ chunkDelayMs: 1 });
  svc = await startTestService({
    dir: home,
    logger: recordingLogger('info', logs).logger,
    parts: { tools: true },
    config: {
      defaultMode: 'local',
      server: {
        modeTag: false,
        allowedHosts: [ALLOWED_NAME],
        bodyAfterAnswerMs: BODY_AFTER_ANSWER_MS,
        requestTimeoutMs: REQUEST_TIMEOUT_MS,
        maxConnections: MAX_CONNECTIONS,
      },
      // A brain probe that answers at once, so /health measures brainstem itself.
      claude: { bin: cli },
      // Credentials in the upstream's URL (a protected llama-server): never shown, /health included.
      llama: {
        baseUrl: llama.baseUrl.replace('://', `://bob:${LLAMA_PASSWORD}@`),
        connectTimeoutMs: 2000,
        pollIntervalMs: 50,
      },
      tools: { files: { roots: [roots, home] } },
    },
  });
  host = new URL(svc.url).host;
  // Hard links have paths of their own, outside the data dir: what they are is told by the inode.
  linkSync(path.join(home, 'data', 'api-token'), path.join(roots, 'token-hard-link'));
  linkSync(path.join(home, 'brainstem.json'), path.join(roots, 'config-hard-link'));
  // A `cp -al` backup of the data dir links its folders' files too: another chat's upload.
  const upload = path.join(home, 'data', 'uploads', 'another-chat', 'note.txt');
  mkdirSync(path.dirname(upload), { recursive: true });
  writeFileSync(upload, SECRET);
  linkSync(upload, path.join(roots, 'upload-hard-link'));
});

afterAll(async () => {
  await svc?.close();
  await llama?.close();
  rmSync(roots, { recursive: true, force: true });
  rmSync(home, { recursive: true, force: true });
});

describe('authentication decided on the matched route', () => {
  const attacks: [string, string, unknown?][] = [
    ['GET', '/%761/models'],
    ['POST', '/%761/chat/completions', { model: 'local', messages: [{ role: 'user', content: 'hi' }] }],
    ['GET', '/%61pi/usage'],
    ['GET', '/%61pi'],
    ['POST', '/%61pi/read_file', { path: 'secret.txt' }],
    ['POST', '/%6dcp', mcpCall],
    ['GET', '/api#x'],
    ['GET', '/v1/models#x'],
    ['POST', '/api/read_file#x', { path: 'secret.txt' }],
    // No route of these exact forms: fastify matches case, slashes and dots as written.
    ['OPTIONS', '/v1/models'],
    ['OPTIONS', '*'],
    ['GET', '/v1/models/'],
    ['GET', '//v1/models'],
    ['GET', '/V1/models'],
    ['GET', '/HEALTH'],
    ['GET', '/health/'],
    ['GET', '/health/../api'],
    ['GET', '/health/%2e%2e/api'],
    ['GET', '/health;/api'],
    ['POST', '/health', {}],
  ];

  it.each(attacks)('%s %s without a token → 401', async (method, target, body) => {
    const a = await raw(method, target, {
      body,
      headers: target.includes('mcp') ? { accept: 'application/json, text/event-stream' } : {},
    });
    expect(a.status).toBe(401);
    expect(errorCode(a)).toBe('unauthorized');
    expect(a.body).not.toContain(SECRET);
  });

  it.each([
    ['GET', 'http://x/v1/models'],
    ['POST', 'http://x/api/read_file', { path: 'secret.txt' }],
    ['POST', `http://${ALLOWED_NAME}/mcp`, mcpCall],
  ] as [string, string, unknown?][])(
    'absolute-form %s %s without a token → 401',
    async (method, target, body) => {
      const a = await raw(method, target, {
        body,
        headers: target.includes('mcp') ? { accept: 'application/json, text/event-stream' } : {},
      });
      expect(a.status).toBe(401);
      expect(a.body).not.toContain(SECRET);
    },
  );

  it('the router does decode those paths: with the token they reach the route', async () => {
    const models = await raw('GET', '/%761/models', { token: svc.token });
    expect(models.status).toBe(200);
    const read = await raw('POST', '/%61pi/read_file', { token: svc.token, body: { path: 'secret.txt' } });
    expect(read.status).toBe(200);
    expect(read.body).toContain(SECRET);
  });

  it('an unknown route answers 401 without a token, 404 with it: nothing is learnt without the token', async () => {
    const none = await raw('GET', '/v2/secret-route');
    expect(none.status).toBe(401);
    const withToken = await raw('GET', '/v2/secret-route', { token: svc.token });
    expect(withToken.status).toBe(404);
    expect(errorCode(withToken)).toBe('not_found');
  });

  it('only a route marked public answers without a token: /health (GET and HEAD), nothing secret in it', async () => {
    // /health shows the last probe's outcome: one is waited for.
    await svc.service.core.chat.statusLines();
    const health = await raw('GET', '/health');
    expect(health.status).toBe(200);
    // Without the token, a word per brain: neither the upstream's words nor its address.
    const brains = (JSON.parse(health.body) as { brains: Record<string, { ready: boolean; detail: string }> })
      .brains;
    expect(brains.local).toMatchObject({ ready: true, detail: 'ready' });
    expect(brains.assistant).toMatchObject({ ready: false, detail: 'error' });
    expect(health.body).not.toContain(CLI_SAYS);
    expect(health.body).not.toContain(new URL(llama.baseUrl).host);
    // With it, the upstream's own text, its URL's credentials still left out.
    const owner = await raw('GET', '/health', { token: svc.token });
    expect(owner.body).toContain('/health answers 200');
    expect(owner.body).toContain(CLI_SAYS);
    for (const body of [health.body, owner.body]) expect(body).not.toContain(LLAMA_PASSWORD);
    expect((await raw('HEAD', '/health')).status).toBe(200);
    expect((await raw('GET', '/%68ealth')).status).toBe(200);
  });

  it('every registered route but /health asks for the token', async () => {
    const open: string[] = [];
    const checked: string[] = [];
    const stack: string[] = [];
    // printRoutes draws a tree, four columns a level: `│   ├── /usage (GET, HEAD)`.
    for (const line of svc.service.app.printRoutes({ commonPrefix: false }).split('\n')) {
      // A wildcard's line is a bare `*` under its parent (`/v1/models`, then `*`).
      const m = /^([│├└─\s]*)(\/\S*|\*) \(([A-Z, ]+)\)$/.exec(line);
      if (!m?.[2] || !m[3]) continue;
      const level = (m[1]?.length ?? 0) / 4 - 1;
      stack.length = level;
      stack.push(m[2] === '*' ? '/*' : m[2]);
      const route = stack.join('').replace(/:\w+/g, 'x').replace('*', 'x');
      for (const method of m[3].split(', ')) {
        const a = await raw(method, route, method === 'POST' ? { body: {} } : {});
        checked.push(`${method} ${route}`);
        if (a.status !== 401) open.push(`${method} ${route} → ${a.status}`);
      }
    }
    expect(checked).toEqual(
      expect.arrayContaining([
        'POST /api/x',
        'GET /api/usage/chart.png',
        'GET /v1/models/x',
        'DELETE /mcp',
        'POST /v1/chat/completions',
      ]),
    );
    expect(open.sort()).toEqual(['GET /health → 200', 'HEAD /health → 200']);
  });
});

describe('Host and Origin (DNS rebinding, cross-site requests)', () => {
  it('refuses a foreign Host even with the token, on every route', async () => {
    for (const target of ['/v1/models', '/health', '/api']) {
      const a = await raw('GET', target, {
        token: svc.token,
        headers: { host: `evil.example:${svc.url.split(':')[2]}` },
      });
      expect(a.status).toBe(403);
      expect(errorCode(a)).toBe('forbidden_host');
      expect(JSON.parse(a.body).error.message).toMatch(/server\.allowedHosts/);
      // OpenClaw reads "dns" in a provider's error as a failed DNS lookup, and benches the key.
      expect(JSON.parse(a.body).error.message).not.toMatch(/dns/i);
    }
  });

  it('refuses a loopback name with another port, and a missing Host', async () => {
    expect(
      (await raw('GET', '/v1/models', { token: svc.token, headers: { host: 'localhost:1' } })).status,
    ).toBe(403);
    expect((await raw('GET', '/v1/models', { token: svc.token, headers: { host: '' } })).status).toBe(403);
  });

  it('accepts the bind address, localhost, ::1 and a configured name', async () => {
    const port = new URL(svc.url).port;
    for (const h of [
      `127.0.0.1:${port}`,
      `localhost:${port}`,
      `LOCALHOST:${port}`,
      `[::1]:${port}`,
      ALLOWED_NAME,
      `${ALLOWED_NAME}:443`,
    ]) {
      const a = await raw('GET', '/v1/models', { token: svc.token, headers: { host: h } });
      expect([h, a.status]).toEqual([h, 200]);
    }
  });

  it('refuses a cross-site Origin on a state-changing route, even with the token', async () => {
    for (const origin of ['https://evil.example', 'null', `http://evil.example:${new URL(svc.url).port}`]) {
      const a = await raw('POST', '/api/read_file', {
        token: svc.token,
        body: { path: 'secret.txt' },
        headers: { origin },
      });
      expect(a.status).toBe(403);
      expect(errorCode(a)).toBe('forbidden_origin');
      expect(a.body).not.toContain(SECRET);
    }
  });

  it('accepts a same-site Origin and no Origin (the openai SDK, curl, Node fetch)', async () => {
    const same = await raw('POST', '/api/read_file', {
      token: svc.token,
      body: { path: 'secret.txt' },
      headers: { origin: svc.url },
    });
    expect(same.status).toBe(200);
    const none = await raw('POST', '/api/read_file', { token: svc.token, body: { path: 'secret.txt' } });
    expect(none.status).toBe(200);
    const models = await svc.client.models.list();
    expect(models.data.length).toBeGreaterThan(0);
    const res = await fetch(`${svc.url}/api/read_file`, {
      method: 'POST',
      headers: { authorization: `Bearer ${svc.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ path: 'secret.txt' }),
    });
    expect(res.status).toBe(200);
  });

  it('leaves a GET with a foreign Origin alone (it changes nothing)', async () => {
    const a = await raw('GET', '/v1/models', {
      token: svc.token,
      headers: { origin: 'https://evil.example' },
    });
    expect(a.status).toBe(200);
  });
});

describe('a refused request whose body keeps coming', () => {
  /**
   * Sends a request's head and only the first bytes of the body it announces, keep-alive, and
   * waits for the server to end the connection: the answer, and how long it was held.
   */
  async function heldOpen(headers: Record<string, string>): Promise<{ status: number; heldMs: number }> {
    const head = Object.entries({ host, 'content-type': 'application/json', ...headers })
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('');
    const socket = net.connect(Number(new URL(svc.url).port), '127.0.0.1');
    socket.write(`POST /v1/chat/completions HTTP/1.1\r\n${head}content-length: 1000000\r\n\r\n{"model":`);
    let answer = '';
    let answeredAt = 0;
    socket.on('data', (chunk: Buffer) => {
      answeredAt ||= Date.now();
      answer += chunk.toString('utf8');
    });
    await once(socket, 'close');
    return { status: Number(answer.split(' ')[1]), heldMs: Date.now() - answeredAt };
  }

  it('is cut once server.bodyAfterAnswerMs has passed: without the token, nobody holds a connection open', async () => {
    const cut = await Promise.all([
      heldOpen({}),
      heldOpen({ authorization: 'Bearer not-the-token-at-all' }),
      heldOpen({ host: 'evil.example', authorization: `Bearer ${svc.token}` }),
    ]);
    expect(cut.map((c) => c.status)).toEqual([401, 401, 403]);
    for (const c of cut) expect(c.heldMs).toBeGreaterThanOrEqual(BODY_AFTER_ANSWER_MS - 50);
    expect(logs.filter((l) => /body still coming/.test(String(l.msg)))).toHaveLength(3);
  }, 20_000);
});

describe('connections held open', () => {
  /** Opens a connection, writes `head` (nothing if empty), and reads until the server closes it. */
  async function held(head: string): Promise<{ answer: string; heldMs: number }> {
    // Before the connection: Node times it from its accept, which a busy event loop may run long
    // before this test's 'connect' callback, so a clock started then could show the hold as short.
    const startedAt = Date.now();
    const socket = net.connect(Number(new URL(svc.url).port), '127.0.0.1');
    await once(socket, 'connect');
    if (head) socket.write(head);
    let answer = '';
    socket.on('data', (chunk: Buffer) => {
      answer += chunk.toString('utf8');
    });
    await once(socket, 'close');
    return { answer, heldMs: Date.now() - startedAt };
  }

  it('a token holder’s body that never ends gets 408 after server.requestTimeoutMs, and so does a connection that sends nothing', async () => {
    const [slowBody, silent] = await Promise.all([
      held(
        `POST /v1/chat/completions HTTP/1.1\r\nhost: ${host}\r\nauthorization: Bearer ${svc.token}\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{"model":`,
      ),
      // Node times a request head from the connection's opening, within the request timeout here.
      held(''),
    ]);
    for (const c of [slowBody, silent]) {
      expect(c.answer).toMatch(/^HTTP\/1\.1 408 /);
      expect(c.answer).toContain('The request took too long to arrive.');
      expect(c.heldMs).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS - 50);
    }
  }, 20_000);

  it('past server.maxConnections a connection is closed as it comes, logged, and the service answers again once they go', async () => {
    const accepted: net.Socket[] = [];
    const onConnection = (s: net.Socket) => accepted.push(s);
    svc.service.app.server.on('connection', onConnection);
    const dropped = once(svc.service.app.server, 'drop');
    const port = Number(new URL(svc.url).port);
    // Idle sockets, as a flood would open them; the service's own keep-alive ones may count too.
    const flood = Array.from({ length: MAX_CONNECTIONS + 1 }, () => net.connect(port, '127.0.0.1'));
    for (const s of flood) s.on('error', () => undefined);
    await dropped;
    svc.service.app.server.off('connection', onConnection);
    expect(logs.filter((l) => l.msg === 'refused a connection: server.maxConnections are open')).toHaveLength(
      1,
    );
    const gone = accepted.map((s) => once(s, 'close'));
    for (const s of flood) s.destroy();
    await Promise.all(gone);
    expect((await raw('GET', '/health')).status).toBe(200);
  }, 20_000);
});

describe('what never reaches a route', () => {
  it('a path with a malformed escape gets an OpenAI-shaped 400 and a log line, token or not', async () => {
    for (const token of [undefined, svc.token]) {
      const a = await raw('GET', '/v1/models/%ZZ', { token });
      expect(a.status).toBe(400);
      expect(errorCode(a)).toBe('invalid_request');
    }
    expect(
      logs.filter((l) => l.msg === 'refused before any route' && l.url === '/v1/models/%ZZ'),
    ).toHaveLength(2);
  });

  it('a request Node cannot parse (an unknown method) gets the same shape and a log line', async () => {
    const huge = await raw('GET', '/v1/models', { headers: { 'x-filler': 'x'.repeat(20_000) } });
    expect(huge.status).toBe(431);
    const a = await raw('FOO', '/v1/models');
    expect(a.status).toBe(400);
    expect(errorCode(a)).toBe('invalid_request');
    expect(logs.some((l) => l.msg === 'refused: a request Node could not parse')).toBe(true);
  });
});

describe('a client’s own session key', () => {
  it('is kept as given, unless it begins like a key brainstem makes: then it cannot share that conversation', () => {
    const key = (header: string) => openAiSessionKey(header);
    expect(key('agent:main:main')).toBe('agent:main:main');
    expect(key('telegram:42')).toBe('client:telegram:42');
    expect(key(' conv:1234 ')).toBe('client:conv:1234');
    expect(key('tool:x')).toBe('client:tool:x');
  });
});

describe('deeply nested JSON', () => {
  const deep = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`;

  it('answers 400 naming the depth, not a brain error', async () => {
    const res = await fetch(`${svc.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${svc.token}`, 'content-type': 'application/json' },
      body: `{"model":"local","messages":[{"role":"user","content":"hi","extra":${deep(10_000)}}]}`,
    });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { code: string; message: string; type: string } };
    expect(body.error.code).toBe('json_too_deep');
    expect(body.error.type).toBe('invalid_request_error');
    expect(body.error.message).toMatch(/nested deeper than \d+ levels/);
    expect(llama.requests.filter((r) => r.path.endsWith('/chat/completions'))).toHaveLength(0);
  });

  it('on the tools API too, while brackets inside strings do not count', async () => {
    const res = await fetch(`${svc.url}/api/read_file`, {
      method: 'POST',
      headers: { authorization: `Bearer ${svc.token}`, 'content-type': 'application/json' },
      body: `{"path":"secret.txt","x":${deep(10_000)}}`,
    });
    expect(res.status).toBe(400);
    const fine = await fetch(`${svc.url}/api/read_file`, {
      method: 'POST',
      headers: { authorization: `Bearer ${svc.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ path: `${'['.repeat(500)}"\\{` }),
    });
    // Parsed and handed to the tool, which looks for that odd file name.
    expect(fine.status).toBe(404);
    expect(((await fine.json()) as { error: { code: string } }).error.code).toBe('not_found');
  });
});

describe('the API token', () => {
  it('read_file never reads brainstem’s own secrets, even under a root: its data dir, config, Claude credentials', async () => {
    for (const file of [
      'data/api-token',
      path.join(home, 'data', 'api-token'),
      'token-link',
      'token-hard-link',
      'config-hard-link',
      'upload-hard-link',
      'brainstem.json',
      '.claude/.credentials.json',
      'data/../data/brainstem.sqlite',
    ]) {
      const a = await raw('POST', '/api/read_file', { token: svc.token, body: { path: file } });
      expect([file, a.status]).toEqual([file, 403]);
      expect(errorCode(a)).toBe('tool_forbidden');
      expect(a.body).not.toContain(svc.token);
      expect(a.body).not.toContain('sk-ant');
    }
  });

  it('only the exact token passes: not a prefix, an extension, a repetition or one character off', async () => {
    const { token } = svc;
    const last = token.at(-1) === 'x' ? 'y' : 'x';
    const wrong = [
      token.slice(0, -1),
      `${token}x`,
      token + token,
      token.slice(0, -1) + last,
      last + token.slice(1),
      token.toUpperCase(),
      'x',
    ];
    for (const given of wrong) {
      const res = await fetch(`${svc.url}/v1/models`, { headers: { authorization: `Bearer ${given}` } });
      expect(res.status, given).toBe(401);
    }
    const res = await fetch(`${svc.url}/v1/models`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
  });

  it('gets mode 0600 on every start, not only when created, and the log says where it is, not what', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'bst-sec-token-'));
    mkdirSync(path.join(dir, 'data'));
    const file = path.join(dir, 'data', 'api-token');
    writeFileSync(file, 'bst_an_existing_token_0123456789\n');
    chmodSync(file, 0o644);
    // The service's own logger, scrubber included: the line must survive it and say where, never what.
    const lines: string[] = [];
    const logger = createLogger('info', { write: (line: string) => lines.push(line) });
    const s = await startTestService({ dir, config: { claude: { bin: 'true' } }, logger });
    try {
      expect(s.token).toBe('bst_an_existing_token_0123456789');
      expect(statSync(file).mode & 0o777).toBe(0o600);
      expect(lines.join('')).toContain(`API token read from ${file}`);
      expect(lines.join('')).not.toContain(s.token);
    } finally {
      await s.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the log names where a chosen token was set: server.apiToken in the file, or BRAINSTEM_API_TOKEN', async () => {
    const said = async (opts: { config?: Record<string, unknown>; env?: Record<string, string> }) => {
      const lines: string[] = [];
      const logger = createLogger('info', { write: (line: string) => lines.push(line) });
      const s = await startTestService({
        ...opts,
        config: { ...opts.config, claude: { bin: 'true' } },
        logger,
      });
      await s.close();
      const line = lines.find((l) => l.includes('"msg":"API token'));
      expect(line).not.toContain(s.token);
      return JSON.parse(line ?? '{}').msg as string;
    };
    const fileToken = 'bst_from_the_config_file_0123456789';
    expect(await said({ config: { server: { apiToken: fileToken } } })).toMatch(
      /^API token set by server\.apiToken in .*brainstem\.json$/,
    );
    expect(await said({ env: { BRAINSTEM_API_TOKEN: 'bst_from_the_environment_0123456789' } })).toBe(
      'API token from BRAINSTEM_API_TOKEN',
    );
  });

  it('a BRAINSTEM_API_TOKEN under 16 characters is named as the variable', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'bst-sec-env-'));
    try {
      expect(() => loadConfig({ BRAINSTEM_API_TOKEN: 'short', HOME: dir }, dir)).toThrow(ConfigError);
      expect(() => loadConfig({ BRAINSTEM_API_TOKEN: 'short', HOME: dir }, dir)).toThrow(
        /BRAINSTEM_API_TOKEN: must be at least 16 characters/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('an unusable token the owner wrote into data/api-token is replaced and said so, never shown', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'bst-sec-file-'));
    const data = path.join(dir, 'data');
    mkdirSync(data);
    writeFileSync(path.join(data, 'api-token'), 'my-own-token\n');
    const p = await spawnService({
      BRAINSTEM_CONFIG: path.join(dir, 'absent.json'),
      BRAINSTEM_DATA_DIR: data,
      HOME: dir,
    });
    try {
      const said = await p.waitForLog((l) => l.includes('was replaced by a generated one'));
      expect(JSON.parse(said)).toMatchObject({
        level: 40,
        msg: `the API token file ${path.join(data, 'api-token')} was replaced by a generated one: it held 12 characters, under the 16 needed; clients holding the old one get 401 (choose one with BRAINSTEM_API_TOKEN: at least 16 visible ASCII characters, no spaces)`,
      });
      expect(readFileSync(path.join(data, 'api-token'), 'utf8')).toMatch(/^bst_/);
      expect(p.logs.join('\n')).not.toContain('my-own-token');
    } finally {
      await p.stop('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a token no client can send in its Bearer header (a space, an accent) is refused at start, naming where it was set', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'bst-sec-env-'));
    try {
      expect(() =>
        loadConfig({ BRAINSTEM_API_TOKEN: 'correct horse battery staple', HOME: dir }, dir),
      ).toThrow(/BRAINSTEM_API_TOKEN \(server\.apiToken\): visible ASCII characters only, without spaces/);
      const file = path.join(dir, 'brainstem.json');
      writeFileSync(file, JSON.stringify({ server: { apiToken: 'mot-de-passe-été-2026' } }));
      expect(() => loadConfig({ BRAINSTEM_CONFIG: file, HOME: dir }, dir)).toThrow(
        /server\.apiToken: visible ASCII characters only, without spaces/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
