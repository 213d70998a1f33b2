import type { CreditConfig } from '../config.js';
import { readCredentialsSync } from '../credentials.js';

export interface CreditAmount {
  /** USD a cycle. */
  usd: number;
  /** Where the amount comes from: `claude.credit.monthlyUsd`, or the plan in the credentials file. */
  from: 'config' | 'plan';
  /** The plan's name when it comes from the plan ("Max 5x"). */
  plan?: string;
}

/**
 * The monthly Agent SDK credit of a plan, from the credentials file's
 * `subscriptionType` and `rateLimitTier` (Anthropic's help article "Use the
 * Claude Agent SDK with your Claude plan"): Pro $20, Max 5x $100, Max 20x $200,
 * Team Standard $20, Team Premium $100. Known values: `pro`, `max` with
 * `default_claude_max_5x` / `default_claude_max_20x` (CLI 2.1.197). Assumed: a
 * Team Premium seat's tier names "premium" or a Max tier. Enterprise seats vary
 * (none, $20 or $200): set `claude.credit.monthlyUsd`.
 */
export function planCredit(subscriptionType?: string, rateLimitTier?: string): CreditAmount | undefined {
  const tier = rateLimitTier?.toLowerCase() ?? '';
  switch (subscriptionType?.toLowerCase()) {
    case 'pro':
      return { usd: 20, from: 'plan', plan: 'Pro' };
    case 'max':
      if (tier.includes('20x')) return { usd: 200, from: 'plan', plan: 'Max 20x' };
      if (tier.includes('5x')) return { usd: 100, from: 'plan', plan: 'Max 5x' };
      return undefined;
    case 'team':
      return /premium|max/.test(tier)
        ? { usd: 100, from: 'plan', plan: 'Team Premium' }
        : { usd: 20, from: 'plan', plan: 'Team Standard' };
    default:
      return undefined;
  }
}

/** How long a read of the credentials file is trusted: the plan changes rarely. */
const PLAN_TTL_MS = 60_000;

/**
 * The credit in force: none when every Claude mode is billed per token
 * (`billedBy`, e.g. an API key: the CLI then uses the key, not the login the
 * credentials file may still hold), else `claude.credit.monthlyUsd` when set
 * (0 = none), else the plan's. The credentials file is read at most once a
 * minute; without it there is no credit.
 */
export class CreditSource {
  private cached?: { at: number; amount: CreditAmount | undefined };

  constructor(
    private readonly config: Pick<CreditConfig, 'monthlyUsd'>,
    private readonly credentialsFile: string,
    /** The variables that bill every Claude mode per token (billing.ts creditBypass), if they do. */
    readonly billedBy?: string,
  ) {}

  /**
   * `claude.credit.monthlyUsd: 0`: the owner said there is no credit (API billing, or no envelope
   * wanted), so the meter talks of none, rather than asking to set the amount they set.
   */
  get off(): boolean {
    return !this.billedBy && this.config.monthlyUsd === 0;
  }

  amount(now = Date.now()): CreditAmount | undefined {
    if (this.billedBy) return undefined;
    const set = this.config.monthlyUsd;
    if (set !== undefined) return set > 0 ? { usd: set, from: 'config' } : undefined;
    if (!this.cached || now - this.cached.at > PLAN_TTL_MS) {
      const read = readCredentialsSync(this.credentialsFile);
      this.cached = {
        at: now,
        amount: read.ok ? planCredit(read.info.subscriptionType, read.info.rateLimitTier) : undefined,
      };
    }
    return this.cached.amount;
  }
}
