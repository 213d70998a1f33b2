import type { ModeConfig } from '../config.js';
import { credentialsFromEnv } from '../credentials.js';
import type { Billing } from '../usage.js';

/**
 * Who pays a mode's turns. A Claude mode whose CLI takes its credentials from
 * an API key, a gateway's bearer token or a cloud provider's account (from its
 * own `env`, `claude.env` or brainstem's environment, which the CLI inherits)
 * is billed per token (`api_key`), never from the credit; one on /login's file
 * or `claude setup-token`'s token runs on the subscription and draws from its
 * monthly Agent SDK credit. A local model costs nothing.
 */
export function billingOf(
  mode: ModeConfig,
  claudeEnv: Record<string, string>,
  env: NodeJS.ProcessEnv = process.env,
): Billing | undefined {
  if (mode.kind !== 'claude') return undefined;
  return billedBy(mode, claudeEnv, env) ? 'api_key' : 'subscription';
}

/** The variable that bills a Claude mode per token, if one does. */
function billedBy(
  mode: ModeConfig,
  claudeEnv: Record<string, string>,
  env: NodeJS.ProcessEnv,
): string | undefined {
  const by = credentialsFromEnv({ ...claudeEnv, ...mode.env }, env);
  return by === 'CLAUDE_CODE_OAUTH_TOKEN' ? undefined : by;
}

/**
 * What bills every Claude mode per token (e.g. `ANTHROPIC_API_KEY`), so that the subscription's
 * credit applies to none of their turns; undefined when some Claude mode runs on the subscription,
 * or none is a Claude mode.
 */
export function creditBypass(
  modes: ModeConfig[],
  claudeEnv: Record<string, string>,
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  const claude = modes.filter((m) => m.kind === 'claude');
  const by = claude.map((m) => billedBy(m, claudeEnv, env));
  if (claude.length === 0 || by.some((v) => v === undefined)) return undefined;
  return [...new Set(by)].join(', ');
}
