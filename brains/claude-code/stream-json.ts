import { z } from 'zod';
import { headChars } from '../../src/text.js';
import type { TurnUsage } from '../types.js';
import { MCP_SERVER_NAME } from './tool-names.js';

/**
 * The lines of `claude -p --output-format stream-json --verbose
 * --include-partial-messages` that the brain acts on, validated with zod and
 * reduced to what it needs. Everything else the CLI prints (status lines,
 * whole `assistant` messages but for their API call's usage, tool results) is
 * passed on as `other` and ignored on purpose: text comes from the partial
 * deltas, and Claude Code's own tool use stays internal.
 */

const initLine = z.object({
  type: z.literal('system'),
  subtype: z.literal('init'),
  session_id: z.string().min(1),
  /** Which CLI runs the turn: what a call costs depends on it (pricesUsOnlyInference). */
  claude_code_version: z.string().optional().catch(undefined),
  /**
   * The MCP servers of `--mcp-config` and how the CLI's connection to each stands as the turn starts
   * (`connected`, `failed`, `pending`, `needs-auth`…): a server that is not connected lends the turn no tools.
   */
  mcp_servers: z
    .array(z.object({ name: z.string(), status: z.string() }))
    .optional()
    .catch(undefined),
});

const cacheCreation = z
  .object({
    ephemeral_1h_input_tokens: z.number().nonnegative().nullish(),
    ephemeral_5m_input_tokens: z.number().nonnegative().nullish(),
  })
  .nullish()
  .catch(undefined);

/**
 * One sampling round of an API call (`usage.iterations`), with its own counts: the call's model's
 * (`message`), or another model's that the advisor tool consulted (`advisor_message`).
 */
const apiIteration = z.object({
  type: z.string().nullish(),
  model: z.string().nullish(),
  input_tokens: z.number().nonnegative().nullish(),
  output_tokens: z.number().nonnegative().nullish(),
  cache_read_input_tokens: z.number().nonnegative().nullish(),
  cache_creation_input_tokens: z.number().nonnegative().nullish(),
  cache_creation: cacheCreation,
});

/** An API call's token counts, as the Messages API reports them (`message.usage`, `message_delta.usage`). */
const apiUsage = z.object({
  input_tokens: z.number().nonnegative().nullish(),
  output_tokens: z.number().nonnegative().nullish(),
  cache_read_input_tokens: z.number().nonnegative().nullish(),
  cache_creation_input_tokens: z.number().nonnegative().nullish(),
  /** The cache written by how long it lives: 1 h costs more than 5 minutes (the CLI asks for 1 h on a subscription). */
  cache_creation: cacheCreation,
  /** Web searches the API ran for the call, each billed apart from the tokens. */
  server_tool_use: z
    .object({ web_search_requests: z.number().nonnegative().nullish() })
    .nullish()
    .catch(undefined),
  /** `fast`: served in fast mode, which some models price higher. */
  speed: z.string().nullish().catch(undefined),
  /** Where the call ran: `us` (US-only inference) costs more. */
  inference_geo: z.string().nullish().catch(undefined),
  /** Its sampling rounds: a model whose price depends on the prompt's size prices each by its own. */
  iterations: z.array(apiIteration).nullish().catch(undefined),
});

/**
 * The message of an API call: its id, model and usage so far. Only for an estimate of the cost
 * (CallTally): a message of another shape (the CLI's own, which has no id) gives none, and is
 * no reason to distrust the line.
 */
const apiMessage = z
  .object({ id: z.string().min(1), model: z.string().optional(), usage: apiUsage })
  .optional()
  .catch(undefined);

const streamEventLine = z.object({
  type: z.literal('stream_event'),
  /** Set when the event belongs to a subagent (Task tool): internal, not for the user. */
  parent_tool_use_id: z.string().nullish(),
  event: z.object({
    type: z.string(),
    content_block: z.object({ type: z.string() }).optional(),
    // `message_delta` carries a delta without a type (stop reason, usage).
    delta: z
      .object({ type: z.string().optional(), text: z.string().optional(), stop_reason: z.string().nullish() })
      .optional(),
    /** `message_start`'s. */
    message: apiMessage,
    /** `message_delta`'s: the message's output tokens in the end. */
    usage: apiUsage.optional().catch(undefined),
  }),
});

const rateLimitLine = z.object({
  type: z.literal('rate_limit_event'),
  rate_limit_info: z.object({
    status: z.string(),
    /** Unix seconds. */
    resetsAt: z.number().optional(),
    rateLimitType: z.string().optional(),
    /** Usage credits beyond the plan ("overage"): their state and, when refused, why. */
    overageStatus: z.string().optional(),
    overageResetsAt: z.number().optional(),
    overageDisabledReason: z.string().optional(),
  }),
});

/**
 * The failure marker (a synthetic assistant message carries `error`, e.g. "authentication_failed"),
 * and the usage of the API call the message came from.
 */
const assistantLine = z.object({
  type: z.literal('assistant'),
  parent_tool_use_id: z.string().nullish(),
  error: z.string().optional(),
  message: apiMessage,
});

/** The CLI asks whether a tool outside `--allowedTools` may run (`--permission-prompt-tool stdio`). */
const canUseToolLine = z.object({
  type: z.literal('control_request'),
  request_id: z.string().min(1),
  request: z.object({
    subtype: z.literal('can_use_tool'),
    tool_name: z.string().min(1),
    input: z.record(z.string(), z.unknown()),
    tool_use_id: z.string().optional(),
  }),
});

const controlRequestLine = z.object({
  type: z.literal('control_request'),
  request_id: z.string().min(1),
  request: z.object({ subtype: z.string() }),
});

/** The CLI withdraws a request it sent (e.g. a pending permission when the turn is interrupted). */
const controlCancelLine = z.object({
  type: z.literal('control_cancel_request'),
  request_id: z.string().min(1),
});

const count = z.number().nonnegative().default(0);

const modelCount = z.number().nonnegative().default(0);

const modelUsage = z.record(
  z.string(),
  z.object({
    inputTokens: modelCount,
    outputTokens: modelCount,
    cacheReadInputTokens: modelCount,
    cacheCreationInputTokens: modelCount,
    costUSD: modelCount,
  }),
);

const resultLine = z.object({
  type: z.literal('result'),
  // `subtype` stays "success" on API failures: `is_error` and `api_error_status` are the truth.
  // It names the CLI's own stops, e.g. "error_max_budget_usd" for `--max-budget-usd`.
  subtype: z.string().optional(),
  is_error: z.boolean(),
  api_error_status: z.number().nullish(),
  /** The last API call's stop reason: `refusal` when Claude's safety classifier stopped the answer. */
  stop_reason: z.string().nullish(),
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
  /**
   * Tokens per model, a running total over the life of the process like `total_cost_usd`;
   * the only token counts of an `error_max_budget_usd` result, whose `usage` is zero.
   */
  modelUsage: modelUsage.optional(),
  /**
   * The same per model since the process's previous result (2.1.332; not 2.1.197): the turn's
   * own, with its cost. Its running totals are not: resuming a session in a new process,
   * 2.1.332 starts them from the session's earlier cost and tokens.
   */
  model_usage_since_last_result: modelUsage.optional(),
  permission_denials: z
    .array(z.object({ tool_name: z.string(), tool_use_id: z.string().optional() }))
    .default([]),
});

/** Token counts, in TurnUsage's names. */
export type Tokens = Omit<TurnUsage, 'costUsd' | 'costBasis' | 'tokensUnknown'>;

/**
 * An API call's tokens, with those of its cache writes that live 1 h (part of `cacheWriteTokens`),
 * and its web searches.
 */
export type CallTokens = Tokens & { cacheWrite1hTokens: number; webSearchRequests: number };

/** A sampling round of a call: its tokens, with those of its cache writes labelled 1 h and 5 minutes. */
export type CallRound = Tokens & { cacheWrite1hTokens: number; cacheWrite5mTokens: number };

/** What else the API says of a call, when it does: each can change its price. */
export interface CallDetails {
  speed?: string;
  inferenceGeo?: string;
  /** Its sampling rounds (`message` ones); empty when one lacks a count, as the CLI then prices the call whole. */
  rounds?: CallRound[];
  /** The rounds of the models the advisor tool consulted: billed besides the call's own tokens. */
  advisors?: (CallRound & { model?: string })[];
}

/** Tokens and what the CLI says they cost. */
type ReportedUsage = Tokens & { costUsd: number };

export interface CliResult {
  /** `success`, or a stop of the CLI's own such as `error_max_budget_usd`. */
  subtype?: string;
  isError: boolean;
  status?: number;
  /** Why the last API call stopped (`end_turn`, `refusal`…), when the CLI says it. */
  stopReason?: string;
  /** The final text, or the CLI's error text when `isError`. */
  text: string;
  /** Errors the CLI lists when it failed before talking to the API (e.g. an unknown session). */
  errors: string[];
  sessionId?: string;
  /**
   * Tokens are this turn's (zero on an `error_max_budget_usd` result); `costUsd`
   * is `total_cost_usd`, which runs up over the life of the process (and, with
   * 2.1.332, of a resumed session before it): see ClaudeProcess.turnUsage.
   */
  usage: ReportedUsage;
  /** `modelUsage` summed over the models: a running total like `total_cost_usd`. */
  modelTokens?: Tokens;
  /** `model_usage_since_last_result` summed over the models, with its cost: the turn's own, when the CLI says it. */
  sinceLast?: ReportedUsage;
  /** Tools refused during the turn (by a deny answer or `--disallowedTools`). */
  permissionDenials: { tool: string; toolUseId?: string }[];
}

export interface RateLimitInfo {
  status: string;
  /** Unix milliseconds. */
  resetsAt?: number;
  limitType?: string;
  overageStatus?: string;
  /** Unix milliseconds. */
  overageResetsAt?: number;
  overageDisabledReason?: string;
}

export type CliEvent =
  /**
   * A turn starts, on the CLI of `version` (when it says); `mcpStatus` is how its connection to
   * brainstem's own MCP server stands, when the turn was given one.
   */
  | { type: 'init'; sessionId: string; version?: string; mcpStatus?: string }
  /** A top-level text block starts (used to separate the texts of successive messages). */
  | { type: 'text_block' }
  | { type: 'text_delta'; text: string }
  /** A top-level message ends, and why (`end_turn`, `tool_use`, `max_tokens`…). */
  | { type: 'message_end'; stopReason: string; tokens?: CallTokens; details?: CallDetails }
  /**
   * Tokens an API call of the turn used so far (its message's `usage`), by message id; `parent` for a
   * subagent's call. The CLI repeats a message's usage with each of its content blocks, and the
   * output count grows until the message ends; a `message_delta`'s count has no id (`messageId`
   * absent): it is that of the last message begun on the same `parent`.
   */
  | {
      type: 'call_usage';
      parent?: string;
      messageId?: string;
      model?: string;
      tokens: CallTokens;
      details?: CallDetails;
    }
  | { type: 'rate_limit'; info: RateLimitInfo }
  | { type: 'api_error'; error: string }
  | { type: 'result'; result: CliResult }
  /** Permission to run a tool, to be answered with a control response. */
  | { type: 'permission'; requestId: string; tool: string; input: Record<string, unknown> }
  /** Any other request of the CLI; brainstem answers it with an error. */
  | { type: 'control_request'; requestId: string; subtype: string }
  | { type: 'control_cancel'; requestId: string }
  /** A line the brain has no use for (status, whole messages, tool results, control acks). */
  | { type: 'other'; lineType: string; subtype?: string }
  /** A line that is not JSON, or of a known type that no longer matches its schema: the CLI changed. */
  | { type: 'invalid'; lineType: string; problem: string };

const lineType = z.object({ type: z.string(), subtype: z.string().optional() });

/** Parses one stdout line. */
export function parseCliLine(line: string): CliEvent {
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch {
    return { type: 'invalid', lineType: '(not JSON)', problem: headChars(line, 200) };
  }
  const head = lineType.safeParse(json);
  if (!head.success) return { type: 'invalid', lineType: '(no type)', problem: headChars(line, 200) };
  const { type, subtype } = head.data;
  return parseKnown(type, subtype, json) ?? { type: 'other', lineType: type, subtype };
}

function parseKnown(type: string, subtype: string | undefined, json: unknown): CliEvent | undefined {
  if (type === 'system' && subtype === 'init')
    return fromSchema(initLine, json, (l) => ({
      type: 'init',
      sessionId: l.session_id,
      ...(l.claude_code_version ? { version: l.claude_code_version } : {}),
      ...mcpStatus(l.mcp_servers),
    }));
  if (type === 'stream_event') return fromSchema(streamEventLine, json, fromStreamEvent);
  if (type === 'rate_limit_event') {
    return fromSchema(rateLimitLine, json, ({ rate_limit_info: i }) => ({
      type: 'rate_limit',
      info: {
        status: i.status,
        resetsAt: i.resetsAt === undefined ? undefined : i.resetsAt * 1000,
        limitType: i.rateLimitType,
        overageStatus: i.overageStatus,
        overageResetsAt: i.overageResetsAt === undefined ? undefined : i.overageResetsAt * 1000,
        overageDisabledReason: i.overageDisabledReason,
      },
    }));
  }
  if (type === 'assistant') {
    return fromSchema(assistantLine, json, (l) => {
      if (l.error) return l.parent_tool_use_id ? undefined : { type: 'api_error', error: l.error };
      return l.message ? callUsage(l.parent_tool_use_id, l.message) : undefined;
    });
  }
  if (type === 'result') return fromSchema(resultLine, json, fromResult);
  if (type === 'control_request') {
    const request = (json as { request?: { subtype?: unknown } }).request;
    if (request?.subtype === 'can_use_tool') {
      return fromSchema(canUseToolLine, json, (l) => ({
        type: 'permission',
        requestId: l.request_id,
        tool: l.request.tool_name,
        input: l.request.input,
      }));
    }
    return fromSchema(controlRequestLine, json, (l) => ({
      type: 'control_request',
      requestId: l.request_id,
      subtype: l.request.subtype,
    }));
  }
  if (type === 'control_cancel_request')
    return fromSchema(controlCancelLine, json, (l) => ({ type: 'control_cancel', requestId: l.request_id }));
  return undefined;
}

/**
 * Whether a line shows that the CLI has started working on the turn it was
 * given (beyond announcing itself). Until then a turn that dies can be given
 * to another process without anything done or said twice.
 */
export function isProgress(ev: CliEvent): boolean {
  if (ev.type === 'init' || ev.type === 'invalid') return false;
  return !(ev.type === 'other' && (ev.lineType === 'system' || ev.lineType === 'control_response'));
}

/** How the CLI's connection to brainstem's MCP server stands, when the init lists it. */
function mcpStatus(servers: { name: string; status: string }[] | undefined): { mcpStatus?: string } {
  const own = servers?.find((s) => s.name === MCP_SERVER_NAME);
  return own ? { mcpStatus: own.status } : {};
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
  const { event } = line;
  if (event.type === 'message_start' && event.message)
    return callUsage(line.parent_tool_use_id, event.message);
  // A message's own end: its stop reason matters to the reader, its output tokens to the estimate.
  const end = event.type === 'message_delta' && event.delta?.stop_reason;
  if (event.type === 'message_delta' && event.usage && (line.parent_tool_use_id || !end)) {
    return {
      type: 'call_usage',
      parent: line.parent_tool_use_id ?? undefined,
      tokens: tokensOf(event.usage),
      ...detailsOf(event.usage),
    };
  }
  if (line.parent_tool_use_id) return undefined;
  if (event.type === 'content_block_start' && event.content_block?.type === 'text')
    return { type: 'text_block' };
  if (event.type === 'content_block_delta' && event.delta?.type === 'text_delta' && event.delta.text) {
    return { type: 'text_delta', text: event.delta.text };
  }
  if (end) {
    return {
      type: 'message_end',
      stopReason: end,
      ...(event.usage ? { tokens: tokensOf(event.usage), ...detailsOf(event.usage) } : {}),
    };
  }
  return undefined;
}

function callUsage(parent: string | null | undefined, m: NonNullable<z.infer<typeof apiMessage>>): CliEvent {
  return {
    type: 'call_usage',
    parent: parent ?? undefined,
    messageId: m.id,
    model: m.model,
    tokens: tokensOf(m.usage),
    ...detailsOf(m.usage),
  };
}

/** The counts the API gave; one it left out (a `message_delta` may give only the output) is 0. */
function tokensOf(u: z.infer<typeof apiUsage>): CallTokens {
  const cacheWriteTokens = u.cache_creation_input_tokens ?? 0;
  return {
    inputTokens: u.input_tokens ?? 0,
    outputTokens: u.output_tokens ?? 0,
    cacheReadTokens: u.cache_read_input_tokens ?? 0,
    cacheWriteTokens,
    // As the CLI reads it: never more than the cache written.
    cacheWrite1hTokens: Math.min(u.cache_creation?.ephemeral_1h_input_tokens ?? 0, cacheWriteTokens),
    webSearchRequests: u.server_tool_use?.web_search_requests ?? 0,
  };
}

/** What else the API said of the call, as `{ details }` when it said anything. */
function detailsOf(u: z.infer<typeof apiUsage>): { details?: CallDetails } {
  const details: CallDetails = {};
  if (u.speed) details.speed = u.speed;
  if (u.inference_geo) details.inferenceGeo = u.inference_geo;
  if (u.iterations) {
    details.rounds = roundsOf(u.iterations);
    details.advisors = u.iterations
      .filter((i) => i.type === 'advisor_message')
      .map((i) => ({ ...(i.model ? { model: i.model } : {}), ...roundOf(i) }));
  }
  return Object.keys(details).length > 0 ? { details } : {};
}

/** The `message` rounds of a call, or none if one lacks a count. */
function roundsOf(iterations: z.infer<typeof apiIteration>[]): CallRound[] {
  const rounds: CallRound[] = [];
  for (const it of iterations.filter((i) => i.type === 'message')) {
    const counts = [
      it.input_tokens,
      it.output_tokens,
      it.cache_read_input_tokens,
      it.cache_creation_input_tokens,
    ];
    if (counts.some((n) => n == null)) return [];
    rounds.push(roundOf(it));
  }
  return rounds;
}

/** A round's counts; one it left out is 0. */
function roundOf(it: z.infer<typeof apiIteration>): CallRound {
  const cacheWrite = it.cache_creation_input_tokens ?? 0;
  const cacheWrite1hTokens = Math.min(it.cache_creation?.ephemeral_1h_input_tokens ?? 0, cacheWrite);
  return {
    inputTokens: it.input_tokens ?? 0,
    outputTokens: it.output_tokens ?? 0,
    cacheReadTokens: it.cache_read_input_tokens ?? 0,
    cacheWriteTokens: cacheWrite,
    cacheWrite1hTokens,
    cacheWrite5mTokens: Math.min(
      it.cache_creation?.ephemeral_5m_input_tokens ?? 0,
      cacheWrite - cacheWrite1hTokens,
    ),
  };
}

function fromResult(line: z.infer<typeof resultLine>): CliEvent {
  const u = line.usage;
  return {
    type: 'result',
    result: {
      subtype: line.subtype,
      isError: line.is_error,
      status: line.api_error_status ?? undefined,
      stopReason: line.stop_reason ?? undefined,
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
      modelTokens: modelTotals(line.modelUsage),
      sinceLast: sinceLastResult(line.model_usage_since_last_result),
      permissionDenials: line.permission_denials.map((d) => ({
        tool: d.tool_name,
        toolUseId: d.tool_use_id,
      })),
    },
  };
}

/** What every model cost and used since the process's previous result. */
function sinceLastResult(
  models: z.infer<typeof resultLine>['model_usage_since_last_result'],
): ReportedUsage | undefined {
  const tokens = modelTotals(models);
  if (!models || !tokens) return undefined;
  return { ...tokens, costUsd: Object.values(models).reduce((n, m) => n + m.costUSD, 0) };
}

/** The tokens of every model of the process's life so far. */
function modelTotals(models: z.infer<typeof resultLine>['modelUsage']): Tokens | undefined {
  if (!models) return undefined;
  const all = Object.values(models);
  const sum = (f: (m: (typeof all)[number]) => number) => all.reduce((n, m) => n + f(m), 0);
  return {
    inputTokens: sum((m) => m.inputTokens),
    outputTokens: sum((m) => m.outputTokens),
    cacheReadTokens: sum((m) => m.cacheReadInputTokens),
    cacheWriteTokens: sum((m) => m.cacheCreationInputTokens),
  };
}
