/**
 * A fake llama-server for tests and benchmarks: the same endpoints, status
 * codes and stream shape as the real one, with the answer scripted by the test.
 *
 *   const fake = await startFakeLlama({ chunkDelayMs: 5 });
 *   fake.url        // server root, e.g. http://127.0.0.1:40123 (where /health is)
 *   fake.baseUrl    // fake.url + '/v1' (what LLAMA_BASE_URL holds)
 *   fake.requests   // every request received, oldest first (see FakeRequest)
 *   await fake.arrived(r => …)  // the first request, received already or next, that matches
 *   fake.reply(r)   // answer every chat completion with r (a FakeReply)
 *   fake.script(fn) // answer each one with fn(body, n), n = 0 for the first; may be async
 *   fake.script()   // back to the default answer (a test that scripts a shared fake puts it back)
 *   fake.setLoading(true | false)
 *   fake.loadFor(ms)  // loading now, ready after ms (a slow model swap)
 *   fake.holdHealth(p)  // /health answers only once p settles (a slow probe); undefined: at once again
 *   fake.setContext(n)  // the context size in tokens (undefined: unlimited, the default)
 *   fake.holdLoads(p)   // Ollama: a load (POST /api/generate) answers only once p settles; undefined: at once again
 *   fake.loaded         // Ollama: the models in memory, loaded by a load or a chat completion naming them;
 *                       // delete one to play its keep_alive running out (Ollama unloads it)
 *   fake.holdUnloads(p) // Ollama: a model asked to unload (keep_alive 0) stays in /api/ps until p settles
 *                       // (a runner slow to free its memory); undefined: it goes at once again
 *   fake.unloads        // Ollama: the models asked to unload (keep_alive 0), oldest first
 *   await fake.down()   // stops listening (connections refused) and cuts those open: the server stopped
 *   await fake.up()     // listens again on the same port, no model in memory: the server restarted
 *   await fake.up({ audio: true })  // restarted hearing audio (with an audio model's --mmproj), or not
 *   await fake.close()
 *
 * Endpoints:
 *   GET  /health               503 {"error":{"message":"Loading model",…}} while loading, else 200 {"status":"ok"}
 *   GET  /v1/models            always 200, even while loading (like the real one: never use it as readiness)
 *   GET  /api/tags             the same list in Ollama's shape and OpenAI's at once ({models, object, data}),
 *                              as llama-server answers it for Ollama's clients, even while loading
 *   GET  /props                200 with default_generation_settings.n_ctx: the context (131072 when unlimited)
 *   POST /v1/chat/completions  503 while loading; 500 json.exception.parse_error for a body holding half
 *                              an emoji (see halfEmoji); 400 "unsupported content[].type" for a
 *                              content part of a type other than text, image_url and input_audio, in
 *                              any message (see unsupportedPart); 400 "input_audio.format must be
 *                              either 'wav' or 'mp3'" for an audio part of another format (see
 *                              unsupportedAudio); with `audio: false` (no audio model's --mmproj), 500
 *                              "audio input is not supported" for an audio part in any message (see
 *                              NO_AUDIO_ERROR); 400 `exceed_context_size_error` (with n_prompt_tokens,
 *                              n_ctx) for a prompt longer than the context (tokens counted as
 *                              JSON characters of messages and tools / 4); 400 "failed to parse
 *                              grammar" for tools whose JSON Schema llama-server cannot compile
 *                              into a grammar (see grammarFailure); else the reply: an SSE stream when `stream: true`
 *                              (role chunk, one chunk per FakeChunk, a finish chunk, a usage chunk when
 *                              `stream_options.include_usage`, `data: [DONE]`), or one JSON completion
 *   POST /_fake/loading {"loading": bool}   setLoading, for child processes (swap commands) to call
 *   POST /_fake/load    {"ms": n}           loadFor(n), same purpose
 *
 * loadingCommand(fake, loading) is the argv of a command that calls /_fake/loading, as a swap's
 * `start` / `stop` command would load or unload a real server.
 *
 * The default reply echoes the last user message as `echo: <text>`, one word per chunk.
 * With `logprobs: true` each content chunk carries `logprobs.content` (one entry per chunk,
 * `top_logprobs` alternatives), like llama-server.
 *
 * With `ollama: { models }` it is Ollama instead (its shapes from ollama/openai/openai.go and
 * server/routes.go): no /health and no /props (404 "404 page not found", as its router answers an
 * unknown path), `GET /` answers "Ollama is running", `GET /api/tags` lists the pulled models and
 * `GET /api/version` its version, `GET /api/ps` the models in memory (`loaded`); `/v1/models` lists every pulled model; a chat completion naming a
 * model it has not pulled is a 404 `model "x" not found, try pulling it first` (OpenAI's error
 * shape, type not_found_error), one holding a part other than text and image_url (`input_audio`…) in
 * any message a 400 "invalid message format" (openai/openai.go FromChatRequest, before the model is
 * looked up), and one with an image for a model not in `vision` a 500 "this model
 * is missing data required for image input". It never answers 503 while loading (it loads a model
 * on the first request that names it), and says nothing of a prompt longer than its context.
 * `POST /api/generate` with no prompt loads a model, as Ollama's docs/api.md "Load a model" says:
 * 200 `{"model","created_at","response":"","done":true,"done_reason":"load"}` once loaded (held
 * by holdLoads; one whose client went away meanwhile is dropped, not loaded), 404
 * `{"error":"model 'x' not found"}` for one not pulled, and for one in `tooBig`
 * the 500 Ollama's scheduler answers a model that does not fit: `{"error":"model requires more
 * system memory (…) than is available (…)"}`. With `keep_alive` 0 (`0`, `"0"`, `"0s"`) and no prompt it
 * unloads the model instead (docs/api.md "Unload a model"): 200 `{…,"done":true,"done_reason":"unload"}`
 * at once, as Ollama answers before its runner has freed the memory, and the model leaves `/api/ps`
 * then (or once holdUnloads' promise settles), as it does once the runner is gone.
 */
import { EventEmitter, once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** One piece of a streamed answer. */
export type FakeChunk =
  | string // a content delta
  | { reasoning: string } // a reasoning_content delta (llama-server's split-out thinking)
  | { toolCall: { index: number; id?: string; name?: string; arguments?: string } }
  | { wait: Promise<unknown> } // hold the stream here until the promise settles
  | { raw: string }; // bytes written as they are (malformed streams)

export interface FakeReply {
  chunks?: FakeChunk[];
  /** Default: 'tool_calls' when a chunk is a tool call, else 'stop'. */
  finishReason?: string;
  /**
   * Default: prompt_tokens from the request size, completion_tokens = number of chunks. `false`: no
   * usage at all, even when `stream_options.include_usage` asks for it (Ollama before 0.5.x ignores it).
   */
  usage?: { prompt_tokens: number; completion_tokens: number } | false;
  /** Delay before each chunk; default the server's chunkDelayMs. */
  chunkDelayMs?: number;
  /** Answer with this HTTP status and an error body instead (llama-server's error shape). */
  status?: number;
  error?: string;
  /** Response headers of that error answer (a proxy's `retry-after`). */
  headers?: Record<string, string>;
  /** End the stream after the chunks, with no finish chunk and no [DONE] (a crashed server). */
  truncate?: boolean;
}

export interface FakeRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  /** Parsed JSON body, if any. */
  body: unknown;
  /** 'completed' once the answer was fully sent, 'closed' if the client went away first. */
  ended: Promise<'completed' | 'closed'>;
}

export interface FakeLlamaOptions {
  loading?: boolean;
  /** The context size in tokens (llama-server's --ctx-size per slot); default unlimited. */
  contextTokens?: number;
  chunkDelayMs?: number;
  reply?: FakeReply;
  /**
   * false: its model hears nothing (no audio model's --mmproj), and an `input_audio` part in any
   * message is refused as llama-server refuses it (see NO_AUDIO_ERROR). Default: true.
   */
  audio?: boolean;
  /** Be Ollama (see the top of the file), with these models pulled (`qwen2.5:7b`), `vision` those that see images. */
  ollama?: { models: string[]; vision?: string[]; tooBig?: string[] };
}

export interface FakeLlama {
  url: string;
  baseUrl: string;
  requests: FakeRequest[];
  arrived(match: (r: FakeRequest) => boolean): Promise<FakeRequest>;
  reply(r: FakeReply): void;
  script(fn?: (body: ChatBody, n: number) => FakeReply | Promise<FakeReply>): void;
  setLoading(loading: boolean): void;
  loadFor(ms: number): void;
  holdHealth(until: Promise<unknown> | undefined): void;
  setContext(tokens: number | undefined): void;
  holdLoads(until: Promise<unknown> | undefined): void;
  holdUnloads(until: Promise<unknown> | undefined): void;
  loaded: Set<string>;
  unloads: string[];
  down(): Promise<void>;
  up(opts?: { audio?: boolean }): Promise<void>;
  close(): Promise<void>;
}

interface ChatBody {
  model?: string;
  stream?: boolean;
  stream_options?: { include_usage?: boolean };
  messages?: { role: string; content?: unknown }[];
  [key: string]: unknown;
}

/** A command that tells the fake to load (`loading: false`) or unload (`loading: true`): a swap's `systemctl start|stop`. */
export function loadingCommand(fake: Pick<FakeLlama, 'url'>, loading: boolean): string[] {
  const body = JSON.stringify({ loading });
  const script = `fetch(${JSON.stringify(`${fake.url}/_fake/loading`)}, { method: 'POST', headers: { 'content-type': 'application/json' }, body: ${JSON.stringify(body)} }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))`;
  return [process.execPath, '-e', script];
}

export async function startFakeLlama(opts: FakeLlamaOptions = {}): Promise<FakeLlama> {
  let loading = opts.loading ?? false;
  let readyTimer: NodeJS.Timeout | undefined;
  let chatCount = 0;
  let healthHold: Promise<unknown> | undefined;
  let contextTokens = opts.contextTokens;
  let hearsAudio = opts.audio ?? true;
  const byDefault = (body: ChatBody): FakeReply => opts.reply ?? echoReply(body);
  let answer: (body: ChatBody, n: number) => FakeReply | Promise<FakeReply> = byDefault;
  const requests: FakeRequest[] = [];
  const ollamaState: OllamaState = { loaded: new Set(), hold: undefined, holdUnload: undefined, unloads: [] };
  /** Who waits for a request (arrived), woken by each one. */
  const arrivals = new EventEmitter();

  const setLoading = (value: boolean) => {
    clearTimeout(readyTimer);
    loading = value;
  };
  const loadFor = (ms: number) => {
    setLoading(true);
    readyTimer = setTimeout(() => {
      loading = false;
    }, ms);
  };

  const server = http.createServer(async (req, res) => {
    const raw = await readBody(req);
    const body = raw ? safeJson(raw) : undefined;
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const ended = new Promise<'completed' | 'closed'>((resolve) => {
      res.on('close', () => resolve(res.writableFinished ? 'completed' : 'closed'));
    });
    requests.push({ method: req.method ?? 'GET', path, headers: req.headers, body, ended });
    arrivals.emit('request');
    const route = `${req.method} ${path}`;

    if (opts.ollama) {
      const answered = await ollamaRoute(route, body, opts.ollama, ollamaState, res);
      if (answered) return;
    }
    if (route === 'GET /health') {
      if (healthHold) await healthHold.catch(() => undefined);
      if (loading) return sendJson(res, 503, errorBody(503, 'Loading model', 'unavailable_error'));
      return sendJson(res, 200, { status: 'ok' });
    }
    if (route === 'GET /v1/models') {
      return sendJson(res, 200, {
        object: 'list',
        data: [{ id: 'fake-model', object: 'model', owned_by: 'fake' }],
      });
    }
    if (route === 'GET /api/tags') {
      return sendJson(res, 200, {
        models: [{ name: 'fake-model', model: 'fake-model', modified_at: '', size: '', digest: '' }],
        object: 'list',
        data: [{ id: 'fake-model', object: 'model', owned_by: 'fake' }],
      });
    }
    if (route === 'GET /props') {
      return sendJson(res, 200, {
        default_generation_settings: { n_ctx: contextTokens ?? 131072, params: { n_predict: -1 } },
        total_slots: 1,
        model_path: '/models/fake-model.gguf',
        chat_template: '{{ messages }}',
      });
    }
    if (route === 'POST /_fake/loading') {
      setLoading(Boolean((body as { loading?: unknown })?.loading));
      return sendJson(res, 200, { loading });
    }
    if (route === 'POST /_fake/load') {
      loadFor(Number((body as { ms?: unknown })?.ms ?? 0));
      return sendJson(res, 200, { loading });
    }
    if (route === 'POST /v1/chat/completions') {
      if (loading && !opts.ollama)
        return sendJson(res, 503, errorBody(503, 'Loading model', 'unavailable_error'));
      if (halfEmoji(body)) return sendJson(res, 500, errorBody(500, HALF_EMOJI_ERROR, 'server_error'));
      const chat = (body ?? {}) as ChatBody;
      if (!opts.ollama && unsupportedPart(chat.messages)) {
        return sendJson(res, 400, errorBody(400, 'unsupported content[].type', 'invalid_request_error'));
      }
      if (!opts.ollama && unsupportedAudio(chat.messages)) {
        return sendJson(res, 400, errorBody(400, AUDIO_FORMAT_ERROR, 'invalid_request_error'));
      }
      if (!opts.ollama && !hearsAudio && partsOf(chat.messages).some(isAudioPart)) {
        return sendJson(res, 500, errorBody(500, NO_AUDIO_ERROR, 'server_error'));
      }
      const grammar = grammarFailure(chat.tools);
      if (grammar) return sendJson(res, 400, errorBody(400, grammar, 'invalid_request_error'));
      const asked = Math.ceil(JSON.stringify([chat.messages ?? [], chat.tools ?? []]).length / 4);
      if (contextTokens !== undefined && asked > contextTokens && !opts.ollama) {
        return sendJson(res, 400, {
          error: {
            ...errorBody(
              400,
              `request (${asked} tokens) exceeds the available context size (${contextTokens} tokens), try increasing it`,
              'exceed_context_size_error',
            ).error,
            n_prompt_tokens: asked,
            n_ctx: contextTokens,
          },
        });
      }
      const reply = await answer(chat, chatCount++);
      if (reply.status !== undefined) {
        return sendJson(
          res,
          reply.status,
          errorBody(reply.status, reply.error ?? 'fake error', 'server_error'),
          reply.headers,
        );
      }
      if (chat.stream) return streamReply(res, chat, reply, opts.chunkDelayMs ?? 0);
      return sendJson(res, 200, completion(chat, reply));
    }
    sendJson(res, 404, errorBody(404, 'File Not Found', 'not_found_error'));
  });

  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  const url = `http://127.0.0.1:${port}`;
  const stopListening = async () => {
    if (!server.listening) return;
    server.closeAllConnections();
    server.close();
    await once(server, 'close');
  };

  return {
    url,
    baseUrl: `${url}/v1`,
    requests,
    arrived: (match) =>
      new Promise((resolve) => {
        const check = () => {
          const found = requests.find(match);
          if (!found) return;
          arrivals.off('request', check);
          resolve(found);
        };
        arrivals.on('request', check);
        check();
      }),
    reply: (r) => {
      answer = () => r;
    },
    script: (fn) => {
      answer = fn ?? byDefault;
    },
    setLoading,
    loadFor,
    holdHealth: (until) => {
      healthHold = until;
    },
    setContext: (tokens) => {
      contextTokens = tokens;
    },
    holdLoads: (until) => {
      ollamaState.hold = until;
    },
    holdUnloads: (until) => {
      ollamaState.holdUnload = until;
    },
    loaded: ollamaState.loaded,
    unloads: ollamaState.unloads,
    down: stopListening,
    up: async (restart = {}) => {
      hearsAudio = restart.audio ?? hearsAudio;
      // A restarted Ollama has nothing in memory (llama-server's flavour answers as before).
      ollamaState.loaded.clear();
      server.listen(port, '127.0.0.1');
      await once(server, 'listening');
    },
    close: async () => {
      clearTimeout(readyTimer);
      await stopListening();
    },
  };
}

/** Gin's answer to a path it has no route for: plain text, no JSON. */
function goNotFound(res: http.ServerResponse) {
  res.writeHead(404, { 'content-type': 'text/plain' });
  res.end('404 page not found');
}

/** A pulled model's name as Ollama lists it: `qwen2.5` is `qwen2.5:latest`. */
function ollamaName(name: string): string {
  return /:[^/]*$/.test(name) ? name : `${name}:latest`;
}

/**
 * A name as Ollama compares two (types/model/name.go): ParseName reads `[host/][namespace/]model[:tag]`
 * from the right and fills what is left out from `registry.ollama.ai/library/?:latest`, and
 * EqualFold compares the parts without case: `Qwen2.5:7B` and `registry.ollama.ai/library/qwen2.5:7b`
 * are the model pulled as `qwen2.5:7b`.
 */
function ollamaIdentity(name: string): string {
  const parts = /^(?:(?:(.+)\/)?([^/]+)\/)?([^/:]+)(?::([^/:]+))?$/.exec(name);
  if (!parts) return name.toLowerCase();
  const [, host = 'registry.ollama.ai', namespace = 'library', model, tag = 'latest'] = parts;
  return `${host}/${namespace}/${model}:${tag}`.toLowerCase();
}

/** The pulled model (as listed) a request's `model` names, if any. */
function pulledAs(listed: string[], asked: string): string | undefined {
  return listed.find((name) => ollamaIdentity(name) === ollamaIdentity(asked));
}

/** What the Ollama flavour keeps between requests. */
interface OllamaState {
  /** The models in memory, by their listed name (`qwen2.5:latest`) however a request named them. */
  loaded: Set<string>;
  /** While set, a load answers only once it settles. */
  hold: Promise<unknown> | undefined;
  /** While set, a model asked to unload leaves `loaded` only once it settles. */
  holdUnload: Promise<unknown> | undefined;
  /** The models asked to unload, oldest first. */
  unloads: string[];
}

/** Ollama's keep_alive that unloads at once: 0, as a number or a duration string. */
function unloadsNow(keepAlive: unknown): boolean {
  return keepAlive === 0 || (typeof keepAlive === 'string' && /^0+(\.0+)?[smh]?$/.test(keepAlive.trim()));
}

/**
 * Ollama's answers that differ from llama-server's; false when the request goes on as
 * llama-server's would (a chat completion for a model it has, the `_fake` routes).
 */
async function ollamaRoute(
  route: string,
  body: unknown,
  ollama: NonNullable<FakeLlamaOptions['ollama']>,
  state: OllamaState,
  res: http.ServerResponse,
): Promise<boolean> {
  const pulled = ollama.models.map(ollamaName);
  if (route === 'POST /api/generate') {
    const asked = (body ?? {}) as { model?: unknown; prompt?: unknown; keep_alive?: unknown };
    const model = typeof asked.model === 'string' ? asked.model : '';
    const name = pulledAs(pulled, model);
    if (name === undefined) {
      sendJson(res, 404, { error: `model '${model}' not found` });
      return true;
    }
    if (asked.prompt) {
      sendJson(res, 501, { error: 'the fake answers only a load or an unload (no prompt)' });
      return true;
    }
    if (unloadsNow(asked.keep_alive)) {
      // Ollama answers at once and its runner frees the memory after: /api/ps lists it until then.
      state.unloads.push(model);
      const gone = () => state.loaded.delete(name);
      if (state.holdUnload) void state.holdUnload.catch(() => undefined).then(gone);
      else gone();
      const created_at = new Date().toISOString();
      sendJson(res, 200, { model, created_at, response: '', done: true, done_reason: 'unload' });
      return true;
    }
    if (state.hold) await state.hold.catch(() => undefined);
    // Ollama waits for the load under the request's context (sched.go): one whose client went away
    // is dropped, its runner expired, not left in memory.
    if (res.destroyed) return true;
    if (pulledAs(ollama.tooBig ?? [], model) !== undefined) {
      sendJson(res, 500, {
        error: 'model requires more system memory (41.2 GiB) than is available (15.3 GiB)',
      });
      return true;
    }
    state.loaded.add(name);
    const created_at = new Date().toISOString();
    sendJson(res, 200, { model, created_at, response: '', done: true, done_reason: 'load' });
    return true;
  }
  if (route === 'GET /') {
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
    res.end('Ollama is running');
    return true;
  }
  if (route === 'GET /api/version') {
    sendJson(res, 200, { version: '0.6.5' });
    return true;
  }
  if (route === 'GET /api/ps') {
    // Its shape in server/routes.go (PsHandler): the loaded models, with when each will be unloaded.
    const expires_at = new Date(Date.now() + 5 * 60_000).toISOString();
    const models = [...state.loaded].map((name) => ({
      name,
      model: name,
      size: 6_654_289_920,
      digest: 'f'.repeat(64),
      details: { format: 'gguf', family: 'qwen2', parameter_size: '7.6B', quantization_level: 'Q4_K_M' },
      expires_at,
      size_vram: 6_654_289_920,
    }));
    sendJson(res, 200, { models });
    return true;
  }
  if (route === 'GET /api/tags') {
    const modified_at = new Date(0).toISOString();
    const models = pulled.map((name) => ({
      name,
      model: name,
      modified_at,
      size: 4_683_087_332,
      digest: 'f'.repeat(64),
      details: { format: 'gguf', family: 'qwen2', parameter_size: '7.6B', quantization_level: 'Q4_K_M' },
    }));
    sendJson(res, 200, { models });
    return true;
  }
  if (route === 'GET /v1/models') {
    sendJson(res, 200, {
      object: 'list',
      data: pulled.map((id) => ({ id, object: 'model', created: 0, owned_by: 'library' })),
    });
    return true;
  }
  if (route === 'POST /v1/chat/completions') {
    const chat = (body ?? {}) as ChatBody;
    const parts = partsOf(chat.messages);
    if (parts.some((p: { type?: unknown }) => p.type !== 'text' && p.type !== 'image_url')) {
      // Its OpenAI middleware converts every message before anything else, and knows no other part.
      const message = 'invalid message format';
      sendJson(res, 400, { error: { message, type: 'invalid_request_error', param: null, code: null } });
      return true;
    }
    const model = typeof chat.model === 'string' ? chat.model : '';
    const name = pulledAs(pulled, model);
    if (name === undefined) {
      const message = `model ${JSON.stringify(model)} not found, try pulling it first`;
      sendJson(res, 404, { error: { message, type: 'not_found_error', param: null, code: null } });
      return true;
    }
    const sees = pulledAs(ollama.vision ?? [], model) !== undefined;
    if (!sees && parts.some((p: { type?: unknown }) => p.type === 'image_url')) {
      const message = 'this model is missing data required for image input';
      sendJson(res, 500, { error: { message, type: 'api_error', param: null, code: null } });
      return true;
    }
    state.loaded.add(name);
    return false;
  }
  if (route.startsWith('POST /_fake/')) return false;
  goNotFound(res);
  return true;
}

async function streamReply(res: http.ServerResponse, chat: ChatBody, reply: FakeReply, defaultDelay: number) {
  const id = `chatcmpl-fake${Date.now()}`;
  const created = Math.floor(Date.now() / 1000);
  const model = chat.model ?? 'fake-model';
  const send = (choices: unknown[], extra: Record<string, unknown> = {}) =>
    res.write(
      `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model, choices, ...extra })}\n\n`,
    );
  const delta = (d: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
    send([{ index: 0, delta: d, finish_reason: null, ...extra }]);
  const delay = reply.chunkDelayMs ?? defaultDelay;
  const closed = () => res.destroyed || res.writableEnded;

  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  delta({ role: 'assistant', content: null });
  for (const chunk of reply.chunks ?? []) {
    if (delay > 0) await sleep(delay);
    if (closed()) return;
    if (typeof chunk === 'string') {
      delta({ content: chunk }, chat.logprobs ? { logprobs: { content: [tokenLogprob(chunk, chat)] } } : {});
    } else if ('reasoning' in chunk) delta({ reasoning_content: chunk.reasoning });
    else if ('raw' in chunk) res.write(chunk.raw);
    else if ('wait' in chunk) await chunk.wait.catch(() => undefined);
    else {
      const { index, id: callId, name, arguments: args } = chunk.toolCall;
      const fn = {
        ...(name !== undefined ? { name } : {}),
        ...(args !== undefined ? { arguments: args } : {}),
      };
      delta({ tool_calls: [{ index, ...(callId ? { id: callId, type: 'function' } : {}), function: fn }] });
    }
  }
  if (closed()) return;
  if (reply.truncate) return res.end();
  send([{ index: 0, delta: {}, finish_reason: finishReason(reply) }]);
  if (chat.stream_options?.include_usage && reply.usage !== false) send([], { usage: usage(chat, reply) });
  res.end('data: [DONE]\n\n');
}

function completion(chat: ChatBody, reply: FakeReply) {
  const chunks = reply.chunks ?? [];
  const content = chunks.filter((c): c is string => typeof c === 'string').join('');
  const calls = new Map<
    number,
    { id: string; type: 'function'; function: { name: string; arguments: string } }
  >();
  for (const c of chunks) {
    if (typeof c !== 'object' || !('toolCall' in c)) continue;
    const t = c.toolCall;
    const call = calls.get(t.index) ?? {
      id: '',
      type: 'function' as const,
      function: { name: '', arguments: '' },
    };
    call.id ||= t.id ?? '';
    call.function.name += t.name ?? '';
    call.function.arguments += t.arguments ?? '';
    calls.set(t.index, call);
  }
  return {
    id: `chatcmpl-fake${Date.now()}`,
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model: chat.model ?? 'fake-model',
    choices: [
      {
        index: 0,
        message: {
          role: 'assistant',
          content,
          ...(calls.size > 0 ? { tool_calls: [...calls.values()] } : {}),
        },
        finish_reason: finishReason(reply),
      },
    ],
    ...(reply.usage === false ? {} : { usage: usage(chat, reply) }),
  };
}

/** A made-up but well-formed log probability for one token. */
function tokenLogprob(token: string, chat: ChatBody) {
  const n = typeof chat.top_logprobs === 'number' ? chat.top_logprobs : 0;
  const bytes = [...Buffer.from(token, 'utf8')];
  return {
    token,
    logprob: -0.5,
    bytes,
    top_logprobs: Array.from({ length: n }, (_, i) => ({ token, logprob: -0.5 - i, bytes })),
  };
}

function finishReason(reply: FakeReply): string {
  if (reply.finishReason) return reply.finishReason;
  return (reply.chunks ?? []).some((c) => typeof c === 'object' && 'toolCall' in c) ? 'tool_calls' : 'stop';
}

function usage(chat: ChatBody, reply: FakeReply) {
  if (reply.usage)
    return { ...reply.usage, total_tokens: reply.usage.prompt_tokens + reply.usage.completion_tokens };
  const prompt_tokens = Math.ceil(JSON.stringify(chat.messages ?? []).length / 4);
  const completion_tokens = (reply.chunks ?? []).length;
  return { prompt_tokens, completion_tokens, total_tokens: prompt_tokens + completion_tokens };
}

function echoReply(chat: ChatBody): FakeReply {
  const last = [...(chat.messages ?? [])].reverse().find((m) => m.role === 'user');
  const content = last?.content;
  const text = Array.isArray(content)
    ? content.map((p: { text?: unknown }) => (typeof p.text === 'string' ? p.text : '')).join('')
    : String(content ?? '');
  return { chunks: `echo: ${text}`.split(/(?<= )/) };
}

/**
 * The part types llama-server reads (tools/server, oaicompat_chat_params_parse): text, an image
 * (image_url) and audio (input_audio), the two turned into its media marker. Any other, in a
 * message of any role (`file`, `refusal`, `input_text`…), is an invalid_argument, a 400
 * "unsupported content[].type" that names neither the part nor its type.
 */
const LLAMA_PART_TYPES = new Set(['text', 'image_url', 'input_audio']);

function unsupportedPart(messages: ChatBody['messages']): boolean {
  return (messages ?? []).some(
    (m) =>
      Array.isArray(m.content) &&
      m.content.some((p: { type?: unknown }) => !LLAMA_PART_TYPES.has(String(p?.type ?? ''))),
  );
}

/**
 * What llama-server (oaicompat_chat_params_parse) says of an `input_audio` part whose format is not
 * exactly "wav" or "mp3" (it decodes flac too, but keeps to OpenAI's two), an invalid_argument
 * (400) in recent builds: naming neither the part nor the format it got.
 */
const AUDIO_FORMAT_ERROR = "input_audio.format must be either 'wav' or 'mp3'";

function unsupportedAudio(messages: ChatBody['messages']): boolean {
  return (messages ?? []).some(
    (m) =>
      Array.isArray(m.content) &&
      m.content.some(
        (p: { type?: unknown; input_audio?: { format?: unknown } }) =>
          p?.type === 'input_audio' && !['wav', 'mp3'].includes(String(p.input_audio?.format)),
      ),
  );
}

/**
 * What llama-server (oaicompat_chat_params_parse) says of an `input_audio` part, in any message,
 * when its model hears nothing (no --mmproj of an audio model): a runtime_error, so a 500.
 */
const NO_AUDIO_ERROR =
  'audio input is not supported - hint: if this is unexpected, you may need to provide the mmproj';

function partsOf(messages: ChatBody['messages']): { type?: unknown }[] {
  return (messages ?? []).flatMap((m) => (Array.isArray(m.content) ? m.content : []));
}

function isAudioPart(p: { type?: unknown }): boolean {
  return p?.type === 'input_audio';
}

/**
 * Why llama-server (with --jinja, which compiles the tools' JSON Schemas into
 * one grammar for the tool call) refuses these tools, if it does: a length or
 * item count of 2000 or more (its grammar parser's limit on repetitions), or a
 * `pattern` (it takes only anchored ones, and fails on them in nested objects;
 * which ones pass varies by build, so the fake takes none).
 */
function grammarFailure(tools: unknown): string | undefined {
  const bad = (node: unknown): boolean => {
    if (Array.isArray(node)) return node.some(bad);
    if (typeof node !== 'object' || node === null) return false;
    return Object.entries(node).some(([key, value]) => {
      if (key === 'pattern' && typeof value === 'string') return true;
      if (['minLength', 'maxLength', 'minItems', 'maxItems'].includes(key) && Number(value) >= 2000) {
        return true;
      }
      return bad(value);
    });
  };
  if (!Array.isArray(tools)) return undefined;
  const schemas = tools.map((t) => (t as { function?: { parameters?: unknown } }).function?.parameters);
  return schemas.some(bad) ? 'Failed to initialize samplers: failed to parse grammar' : undefined;
}

/** A UTF-16 surrogate without its other half: half an emoji, which JSON.stringify writes as "\ud83d". */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * What llama-server answers a body holding half an emoji: its JSON parser
 * (nlohmann::json) refuses a surrogate without its pair, where JSON.parse
 * takes it, and the parse error comes back as a 500.
 */
const HALF_EMOJI_ERROR =
  '[json.exception.parse_error.101] parse error: syntax error while parsing value - invalid string: surrogate U+D800..U+DBFF must be followed by U+DC00..U+DFFF';

/** Whether a string of a parsed body, key or value, holds half an emoji. */
function halfEmoji(value: unknown): boolean {
  if (typeof value === 'string') return LONE_SURROGATE.test(value);
  if (Array.isArray(value)) return value.some(halfEmoji);
  if (value === null || typeof value !== 'object') return false;
  return Object.entries(value).some(([key, v]) => LONE_SURROGATE.test(key) || halfEmoji(v));
}

function errorBody(code: number, message: string, type: string) {
  return { error: { code, message, type } };
}

function sendJson(
  res: http.ServerResponse,
  status: number,
  value: unknown,
  headers: Record<string, string> = {},
) {
  res.writeHead(status, { ...headers, 'content-type': 'application/json' });
  res.end(JSON.stringify(value));
}

async function readBody(req: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function sleep(ms: number) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
