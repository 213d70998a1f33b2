import { z } from 'zod';
import type { TurnUsage } from '../types.js';

/**
 * The lines of `claude -p --output-format stream-json --verbose
 * --include-partial-messages` that the brain acts on, validated with zod and
 * reduced to what it needs. Everything else the CLI prints (status lines,
 * whole `assistant` messages, tool results) is ignored on purpose: text comes
 * from the partial deltas, and Claude Code's own tool use stays internal.
 */

const initLine = z.object({
  type: z.literal('system'),
  subtype: z.literal('init'),
  session_id: z.string().min(1),
});

const streamEventLine = z.object({
  type: z.literal('stream_event'),
  /** Set when the event belongs to a subagent (Task tool): internal, not for the user. */
  parent_tool_use_id: z.string().nullish(),
  event: z.object({
    type: z.string(),
    content_block: z.object({ type: z.string() }).optional(),
    delta: z.object({ type: z.string(), text: z.string().optional() }).optional(),
  }),
});

const rateLimitLine = z.object({
  type: z.literal('rate_limit_event'),
  rate_limit_info: z.object({
    status: z.string(),
    /** Unix seconds. */
    resetsAt: z.number().optional(),
    rateLimitType: z.string().optional(),
  }),
});

/** Only the failure marker: a synthetic assistant message carries `error` (e.g. "authentication_failed"). */
const assistantLine = z.object({
  type: z.literal('assistant'),
  parent_tool_use_id: z.string().nullish(),
  error: z.string().optional(),
});

const count = z.number().nonnegative().default(0);

const resultLine = z.object({
  type: z.literal('result'),
  // `subtype` stays "success" on API failures: `is_error` and `api_error_status` are the truth.
  is_error: z.boolean(),
  api_error_status: z.number().nullish(),
  result: z.string().optional(),
  errors: z.array(z.string()).optional(),
  session_id: z.string().optional(),
  total_cost_usd: count,
  usage: z
    .object({
      input_tokens: count,
      output_tokens: count,
      cache_read_input_tokens: count,
      cache_creation_input_tokens: count,
    })
    .optional(),
});

export interface CliResult {
  isError: boolean;
  status?: number;
  /** The final text, or the CLI's error text when `isError`. */
  text: string;
  /** Errors the CLI lists when it failed before talking to the API (e.g. an unknown session). */
  errors: string[];
  sessionId?: string;
  usage: TurnUsage;
}

export interface RateLimitInfo {
  status: string;
  /** Unix milliseconds. */
  resetsAt?: number;
  limitType?: string;
}

export type CliEvent =
  | { type: 'init'; sessionId: string }
  /** A top-level text block starts (used to separate the texts of successive messages). */
  | { type: 'text_block' }
  | { type: 'text_delta'; text: string }
  | { type: 'rate_limit'; info: RateLimitInfo }
  | { type: 'api_error'; error: string }
  | { type: 'result'; result: CliResult }
  /** A line of a known type that no longer matches its schema: the CLI changed. */
  | { type: 'invalid'; lineType: string; problem: string };

const lineType = z.object({ type: z.string(), subtype: z.string().optional() });

/** Parses one stdout line; `undefined` for lines the brain has no use for. */
export function parseCliLine(line: string): CliEvent | undefined {
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch {
    return undefined;
  }
  const head = lineType.safeParse(json);
  if (!head.success) return undefined;
  const { type, subtype } = head.data;
  if (type === 'system' && subtype === 'init')
    return fromSchema(initLine, json, (l) => ({ type: 'init', sessionId: l.session_id }));
  if (type === 'stream_event') return fromSchema(streamEventLine, json, fromStreamEvent);
  if (type === 'rate_limit_event') {
    return fromSchema(rateLimitLine, json, ({ rate_limit_info: i }) => ({
      type: 'rate_limit',
      info: {
        status: i.status,
        resetsAt: i.resetsAt === undefined ? undefined : i.resetsAt * 1000,
        limitType: i.rateLimitType,
      },
    }));
  }
  if (type === 'assistant') {
    return fromSchema(assistantLine, json, (l) =>
      l.error && !l.parent_tool_use_id ? { type: 'api_error', error: l.error } : undefined,
    );
  }
  if (type === 'result') return fromSchema(resultLine, json, fromResult);
  return undefined;
}

function fromSchema<S extends z.ZodType>(
  schema: S,
  json: unknown,
  map: (line: z.infer<S>) => CliEvent | undefined,
): CliEvent | undefined {
  const parsed = schema.safeParse(json);
  if (parsed.success) return map(parsed.data);
  const type = (json as { type: string }).type;
  return { type: 'invalid', lineType: type, problem: z.prettifyError(parsed.error) };
}

function fromStreamEvent(line: z.infer<typeof streamEventLine>): CliEvent | undefined {
  if (line.parent_tool_use_id) return undefined;
  const { event } = line;
  if (event.type === 'content_block_start' && event.content_block?.type === 'text')
    return { type: 'text_block' };
  if (event.type === 'content_block_delta' && event.delta?.type === 'text_delta' && event.delta.text) {
    return { type: 'text_delta', text: event.delta.text };
  }
  return undefined;
}

function fromResult(line: z.infer<typeof resultLine>): CliEvent {
  const u = line.usage;
  return {
    type: 'result',
    result: {
      isError: line.is_error,
      status: line.api_error_status ?? undefined,
      text: line.result ?? '',
      errors: line.errors ?? [],
      sessionId: line.session_id,
      usage: {
        costUsd: line.total_cost_usd,
        inputTokens: u?.input_tokens ?? 0,
        outputTokens: u?.output_tokens ?? 0,
        cacheReadTokens: u?.cache_read_input_tokens ?? 0,
        cacheWriteTokens: u?.cache_creation_input_tokens ?? 0,
      },
    },
  };
}
