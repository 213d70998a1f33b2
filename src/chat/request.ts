import type {
  Approver,
  ChatMessage,
  GenerationOptions,
  ToolDefinition,
  TurnEvent,
} from '../../brains/types.js';
import type { ModeConfig } from '../config.js';
import type { Lang } from '../i18n.js';

/** What a face asks the chat core for: one turn of a conversation. */
export interface ChatRequest {
  /** `active`, a mode id or alias, with or without a provider prefix. */
  model: string;
  sessionKey: string;
  messages: ChatMessage[];
  tools?: ToolDefinition[];
  toolChoice?: unknown;
  maxTokens?: number;
  /** Sampling and output controls; a mode whose brain cannot honour one refuses the request. */
  options?: GenerationOptions;
  /** Who asks: recorded in the usage ledger. */
  source: 'openai' | 'telegram' | 'tool';
  lang?: Lang;
  /** Asks a person about tools outside the mode's allow-list; default: the approver of the chat ports. */
  approve?: Approver;
  /** How many brains stand above this turn (see TurnRequest.depth). */
  depth?: number;
  /** The conversation's outbox folder, when the face sends its files to the user (see TurnRequest.outbox). */
  outbox?: string;
  /** The folder of the files the conversation's users sent (see TurnRequest.uploads). */
  uploads?: string;
}

/**
 * Whether the client asked for what only the model's own output can be: JSON
 * (`response_format`), or the logprobs of its tokens. Then nothing of
 * brainstem's goes into the answer: no mode tag before it, and no answer of
 * brainstem's own (a switch, help, status, a shortcut word) in its place.
 */
export function asksModelOutput(req: Pick<ChatRequest, 'options'>): boolean {
  const format = req.options?.response_format?.type;
  return format === 'json_object' || format === 'json_schema' || Boolean(req.options?.logprobs);
}

/** What a face receives: the brain's events, plus the moments a face may want to show. */
export type ChatEvent =
  | TurnEvent
  /** The conversation's previous turn is still running; this one waits. */
  | { type: 'queued' }
  /** A mode switch is running (a model may be loading); this turn waits for it. */
  | { type: 'switch_wait' }
  /**
   * The mode that answers, once known, and the client's tools it keeps from
   * its brain. A named mode is known after any pending switch, before the
   * wait for the conversation's running turn; `active` only once the turn
   * starts, since a switch while it waits changes which mode answers (a
   * stream whose headers went meanwhile lacks the filtered-tools header).
   */
  | { type: 'mode'; mode: ModeConfig; filteredTools: string[] };
