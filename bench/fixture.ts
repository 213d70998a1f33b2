/**
 * What every bench that runs brainstem as its own process starts from: a temp
 * dir (also the CLI's HOME), the fake Messages API with a Claude CLI
 * environment for it, a brainstem.json whose `claude` section points the CLI
 * the run drives (test/helpers/claude-bin.ts) at that fake, and an API token.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../src/config.js';
import { claudeTestEnv, type FakeAnthropic, startFakeAnthropic } from '../test/fakes/anthropic.js';
import { CLAUDE_BIN } from '../test/helpers/claude-bin.js';

/**
 * A bench's brainstem.json (less the fixture's part) and what its runs ask of
 * it. The test suite checks every one (test/bench-setup.test.ts), as the
 * bench does before it starts: the bench is not in CI, and a cap it outgrew
 * (a 429 on its eight conversations at once) went unseen until it was run.
 */
export interface BenchSetup {
  config: { claude?: Record<string, unknown> } & Record<string, unknown>;
  /** Claude turns the bench runs at once: each needs a process under claude.maxProcesses. */
  concurrentTurns: number;
  /** Conversations whose next turn the bench times on their warm process: claude.warm.max keeps them. */
  warmConversations: number;
}

/** What `setup` gets wrong, read by brainstem's own config loader from `file`; empty when nothing is. */
export function setupProblems(setup: BenchSetup, file: string): string[] {
  const config = loadConfig({ BRAINSTEM_CONFIG: file, HOME: path.dirname(file) });
  const problems: string[] = [];
  if (config.claude.maxProcesses < setup.concurrentTurns) {
    problems.push(
      `claude.maxProcesses is ${config.claude.maxProcesses}, under the ${setup.concurrentTurns} Claude turns the bench runs at once (the rest would get a 429)`,
    );
  }
  const warm = config.claude.warm.enabled ? config.claude.warm.max : 0;
  if (warm < setup.warmConversations) {
    problems.push(
      `claude.warm keeps ${warm} processes, under the ${setup.warmConversations} conversations the bench times on their warm process (some would start a new one)`,
    );
  }
  return problems;
}

export interface BenchFixture {
  dir: string;
  anthropic: FakeAnthropic;
  /** The environment of a brainstem process on this fixture (spawnService's first argument). */
  env: Record<string, string>;
  /** The Bearer header of every authenticated request. */
  auth: { authorization: string };
  close(): Promise<void>;
}

/**
 * `setup.config` is the rest of brainstem.json; its `claude` adds to the fixture's (the CLI and its
 * environment). Throws before anything is timed when the setup cannot carry the bench's runs.
 */
export async function benchFixture(name: string, setup: BenchSetup): Promise<BenchFixture> {
  const { config } = setup;
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
  const problems = setupProblems(setup, configFile);
  if (problems.length > 0) throw new Error(`bench ${name}: ${problems.join('; ')}`);
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
