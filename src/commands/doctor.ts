import { Agent } from 'undici';
import { type Config, ConfigError, loadConfig } from '../config.js';
import { scrubText } from '../redact.js';
import {
  type CheckResult,
  checkApiToken,
  checkBind,
  checkClaudeBinary,
  checkCredentials,
  checkDataDir,
  checkFront,
  checkLlama,
  checkModeCredentials,
  checkSqlite,
  checkTelegram,
  NET_TIMEOUT_MS,
} from './doctor-checks.js';

export interface TextOut {
  write(chunk: string): unknown;
}

/**
 * `brainstem doctor`: checks everything brainstem depends on and prints one
 * ✓/✗ line each, with what to do under every ✗. Returns the exit code:
 * 0 when all pass, 1 otherwise. It changes nothing (the database is opened
 * read-only, no token is generated) and prints no secret.
 */
export async function runDoctor(
  env: NodeJS.ProcessEnv = process.env,
  out: TextOut = process.stdout,
): Promise<number> {
  let config: Config;
  try {
    config = loadConfig(env);
  } catch (err) {
    const problems = err instanceof ConfigError ? err.problems : [(err as Error).message];
    print(out, {
      name: 'config',
      ok: false,
      detail: `cannot be used:\n${problems.join('\n')}`,
      fix: 'correct the fields above in the config file or the environment variables that set them',
    });
    out.write('\nThe other checks need a valid configuration.\n');
    return 1;
  }

  // One connection pool for the run, closed at the end so nothing keeps the process alive.
  const agent = new Agent({ connect: { timeout: NET_TIMEOUT_MS } });
  let results: CheckResult[];
  try {
    // Independent checks run together, so the whole run takes about as long as the slowest one.
    const [claude, credentials, modeCredentials, llama, telegram] = await Promise.all([
      checkClaudeBinary(config, env),
      checkCredentials(config, env),
      checkModeCredentials(config, env),
      checkLlama(config),
      checkTelegram(config, agent),
    ]);
    results = [
      configResult(config),
      checkDataDir(config),
      checkSqlite(config),
      claude,
      credentials,
      ...modeCredentials,
      ...llama,
      telegram,
      checkFront(config),
      checkBind(config),
      checkApiToken(config),
    ];
  } finally {
    await agent.close();
  }

  for (const r of results) print(out, r);
  const failed = results.filter((r) => !r.ok).length;
  out.write(
    failed === 0
      ? `\nAll ${results.length} checks passed.\n`
      : `\n${failed} of ${results.length} checks failed; see the → lines.\n`,
  );
  return failed === 0 ? 0 : 1;
}

function configResult(config: Config): CheckResult {
  const source = config.configFileFound
    ? config.configPath
    : `built-in defaults (${config.configPath} absent)`;
  return {
    name: 'config',
    ok: true,
    detail: `${source}; modes ${config.modes.map((m) => m.id).join(', ')}; default ${config.defaultMode}`,
  };
}

const NAME_WIDTH = 18;

/** One check's lines; a URL's credentials (`http://user:pass@…`) and secrets of known shapes are hidden. */
function print(out: TextOut, r: CheckResult): void {
  const [first = '', ...rest] = scrubText(r.detail).split('\n');
  const pad = ' '.repeat(NAME_WIDTH + 3);
  out.write(`${r.ok ? '✓' : '✗'} ${r.name.padEnd(NAME_WIDTH)} ${first}\n`);
  for (const line of rest) out.write(`${pad}${line}\n`);
  if (!r.ok && r.fix) out.write(`${pad}→ ${r.fix}\n`);
}
