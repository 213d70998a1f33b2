import { homedir } from 'node:os';
import path from 'node:path';
import type { Config } from './config.js';
import { PROCESS_GROUPS_FILE } from './leftover-groups.js';
import { OUTBOX_KEY_FILE } from './outbox.js';

/**
 * brainstem's own secrets on disk, which no brain reads with a tool, even where
 * it may read everything else: a tool that only reads runs unasked (read_file
 * for any mode, Claude's Read when a mode allows it), for a brain a page it
 * read may have talked into it.
 */
export interface OwnFiles {
  /** The data dir: the API token, the MCP configs holding it, the state database, every chat's uploads. */
  dataDir: string;
  /** Where Claude modes work by default (`<dataDir>/workspaces`): the one part of the data dir a brain reads. */
  workspaces: string;
  /** Files elsewhere holding a credential: brainstem.json (the bot token), Claude's credentials, a transcription key. */
  files: string[];
}

export function ownFiles(
  config: Pick<Config, 'dataDir' | 'configPath' | 'claude' | 'transcription'> &
    Partial<Pick<Config, 'modes'>>,
): OwnFiles {
  const { dataDir, configPath, claude, transcription } = config;
  return {
    dataDir,
    workspaces: path.join(dataDir, 'workspaces'),
    files: [
      configPath,
      claude.credentialsFile,
      ...modeCredentialsFiles(config.modes ?? [], claude.env),
      ...(transcription?.apiKeyFile ? [transcription.apiKeyFile] : []),
    ],
  };
}

/**
 * The credentials file of each Claude mode's own login: a `CLAUDE_CONFIG_DIR`, or a `HOME`, of its
 * own in `modes.<id>.env` (or one that blanks claude.env's dir): a login as secret as claude.env's,
 * which another mode allowed Read (or a local mode's read_file) would otherwise read. Kept whether
 * or not a key wins over it.
 */
function modeCredentialsFiles(modes: Config['modes'], claudeEnv: Record<string, string>): string[] {
  const files = modes.flatMap((m) => (m.kind === 'claude' && m.env ? [loginFile(m.env, claudeEnv)] : []));
  return [...new Set(files)];
}

/**
 * The credentials file /login writes for a CLI run with `own` (a mode's env) over `claudeEnv` over
 * brainstem's environment, as the CLI builds it (a blank value unsetting): `.credentials.json` in its
 * CLAUDE_CONFIG_DIR, else in `~/.claude` of its HOME. No digest here: called at start-up, before
 * node:crypto may load (scripts/build.ts, LAZY_BUILTINS).
 */
export function loginFile(
  own: Record<string, string>,
  claudeEnv: Record<string, string>,
  env: NodeJS.ProcessEnv = process.env,
): string {
  const merged = { ...claudeEnv, ...own };
  const dir =
    (merged.CLAUDE_CONFIG_DIR ?? env.CLAUDE_CONFIG_DIR)?.trim() ||
    path.join((merged.HOME ?? env.HOME) || homedir(), '.claude');
  return path.join(path.resolve(dir), '.credentials.json');
}

/**
 * The config dir a login for that CLI is made in, when a bare `claude` run by brainstem's user (in
 * ~/.claude of brainstem's HOME) would log in elsewhere: its CLAUDE_CONFIG_DIR, or `~/.claude` of a
 * HOME of its own. Undefined when a bare `claude` is right.
 */
export function loginDir(
  own: Record<string, string>,
  claudeEnv: Record<string, string>,
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  const dir = path.dirname(loginFile(own, claudeEnv, env));
  return dir === path.resolve(env.HOME || homedir(), '.claude') ? undefined : dir;
}

/**
 * The paths (globs) Claude never reads nor writes, whatever the mode allows: the secrets in the data
 * dir (not its uploads, whose paths Claude is given to read), the list of process groups the next
 * start kills (a pid written there would be), and the files holding a credential.
 */
export function unreadableByClaude(own: OwnFiles): string[] {
  return [
    path.join(own.dataDir, 'api-token'),
    path.join(own.dataDir, OUTBOX_KEY_FILE),
    path.join(own.dataDir, 'claude-mcp-*'),
    path.join(own.dataDir, 'brainstem.sqlite*'),
    path.join(own.dataDir, PROCESS_GROUPS_FILE),
    ...own.files,
  ];
}
