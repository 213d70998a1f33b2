import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { BrainError, FinishReason, GenerationOptions, ToolCall, TurnUsage } from '../../brains/types.js';
import { brainErrorCode, brainFailure } from '../../src/brain-failure.js';
import type { ChatEvent } from '../../src/chat/request.js';
import { ACTIVE, type ModeConfig } from '../../src/config.js';
import { type ConversationClaim, recordAnswer } from '../../src/conversations.js';
import type { Core } from '../../src/core.js';
import { BrainstemError, errorCodes } from '../../src/errors.js';
import { stripPrefix } from '../../src/modes.js';
import { openAiSessionKey, openAiUser } from '../../src/session-keys.js';
import { collectToolCall, defaultCallId } from '../../src/tool-calls.js';
import { callerGone } from './caller.js';
import { openAiError, retryHeaders } from './errors.js';
import {
  type ChatRequestBody,
  chatRequestSchema,
  describeZodError,
  refusedField,
  unknownFields,
  unknownNestedKeys,
} from './openai-schema.js';
import { staleOpenClawBlock } from './openclaw-block.js';
import { speaksErrors, spokenErrors } from './spoken-errors.js';
import { SseWriter } from './sse.js';

/** Names the client's tools the answering mode kept from its brain (see the mode's toolFilter). */
export const FILTERED_TOOLS_HEADER = 'x-brainstem-filtered-tools';
/**
 * Names request fields this endpoint does not know, and so ignored; and keys OpenAI does not define
 * inside the messages and the tools, where the mode answering drops them (see nameIgnored).
 */
export const IGNORED_FIELDS_HEADER = 'x-brainstem-ignored-fields';

/**
 * Errors the user must read (how to renew credentials, when a limit resets) arrive as the answer's text;
 * for a client that asks (OpenClaw), every error does (spoken-errors.ts).
 */
const SPOKEN_ERRORS = new Set<BrainError['kind']>(['auth', 'usage_limit']);

export function registerOpenAi(app: FastifyInstance, core: Core): void {
  const created = () => Math.floor(core.startedAt / 1000);
  const model = (id: string, description: string) => ({
    id,
    object: 'model',
    created: created(),
    owned_by: 'brainstem',
    description,
  });
  const activeModel = () => model(ACTIVE, `the active mode (now ${core.switcher.active().id})`);

  const list = () => ({
    object: 'list',
    data: [activeModel(), ...core.modes.all.map((m) => model(m.id, m.description))],
  });
  app.get('/v1/models', async () => list());

  // A wildcard, because a provider prefix holds a slash: /v1/models/brainstem/local. Nothing after
  // the slash is the list, as the route without it (a client that joins its base URL with a slash).
  app.get('/v1/models/*', async (request) => {
    const id = (request.params as { '*': string })['*'];
    if (id === '') return list();
    const mode = core.chat.resolveMode(id);
    return [ACTIVE, ''].includes(stripPrefix(id).toLowerCase())
      ? activeModel()
      : model(mode.id, mode.description);
  });

  const staleBlock = staleOpenClawBlock(app.log);
  app.post('/v1/chat/completions', async (request, reply) => {
    staleBlock(request);
    const turn = () => startTurn(request, reply, core);
    // Set up at once, so a refused request gets its HTTP status; for a client that reads errors as
    // answers, as the answer is read, so that whatever fails ends the answer in words.
    const events = speaksErrors(request) ? spokenErrors(turn, reply) : turn();
    const asked = askedFor(request.body);
    const meta = {
      id: `chatcmpl-${randomUUID()}`,
      created: Math.floor(Date.now() / 1000),
      model: asked.model,
    };
    if (asked.stream) {
      const opts = {
        includeUsage: asked.includeUsage,
        headersWaitMs: core.config.server.streamHeadersWaitMs,
        heartbeatMs: core.config.server.streamHeartbeatMs,
      };
      return streamAnswer(reply, events, meta, opts);
    }
    return bufferedAnswer(reply, events, meta);
  });
}

/** Checks the request, then starts the turn (throwing typed errors): its events, the conversation's head recorded. */
function startTurn(request: FastifyRequest, reply: FastifyReply, core: Core): AsyncGenerator<ChatEvent> {
  const parsed = chatRequestSchema.safeParse(request.body);
  if (!parsed.success) {
    const { message, param } = describeZodError(parsed.error);
    throw new BrainstemError('INVALID_REQUEST', message, param);
  }
  const body = parsed.data;
  const refused = refusedField(body);
  if (refused) throw new BrainstemError('INVALID_REQUEST', refused.message, refused.param);
  const ignored = unknownFields(body);
  const nested = unknownNestedKeys(
    request.body as { messages: readonly unknown[]; tools?: unknown; response_format?: unknown },
  );
  // The mode that answers, as far as known now: `active` may become another mode while the turn waits.
  const mode = core.modes.resolveRef(body.model, () => core.switcher.active());
  nameIgnored(request, reply, ignored, nested, mode);
  const conversation = conversationOf(request, body, core);
  const gone = callerGone(reply);
  let events: AsyncGenerator<ChatEvent>;
  try {
    events = core.chat.run(
      {
        model: body.model,
        sessionKey: conversation.key,
        messages: body.messages as never,
        tools: body.tools ?? undefined,
        toolChoice: body.tool_choice ?? undefined,
        maxTokens: body.max_completion_tokens ?? body.max_tokens ?? undefined,
        options: generationOptions(body),
        source: 'openai',
      },
      gone,
    );
  } catch (err) {
    conversation.claim?.release();
    throw err;
  }
  if (nested && stripPrefix(body.model).toLowerCase() === ACTIVE) {
    events = renamedOnMode(events, (answering) => {
      if (passesMessages(answering) !== passesMessages(mode)) {
        nameIgnored(request, reply, ignored, nested, answering);
      }
    });
  }
  return conversation.claim ? recordAnswer(events, conversation.claim) : events;
}

/** Whether the mode's brain sends the messages and tools on as they came, keys unknown to OpenAI and all. */
function passesMessages(mode: ModeConfig | undefined): boolean {
  // brains/llama-local/request.ts: upstreamMessages spreads each message; its parts go as they are, and
  // so do the tools' functions (tool-schemas.ts changes only their parameters).
  return mode?.kind === 'llama';
}

/**
 * Names in IGNORED_FIELDS_HEADER, and in one log line, what of the request
 * no brain gets: the top-level fields the endpoint does not know, and the keys
 * OpenAI does not define inside the messages and tools that `mode` drops (a Claude mode
 * all of them, a llama mode those the schema strips; see unknownNestedKeys).
 */
function nameIgnored(
  request: FastifyRequest,
  reply: FastifyReply,
  topLevel: string[],
  nested: Map<string, boolean> | undefined,
  mode: ModeConfig | undefined,
): void {
  let names = topLevel;
  if (nested) {
    const passes = passesMessages(mode);
    names = [...topLevel];
    for (const [path, passedOn] of nested) if (!(passes && passedOn)) names.push(path);
  }
  if (names.length === 0) {
    reply.removeHeader(IGNORED_FIELDS_HEADER);
    return;
  }
  request.log.info({ fields: names }, `ignored unknown request fields: ${names.join(', ')}`);
  reply.header(IGNORED_FIELDS_HEADER, namesHeader(names));
}

/** The events, telling `onMode` the mode that answers when it is known (see ChatEvent's `mode`). */
async function* renamedOnMode(
  events: AsyncGenerator<ChatEvent>,
  onMode: (mode: ModeConfig) => void,
): AsyncGenerator<ChatEvent> {
  for await (const ev of events) {
    if (ev.type === 'mode') onMode(ev.mode);
    yield ev;
  }
}

/**
 * The shape of the answer asked for, read from the body as sent (as the
 * checked body has it, and also for one refused: its error may be the answer).
 */
function askedFor(body: unknown): { model: string; stream: boolean; includeUsage: boolean } {
  const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  const streamOptions = b.stream_options as { include_usage?: unknown } | null | undefined;
  return {
    model: typeof b.model === 'string' ? b.model : ACTIVE,
    stream: b.stream === true,
    includeUsage: streamOptions?.include_usage === true,
  };
}

/**
 * The conversation a request belongs to: the client's `x-session-key` (or
 * `x-openclaw-session-key`, or `x-session-affinity`) header, else what the
 * conversation has said so far among its `user`'s (see ConversationMap).
 */
function conversationOf(
  request: FastifyRequest,
  body: ChatRequestBody,
  core: Core,
): { key: string; claim?: ConversationClaim } {
  const { headers } = request;
  // OpenClaw sends `x-session-affinity: <sessionId>:<n>` (with `session_id` and `x-client-request-id`)
  // when a model's compat has `sendSessionAffinityHeaders: true`, as openclaw-config writes it; never
  // a session key. The whole value is the key: a new suffix starts a conversation of its own.
  const header =
    headers['x-session-key'] ?? headers['x-openclaw-session-key'] ?? headers['x-session-affinity'];
  const named = openAiSessionKey(Array.isArray(header) ? header[0] : header);
  if (named) return { key: named };
  const claim = core.conversations.claim(body.messages as never, openAiUser(body.user));
  return { key: claim.key, claim };
}

/** The sampling and output controls, under their wire names and as sent. */
function generationOptions(body: ChatRequestBody): GenerationOptions {
  const options: GenerationOptions = {
    temperature: body.temperature ?? undefined,
    top_p: body.top_p ?? undefined,
    stop: body.stop ?? undefined,
    seed: body.seed ?? undefined,
    presence_penalty: body.presence_penalty ?? undefined,
    frequency_penalty: body.frequency_penalty ?? undefined,
    logit_bias: body.logit_bias ?? undefined,
    logprobs: body.logprobs ?? undefined,
    top_logprobs: body.top_logprobs ?? undefined,
    response_format: body.response_format ?? undefined,
    reasoning_effort: body.reasoning_effort ?? undefined,
    parallel_tool_calls: body.parallel_tool_calls ?? undefined,
  };
  return Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as GenerationOptions;
}

interface Meta {
  id: string;
  created: number;
  model: string;
}

/**
 * OpenAI's usage, plus what a turn cost: `cost_usd`, and the same number as
 * `cost`, where OpenRouter puts it and so where OpenClaw reads a turn's cost.
 * Cache reads and writes are in `prompt_tokens`, and each also on its own.
 */
function usageBody(u: TurnUsage | undefined) {
  const prompt = (u?.inputTokens ?? 0) + (u?.cacheReadTokens ?? 0) + (u?.cacheWriteTokens ?? 0);
  const completion = u?.outputTokens ?? 0;
  const cost = u?.costUsd ?? 0;
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    prompt_tokens_details: {
      cached_tokens: u?.cacheReadTokens ?? 0,
      cache_write_tokens: u?.cacheWriteTokens ?? 0,
    },
    cost,
    cost_usd: cost,
  };
}

/**
 * The tools the answering mode kept back. A turn that waited in its queue for
 * a switch hears its mode again: the last one answers, so it sets the header.
 */
function filteredToolsHeader(reply: FastifyReply, filtered: string[]): void {
  if (filtered.length > 0) reply.header(FILTERED_TOOLS_HEADER, namesHeader(filtered));
  else reply.removeHeader(FILTERED_TOOLS_HEADER);
}

function throwBrainError(e: BrainError): never {
  throw brainFailure(e);
}

async function streamAnswer(
  reply: FastifyReply,
  events: AsyncGenerator<ChatEvent>,
  meta: Meta,
  opts: { includeUsage: boolean; headersWaitMs: number; heartbeatMs: number },
): Promise<void> {
  const sse = new SseWriter(reply.raw);
  let usage: TurnUsage | undefined;
  let finish: FinishReason = 'stop';
  let heartbeat: NodeJS.Timeout | undefined;
  const chunk = (delta: Record<string, unknown>, finishReason: FinishReason | null = null) => ({
    id: meta.id,
    object: 'chat.completion.chunk',
    created: meta.created,
    model: meta.model,
    choices: [{ index: 0, delta, finish_reason: finishReason }],
  });
  // Headers wait for the first real event, so a brain that fails at once gets a proper HTTP status
  // (a 429 the client's SDK can retry on); server.streamHeadersWaitMs after the request came (Claude
  // at work with its tools, a turn waiting its turn, a switch the message asked for loading its
  // model) they go, and heartbeats keep the line open.
  const begin = () => {
    clearTimeout(early);
    if (sse.started) return;
    reply.hijack();
    // Headers set on the reply (filtered tools, ignored fields) leave with the stream's own.
    for (const [name, value] of Object.entries(reply.getHeaders())) {
      if (value !== undefined) reply.raw.setHeader(name, value);
    }
    sse.start();
    sse.data(chunk({ role: 'assistant', content: '' }));
    heartbeat = setInterval(() => reply.raw.write(': keep-alive\n\n'), opts.heartbeatMs);
  };
  // Started at once, not on the turn's first event: a switch the message itself asks for yields
  // nothing until the model it loads is ready (llama.readyTimeoutMs, 3 minutes), and a turn waiting
  // behind its conversation's running turn (up to a Claude turn's 30 minutes) must get its headers and
  // heartbeats too, or clients give up on it (undici after 300 s without headers).
  const early = setTimeout(begin, opts.headersWaitMs);
  /** Indexes of the tool calls streamed so far. */
  const calls = new Set<number>();
  /** Words went out already: an error told as text then starts a paragraph of its own, as in a buffered answer. */
  let said = false;
  try {
    for await (const ev of events) {
      if (sse.closed && sse.started) break;
      switch (ev.type) {
        case 'mode':
          filteredToolsHeader(reply, ev.filteredTools);
          break;
        case 'logprobs':
          begin();
          sse.data({
            ...chunk({}),
            choices: [{ index: 0, delta: {}, logprobs: { content: ev.content }, finish_reason: null }],
          });
          break;
        case 'text':
          begin();
          sse.data(chunk({ content: ev.text }));
          said ||= ev.text !== '';
          break;
        case 'tool_call': {
          begin();
          // A call's first delta carries its id and type, as OpenAI's do (the SDK's stream helper
          // needs both); an upstream that sends no id gets the one a buffered answer gives it.
          const id = ev.id ?? (calls.has(ev.index) ? undefined : defaultCallId(ev.index));
          calls.add(ev.index);
          sse.data(
            chunk({
              tool_calls: [
                {
                  index: ev.index,
                  ...(id ? { id, type: 'function' } : {}),
                  function: { ...(ev.name ? { name: ev.name } : {}), arguments: ev.arguments ?? '' },
                },
              ],
            }),
          );
          break;
        }
        case 'usage':
          usage = ev.usage;
          break;
        case 'done':
          finish = ev.finishReason;
          break;
        case 'error':
          if (SPOKEN_ERRORS.has(ev.error.kind)) {
            begin();
            sse.data(chunk({ content: `${said ? '\n\n' : ''}${ev.error.message}` }));
          } else if (!sse.started) {
            throwBrainError(ev.error);
          } else {
            const code = brainErrorCode(ev.error);
            sse.data(
              openAiError({
                message: ev.error.message,
                type: errorCodes[code].type,
                code,
                param: ev.error.param,
              }),
            );
            sse.end();
            return;
          }
          break;
      }
    }
    begin();
    sse.data(chunk({}, finish));
    // None when the upstream counted nothing (tokensUnknown): no made-up zeros for a client to add up.
    if (opts.includeUsage && !usage?.tokensUnknown) {
      sse.data({ ...chunk({}), choices: [], usage: usageBody(usage) });
    }
    sse.end();
  } catch (err) {
    if (!sse.started) throw err;
    if (err instanceof BrainstemError) {
      // A refusal after the headers went (the mode a switch made active cannot honour the request).
      sse.data(openAiError({ message: err.message, type: err.type, code: err.code, param: err.param }));
      sse.end();
      return;
    }
    reply.log.error({ err }, 'stream failed');
    sse.data(
      openAiError({
        message: 'brainstem failed mid-answer; see its log.',
        type: 'server_error',
        code: 'INTERNAL',
      }),
    );
    sse.end();
  } finally {
    clearTimeout(early);
    clearInterval(heartbeat);
  }
}

async function bufferedAnswer(reply: FastifyReply, events: AsyncGenerator<ChatEvent>, meta: Meta) {
  let content = '';
  let usage: TurnUsage | undefined;
  let finish: FinishReason = 'stop';
  const calls: ToolCall[] = [];
  let logprobs: unknown[] | undefined;
  try {
    for await (const ev of events) {
      if (ev.type === 'text') content += ev.text;
      else if (ev.type === 'usage') usage = ev.usage;
      else if (ev.type === 'done') finish = ev.finishReason;
      else if (ev.type === 'tool_call') collectToolCall(calls, ev);
      else if (ev.type === 'logprobs') logprobs = [...(logprobs ?? []), ...ev.content];
      else if (ev.type === 'mode') filteredToolsHeader(reply, ev.filteredTools);
      else if (ev.type === 'error') {
        if (!SPOKEN_ERRORS.has(ev.error.kind)) throwBrainError(ev.error);
        content += `${content ? '\n\n' : ''}${ev.error.message}`;
      }
    }
  } catch (err) {
    if (content === '' || !(err instanceof BrainstemError)) throw err;
    return failedMidAnswer(reply, err, content);
  }
  const toolCalls = calls.filter(Boolean);
  return reply.send({
    id: meta.id,
    object: 'chat.completion',
    created: meta.created,
    model: meta.model,
    choices: [
      {
        index: 0,
        message: {
          role: 'assistant',
          // OpenAI sends null, not "", when the answer is only tool calls.
          content: content === '' && toolCalls.length > 0 ? null : content,
          refusal: null,
          ...(toolCalls.length ? { tool_calls: toolCalls } : {}),
        },
        logprobs: logprobs ? { content: logprobs, refusal: null } : null,
        finish_reason: finish,
      },
    ],
    // Left out when the upstream counted nothing (tokensUnknown), as OpenAI's type allows.
    ...(usage?.tokensUnknown ? {} : { usage: usageBody(usage) }),
  });
}

/**
 * A buffered answer the brain failed after its first words: the HTTP error it fails with before
 * them (its status and Retry-After: not a 200 a client would take for the whole answer), with the
 * words so far in `error.partial_content`, as a stream shows them before its error object. Tool
 * calls under way are left out: one the failure cut may hold half its arguments.
 */
function failedMidAnswer(reply: FastifyReply, err: BrainstemError, content: string) {
  retryHeaders(reply, err);
  const body = openAiError({
    message: `${err.message} (The answer had begun: its first ${content.length} characters are in error.partial_content.)`,
    type: err.type,
    code: err.code,
    param: err.param,
  });
  return reply.status(err.status).send({ error: { ...body.error, partial_content: content } });
}

/** A header holds at most this much of the client's names. */
const MAX_NAMES_HEADER = 2048;

/**
 * Names the client chose (fields, tools), as one header value: a header takes
 * printable ASCII only, so each name is percent-encoded (`temperature` stays
 * as it is, `温度` becomes `%E6%B8%A9%E5%BA%A6`), and a very long list is cut.
 */
export function namesHeader(names: readonly string[]): string {
  // No name holds half a character: the JSON body parser refuses it (json-body.ts), and
  // encodeURIComponent would throw on it.
  // The `[]` of a path inside the messages (`messages[].cache_control`) stays as it is: it is printable,
  // and decodeURIComponent gives the same name back either way.
  const value = names.map((n) => encodeURIComponent(n).replaceAll('%5B%5D', '[]')).join(', ');
  return value.length <= MAX_NAMES_HEADER ? value : `${value.slice(0, MAX_NAMES_HEADER)}, ...`;
}
