import { describe, expect, it } from 'vitest';
import { billingOf } from '../src/credit/billing.js';
import { modeConfig } from './helpers/mode-config.js';

const claude = (env?: Record<string, string>) =>
  modeConfig({ id: 'assistant', kind: 'claude', ...(env ? { env } : {}) });

describe('who pays a mode', () => {
  it('is the subscription (the credit) unless the CLI is told to bill per token elsewhere', () => {
    expect(billingOf(claude(), {}, {})).toBe('subscription');
    expect(billingOf(claude(), {}, { ANTHROPIC_API_KEY: 'sk-x' })).toBe('api_key');
    // A gateway's bearer, Bedrock, Vertex: billed there, never from the Agent SDK credit.
    expect(billingOf(claude({ ANTHROPIC_AUTH_TOKEN: 'gw' }), {}, {})).toBe('api_key');
    expect(billingOf(claude(), { CLAUDE_CODE_USE_BEDROCK: '1' }, {})).toBe('api_key');
    expect(billingOf(claude(), {}, { CLAUDE_CODE_USE_VERTEX: '1' })).toBe('api_key');
    expect(billingOf({ ...claude(), kind: 'llama' }, {}, { ANTHROPIC_API_KEY: 'sk-x' })).toBeUndefined();
  });
});
