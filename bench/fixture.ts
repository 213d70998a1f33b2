/**
 * What every bench that runs brainstem as its own process starts from: a temp
 * dir (also the CLI's HOME), the fake Messages API with a Claude CLI
 * environment for it, a brainstem.json whose `claude` section points the CLI
 * the run drives (test/helpers/claude-bin.ts) at that fake, and an API token.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { claudeTestEnv, type FakeAnthropic, startFakeAnthropic } from '../test/fakes/anthropic.js';
import { CLAUDE_BIN } from '../test/helpers/claude-bin.js';

export interface BenchFixture {
  dir: string;
  anthropic: FakeAnthropic;
  /** The environment of a brainstem process on this fixture (spawnService's first argument). */
  env: Record<string, string>;
  /** The Bearer header of every authenticated request. */
  auth: { authorization: string };
  close(): Promise<void>;
}

/** `config` is the rest of brainstem.json; its `claude` adds to the fixture's (the CLI and its environment). */
export async function benchFixture(
  name: string,
  config: { claude?: Record<string, unknown> } & Record<string, unknown>,
): Promise<BenchFixture> {
  const dir = mkdtempSync(path.join(tmpdir(), `bst-bench-${name}-`));
  const anthropic = await startFakeAnthropic();
  const claude = await claudeTestEnv(anthropic.url);
  const configFile = path.join(dir, 'brainstem.json');
  const { claude: claudeConfig, ...rest } = config;
  writeFileSync(
    configFile,
    JSON.stringify({
      dataDir: path.join(dir, 'data'),
      ...rest,
      claude: { bin: CLAUDE_BIN, env: claude.env, ...claudeConfig },
    }),
  );
  const token = `bench-${Date.now()}-token-0123456789`;
  return {
    dir,
    anthropic,
    env: { BRAINSTEM_CONFIG: configFile, HOME: dir, BRAINSTEM_API_TOKEN: token },
    auth: { authorization: `Bearer ${token}` },
    close: async () => {
      await anthropic.close();
      await claude.cleanup();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
