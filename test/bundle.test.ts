import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { execa } from 'execa';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type FakeLlama, startFakeLlama } from './fakes/llama.js';
import { type FakeTelegram, startFakeTelegram } from './fakes/telegram.js';
import { ARTICLE_SENTENCE, type FakeWeb, startFakeWeb } from './fakes/web.js';
import { CLAUDE_BIN } from './helpers/claude-bin.js';
import { claudeOnFake } from './helpers/claude-fake.js';
import { type ServiceProcess, spawnService } from './helpers/process.js';

/**
 * The bundle as `npm start` runs it (`npm run build` first, unless dist/ is
 * current: test/helpers/build.ts), node with the start script's flags on
 * dist/src/main.js. What the bundling could break is checked on real
 * protocols: the HTTP routes, /mcp with the MCP SDK's client, the local brain
 * through undici (a chunk loaded on first use), grammY against the Bot API
 * emulator.
 */
const claude = claudeOnFake();
let llama: FakeLlama;
let tg: FakeTelegram;
let web: FakeWeb;
let svc: ServiceProcess;
const token = 'bundle-test-token-0123456789';
/** The Node built-ins the service had loaded when it began to listen (test/helpers/builtins-at-listen.cjs). */
let builtinsFile: string;
const auth = { authorization: `Bearer ${token}` };

beforeAll(async () => {
  llama = await startFakeLlama();
  tg = await startFakeTelegram();
  web = await startFakeWeb();
  const dir = mkdtempSync(path.join(tmpdir(), 'bst-bundle-'));
  const config = path.join(dir, 'brainstem.json');
  builtinsFile = path.join(dir, 'builtins-at-listen.txt');
  writeFileSync(
    config,
    JSON.stringify({
      dataDir: path.join(dir, 'data'),
      defaultMode: 'local',
      server: { modeTag: false },
      claude: { bin: CLAUDE_BIN, env: claude.cli.env },
      llama: { baseUrl: llama.baseUrl },
      tools: { webFetch: { allowPrivate: ['127.0.0.1'] } },
    }),
  );
  svc = await spawnService(
    {
      BRAINSTEM_CONFIG: config,
      HOME: dir,
      BRAINSTEM_API_TOKEN: token,
      TELEGRAM_BOT_TOKEN: tg.token,
      TELEGRAM_API_ROOT: tg.apiRoot,
      TELEGRAM_ALLOWED_USERS: '111,112',
      // For the idle release's line, which says the start's tiering is over (see the stderr test).
      LOG_LEVEL: 'debug',
      NODE_OPTIONS: `--require=${path.resolve('test/helpers/builtins-at-listen.cjs')}`,
      BRAINSTEM_TEST_BUILTINS_FILE: builtinsFile,
    },
    { from: 'dist' },
  );
}, 180_000);

afterAll(async () => {
  await svc?.stop();
  await tg?.close();
  await web?.close();
  await llama?.close();
});

describe('the bundle (npm start)', { timeout: 60_000 }, () => {
  it('answers /health and an authenticated /v1/models', async () => {
    expect((await fetch(`${svc.url}/health`)).status).toBe(200);
    const models = await fetch(`${svc.url}/v1/models`, { headers: auth });
    expect(models.status).toBe(200);
    expect((await models.json()) as unknown).toMatchObject({ object: 'list' });
  });

  it('refuses a call without the token with 401, its log naming the client address (proxy-addr is a stand-in)', async () => {
    // The refusal logs request.ip: with trustProxy on, fastify would call the proxy-addr stand-in here and fail.
    const refused = await fetch(`${svc.url}/v1/models`, { headers: { 'x-forwarded-for': '203.0.113.9' } });
    expect(refused.status).toBe(401);
    const line = await svc.waitForLog((l) => l.includes('"ip":"127.0.0.1"'));
    expect(line).not.toContain('203.0.113.9');
  });

  it("serves /mcp to the MCP SDK's client", async () => {
    const server = await mcpToolNames();
    expect(server.name).toBe('brainstem');
    expect(server.tools).toContain('sessions');
  });

  it('reads a web page in its worker thread, an entry of the bundle of its own', async () => {
    const res = await fetch(`${svc.url}/api/web_fetch`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ url: `${web.url}/article` }),
    });
    expect(res.status).toBe(200);
    const { output } = (await res.json()) as { output: string };
    expect(output).toContain(ARTICLE_SENTENCE);
    expect(output).not.toContain('Log in');
  });

  it('streams a chat from the local brain', async () => {
    expect(await localChat('hello bundle')).toBe('echo: hello bundle');
  });

  it('answers a Telegram message through grammY', async () => {
    tg.user(111).says('hello telegram');
    const reply = await tg.waitFor(
      () => tg.botMessages(111).find((m) => m.text.includes('echo: hello telegram')),
      {
        timeoutMs: 30_000,
      },
    );
    expect(reply.text).toContain('echo: hello telegram');
  });

  it('writes nothing to stderr: no warning on any Node version (node-fetch calls no url.parse), and V8 knows every flag brainstem sets', async () => {
    // Node 24 warns (DEP0169) on node:url's parse, which node-fetch 2, grammY's client, calls
    // on every request; the build gives it a WHATWG-based one (scripts/build.ts).
    expect(tg.polling.maxConcurrent).toBeGreaterThan(0);
    // V8 writes "Error: unrecognized flag" for a flag it does not know (one a later V8 renamed),
    // and goes on without it: the start's tiering (src/start-tiering.ts) sets its flags at start
    // and again at the first idle window, whose release says so.
    await svc.waitForLog((l) => l.includes('"msg":"idle: heap released"'), 50_000);
    expect(svc.stderr()).toBe('');
  });

  it("keeps V8's compiled code between starts where Node can (22.1 and later)", async () => {
    const line = await svc.waitForLog((l) => l.includes('compile cache'));
    const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
    if (major > 22 || (major === 22 && minor >= 1)) {
      // Written once the service is up (flushCompileCache, before this line), not only at exit.
      const dir = path.resolve('node_modules/.cache/brainstem-compile');
      expect(line).toContain(`compile cache: on, in ${dir}`);
      expect(readdirSync(dir, { recursive: true }).length).toBeGreaterThan(0);
    } else {
      expect(line).toContain(`compile cache: off, Node ${process.versions.node} has none`);
    }
  });

  it("maps a stack frame to brainstem's source, and leaves a library's frame at its bundle position", () => {
    const chunk = readdirSync('dist/chunks').find((f) => f.startsWith('telegram-') && f.endsWith('.js'));
    const file = path.join('dist/chunks', chunk ?? 'missing');
    const code = readFileSync(file, 'utf8');
    const map = new SourceMap(JSON.parse(readFileSync(`${file}.map`, 'utf8')));
    const at = (text: string) => {
      const index = code.indexOf(text);
      expect(index).toBeGreaterThan(0);
      const line = code.slice(0, index).split('\n').length - 1;
      return map.findEntry(line, index - code.lastIndexOf('\n', index) - 1);
    };
    // Own code: a log message of the Telegram face, on a line where the build wrapped dozens of
    // library modules' bodies before it (scripts/eager-modules.ts), each moving what follows.
    const source = readFileSync('handlers/telegram/bot.ts', 'utf8').split('\n');
    const line = source.findIndex((l) => l.includes("'Telegram bot polling'"));
    const before = code.slice(0, code.indexOf('Telegram bot polling'));
    expect(before.split('((function(').length).toBeGreaterThan(10);
    expect(at('Telegram bot polling')).toMatchObject({
      originalSource: expect.stringContaining('handlers/telegram/bot.ts'),
      originalLine: line,
      originalColumn: source[line]?.indexOf("'Telegram bot polling'"),
    });
    // node-fetch's, after own code on the same line: no source (a bundle is a few long lines).
    expect(at('Only absolute URLs are supported')).not.toHaveProperty('originalSource', expect.any(String));
  });

  it('loads before it listens none of what serves no request, and bundles none of what it never calls', () => {
    const libraries = (files: string[]) =>
      new Set(
        files.flatMap((f) =>
          (JSON.parse(readFileSync(`dist/${f}.map`, 'utf8')) as { sources: string[] }).sources
            .map((s) => /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(s)?.[1])
            .filter((name): name is string => name !== undefined),
        ),
      );
    const atStart = libraries(startUpChunks());
    for (const lazy of ['execa', 'undici', 'grammy', 'echarts', '@resvg/resvg-js']) {
      expect(atStart, lazy).not.toContain(lazy);
    }
    expect(atStart).toContain('fastify');
    const everything = libraries(
      readdirSync('dist', { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.js')),
    );
    // fast-json-stringify itself is there: fastify's error serializer is built with it, and runs.
    // The MCP SDK: brainstem serves MCP's tool methods itself (handlers/http/mcp.ts). semver:
    // fastify checks with it the versions plugins declare, and brainstem's declare none.
    for (const never of [
      '@modelcontextprotocol/sdk',
      '@fastify/ajv-compiler',
      '@fastify/fast-json-stringify-compiler',
      'light-my-request',
      'ajv',
      'ajv-formats',
      'semver',
    ]) {
      expect(everything, never).not.toContain(never);
    }
  });

  it("holds one undici, its own, after /mcp calls and a local chat: Node's copy is never loaded", async () => {
    // /mcp answers without Web requests and responses, undici's cookie helpers are a
    // stand-in, and no ES facade reads node:http's getters (scripts/build.ts): each would
    // load Node's own undici. The calls again, so that this test alone (-t) makes them.
    await mcpToolNames();
    await localChat('one undici');
    const loaded = await builtinsNow();
    expect(loaded).toContain('http');
    expect(loaded.filter((m) => m.startsWith('internal/deps/undici/'))).toEqual([]);
    // The control: Node's globals alone load its copy, under the name checked above.
    const control = await execa(process.execPath, [
      '-e',
      'new Response("x"); console.log(process.moduleLoadList.join())',
    ]);
    expect(control.stdout).toContain('NativeModule internal/deps/undici/undici');
  });

  it('loads no node:https for a Bot API root on http (a local Bot API server), after its calls', async () => {
    // grammY's Agent and node-fetch's request come from node:https only for an https root
    // (scripts/build.ts, LAZY_BUILTINS): requiring it loads node:tls, some 5 MB of an idle
    // Node 24's resident memory. A message through the bot: grammY has called.
    tg.user(112).says('plain http');
    await tg.waitFor(() => tg.botMessages(112).find((m) => m.text.includes('echo: plain http')), {
      timeoutMs: 30_000,
    });
    const loaded = await builtinsNow();
    expect(loaded).toContain('http');
    expect(loaded.filter((m) => m === 'https')).toEqual([]);
  });

  it("loads neither node:http2 nor node:tls for undici's requests over HTTP/1.1 (a local chat)", async () => {
    // undici reads ten constants of node:http2 as it loads and calls it only for a connection that
    // negotiated HTTP/2, which brainstem never allows (scripts/build.ts, undiciHttp2): node:http2
    // loads node:tls, megabytes of resident memory from undici's first request on.
    expect(await localChat('no http2')).toBe('echo: no http2');
    const loaded = await builtinsNow();
    expect(loaded).toContain('http');
    expect(loaded.filter((m) => /^(http2|tls|internal\/http2\/|internal\/tls\/)/.test(m))).toEqual([]);
  });

  it('probes a llama-server on https: the import of node:https it makes for one has its exports', async () => {
    // A dynamic import of a LAZY_BUILTINS built-in came as a module with only a default export
    // (esbuild's for a CommonJS one): `(await import('node:https')).get` was undefined, and every
    // probe of an https upstream failed ('not reachable (a is not a function)'), the mode down.
    const dir = mkdtempSync(path.join(tmpdir(), 'bst-bundle-https-'));
    try {
      const config = path.join(dir, 'brainstem.json');
      // Where nothing listens: the probe's own failure is what it says.
      writeFileSync(
        config,
        JSON.stringify({ dataDir: path.join(dir, 'data'), llama: { baseUrl: 'https://127.0.0.1:1/v1' } }),
      );
      const doctor = await execa(process.execPath, ['dist/src/main.js', 'doctor'], {
        env: { BRAINSTEM_CONFIG: config, HOME: dir, BRAINSTEM_API_TOKEN: token },
        extendEnv: false,
        reject: false,
      });
      const line = doctor.stdout.split('\n').find((l) => l.includes('llama upstream'));
      expect(line).toContain('https://127.0.0.1:1/health not reachable (connect ECONNREFUSED 127.0.0.1:1)');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("loads before it listens none of Node's HTTP/2, TLS or undici", () => {
    // fastify's node:http2 and node:https are stand-ins (scripts/build.ts, STAND_INS): it
    // serves those only when asked to. undici comes with the first outgoing request, and no
    // ES facade reads node:http's getters (on Node 24 one would load Node's own undici).
    const loaded = readFileSync(builtinsFile, 'utf8').split('\n').filter(Boolean);
    expect(loaded).toContain('http');
    expect(loaded.filter((m) => /^(http2|https|tls|internal\/deps\/undici\/)/.test(m))).toEqual([]);
  });

  it('loads before it listens none of the built-ins it needs only later (scripts/build.ts, LAZY_BUILTINS)', () => {
    // Each brings a batch of Node's modules (node:crypto some 20); the first answer needs neither,
    // the Bearer check included (src/api-token.ts).
    const loaded = readFileSync(builtinsFile, 'utf8').split('\n').filter(Boolean);
    expect(loaded.filter((m) => /^(crypto|fs\/promises)$/.test(m))).toEqual([]);
  });

  it('keeps every chunk of its own code in Latin-1, which V8 stores at one byte per character', () => {
    // One character beyond Latin-1 (an emoji in a message text, "…" in a regular expression)
    // and V8 holds the whole chunk's source at two bytes per character, for as long as it runs.
    const wide = readdirSync('dist', { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.js'))
      .filter((f) => /[\u0100-\uffff]/.test(readFileSync(path.join('dist', f), 'utf8')))
      // @mozilla/readability's own source; loaded on the first web_fetch only.
      .filter((f) => !path.basename(f).startsWith('readability-'));
    expect(wide).toEqual([]);
  });

  it('reads at load no export of node:fs that Node 24 deprecates, so a bundle built on Node 20 starts silent there', () => {
    // The stderr test above builds on the Node that runs it; pm2 after a Node upgrade does not.
    const chunk = (f: string) => readFileSync(path.join('dist/chunks', f), 'utf8');
    const fsWrappers = readdirSync('dist/chunks').filter(
      (f) => f.endsWith('.js') && chunk(`${f}.map`).includes('builtins-by-require:node:fs"'),
    );
    expect(fsWrappers).not.toEqual([]);
    expect(fsWrappers.filter((f) => /\.[FRWX]_OK\b/.test(chunk(f)))).toEqual([]);
  });
});

/** The service's MCP server, as a client sees it: its name and its tools. */
async function mcpToolNames(): Promise<{ name?: string; tools: string[] }> {
  const client = new Client({ name: 'bundle-test', version: '1.0.0' });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(`${svc.url}/mcp`), { requestInit: { headers: auth } }),
  );
  try {
    const { tools } = await client.listTools();
    return { name: client.getServerVersion()?.name, tools: tools.map((t) => t.name) };
  } finally {
    await client.close();
  }
}

/** The Node built-ins the service has loaded by now (test/helpers/builtins-at-listen.cjs, on SIGUSR2). */
async function builtinsNow(): Promise<string[]> {
  const now = `${builtinsFile}.now`;
  // A list an earlier test asked for would be read as this one's.
  rmSync(now, { force: true });
  svc.child.kill('SIGUSR2');
  // The file appears once the process has handled the signal.
  await vi.waitFor(() => expect(existsSync(now)).toBe(true), { timeout: 10_000, interval: 20 });
  return readFileSync(now, 'utf8').split('\n').filter(Boolean);
}

/** A streamed chat with the local brain (the fake llama-server echoes): the answer's text. */
async function localChat(text: string): Promise<string> {
  const client = new OpenAI({ baseURL: `${svc.url}/v1`, apiKey: token, maxRetries: 0 });
  const stream = await client.chat.completions.create({
    model: 'local',
    stream: true,
    messages: [{ role: 'user', content: text }],
  });
  let answer = '';
  for await (const chunk of stream) answer += chunk.choices[0]?.delta?.content ?? '';
  return answer;
}

/**
 * The chunks node loads before the server listens: the entry, the modules
 * `serve` imports (src/main.ts), and every chunk those import statically.
 */
function startUpChunks(): string[] {
  const beforeListen = [
    'stack-trace-',
    'zod-',
    'config-',
    'instance-lock-',
    'logger-',
    'service-',
    'handlers-',
  ];
  const entry = 'src/main.js';
  const served = [...readFileSync(`dist/${entry}`, 'utf8').matchAll(/import\("\.\.\/(chunks\/[^"]+\.js)"\)/g)]
    .map((m) => m[1] as string)
    .filter((f) => beforeListen.some((prefix) => path.basename(f).startsWith(prefix)));
  expect(served).toHaveLength(beforeListen.length);
  const seen = new Set<string>();
  const visit = (file: string): void => {
    if (seen.has(file)) return;
    seen.add(file);
    const code = readFileSync(`dist/${file}`, 'utf8');
    for (const m of code.matchAll(/(?:from|import)"(\.\.?\/[^"]+\.js)"/g)) {
      visit(path.posix.join(path.posix.dirname(file), m[1] as string));
    }
  };
  for (const file of [entry, ...served]) visit(file);
  return [...seen];
}
