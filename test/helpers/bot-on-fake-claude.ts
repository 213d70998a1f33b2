import type { ConfigFile } from '../../src/config.js';
import { claudeTestEnv, type FakeAnthropic, startFakeAnthropic } from '../fakes/anthropic.js';
import { type Harness, startClaudeHarness } from '../telegram-harness.js';

/** The bot on its Claude mode for one test: the real CLI against a fake Messages API of its own. */
export interface BotOnFakeClaude {
  c: Harness;
  fake: FakeAnthropic;
  /** Stops the service, then the fake, and removes the CLI's environment. */
  close(): Promise<void>;
}

/** Starts the fake Messages API, the CLI's environment on it and the bot (startClaudeHarness, `config` merged). */
export async function startBotOnFakeClaude(config: ConfigFile = {}): Promise<BotOnFakeClaude> {
  const fake = await startFakeAnthropic();
  const cli = await claudeTestEnv(fake.url);
  const c = await startClaudeHarness(cli.env, config);
  return {
    c,
    fake,
    close: async () => {
      await c.close();
      await fake.close();
      await cli.cleanup();
    },
  };
}
