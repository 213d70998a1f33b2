/**
 * A fake Anthropic Messages API, for running the real `claude` CLI offline.
 *
 *   const fake = await startFakeAnthropic();
 *   fake.script((req) => text(['Hello ', 'world'], { delayMs: 20 }));
 *   const cli = await claudeTestEnv(fake.url);          // temp HOME + env pointing at the fake
 *   // … run `claude -p …` with cli.env (e.g. as Config['claude'].env) …
 *   expect(fake.mainRequests()[0]?.lastUserText).toBe('hi');
 *   await fake.close();
 *   await cli.cleanup();
 *
 * A test file has both for all its tests from claudeOnFake() (test/helpers/claude-fake.ts).
 *
 * The CLI sends `HEAD /` (a reachability probe) and `POST /v1/messages?beta=true`,
 * always streamed. A "main" request is the conversation itself: it carries the
 * CLI's tool definitions. Anything else (title generation, summaries, quota
 * probes) is a side request and gets a short fixed text, so scripts only see
 * the conversation and tests stay deterministic. `POST /v1/messages/count_tokens`
 * (the CLI's `ENABLE_TOOL_SEARCH=auto` measures its tools with it) gets a count.
 *
 * Tool search (the current CLI, 2.1.332): tools sent with `defer_loading: true`
 * are hidden from the model until a `tool_reference` block in a tool result
 * (what the CLI's `ToolSearch` tool returns) loads them, as the real API does. When
 * a script asks for a tool the model cannot see yet and `ToolSearch` is offered,
 * the fake first answers with `ToolSearch {"query":"select:<tool>"}`, then with
 * the scripted call once the CLI sends the search result back, as a model would.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface FakeUsage {
  input_tokens: number;
  output_tokens: number;
  cache_read_input_tokens: number;
  cache_creation_input_tokens: number;
  /** The cache written, by how long it lives (the API gives it; the CLI asks for 1 h on a subscription). */
  cache_creation?: { ephemeral_5m_input_tokens: number; ephemeral_1h_input_tokens: number };
  /** Web searches the API ran for the call: also in `message_delta`'s usage, as the API gives them in the end. */
  server_tool_use?: { web_search_requests: number };
  /** `fast`: served in fast mode, which costs more on some models. */
  speed?: 'standard' | 'fast';
  /** Where the call ran; `us` (US-only inference) costs more. */
  inference_geo?: string;
  /**
   * The call's sampling rounds, each with its own counts: the call's model's (`message`, which add
   * up to the call's), or another `model`'s that the advisor tool consulted (`advisor_message`).
   */
  iterations?: ({ type: 'message' | 'advisor_message'; model?: string } & Omit<FakeUsage, 'iterations'>)[];
}

/** Streams `chunks` as text deltas of one text block. */
export interface TextReply {
  type: 'text';
  chunks: string[];
  /** Pause before each chunk after the first. */
  delayMs?: number;
  /** Hold the stream after `gateAfter` chunks (default 1) until this settles. */
  gate?: PromiseLike<unknown>;
  gateAfter?: number;
  /**
   * Hold chunk i + 1 until `holds[i]` settles: a test releases each part once it has seen the one
   * before it arrive, so the parts reach the client as far apart as its own events say, not a guess.
   */
  holds?: PromiseLike<unknown>[];
  usage?: Partial<FakeUsage>;
  /** Extra response headers, e.g. `anthropic-ratelimit-unified-*` on a success. */
  headers?: Record<string, string>;
  /** The message's `stop_reason` (default `end_turn`), e.g. `max_tokens` or `model_context_window_exceeded`. */
  stopReason?: string;
}

/**
 * Asks the CLI to run a tool. When the CLI sends the tool result back, the fake
 * answers with `then` by itself (the script is not asked again).
 */
export interface ToolUseReply {
  type: 'tool_use';
  name: string;
  input: Record<string, unknown>;
  then: FakeReply;
  /** A text block streamed before the tool_use block ("Let me check."). */
  preamble?: string;
  /**
   * Called once the tool_use block is sent; the message's end waits for what it returns, so a
   * test sees whether the CLI acts on the block before the message ends.
   */
  endGate?: () => PromiseLike<unknown>;
  usage?: Partial<FakeUsage>;
  headers?: Record<string, string>;
}

/** An HTTP error with Anthropic's error body. */
export interface HttpErrorReply {
  type: 'http_error';
  status: number;
  message?: string;
  headers?: Record<string, string>;
}

export type FakeReply = TextReply | ToolUseReply | HttpErrorReply;

export interface RecordedRequest {
  method: string;
  /** Path with query, e.g. `/v1/messages?beta=true`. */
  path: string;
  headers: IncomingHttpHeaders;
  /** Parsed JSON body (undefined for HEAD or a non-JSON body). */
  body: MessagesBody | undefined;
  /** The conversation request (it carries tool definitions), as opposed to a side request. */
  main: boolean;
  /**
   * Tools the model can call in this request: those sent with their schema, less the
   * deferred ones (`defer_loading`) that no `tool_reference` in the conversation has loaded.
   */
  tools: string[];
  /**
   * Texts of the user turns, one entry per user message with text; the blocks the CLI
   * adds itself are left out (`<system-reminder>`, and the current CLI's
   * `[Image: source: <path>]` after each image it keeps a copy of).
   */
  userTexts: string[];
  /** The last entry of `userTexts` ('' if none). */
  lastUserText: string;
  /**
   * The user's own words in each of `userTexts`: without the blocks brainstem
   * puts before them (`<instructions source="brainstem">` for the outbox or a
   * long mode prompt, the client's instructions, `<history>`, `<context>`).
   */
  userTurns: string[];
  /** The last entry of `userTurns` ('' if none). */
  lastUserTurn: string;
  /** Tool results in the last user message. */
  toolResults: { toolUseId: string; content: string; isError: boolean }[];
}

export interface MessagesBody {
  model?: string;
  stream?: boolean;
  system?: unknown;
  tools?: unknown[];
  messages?: { role: string; content: unknown }[];
  [key: string]: unknown;
}

export type Script = (req: RecordedRequest) => FakeReply | Promise<FakeReply>;

export interface FakeAnthropic {
  /** Base URL for `ANTHROPIC_BASE_URL`. */
  url: string;
  /** Every request, in arrival order (HEAD probes included). */
  requests: RecordedRequest[];
  /** Only the conversation requests. */
  mainRequests(): RecordedRequest[];
  /** Decides the reply to each main request from now on. Default: `text(['Hello from the fake.'])`. */
  script(fn: Script): void;
  /** Stops the server and drops open streams (a held gate included). */
  close(): Promise<void>;
}

export const DEFAULT_USAGE: FakeUsage = {
  input_tokens: 100,
  output_tokens: 20,
  cache_read_input_tokens: 0,
  cache_creation_input_tokens: 0,
};

export function text(chunks: string | string[], opts: Omit<TextReply, 'type' | 'chunks'> = {}): TextReply {
  return { type: 'text', chunks: typeof chunks === 'string' ? [chunks] : chunks, ...opts };
}

export function toolUse(
  name: string,
  input: Record<string, unknown>,
  then: FakeReply,
  opts: Omit<ToolUseReply, 'type' | 'name' | 'input' | 'then'> = {},
): ToolUseReply {
  return { type: 'tool_use', name, input, then, ...opts };
}

/**
 * `shouldRetry: false` sends `x-should-retry: false`: the CLI then gives up at once
 * (on OAuth credentials it still retries a 401 once, to refresh the token).
 */
export function httpError(
  status: number,
  opts: { message?: string; headers?: Record<string, string>; shouldRetry?: boolean } = {},
): HttpErrorReply {
  const headers = { ...opts.headers };
  if (opts.shouldRetry !== undefined) headers['x-should-retry'] = String(opts.shouldRetry);
  return { type: 'http_error', status, message: opts.message, headers };
}

/**
 * From now on `fake` refuses every turn with the subscription limit; it resets `resetsIn` ms after
 * the first refusal (the same limit for the later ones). Resolves with the reset time once the first
 * refusal went out.
 */
export function refuseWithLimit(fake: Pick<FakeAnthropic, 'script'>, resetsIn: number): Promise<number> {
  return new Promise((resolve) => {
    let resetSec: number | undefined;
    fake.script(() => {
      resetSec ??= Math.ceil((Date.now() + resetsIn) / 1000);
      resolve(resetSec * 1000);
      return httpError(429, { headers: usageLimitHeaders(resetSec), shouldRetry: false });
    });
  });
}

/** Headers of a rejected subscription (unified) rate limit; `resetsAtSec` is a Unix time in seconds. */
export function usageLimitHeaders(resetsAtSec: number, claim = 'five_hour'): Record<string, string> {
  return {
    'anthropic-ratelimit-unified-status': 'rejected',
    'anthropic-ratelimit-unified-reset': String(resetsAtSec),
    'anthropic-ratelimit-unified-representative-claim': claim,
  };
}

/**
 * The refusal assumed for a spent monthly Agent SDK credit (see isCreditSpent in
 * brains/claude-code/errors.ts): a 429 whose unified headers say the usage
 * credits are out. `resetsAtSec` is a Unix time in seconds.
 */
export function creditSpent(resetsAtSec: number): HttpErrorReply {
  return httpError(429, {
    shouldRetry: false,
    message: 'fake: the Agent SDK credit is spent',
    headers: {
      'anthropic-ratelimit-unified-status': 'rejected',
      'anthropic-ratelimit-unified-reset': String(resetsAtSec),
      'anthropic-ratelimit-unified-representative-claim': 'overage',
      'anthropic-ratelimit-unified-overage-status': 'rejected',
      'anthropic-ratelimit-unified-overage-reset': String(resetsAtSec),
      'anthropic-ratelimit-unified-overage-disabled-reason': 'out_of_credits',
    },
  });
}

/** A promise a test opens by hand, for `TextReply.gate`. */
export function createGate(): { promise: Promise<void>; open(): void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

const ERROR_TYPES: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
  529: 'overloaded_error',
};

export async function startFakeAnthropic(): Promise<FakeAnthropic> {
  const requests: RecordedRequest[] = [];
  let script: Script = () => text(['Hello from the fake.']);
  /** Follow-ups of tool_use replies, by tool_use id. */
  const pendingTools = new Map<string, FakeReply>();
  let ids = 0;
  const nextId = (prefix: string) => `${prefix}_fake${String(++ids).padStart(6, '0')}`;

  const server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(parts).toString('utf8');
      const recorded = record(req.method ?? 'GET', req.url ?? '/', req.headers, raw);
      requests.push(recorded);
      void respond(recorded, res).catch(() => res.destroy());
    });
  });

  async function respond(req: RecordedRequest, res: ServerResponse): Promise<void> {
    if (req.method === 'HEAD' || req.method === 'GET') {
      res.writeHead(200).end();
      return;
    }
    if (req.method === 'POST' && pathOf(req.path) === '/v1/messages/count_tokens') {
      // About four characters a token: the CLI only compares it with its context window.
      const input_tokens = Math.ceil(JSON.stringify(req.body ?? {}).length / 4);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ input_tokens }));
      return;
    }
    if (req.method !== 'POST' || pathOf(req.path) !== '/v1/messages') {
      sendError(res, {
        type: 'http_error',
        status: 404,
        message: `fake: no route for ${req.method} ${req.path}`,
      });
      return;
    }
    const model = typeof req.body?.model === 'string' ? req.body.model : 'claude-fake';
    let reply: FakeReply;
    if (!req.main) reply = text(['Fake side answer']);
    else {
      const followUp = req.toolResults.map((r) => pendingTools.get(r.toolUseId)).find((r) => r !== undefined);
      reply = searchFirst(req, followUp ?? (await script(req)));
    }
    if (reply.type === 'http_error') sendError(res, reply);
    else await stream(res, model, reply);
  }

  async function stream(res: ServerResponse, model: string, reply: TextReply | ToolUseReply): Promise<void> {
    const usage = { ...DEFAULT_USAGE, ...reply.usage };
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      'request-id': nextId('req'),
      ...reply.headers,
    });
    const send = (event: string, data: Record<string, unknown>) => {
      if (!res.destroyed) res.write(`event: ${event}\ndata: ${JSON.stringify({ type: event, ...data })}\n\n`);
    };
    send('message_start', {
      message: {
        id: nextId('msg'),
        type: 'message',
        role: 'assistant',
        model,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { ...usage, output_tokens: 1 },
      },
    });
    let index = 0;
    const textBlock = async (
      chunks: string[],
      opts: Pick<TextReply, 'delayMs' | 'gate' | 'gateAfter' | 'holds'>,
    ) => {
      send('content_block_start', { index, content_block: { type: 'text', text: '' } });
      const gateAfter = opts.gateAfter ?? 1;
      for (const [i, chunk] of chunks.entries()) {
        if (i === gateAfter && opts.gate) await opts.gate;
        const hold = i > 0 ? opts.holds?.[i - 1] : undefined;
        if (hold) await hold;
        if (i > 0 && opts.delayMs) await sleep(opts.delayMs);
        send('content_block_delta', { index, delta: { type: 'text_delta', text: chunk } });
      }
      send('content_block_stop', { index: index++ });
    };
    if (reply.type === 'text') await textBlock(reply.chunks, reply);
    else {
      if (reply.preamble) await textBlock([reply.preamble], {});
      const id = nextId('toolu');
      pendingTools.set(id, reply.then);
      send('content_block_start', {
        index,
        content_block: { type: 'tool_use', id, name: reply.name, input: {} },
      });
      send('content_block_delta', {
        index,
        delta: { type: 'input_json_delta', partial_json: JSON.stringify(reply.input) },
      });
      send('content_block_stop', { index });
      await reply.endGate?.();
    }
    send('message_delta', {
      delta: {
        stop_reason: reply.type === 'text' ? (reply.stopReason ?? 'end_turn') : 'tool_use',
        stop_sequence: null,
      },
      usage: {
        output_tokens: usage.output_tokens,
        ...(usage.server_tool_use ? { server_tool_use: usage.server_tool_use } : {}),
      },
    });
    send('message_stop', {});
    res.end();
  }

  /**
   * A call to a tool the model cannot see yet becomes a ToolSearch for it, then the call.
   * Once only: a search that loads nothing (an unknown or refused tool) is followed by the
   * call all the same, so the test sees how the CLI refuses it.
   */
  function searchFirst(req: RecordedRequest, reply: FakeReply): FakeReply {
    if (reply.type !== 'tool_use' || req.tools.includes(reply.name) || !req.tools.includes(TOOL_SEARCH)) {
      return reply;
    }
    const query = `select:${reply.name}`;
    const lastAssistant = req.body?.messages?.filter((m) => m.role === 'assistant').at(-1);
    const justSearched = blocks(lastAssistant?.content).some(
      (b) =>
        b.type === 'tool_use' && b.name === TOOL_SEARCH && (b.input as { query?: unknown })?.query === query,
    );
    return justSearched ? reply : toolUse(TOOL_SEARCH, { query }, reply);
  }

  function sendError(res: ServerResponse, reply: HttpErrorReply): void {
    const type = ERROR_TYPES[reply.status] ?? 'api_error';
    res.writeHead(reply.status, {
      'content-type': 'application/json',
      'request-id': nextId('req'),
      ...reply.headers,
    });
    res.end(JSON.stringify({ type: 'error', error: { type, message: reply.message ?? `fake ${type}` } }));
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    mainRequests: () => requests.filter((r) => r.main),
    script(fn) {
      script = fn;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The current CLI's tool that loads deferred tools by name or keywords. */
const TOOL_SEARCH = 'ToolSearch';

function pathOf(url: string): string {
  return url.split('?')[0] ?? url;
}

/** brainstem's blocks before the turn (brains/claude-code/prompt.ts), each followed by a blank line. */
const SETUP_BLOCKS = /^(?:<(instructions|history|context) source="[a-z]+">\n[\s\S]*?\n<\/\1>\n\n)+/;

/** A text block the CLI wrote, not brainstem. */
const cliAnnotation = (text: string): boolean =>
  text.startsWith('<system-reminder>') || /^\[Image: source: [^\]]*\]$/.test(text);

function record(method: string, url: string, headers: IncomingHttpHeaders, raw: string): RecordedRequest {
  let body: MessagesBody | undefined;
  try {
    body = raw ? (JSON.parse(raw) as MessagesBody) : undefined;
  } catch {
    body = undefined;
  }
  const messages = body?.messages ?? [];
  const userTexts = messages
    .filter((m) => m.role === 'user')
    .map((m) =>
      blocks(m.content)
        .filter((b) => b.type === 'text' && typeof b.text === 'string' && !cliAnnotation(b.text))
        .map((b) => b.text as string)
        .join('\n'),
    )
    .filter((t) => t.length > 0);
  const lastUser = messages.filter((m) => m.role === 'user').at(-1);
  const toolResults = blocks(lastUser?.content)
    .filter((b) => b.type === 'tool_result')
    .map((b) => ({
      toolUseId: String(b.tool_use_id),
      content: blocks(b.content)
        .map((c) => (typeof c.text === 'string' ? c.text : ''))
        .join(''),
      isError: b.is_error === true,
    }));
  const main =
    method === 'POST' &&
    pathOf(url) === '/v1/messages' &&
    Array.isArray(body?.tools) &&
    body.tools.length > 0;
  return {
    method,
    path: url,
    headers,
    body,
    main,
    tools: callableTools(body),
    userTexts,
    lastUserText: userTexts.at(-1) ?? '',
    userTurns: userTexts.map((t) => t.replace(SETUP_BLOCKS, '')),
    lastUserTurn: (userTexts.at(-1) ?? '').replace(SETUP_BLOCKS, ''),
    toolResults,
  };
}

type Block = { type?: string; text?: unknown; [key: string]: unknown };

function callableTools(body: MessagesBody | undefined): string[] {
  const loaded = new Set(
    (body?.messages ?? [])
      .flatMap((m) => blocks(m.content))
      .flatMap((b) => (b.type === 'tool_result' ? blocks(b.content) : []))
      .filter((b) => b.type === 'tool_reference')
      .map((b) => String(b.tool_name)),
  );
  return (body?.tools ?? [])
    .map((t) => t as { name?: unknown; defer_loading?: unknown })
    .filter((t) => typeof t.name === 'string' && (t.defer_loading !== true || loaded.has(t.name)))
    .map((t) => t.name as string);
}

/** Message content as blocks: a plain string is one text block. */
function blocks(content: unknown): Block[] {
  if (typeof content === 'string') return [{ type: 'text', text: content }];
  return Array.isArray(content) ? (content as Block[]) : [];
}

export interface ClaudeTestEnv {
  /** Environment for the CLI; pass it as `Config['claude'].env`. */
  env: Record<string, string>;
  /** The temporary HOME (sessions live under `<home>/.claude/projects`). */
  home: string;
  cleanup(): Promise<void>;
}

/**
 * Environment that points the CLI at the fake with a fresh HOME. `auth: 'oauth'`
 * makes the CLI run on subscription credentials (CLAUDE_CODE_OAUTH_TOKEN, API key
 * blanked), which is what makes it read the unified rate-limit headers.
 */
export async function claudeTestEnv(
  baseUrl: string,
  opts: { auth?: 'api-key' | 'oauth' } = {},
): Promise<ClaudeTestEnv> {
  const home = await mkdtemp(path.join(tmpdir(), 'claude-home-'));
  const auth =
    opts.auth === 'oauth'
      ? { CLAUDE_CODE_OAUTH_TOKEN: 'sk-ant-oat01-fake', ANTHROPIC_API_KEY: '' }
      : { ANTHROPIC_API_KEY: 'sk-test', CLAUDE_CODE_OAUTH_TOKEN: '' };
  return {
    home,
    env: {
      HOME: home,
      // An inherited CLAUDE_CONFIG_DIR would move sessions out of the temp HOME.
      CLAUDE_CONFIG_DIR: path.join(home, '.claude'),
      ANTHROPIC_BASE_URL: baseUrl,
      ...auth,
      CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
      DISABLE_TELEMETRY: '1',
      // The CLI gives an MCP server 5 s to connect, then starts without its tools: too short on a loaded runner.
      MCP_CONNECT_TIMEOUT_MS: '60000',
    },
    cleanup: () => rm(home, { recursive: true, force: true }),
  };
}
