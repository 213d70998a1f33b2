import type { Logger } from '../../src/logger.js';
import type { TurnUsage } from '../types.js';
import { pricesUsOnlyInference } from './cli-compat.js';
import type { CallDetails, CallRound, CallTokens, CliEvent, Tokens } from './stream-json.js';

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

/** A model's prices: in fast mode (`speed` "fast"), and for a call whose prompt passes a size. */
interface ModelPrice {
  standard: Price;
  fast?: Price;
  /** Above `promptTokens` (input, cache read and written), the call's every token costs `price`. */
  longPrompt?: { promptTokens: number; price: Price };
}

/** USD per web search the API ran for a call (both CLIs), whatever the model. */
const WEB_SEARCH = 0.01;

/** What 2.1.332 charges US-only inference (`inference_geo` "us"): its tokens, not its web searches. */
const US_ONLY = 1.1;

/**
 * The CLIs' own prices, seen in their `total_cost_usd` for a million tokens of
 * each kind. 2.1.197 and 2.1.332 agree on each, except `claude-sonnet-5` (2.1.197:
 * $3/$15) and the models 2.1.197 does not know, to which it gives a stand-in price
 * (its default model's): `claude-opus-5-5` and `claude-sonnet-5-5`, 2.1.332's
 * defaults, `claude-haiku-5-5`, and the 5-1 and 5-2 fable and mythos. 2.1.332's
 * prices, the newer, are taken. A model missing here gets no estimate: its
 * tokens are recorded and its cost is said to be unknown.
 */
const PRICES: Record<string, ModelPrice> = {
  'claude-haiku-4-5': { standard: price(1, 5, 0.1) },
  // Five times the price for a prompt over 100k tokens (2.1.332; 2.1.197 does not know the model).
  'claude-haiku-5-5': {
    standard: price(0.1, 0.5, 0.01),
    longPrompt: { promptTokens: 100_000, price: price(0.5, 2.5, 0.05) },
  },
  'claude-sonnet-4-5': { standard: price(3, 15, 0.3) },
  'claude-sonnet-4-6': { standard: price(3, 15, 0.3) },
  'claude-sonnet-5': { standard: price(2, 10, 0.2) },
  'claude-opus-4-5': { standard: price(5, 25, 0.5) },
  'claude-opus-4-6': { standard: price(5, 25, 0.5), fast: price(30, 150, 3) },
  'claude-opus-4-7': { standard: price(5, 25, 0.5), fast: price(30, 150, 3) },
  'claude-opus-4-8': { standard: price(5, 25, 0.5), fast: price(10, 50, 1) },
  'claude-opus-5': { standard: price(5, 25, 0.5), fast: price(10, 50, 1) },
  'claude-opus-5-5': { standard: price(4, 20, 0.2), fast: price(8, 40, 0.4) },
  'claude-sonnet-5-5': { standard: price(2, 10, 0.1) },
  'claude-fable-5': { standard: price(10, 50, 1) },
  'claude-fable-5-1': { standard: price(10, 50, 0.25) },
  'claude-fable-5-2': { standard: price(8, 40, 0.2), fast: price(16, 80, 0.4) },
  'claude-mythos-5': { standard: price(10, 50, 1) },
  'claude-mythos-5-1': { standard: price(10, 50, 0.25) },
  'claude-mythos-5-2': { standard: price(8, 40, 0.2), fast: price(16, 80, 0.4) },
};

/** A model's price: its name may carry a date (`claude-sonnet-4-5-20250929`) or the CLI's `[1m]`. */
function priceOf(model: string | undefined): ModelPrice | undefined {
  const name = model?.replace(/\[1m\]$/, '');
  if (!name) return undefined;
  return PRICES[name] ?? PRICES[name.replace(/-\d{8}$/, '')];
}

/** What one call cost, as the CLI of `version` prices it. */
function callCost(p: ModelPrice, call: Call, version: string | undefined): number {
  const fast = call.details?.speed === 'fast' ? p.fast : undefined;
  // A price that depends on the prompt's size is that of each sampling round's prompt (2.1.332).
  const parts = !fast && p.longPrompt ? pricedRounds(call) : [call.tokens];
  const tokens = parts.reduce((n, t) => n + tokensCost(p, t, fast), 0);
  return tokens * usOnly(call, version) + call.tokens.webSearchRequests * WEB_SEARCH;
}

/** What `t` cost at `p`'s price for a prompt of its size, or at `fast`. */
function tokensCost(p: ModelPrice, t: PricedTokens, fast?: Price): number {
  const prompt = t.inputTokens + t.cacheReadTokens + t.cacheWriteTokens;
  const long = p.longPrompt && prompt > p.longPrompt.promptTokens ? p.longPrompt.price : undefined;
  const rate = fast ?? long ?? p.standard;
  return (
    (t.inputTokens * rate.input +
      t.outputTokens * rate.output +
      t.cacheReadTokens * rate.cacheRead +
      (t.cacheWriteTokens - t.cacheWrite1hTokens) * rate.cacheWrite +
      t.cacheWrite1hTokens * rate.cacheWrite1h) /
    1e6
  );
}

/** The factor of a call's tokens' price (and its advisors'): US-only inference, on CLIs that charge it. */
function usOnly(call: Call, version: string | undefined): number {
  return call.details?.inferenceGeo === 'us' && pricesUsOnlyInference(version) ? US_ONLY : 1;
}

type PricedTokens = Tokens & { cacheWrite1hTokens: number };

/**
 * A call's sampling rounds, priced apart when their counts add up to the call's (else the call is
 * one): as 2.1.332 does, the call's 1-hour cache writes that no round is labelled with go to the
 * first rounds' unlabelled writes.
 */
function pricedRounds({ tokens, details }: Call): PricedTokens[] {
  const rounds: CallRound[] = details?.rounds ?? [];
  const sum = (f: (r: CallRound) => number) => rounds.reduce((n, r) => n + f(r), 0);
  const counts = ['inputTokens', 'outputTokens', 'cacheReadTokens', 'cacheWriteTokens'] as const;
  if (rounds.length === 0 || !counts.every((k) => sum((r) => r[k]) === tokens[k])) return [tokens];
  let unlabelled = Math.max(0, tokens.cacheWrite1hTokens - sum((r) => r.cacheWrite1hTokens));
  return rounds.map((r) => {
    const more = Math.min(unlabelled, r.cacheWriteTokens - r.cacheWrite5mTokens - r.cacheWrite1hTokens);
    unlabelled -= more;
    return { ...r, cacheWrite1hTokens: r.cacheWrite1hTokens + more };
  });
}

const NO_TOKENS: CallTokens = {
  inputTokens: 0,
  outputTokens: 0,
  cacheReadTokens: 0,
  cacheWriteTokens: 0,
  cacheWrite1hTokens: 0,
  webSearchRequests: 0,
};

interface Call {
  model?: string;
  tokens: CallTokens;
  details?: CallDetails;
}

export interface UsageEstimate {
  usage: TurnUsage;
  /** Models whose price is not known: their calls' tokens count, their cost does not. */
  unpriced: string[];
}

/** The API calls a turn's stream showed, by message id. */
export class CallTally {
  private readonly calls = new Map<string, Call>();
  /** The CLI's version, from the turn's start: what a call costs depends on it. */
  private version?: string;
  /** The message last begun on each stream (the turn's own: '', a subagent's: its parent tool use). */
  private readonly current = new Map<string, string>();

  read(ev: CliEvent): void {
    if (ev.type === 'init') this.version = ev.version ?? this.version;
    else if (ev.type === 'message_end') {
      if (ev.tokens) this.add('', undefined, { tokens: ev.tokens, details: ev.details });
    } else if (ev.type === 'call_usage') this.add(ev.parent ?? '', ev.messageId, ev);
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
    const count = (t: Tokens) => {
      usage.inputTokens += t.inputTokens;
      usage.outputTokens += t.outputTokens;
      usage.cacheReadTokens += t.cacheReadTokens;
      usage.cacheWriteTokens += t.cacheWriteTokens;
    };
    for (const call of this.calls.values()) {
      count(call.tokens);
      const p = priceOf(call.model);
      if (!p) unpriced.add(call.model ?? '(no model named)');
      else usage.costUsd += callCost(p, call, this.version);
      // The advisor tool's rounds, on the models it consulted, are billed besides (both CLIs).
      for (const a of call.details?.advisors ?? []) {
        count(a);
        const pa = priceOf(a.model);
        if (!pa) unpriced.add(a.model ?? '(no model named)');
        else usage.costUsd += tokensCost(pa, a) * usOnly(call, this.version);
      }
    }
    usage.costBasis = unpriced.size > 0 ? 'unknown' : 'estimated';
    return { usage, unpriced: [...unpriced] };
  }

  private add(stream: string, id: string | undefined, seen: Call): void {
    const key = id ?? this.current.get(stream);
    if (key === undefined) return;
    if (id !== undefined) this.current.set(stream, id);
    const call = this.calls.get(key) ?? { model: seen.model, tokens: { ...NO_TOKENS } };
    call.model ??= seen.model;
    // Counts repeat (one per content block) and grow (the output): the largest is the call's.
    for (const k of Object.keys(NO_TOKENS) as (keyof CallTokens)[]) {
      call.tokens[k] = Math.max(call.tokens[k], seen.tokens[k]);
    }
    // As the CLI reads them: what a later event says of the call wins.
    if (seen.details) call.details = { ...call.details, ...seen.details };
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

/**
 * What a turn stopped mid-call cost. The CLI's result counts only the API calls that finished, but
 * the one it cut was billed for what it read, which its `message_start` gave (what it wrote until
 * then no event tells, and is left out). When the calls the stream showed come to more than the result says, they are
 * recorded instead, as an estimate; priced as the CLI prices them, the finished ones cost the same
 * either way.
 */
export function stoppedTurnUsage(reported: TurnUsage, calls: CallTally): TurnUsage {
  if (!calls.seen) return reported;
  const { usage, unpriced } = calls.estimate();
  return unpriced.length === 0 && usage.costUsd > reported.costUsd ? usage : reported;
}
