import type { Logger } from '../../src/logger.js';
import type { TurnUsage } from '../types.js';
import type { CallTokens, CliEvent } from './stream-json.js';

/**
 * What a turn cost when the CLI never said: its `result` (with `total_cost_usd`)
 * is the only cost it gives, and a process that dies before writing it (killed,
 * crashed, stopped after an interrupt it did not answer in time) gives none,
 * although every API call it made was billed. The stream showed those calls'
 * tokens: they are priced here, as the CLI prices them.
 */

/** USD per million tokens. */
interface Price {
  input: number;
  output: number;
  cacheRead: number;
  cacheWrite: number;
  cacheWrite1h: number;
}

const price = (input: number, output: number, cacheRead: number): Price => ({
  input,
  output,
  cacheRead,
  // Written to the 5-minute cache: 1.25 times the input price; to the 1-hour one: twice (both CLIs).
  cacheWrite: input * 1.25,
  cacheWrite1h: input * 2,
});

/**
 * The CLIs' own prices, seen in their `total_cost_usd` for a million tokens of
 * each kind (2.1.197 and 2.1.332 agree on each, except `claude-sonnet-5` and
 * `claude-opus-5-5`, 2.1.332's defaults: 2.1.332's prices, the newer, are taken).
 * A model missing here gets no estimate: its tokens are recorded and its cost
 * is said to be unknown.
 */
const PRICES: Record<string, Price> = {
  'claude-haiku-4-5': price(1, 5, 0.1),
  'claude-sonnet-4-5': price(3, 15, 0.3),
  'claude-sonnet-4-6': price(3, 15, 0.3),
  'claude-sonnet-5': price(2, 10, 0.2),
  'claude-opus-4-5': price(5, 25, 0.5),
  'claude-opus-4-6': price(5, 25, 0.5),
  'claude-opus-4-7': price(5, 25, 0.5),
  'claude-opus-4-8': price(5, 25, 0.5),
  'claude-opus-5': price(5, 25, 0.5),
  'claude-opus-5-5': price(4, 20, 0.2),
};

/** A model's price: its name may carry a date (`claude-sonnet-4-5-20250929`) or the CLI's `[1m]`. */
function priceOf(model: string | undefined): Price | undefined {
  const name = model?.replace(/\[1m\]$/, '');
  if (!name) return undefined;
  return PRICES[name] ?? PRICES[name.replace(/-\d{8}$/, '')];
}

const NO_TOKENS: CallTokens = {
  inputTokens: 0,
  outputTokens: 0,
  cacheReadTokens: 0,
  cacheWriteTokens: 0,
  cacheWrite1hTokens: 0,
};

export interface UsageEstimate {
  usage: TurnUsage;
  /** Models whose price is not known: their calls' tokens count, their cost does not. */
  unpriced: string[];
}

/** The API calls a turn's stream showed, by message id. */
export class CallTally {
  private readonly calls = new Map<string, { model?: string; tokens: CallTokens }>();
  /** The message last begun on each stream (the turn's own: '', a subagent's: its parent tool use). */
  private readonly current = new Map<string, string>();

  read(ev: CliEvent): void {
    if (ev.type === 'message_end') {
      if (ev.tokens) this.add('', undefined, undefined, ev.tokens);
    } else if (ev.type === 'call_usage') this.add(ev.parent ?? '', ev.messageId, ev.model, ev.tokens);
  }

  /** Whether any call was seen. */
  get seen(): boolean {
    return this.calls.size > 0;
  }

  /**
   * The calls' tokens and what they cost at the CLI's prices (`costBasis`
   * `estimated`), or `unknown` when a model has no price here: then the cost
   * is only that of the priced calls.
   */
  estimate(): UsageEstimate {
    const usage: TurnUsage = {
      costUsd: 0,
      inputTokens: 0,
      outputTokens: 0,
      cacheReadTokens: 0,
      cacheWriteTokens: 0,
    };
    const unpriced = new Set<string>();
    for (const { model, tokens: t } of this.calls.values()) {
      usage.inputTokens += t.inputTokens;
      usage.outputTokens += t.outputTokens;
      usage.cacheReadTokens += t.cacheReadTokens;
      usage.cacheWriteTokens += t.cacheWriteTokens;
      const p = priceOf(model);
      if (!p) unpriced.add(model ?? '(no model named)');
      else
        usage.costUsd +=
          (t.inputTokens * p.input +
            t.outputTokens * p.output +
            t.cacheReadTokens * p.cacheRead +
            (t.cacheWriteTokens - t.cacheWrite1hTokens) * p.cacheWrite +
            t.cacheWrite1hTokens * p.cacheWrite1h) /
          1e6;
    }
    usage.costBasis = unpriced.size > 0 ? 'unknown' : 'estimated';
    return { usage, unpriced: [...unpriced] };
  }

  private add(stream: string, id: string | undefined, model: string | undefined, tokens: CallTokens): void {
    const key = id ?? this.current.get(stream);
    if (key === undefined) return;
    if (id !== undefined) this.current.set(stream, id);
    const call = this.calls.get(key) ?? { model, tokens: { ...NO_TOKENS } };
    call.model ??= model;
    // Counts repeat (one per content block) and grow (the output): the largest is the call's.
    for (const k of Object.keys(NO_TOKENS) as (keyof CallTokens)[]) {
      call.tokens[k] = Math.max(call.tokens[k], tokens[k]);
    }
    this.calls.set(key, call);
  }
}

/**
 * The estimated usage of a turn that ended before its result (`turn` names it in the log),
 * or undefined when its stream showed no call; logged at warn when a model's price is unknown.
 */
export function unreportedUsage(calls: CallTally, log: Logger, turn: string): TurnUsage | undefined {
  if (!calls.seen) return undefined;
  const { usage, unpriced } = calls.estimate();
  const { costUsd, costBasis: _, ...tokens } = usage;
  if (unpriced.length > 0) {
    log.warn(
      { models: unpriced, pricedCostUsd: costUsd, ...tokens },
      `${turn} ended without its cost, and the price of its model is unknown: only its tokens are recorded`,
    );
  } else log.info({ costUsd, ...tokens }, `${turn} ended without its cost; estimated from its tokens`);
  return usage;
}
