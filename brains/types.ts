/**
 * The Brain contract. A brain knows nothing of Telegram or HTTP: it takes one
 * conversation turn and yields events as soon as it has them, so that every
 * face (OpenAI endpoint, Telegram bot, tools) can stream without buffering.
 */

/** A message as OpenAI clients send it; content may be a string or an array of parts. */
export interface ChatMessage {
  role: 'system' | 'developer' | 'user' | 'assistant' | 'tool';
  content?: string | ContentPart[] | null;
  name?: string;
  tool_calls?: ToolCall[];
  tool_call_id?: string;
}

export type ContentPart = { type: 'text'; text: string } | { type: string; [key: string]: unknown };

export interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

/** An OpenAI function tool definition, passed through to brains that can use it. */
export interface ToolDefinition {
  type: 'function';
  function: { name: string; description?: string; parameters?: Record<string, unknown> };
}

export interface TurnRequest {
  /** Stable key of the conversation (one brain session per key and mode). */
  sessionKey: string;
  /** The whole history as the client sent it. */
  messages: ChatMessage[];
  /** Text of the user messages after the last assistant message: what a resumed session needs. */
  newTurn: string;
  /** True when the history holds no assistant message: the brain must not resume an old session. */
  freshSession: boolean;
  tools?: ToolDefinition[];
  toolChoice?: unknown;
  maxTokens?: number;
  /** Extra context the core wants the brain to see this turn only (e.g. a usage summary). */
  extraContext?: string;
}

export interface TurnUsage {
  costUsd: number;
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
}

export type FinishReason = 'stop' | 'tool_calls' | 'length';

/** Why a turn failed, so each face can say something useful (and the bot can send renewal help). */
export type BrainErrorKind =
  | 'auth' // credentials rejected or missing: the user must renew them
  | 'usage_limit' // subscription limit reached; resetsAt when known
  | 'rate_limit' // plain 429
  | 'upstream_down' // cannot reach the brain at all
  | 'upstream_error' // the brain answered with an error
  | 'bad_request' // the request cannot be served by this brain
  | 'aborted' // the caller gave up
  | 'internal';

export interface BrainError {
  kind: BrainErrorKind;
  /** A message a person can act on; never a stack trace, never a secret. */
  message: string;
  /** Unix milliseconds when a usage limit resets, if the brain said. */
  resetsAt?: number;
  /** HTTP-ish status the brain saw, if any. */
  status?: number;
}

export type TurnEvent =
  | { type: 'text'; text: string }
  /** A tool call delta in OpenAI's streaming shape: id and name on the first delta of an index. */
  | { type: 'tool_call'; index: number; id?: string; name?: string; arguments?: string }
  | { type: 'usage'; usage: TurnUsage }
  /** The brain's own session id for this conversation, once known. */
  | { type: 'session'; sessionId: string }
  | { type: 'done'; finishReason: FinishReason }
  | { type: 'error'; error: BrainError };

export type Readiness = { ok: true; detail?: string } | { ok: false; reason: string };

export interface Brain {
  /** The mode id this brain serves. */
  readonly id: string;
  readonly kind: 'claude' | 'llama';
  /** A real probe of the upstream (binary runs, server answers /health), never a guess. */
  ready(signal?: AbortSignal): Promise<Readiness>;
  /**
   * Run one turn. Must end with exactly one `done` or `error` event, must stop
   * work (kill children, close sockets) when `signal` aborts, and must never throw
   * for a failure of the upstream: failures are `error` events.
   */
  turn(req: TurnRequest, signal: AbortSignal): AsyncIterable<TurnEvent>;
  /** Forget the brain session of a conversation (the user asked for a fresh start). */
  forget?(sessionKey: string): void;
}
