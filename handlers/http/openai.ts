import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { BrainError, FinishReason, ToolCall, TurnUsage } from '../../brains/types.js';
import type { ChatEvent } from '../../src/chat/request.js';
import type { Core } from '../../src/core.js';
import { BrainstemError } from '../../src/errors.js';
import { openAiSessionKey } from '../../src/session-keys.js';
import { collectToolCall } from '../../src/tool-calls.js';
import { brainErrorCode, openAiError } from './errors.js';
import { chatRequestSchema, describeZodError } from './openai-schema.js';
import { SseWriter } from './sse.js';

const HEARTBEAT_MS = 15_000;

/** Errors the user must read (how to renew credentials, when a limit resets) arrive as the answer's text. */
const SPOKEN_ERRORS = new Set<BrainError['kind']>(['auth', 'usage_limit']);

export function registerOpenAi(app: FastifyInstance, core: Core): void {
  app.get('/v1/models', async () => {
    const created = Math.floor(core.startedAt / 1000);
    const model = (id: string, description: string) => ({
      id,
      object: 'model',
      created,
      owned_by: 'brainstem',
      description,
    });
    return {
      object: 'list',
      data: [
        model('active', `the active mode (now ${core.switcher.active().id})`),
        ...core.modes.all.map((m) => model(m.id, m.description)),
      ],
    };
  });

  app.post('/v1/chat/completions', async (request, reply) => {
    const parsed = chatRequestSchema.safeParse(request.body);
    if (!parsed.success) {
      const { message, param } = describeZodError(parsed.error);
      throw new BrainstemError('INVALID_REQUEST', message, param);
    }
    const body = parsed.data;
    const controller = new AbortController();
    // A client that goes away must not leave a brain working (or a claude child running) for nobody.
    reply.raw.on('close', () => {
      if (!reply.raw.writableFinished) controller.abort();
    });
    const events = core.chat.run(
      {
        model: body.model,
        sessionKey: openAiSessionKey({
          header: sessionHeader(request),
          user: body.user,
          messages: body.messages as never,
        }),
        messages: body.messages as never,
        tools: body.tools ?? undefined,
        toolChoice: body.tool_choice,
        maxTokens: body.max_completion_tokens ?? body.max_tokens ?? undefined,
        source: 'openai',
      },
      controller.signal,
    );
    const meta = {
      id: `chatcmpl-${randomUUID()}`,
      created: Math.floor(Date.now() / 1000),
      model: body.model,
    };
    if (body.stream) return streamAnswer(reply, events, meta, body.stream_options?.include_usage === true);
    return bufferedAnswer(reply, events, meta);
  });
}

/** The client's own conversation key, from the header either client may send. */
function sessionHeader(request: FastifyRequest): string | undefined {
  const header = request.headers['x-session-key'] ?? request.headers['x-openclaw-session-key'];
  return Array.isArray(header) ? header[0] : header;
}

interface Meta {
  id: string;
  created: number;
  model: string;
}

function usageBody(u: TurnUsage | undefined) {
  const prompt = (u?.inputTokens ?? 0) + (u?.cacheReadTokens ?? 0) + (u?.cacheWriteTokens ?? 0);
  const completion = u?.outputTokens ?? 0;
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    prompt_tokens_details: { cached_tokens: u?.cacheReadTokens ?? 0 },
    cost_usd: u?.costUsd ?? 0,
  };
}

function throwBrainError(e: BrainError): never {
  throw new BrainstemError(brainErrorCode(e), e.message);
}

async function streamAnswer(
  reply: FastifyReply,
  events: AsyncGenerator<ChatEvent>,
  meta: Meta,
  includeUsage: boolean,
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
  // Headers wait for the first real event, so a brain that fails at once gets a proper HTTP status.
  const begin = () => {
    if (sse.started) return;
    reply.hijack();
    sse.start();
    sse.data(chunk({ role: 'assistant', content: '' }));
    heartbeat = setInterval(() => reply.raw.write(': keep-alive\n\n'), HEARTBEAT_MS);
  };
  try {
    for await (const ev of events) {
      if (sse.closed && sse.started) break;
      switch (ev.type) {
        case 'queued':
        case 'mode':
          break;
        case 'session':
          begin();
          break;
        case 'text':
          begin();
          sse.data(chunk({ content: ev.text }));
          break;
        case 'tool_call':
          begin();
          sse.data(
            chunk({
              tool_calls: [
                {
                  index: ev.index,
                  ...(ev.id ? { id: ev.id, type: 'function' } : {}),
                  function: { ...(ev.name ? { name: ev.name } : {}), arguments: ev.arguments ?? '' },
                },
              ],
            }),
          );
          break;
        case 'usage':
          usage = ev.usage;
          break;
        case 'done':
          finish = ev.finishReason;
          break;
        case 'error':
          if (SPOKEN_ERRORS.has(ev.error.kind)) {
            begin();
            sse.data(chunk({ content: `\n\n${ev.error.message}` }));
          } else if (!sse.started) {
            throwBrainError(ev.error);
          } else {
            const code = brainErrorCode(ev.error);
            sse.data(openAiError({ message: ev.error.message, type: 'server_error', code }));
            sse.end();
            return;
          }
          break;
      }
    }
    begin();
    sse.data(chunk({}, finish));
    if (includeUsage) sse.data({ ...chunk({}), choices: [], usage: usageBody(usage) });
    sse.end();
  } catch (err) {
    if (!sse.started) throw err;
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
    clearInterval(heartbeat);
  }
}

async function bufferedAnswer(reply: FastifyReply, events: AsyncGenerator<ChatEvent>, meta: Meta) {
  let content = '';
  let usage: TurnUsage | undefined;
  let finish: FinishReason = 'stop';
  const calls: ToolCall[] = [];
  for await (const ev of events) {
    if (ev.type === 'text') content += ev.text;
    else if (ev.type === 'usage') usage = ev.usage;
    else if (ev.type === 'done') finish = ev.finishReason;
    else if (ev.type === 'tool_call') collectToolCall(calls, ev);
    else if (ev.type === 'error') {
      if (!SPOKEN_ERRORS.has(ev.error.kind)) throwBrainError(ev.error);
      content += `${content ? '\n\n' : ''}${ev.error.message}`;
    }
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
        message: { role: 'assistant', content, ...(toolCalls.length ? { tool_calls: toolCalls } : {}) },
        finish_reason: finish,
      },
    ],
    usage: usageBody(usage),
  });
}
