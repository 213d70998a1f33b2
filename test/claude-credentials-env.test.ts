import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { cliEnv } from '../brains/claude-code/env.js';
import { credentialsFromEnv } from '../src/credentials.js';
import { billingOf } from '../src/credit/billing.js';
import { text } from './fakes/anthropic.js';
import { CLAUDE_BIN } from './helpers/claude-bin.js';
import { claudeOnFake } from './helpers/claude-fake.js';
import { modeConfig } from './helpers/mode-config.js';

/**
 * /creds, the doctor and the credentials watcher name the variable Claude Code takes its
 * credentials from, and billing (the credit) goes by it: both must be the one the real CLI
 * sends when several are set, in brainstem's environment and in `claude.env`.
 */
const claude = claudeOnFake({ script: () => text('ok') });

const mode = modeConfig({ id: 'assistant', kind: 'claude' });

/** The variables the CLI sent a value of, with the environment built as the brain builds it. */
async function sent(own: Record<string, string>, claudeEnv: Record<string, string>): Promise<string[]> {
  const { ANTHROPIC_API_KEY: _key, CLAUDE_CODE_OAUTH_TOKEN: _token, ...base } = claude.cli.env;
  const env = cliEnv({ PATH: process.env.PATH, ...own }, { ...base, ...claudeEnv });
  await promisify(execFile)(CLAUDE_BIN, ['-p', 'hi', '--output-format', 'json'], { env });
  const values = new Set(
    claude.fake.requests.flatMap((r) => [
      r.headers['x-api-key'],
      r.headers.authorization?.replace(/^Bearer /, ''),
    ]),
  );
  return Object.entries({ ...own, ...claudeEnv })
    .filter(([, value]) => value && values.has(value))
    .map(([name]) => name);
}

describe('the variable Claude Code takes its credentials from', () => {
  it('is the one the CLI sends: an API key before a setup-token, a gateway’s token before both, a blank in claude.env unsets', async () => {
    // Each case's values are its own, so the cases run at once and their requests are told apart.
    const cases: { own: Record<string, string>; claudeEnv: Record<string, string> }[] = [
      // The key in brainstem's environment, the setup-token in claude.env: the CLI sends the key.
      {
        own: { ANTHROPIC_API_KEY: 'sk-own-1' },
        claudeEnv: { CLAUDE_CODE_OAUTH_TOKEN: 'sk-ant-oat01-cfg-1' },
      },
      // claude.env blanks the inherited key: the CLI sends the setup-token, the subscription pays.
      {
        own: { ANTHROPIC_API_KEY: 'sk-own-2', CLAUDE_CODE_OAUTH_TOKEN: 'sk-ant-oat01-own-2' },
        claudeEnv: { ANTHROPIC_API_KEY: '' },
      },
      { own: {}, claudeEnv: { ANTHROPIC_AUTH_TOKEN: 'gw-3', CLAUDE_CODE_OAUTH_TOKEN: 'sk-ant-oat01-cfg-3' } },
    ];
    const results = await Promise.all(cases.map((c) => sent(c.own, c.claudeEnv)));
    expect(results).toEqual([['ANTHROPIC_API_KEY'], ['CLAUDE_CODE_OAUTH_TOKEN'], ['ANTHROPIC_AUTH_TOKEN']]);
    for (const [i, c] of cases.entries()) {
      expect(credentialsFromEnv(c.claudeEnv, c.own)).toBe(results[i]?.[0]);
    }
    expect(cases.map((c) => billingOf(mode, c.claudeEnv, c.own))).toEqual([
      'api_key',
      'subscription',
      'api_key',
    ]);
  });
});
