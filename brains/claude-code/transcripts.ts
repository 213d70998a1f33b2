import type { Dirent } from 'node:fs';
import { lstat, readdir, readFile, realpath, rm, unlink } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';
import { z } from 'zod';

/**
 * The Claude CLI writes each session's transcript to
 * `<config dir>/projects/<cwd slug>/<session>.jsonl` (and, for some, a
 * `<session>/` folder beside it: subagents, large tool results), and removes
 * them only in its own retention sweep (`cleanupPeriodDays`, 30 days by
 * default). That sweep never runs for brainstem's CLIs: `-p` does not start it,
 * and with `--setting-sources project` (args.ts) the CLI skips it ("userSettings
 * source is disabled"). Every conversation brainstem has (OpenClaw starts a new
 * session id each day, each /new, each compaction) would stay on disk for good,
 * its first message holding the client's instructions (about 50,000 characters
 * for OpenClaw's). brainstem runs that sweep for the cwd it runs the CLI in.
 *
 * How long: the owner's `cleanupPeriodDays` from their user settings (the
 * config dir's settings.json) or the cwd's project settings, the longest of them, so their own CLI
 * in that cwd keeps its sessions at least as long as it would; else the CLI's default;
 * never less than claude.sessionTtlHours, so no session brainstem may still
 * resume loses its transcript. Only what the CLI names a transcript (a
 * `<uuid>.jsonl` regular file of this user's, in a folder of this user's that
 * no one else may write to), and the `<uuid>/` folder of the same session. No
 * symlink is followed.
 */

/** The CLI's own default for `cleanupPeriodDays`. */
export const CLI_TRANSCRIPT_KEEP_DAYS = 30;
/** The CLI names a session's transcript by the session's UUID. */
const TRANSCRIPT = /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.jsonl$/i;
/** A longer slug gets a hash of the CLI's own appended; brainstem does not guess it. */
const SLUG_MAX = 200;
const DAY_MS = 24 * 60 * 60 * 1000;

const userSettingsSchema = z.object({ cleanupPeriodDays: z.number().int().positive().optional() });

/** The folder the CLI keeps its state in, for the environment it runs with. */
export function cliConfigDir(env: Record<string, string | undefined>): string {
  return env.CLAUDE_CONFIG_DIR || path.join(env.HOME || homedir(), '.claude');
}

/**
 * The settings files the owner's own CLI, started in `cwd`, may take cleanupPeriodDays from: the
 * user settings of its config dir, and the project's own (`.claude/settings.json`, and
 * `settings.local.json` beside it) in that cwd, which a mode whose cwd is a project the owner also
 * works in with their terminal Claude may well have.
 */
const settingsFiles = (configDir: string, cwd: string) => [
  path.join(configDir, 'settings.json'),
  path.join(cwd, '.claude', 'settings.json'),
  path.join(cwd, '.claude', 'settings.local.json'),
];

/**
 * How many days transcripts are kept: the longest cleanupPeriodDays of the settings the owner's CLI
 * reads in `cwd` (so none of their own sessions there goes sooner than their CLI would remove it,
 * whichever of those files it takes the value from), else the CLI's default, at least the session TTL.
 */
export async function transcriptKeepDays(
  configDir: string,
  cwd: string,
  sessionTtlHours: number,
): Promise<number> {
  const set: number[] = [];
  for (const file of settingsFiles(configDir, cwd)) {
    try {
      const parsed = userSettingsSchema.safeParse(JSON.parse(await readFile(file, 'utf8')));
      if (parsed.success && parsed.data.cleanupPeriodDays !== undefined)
        set.push(parsed.data.cleanupPeriodDays);
    } catch {
      // No settings file, or not JSON: the CLI's default, as the CLI itself would take.
    }
  }
  const days = set.length > 0 ? Math.max(...set) : CLI_TRANSCRIPT_KEEP_DAYS;
  return Math.max(days, Math.ceil(sessionTtlHours / 24));
}

/**
 * Removes the transcripts of `cwd`'s sessions unwritten for longer than transcriptKeepDays; `env`
 * is the CLI's environment (its config dir). Never throws: what it cannot remove stays. Returns
 * how many sessions went.
 */
export async function sweepTranscripts(
  cwd: string,
  env: Record<string, string | undefined>,
  sessionTtlHours: number,
  now = Date.now(),
): Promise<number> {
  const uid = process.getuid?.();
  if (uid === undefined) return 0;
  const configDir = cliConfigDir(env);
  const oldest = now - (await transcriptKeepDays(configDir, cwd, sessionTtlHours)) * DAY_MS;
  // The CLI names the folder after its cwd as the system resolves it.
  const realCwd = await realpath(cwd).catch(() => undefined);
  if (!realCwd) return 0;
  const slug = realCwd.replace(/[^a-zA-Z0-9]/g, '-');
  if (slug.length > SLUG_MAX) return 0;
  const folder = path.join(configDir, 'projects', slug);
  const info = await lstat(folder).catch(() => undefined);
  if (!info?.isDirectory() || info.uid !== uid || (info.mode & 0o022) !== 0) return 0;
  const names = await readdir(folder, { withFileTypes: true }).catch((): Dirent[] => []);
  let removed = 0;
  for (const entry of names) {
    const session = TRANSCRIPT.exec(entry.name)?.[1];
    if (!session || !entry.isFile()) continue;
    const file = path.join(folder, entry.name);
    const stat = await lstat(file).catch(() => undefined);
    if (!stat?.isFile() || stat.uid !== uid || stat.mtimeMs >= oldest) continue;
    if (
      !(await unlink(file).then(
        () => true,
        () => false,
      ))
    )
      continue;
    removed++;
    const own = path.join(folder, session);
    const sub = await lstat(own).catch(() => undefined);
    // rm does not follow the symlinks inside; one in the folder's place is not a folder here.
    if (sub?.isDirectory() && sub.uid === uid)
      await rm(own, { recursive: true, force: true }).catch(() => undefined);
  }
  return removed;
}
