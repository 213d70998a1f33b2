import type { Lang, Said } from '../src/i18n.js';

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
  /** True when the history holds no assistant message: the brain must not resume an old session. */
  freshSession: boolean;
  tools?: ToolDefinition[];
  toolChoice?: unknown;
  maxTokens?: number;
  /** Sampling and output controls the client asked for; a brain that cannot honour one refuses it (see Brain.refuse). */
  options?: GenerationOptions;
  /** Extra context the core wants the brain to see this turn only (e.g. a usage summary). */
  extraContext?: string;
  /** Asks a person whether a tool outside the mode's allow-list may run; absent = such tools are denied. */
  approve?: Approver;
  /** The most this turn may spend, in USD; a brain that reaches it stops with a `usage_limit` error. */
  maxBudgetUsd?: number;
  /**
   * A folder whose files the face sends to the user after the answer (src/outbox.ts): a brain that can
   * write files is told so, and may write there. Absent: nobody would receive them.
   */
  outbox?: string | undefined;
  /**
   * A folder holding the files the conversation's users sent, whose paths the face gave the brain:
   * a brain that asks before reading a file reads these without asking (the sender meant it to).
   */
  uploads?: string | undefined;
  /** How many brains stand above this turn: 0 (or absent) when a person or a client asked, 1 for brain_chat from a brain… */
  depth?: number;
  /** The language of brainstem's notices about this turn (the Telegram user's, else guessed from the words); English when absent. */
  lang?: Lang;
  /**
   * The messages end with the results of tools brainstem ran for the model during this answer (its
   * own tool loop, src/chat/tool-loop.ts): a context overflow is theirs, and a new conversation would
   * not help, since the same question calls the same tools.
   */
  ownToolResults?: boolean;
  /**
   * The client keeps the conversation and sends it whole each turn (the OpenAI endpoint): an answer
   * it did not get whole (stopped, failed) is not in what it sends next, so a brain session that
   * holds that turn must not be resumed, or the brain would hear the turn twice and its cut answer.
   */
  clientHistory?: boolean;
}

/**
 * The Chat Completions sampling and output fields, by their wire names, so a
 * brain that speaks OpenAI passes them on unchanged and an error names the
 * field the client sent.
 */
export interface GenerationOptions {
  temperature?: number;
  top_p?: number;
  stop?: string | string[];
  seed?: number;
  presence_penalty?: number;
  frequency_penalty?: number;
  logit_bias?: Record<string, number>;
  logprobs?: boolean;
  top_logprobs?: number;
  response_format?: ResponseFormat;
  reasoning_effort?: string;
  parallel_tool_calls?: boolean;
}

export type ResponseFormat =
  | { type: 'text' }
  | { type: 'json_object' }
  | {
      type: 'json_schema';
      json_schema: { name: string; schema?: Record<string, unknown>; [key: string]: unknown };
    };

/** A request field a brain cannot honour, and what the client can do instead. */
export interface Refusal {
  /** The request field, e.g. `temperature` or `tool_choice`. */
  param: string;
  message: string;
}

/** A brain wants to run a tool that needs a person's approval. */
export interface ApprovalRequest {
  /** Unique per request (the CLI's request id). */
  id: string;
  sessionKey: string;
  mode: string;
  tool: string;
  input: Record<string, unknown>;
  /**
   * Readable summary of the input (the Bash command, the file path…, and for a
   * Write, Edit or NotebookEdit the change it makes: see approval-summary.ts), not
   * escaped. Whole, however long: a face shows what fits and says what it left out.
   */
  summary: string;
}

/**
 * `session` also allows the same thing again in this conversation without asking: what the
 * question was about (the brain's grantKey; for the Claude CLI the same command, the same file
 * whatever the change, the same site…).
 */
export type ApprovalDecision =
  | { behavior: 'allow'; scope: 'once' | 'session' }
  | { behavior: 'deny'; message: string };

/**
 * Resolves when a person has decided; `signal` aborts when the answer is no longer wanted, its
 * `reason` saying why (ApprovalWithdrawn): a face's own clock cannot tell, since the brain's
 * started before the question could be shown (the bot still starting, Telegram slow to answer).
 */
export type Approver = (req: ApprovalRequest, signal: AbortSignal) => Promise<ApprovalDecision>;

/**
 * Thrown by an approver whose question can no longer be answered anywhere (its message deleted, by
 * hand or with its Telegram forum topic): the brain denies at once, telling the user `message`
 * (`fr` in French), rather than waiting out its clock for an answer that cannot come.
 */
export class ApprovalQuestionGone extends Error {
  constructor(
    message: string,
    readonly fr: string,
  ) {
    super(message);
    this.name = 'ApprovalQuestionGone';
  }
}

/** Why an approval question was withdrawn: nobody answered in time, or the turn stopped (or failed). */
export type ApprovalWithdrawn = 'timeout' | 'stopped';

/** Who settled an approval request. */
export type ApprovalSource =
  | 'approver' // a person answered
  | 'session' // allowed earlier "for this session"
  | 'uploads' // a Read of a file the user sent (TurnRequest.uploads): allowed without asking
  | 'timeout' // nobody answered in time: denied
  | 'unavailable' // no approver for this turn: denied
  | 'refused' // brainstem refuses the call itself (its own tool, an input it does not take): denied unasked
  | 'failed' // the approver threw: denied
  | 'cancelled'; // the turn stopped while waiting: nothing was run

export interface TurnUsage {
  costUsd: number;
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  /**
   * Absent: the cost is the brain's own figure. `estimated`: the brain gave none (a Claude turn
   * whose CLI died before its result), so it was priced from the tokens it was seen to use;
   * `unknown`: some of those tokens' price is not known, and the cost leaves them out.
   */
  costBasis?: CostBasis;
  /**
   * The upstream reported no token counts (an Ollama that ignores `stream_options.include_usage`):
   * the counts here are not measured, so nothing shows them as if they were.
   */
  tokensUnknown?: true;
}

export type CostBasis = 'estimated' | 'unknown';

/** OpenAI's: `content_filter` is the upstream's own filter (a llama server behind a moderating proxy). */
export type FinishReason = 'stop' | 'tool_calls' | 'length' | 'content_filter';

/** Why a turn failed, so each face can say something useful (and the bot can send renewal help). */
export type BrainErrorKind =
  | 'auth' // credentials rejected or missing: the user must renew them
  | 'usage_limit' // a limit reached (see BrainError.limit); resetsAt when known
  | 'rate_limit' // plain 429
  | 'upstream_down' // cannot reach the brain at all
  | 'unavailable' // the brain's server is up but cannot answer yet (its model loading, its queue full): sent again in a moment, it is answered
  | 'upstream_error' // the brain answered with an error
  | 'bad_request' // the request cannot be served by this brain, or the brain refused it as invalid: sent again, it fails again
  | 'context_overflow' // the conversation no longer fits the model's context: the client must shorten it
  | 'aborted' // the caller gave up
  | 'shutting_down' // brainstem is stopping and cut the turn: sent again in a moment, it is answered
  | 'internal';

export interface BrainError {
  kind: BrainErrorKind;
  /** A message a person can act on; never a stack trace, never a secret. */
  message: string;
  /**
   * The message in French, for a face that speaks the reader's language (Telegram, through
   * sayError); the API's answers and the log keep `message`.
   */
  fr?: string;
  /** Unix milliseconds when a usage limit resets, if the brain said. */
  resetsAt?: number;
  /**
   * Which limit a `usage_limit` is: absent for the subscription's own windows
   * (5-hour, weekly), `credit` for the monthly Agent SDK credit, `turn_budget`
   * / `day_budget` for a mode's budget (the brain reports `turn_budget`, the
   * cap it was given; the core names the budget that set it).
   */
  limit?: 'credit' | 'turn_budget' | 'day_budget';
  /** HTTP-ish status the brain saw, if any. */
  status?: number;
  /**
   * The part of the request the failure is about (`messages.3.content.1`), as OpenAI's `param`
   * names it, when the brain knows: a client or its user finds what to change.
   */
  param?: string;
  /**
   * How long to wait before sending the same request again, when the brain's
   * upstream said (its `Retry-After`) or the wait is the brain's own estimate
   * (a model loading); absent when nobody knows.
   */
  retryAfterMs?: number;
  /**
   * The same request sent again would do the turn's work again or meet the same end: it ran to
   * the turn time limit, its CLI died after it had begun, or Claude's API failed after answering
   * one of its calls (its tools may have run, its calls were billed). A client that retries by itself (the openai SDKs retry a 5xx twice) is told not to.
   */
  noRetry?: true;
}

export type TurnEvent =
  | { type: 'text'; text: string }
  /** A tool call delta in OpenAI's streaming shape: id and name on the first delta of an index. */
  | { type: 'tool_call'; index: number; id?: string; name?: string; arguments?: string }
  | { type: 'usage'; usage: TurnUsage }
  /** The brain's own session id for this conversation, once known. */
  | { type: 'session'; sessionId: string }
  | { type: 'done'; finishReason: FinishReason }
  | { type: 'error'; error: BrainError }
  /** The turn waits until `request` is decided (a face can show it). */
  | { type: 'approval_pending'; request: ApprovalRequest }
  /** An approval request was settled; every one is reported, for the audit log. */
  | {
      type: 'approval';
      request: ApprovalRequest;
      decision: ApprovalDecision;
      source: ApprovalSource;
      /** How long the turn waited for it. */
      waitedMs: number;
    }
  /** Something brainstem tells the user about this turn, apart from the answer (starts with the proxy tag). */
  | { type: 'notice'; text: string }
  /** Token log probabilities of the text just sent, in OpenAI's `logprobs.content` shape (asked with `logprobs`). */
  | { type: 'logprobs'; content: unknown[] };

/**
 * Why a brain is not ready, in words that quote nothing of its upstream (an error's text, an
 * address): all the public /health says of it.
 */
export type NotReadyKind = 'unreachable' | 'loading' | 'not signed in' | 'not installed' | 'error';

/** A brain's answer to its readiness probe; when not ready, why, and whether waiting can help. */
export type Readiness =
  | { ok: true; detail?: Said }
  | {
      ok: false;
      /** Why, worded in each language: the reader's for a person, English for the log and the API. */
      reason: Said;
      /** Absent: 'error'. */
      kind?: NotReadyKind;
      /**
       * Asking again will not help (the program does not exist, or only a
       * person can fix it, e.g. by logging in), so nobody should wait for it.
       */
      final?: boolean;
      /**
       * Nothing answers at the brain's address (connection refused, unknown
       * host): only something that starts the upstream can help, so a wait
       * that starts nothing need not wait long.
       */
      down?: boolean;
    };

export interface Brain {
  /** The mode id this brain serves. */
  readonly id: string;
  readonly kind: 'claude' | 'llama';
  /** A real probe of the upstream (binary runs, server answers /health), never a guess. */
  ready(signal?: AbortSignal): Promise<Readiness>;
  /**
   * Brings the model into memory before a switch says the mode is awake, for an upstream that
   * loads it only on the first request (Ollama); answers once it is loaded, or why it could not be.
   * Bounded by `signal` alone (the switch's deadline, a stop). Absent, or ok at once: ready is loaded.
   */
  preload?(signal: AbortSignal): Promise<Readiness>;
  /**
   * Whether its model is out of memory now, on an upstream that loads it on the first request and
   * unloads it when unused (Ollama's keep_alive): asking for the active mode again then loads it
   * (preload) rather than answering that it is already on. Absent: a ready brain is loaded.
   */
  needsLoad?(signal: AbortSignal): Promise<boolean>;
  /**
   * Frees the memory its model holds now, on an upstream that keeps a model loaded by itself after
   * the last request (Ollama's keep_alive): a switch to a model another server loads on the same
   * machine calls it. Answers once the model is out of memory, or why it is not (bounded by
   * `signal`); ok with no detail when there was nothing to free. Absent: nothing to free
   * (llama-server's model is stopped by its mode's `stop` commands). `before` runs first, and only
   * when there is a model to free: the answers streaming from it end (Switcher.letAnswersEnd).
   */
  unload?(signal: AbortSignal, before: () => Promise<void>): Promise<Readiness>;
  /**
   * Run one turn. Must end with exactly one `done` or `error` event, must stop
   * work (kill children, close sockets) when `signal` aborts, and must never throw
   * for a failure of the upstream: failures are `error` events.
   */
  turn(req: TurnRequest, signal: AbortSignal): AsyncIterable<TurnEvent>;
  /**
   * The first request field this brain cannot honour (checked before the turn
   * starts, so the client gets a 400 naming it); absent = it honours them all.
   */
  refuse?(req: Pick<TurnRequest, 'options' | 'toolChoice' | 'messages'>): Refusal | undefined;
  /**
   * Resolves once none of this brain's turns is running: a model swap waits
   * for it before it unloads the model those turns stream from.
   */
  settled?(): Promise<void>;
  /**
   * Ends the turns running now with `why`: a swap whose grace for them ran out is about to stop the
   * model they stream from, and their user hears that, not that the stream broke.
   */
  cutShort?(why: BrainError): void;
  /** Forget the brain session of a conversation (the user asked for a fresh start). */
  forget?(sessionKey: string): void;
  /**
   * The conversation `sessionKey` goes on as `to` (the session store's rows moved by the caller):
   * what the brain keeps for it in memory (a live process) serves `to` from now on.
   */
  move?(sessionKey: string, to: string): void;
  /** Ends what the brain keeps running between turns (warm processes), for shutdown. */
  close?(): Promise<void>;
}
