import { createHash } from 'node:crypto';
import path from 'node:path';
import type { ModeConfig } from './config.js';
import { credentialsFromEnv } from './credentials.js';
import { type Html, html } from './html.js';
import { type Lang, t } from './i18n.js';
import type { Notifier } from './notices.js';
import { loginDir, loginFile } from './own-files.js';

/**
 * The notice the notify chats get when Claude refuses a turn's credentials, one per credentials
 * and refusal episode. Several Claude modes usually share one login (`assistant` and `anklume`
 * on claude.env's key, or on /login's file): their refusals are one problem with one fix, so one
 * notice; a mode with a key of its own (`modes.<id>.env`) is another problem, told on its own.
 *
 * An episode ends when a turn on those credentials goes through again (the owner fixed them): the
 * next refusal is news and is told at once. While it lasts, the notice is repeated after
 * AUTH_NOTICE_WINDOW_MS, counted from the last one (a rolling window, not the clock's hour, where
 * a refusal at 10:59 and one at 11:00 gave two): the owner may have missed it, and an OpenAI client
 * (OpenClaw's agent) whose calls keep failing shows it nowhere else. The last notice's time is
 * read back from the notices table at start, so a restart repeats none.
 */
export const AUTH_NOTICE_WINDOW_MS = 3_600_000;

/** The credentials a mode's CLI runs on: `id` tells two apart (never the secret), `where` tells the owner. */
export interface CredentialSource {
  id: string;
  where: Record<Lang, string>;
  /** The variable the CLI takes them from; undefined when it reads `file`. */
  variable?: string;
  /** The credentials file of the CLI's config dir, when no variable gives them. */
  file?: string;
}

/** A short digest, so that a key never lands in the database, while two keys stay two sources. */
const digest = (value: string) => createHash('sha256').update(value).digest('hex').slice(0, 16);

/**
 * What the mode's CLI authenticates with, as it builds its environment (brainstem's own, then
 * `claude.env`, then the mode's `env`, a blank value unsetting): the variable credentialsFromEnv
 * names and its value, else the credentials file of its CLAUDE_CONFIG_DIR. A cloud provider's
 * account (CLAUDE_CODE_USE_BEDROCK) is told apart by where it is switched on only.
 */
export function credentialSource(
  mode: ModeConfig,
  claudeEnv: Record<string, string>,
  env: NodeJS.ProcessEnv = process.env,
): CredentialSource {
  const own = mode.env ?? {};
  const merged = { ...claudeEnv, ...own };
  const name = credentialsFromEnv(merged, env);
  if (name) {
    const value = merged[name] || env[name] || '';
    const [en, fr] = own[name]
      ? [`${name} in modes.${mode.id}.env`, `${name} de modes.${mode.id}.env`]
      : claudeEnv[name]
        ? [`${name} in claude.env`, `${name} de claude.env`]
        : [`${name} in brainstem’s environment`, `${name} de l’environnement de brainstem`];
    return { id: `${name}:${digest(value)}`, where: { en, fr }, variable: name };
  }
  // A HOME of the mode's own moves its `~/.claude`: that login is another, named by where it is.
  const dir =
    (merged.CLAUDE_CONFIG_DIR ?? env.CLAUDE_CONFIG_DIR) || (loginDir(own, claudeEnv, env) ?? '~/.claude');
  // The file the CLI reads: `~` is its HOME (a mode's, claude.env's, else brainstem's), not a folder.
  const file = loginFile(own, claudeEnv, env);
  return {
    // Told apart by the folder the CLI reads, not by how it is spelled: a mode naming the shared
    // folder (written out, or with a trailing `/`) signs in with the shared login, and shares its limit.
    id: `file:${digest(path.dirname(file))}`,
    where: { en: `the credentials file in ${dir}`, fr: `le fichier d’identifiants de ${dir}` },
    file,
  };
}

export interface AuthNoticesDeps {
  notifier: Notifier;
  claudeEnv: Record<string, string>;
  now?: () => number;
}

export class AuthNotices {
  /** By source id: when its last notice was sent, or 0 once a turn on it went through since. */
  private readonly told = new Map<string, number>();
  private readonly now: () => number;

  constructor(private readonly deps: AuthNoticesDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** Claude refused a turn of `mode`: the notice (`text`, in the notices' language) unless told already. */
  refused(mode: ModeConfig, lang: Lang, text: Html): void {
    const source = credentialSource(mode, this.deps.claudeEnv);
    const prefix = `auth:${source.id}:`;
    const last = this.told.get(source.id) ?? this.lastTold(prefix);
    const now = this.now();
    // One dated later than now (the clock was set back) says nothing of the last hour: told.
    if (last > 0 && now >= last && now - last < AUTH_NOTICE_WINDOW_MS) return;
    this.told.set(source.id, now);
    this.deps.notifier.notify({
      kind: 'auth',
      text: html`${text} ${t(lang, `(Credentials: ${source.where.en}.)`, `(Identifiants : ${source.where.fr}.)`)}`,
      dedupeKey: `${prefix}${now}`,
    });
  }

  /** The last notice of a run before this one; 0 when the database cannot say (told rather than lost). */
  private lastTold(prefix: string): number {
    try {
      return this.deps.notifier.lastKeyed(prefix) ?? 0;
    } catch {
      return 0;
    }
  }

  /** A turn of `mode` got an answer: its credentials work, and their next refusal is a new episode. */
  answered(mode: ModeConfig): void {
    // Set even when none was told in this run: one told before a restart is in the notices table.
    if (mode.kind === 'claude') this.told.set(credentialSource(mode, this.deps.claudeEnv).id, 0);
  }
}

/**
 * The Claude modes whose credentials are not the shared ones /creds and the watcher describe
 * (claude.env's, or the file of its CLAUDE_CONFIG_DIR): a key, a token or a config dir of their
 * own in `modes.<id>.env`. Grouped by credentials, so two modes on one own key are told once.
 */
export function ownSources(
  modes: readonly ModeConfig[],
  claudeEnv: Record<string, string>,
  env: NodeJS.ProcessEnv = process.env,
): { source: CredentialSource; modes: string[] }[] {
  const groups = new Map<string, { source: CredentialSource; modes: string[] }>();
  for (const mode of modes) {
    if (mode.kind !== 'claude') continue;
    const { env: _own, ...shared } = mode;
    const source = credentialSource(mode, claudeEnv, env);
    if (source.id === credentialSource(shared, claudeEnv, env).id) continue;
    const group = groups.get(source.id) ?? { source, modes: [] };
    group.modes.push(mode.id);
    groups.set(source.id, group);
  }
  return [...groups.values()];
}
