import type { ModeConfig } from '../config.js';
import type { Billing } from '../usage.js';

/**
 * What makes the CLI bill per token outside the subscription: an API key, a
 * gateway's bearer token, or a cloud provider's account (Bedrock, Vertex).
 */
const BILLED_ELSEWHERE = [
  'ANTHROPIC_API_KEY',
  'ANTHROPIC_AUTH_TOKEN',
  'CLAUDE_CODE_USE_BEDROCK',
  'CLAUDE_CODE_USE_VERTEX',
] as const;

/**
 * Who pays a mode's turns. A Claude mode whose CLI gets one of
 * BILLED_ELSEWHERE (from its own `env`, `claude.env` or brainstem's
 * environment, which the CLI inherits) is billed per token (`api_key`), never
 * from the credit; any other runs on the subscription and draws from its
 * monthly Agent SDK credit. A local model costs nothing.
 */
export function billingOf(
  mode: ModeConfig,
  claudeEnv: Record<string, string>,
  env: NodeJS.ProcessEnv = process.env,
): Billing | undefined {
  if (mode.kind !== 'claude') return undefined;
  const set = (name: string) => Boolean(mode.env?.[name] ?? claudeEnv[name] ?? env[name]);
  return BILLED_ELSEWHERE.some(set) ? 'api_key' : 'subscription';
}
