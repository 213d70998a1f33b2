import type { ModeConfig } from '../config.js';
import type { Billing } from '../usage.js';

/**
 * Who pays a mode's turns. A Claude mode whose CLI gets ANTHROPIC_API_KEY
 * (from its own `env`, `claude.env` or brainstem's environment, which the CLI
 * inherits) bills that key at API rates; any other runs on the subscription
 * and draws from its monthly Agent SDK credit. A local model costs nothing.
 */
export function billingOf(
  mode: ModeConfig,
  claudeEnv: Record<string, string>,
  env: NodeJS.ProcessEnv = process.env,
): Billing | undefined {
  if (mode.kind !== 'claude') return undefined;
  const key = mode.env?.ANTHROPIC_API_KEY ?? claudeEnv.ANTHROPIC_API_KEY ?? env.ANTHROPIC_API_KEY;
  return key ? 'api_key' : 'subscription';
}
