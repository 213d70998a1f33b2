import { type FSWatcher, readFileSync, watch } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import type { KvStore } from './db/index.js';
import type { KeptWrites } from './db/kept-writes.js';
import { html } from './html.js';
import { formatSpan, formatUtc, type Lang, noticeLang, t } from './i18n.js';
import type { Logger } from './logger.js';
import type { Notifier } from './notices.js';

/**
 * The Claude subscription's OAuth credentials file, watched so the owner hears
 * before the bot starts failing. A file without a refresh token (written by
 * hand, or copied without it) cannot be renewed by Claude Code: a warning when
 * expiry is near, a notice once it passed, and one when the file shows a later
 * expiry (renewed). A /login file has one: its access token lives hours and
 * Claude Code renews it when it runs, so its ageing, expiring and renewing
 * raise no notice (one each, several times a day, none of them needing the
 * owner); a refresh that fails is a Claude turn refused on its credentials,
 * whose `auth` notice (src/chat/tool-loop.ts) says how to log in again. Each
 * notice is deduplicated on the expiry it is about, in SQLite, so a restart
 * neither repeats nor loses one. The tokens are never read out of the file's object.
 */

const fileSchema = z.looseObject({
  claudeAiOauth: z.looseObject({
    // At most the last time a Date holds: past it every "expires at" line would throw.
    expiresAt: z.number().int().positive().max(8.64e15),
    refreshToken: z.string().nullish(),
    subscriptionType: z.string().nullish(),
    rateLimitTier: z.string().nullish(),
    scopes: z.array(z.string()).nullish(),
  }),
});

export interface CredentialsInfo {
  expiresAt: number;
  subscriptionType?: string;
  rateLimitTier?: string;
  scopes: string[];
  /** A refresh token is present, so the CLI can renew the access token by itself. */
  renewable: boolean;
}

export type CredentialsRead =
  | { ok: true; info: CredentialsInfo }
  /**
   * `reason`: in each language, as /creds speaks the reader's (the doctor's is English). `denied`:
   * the file is there but brainstem's user may not read it, nor can the Claude Code it starts.
   */
  | { ok: false; missing: boolean; denied?: boolean; reason: Record<Lang, string> };

/**
 * What gives Claude Code its credentials instead of /login's file, in the order the CLI prefers
 * them when several are set: a cloud provider's account, a gateway's bearer token, an API key,
 * then `claude setup-token`'s token (test/claude-credentials-env.test.ts checks, with both
 * CLIs, that an API key and a gateway's token each win over a setup-token).
 */
const CREDENTIAL_ENV = [
  'CLAUDE_CODE_USE_BEDROCK',
  'CLAUDE_CODE_USE_VERTEX',
  'ANTHROPIC_AUTH_TOKEN',
  'ANTHROPIC_API_KEY',
  'CLAUDE_CODE_OAUTH_TOKEN',
] as const;

/**
 * The variable Claude Code takes its credentials from, undefined when it uses the file. Read in
 * the environment the CLI gets: brainstem's own (which it inherits), overridden by `claude.env`
 * (and a mode's `env`), where a blank value unsets the variable as it does for the CLI.
 */
export function credentialsFromEnv(
  claudeEnv: Record<string, string>,
  env: NodeJS.ProcessEnv = process.env,
): (typeof CREDENTIAL_ENV)[number] | undefined {
  return CREDENTIAL_ENV.find((name) => Boolean(claudeEnv[name] ?? env[name]));
}

const EXPIRES_KEY = 'credentials_expires_at';
const RENEWED_KEY = 'credentials_renewed_at';
const REFUSED_KEY = 'credentials_refused_at';

export async function readCredentials(file: string): Promise<CredentialsRead> {
  try {
    return parseCredentials(await readFile(file, 'utf8'));
  } catch (err) {
    return unreadable(err);
  }
}

/** The same, at once: for callers that cache it (the credit's plan). */
export function readCredentialsSync(file: string): CredentialsRead {
  try {
    return parseCredentials(readFileSync(file, 'utf8'));
  } catch (err) {
    return unreadable(err);
  }
}

/** Who brainstem runs as (`nobody (uid 65534)`): the user who must be able to read the file. */
export function runningAs(): string {
  const uid = process.getuid?.();
  let name: string | undefined;
  try {
    name = userInfo().username;
  } catch {
    // A uid without a passwd entry (a container's): the number says it.
  }
  if (uid === undefined) return name ?? 'this user';
  return name ? `${name} (uid ${uid})` : `uid ${uid}`;
}

function unreadable(err: unknown): CredentialsRead {
  const code = (err as NodeJS.ErrnoException).code;
  // A login of another user (0600, as the CLI writes it), or a service user that may not enter its
  // folder: logging in again as that other user changes nothing, so the reason names who reads it.
  if (code === 'EACCES' || code === 'EPERM') {
    const who = runningAs();
    return {
      ok: false,
      missing: false,
      denied: true,
      reason: {
        en: `${who}, the user brainstem runs as, may not read the file (${code}): it belongs to another user, or its permissions or its folder's keep this one out`,
        fr: `${who}, l’utilisateur de brainstem, n’a pas le droit de lire le fichier (${code}) : il appartient à un autre utilisateur, ou ses droits ou ceux de son dossier l’excluent`,
      },
    };
  }
  return {
    ok: false,
    missing: code === 'ENOENT',
    reason:
      code === 'ENOENT'
        ? { en: 'the file does not exist', fr: 'le fichier n’existe pas' }
        : {
            en: `the file cannot be read (${code ?? 'error'})`,
            fr: `le fichier ne peut pas être lu (${code ?? 'erreur'})`,
          },
  };
}

function parseCredentials(raw: string): CredentialsRead {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    return {
      ok: false,
      missing: false,
      reason: { en: 'the file is not valid JSON', fr: 'le fichier n’est pas du JSON valide' },
    };
  }
  const parsed = fileSchema.safeParse(json);
  if (!parsed.success) {
    return {
      ok: false,
      missing: false,
      reason: {
        en: 'the file has no claudeAiOauth.expiresAt that is a time (not OAuth credentials?)',
        fr: 'le fichier n’a pas de claudeAiOauth.expiresAt qui soit une date (pas des identifiants OAuth ?)',
      },
    };
  }
  const o = parsed.data.claudeAiOauth;
  return {
    ok: true,
    info: {
      expiresAt: o.expiresAt,
      ...(o.subscriptionType ? { subscriptionType: o.subscriptionType } : {}),
      ...(o.rateLimitTier ? { rateLimitTier: o.rateLimitTier } : {}),
      scopes: o.scopes ?? [],
      renewable: Boolean(o.refreshToken),
    },
  };
}

/** When brainstem last saw the expiry move later, if ever. */
export function lastRenewalSeen(kv: KvStore): number | undefined {
  const v = Number(kv.get(RENEWED_KEY));
  return Number.isFinite(v) && v > 0 ? v : undefined;
}

/**
 * Notes that Claude refused a turn's credentials, for /creds: a renewal by the refresh token that
 * failed (revoked) leaves the file as it was, valid-looking, so /creds would say all is well.
 */
export function noteRefusal(kv: KvStore, kept: KeptWrites, at = Date.now(), sourceId?: string): void {
  // A mode's own credentials (`modes.<id>.env`) under their source's id (a digest, never the secret).
  const key = sourceId ? `${REFUSED_KEY}:${sourceId}` : REFUSED_KEY;
  // Named per key: a kept write drops only an older one of the same name (`latest`).
  kept.run(
    `when Claude last refused its credentials${sourceId ? ` (${sourceId})` : ''}`,
    () => kv.set(key, String(at)),
    {
      latest: true,
    },
  );
}

/** When Claude last refused a turn's credentials (the shared ones, or `sourceId`'s), if ever. */
export function lastRefusal(kv: KvStore, sourceId?: string): number | undefined {
  const v = Number(kv.get(sourceId ? `${REFUSED_KEY}:${sourceId}` : REFUSED_KEY));
  return Number.isFinite(v) && v > 0 ? v : undefined;
}

/**
 * The command that starts the CLI where a login must be made: a bare `claude` logs in to
 * ~/.claude, which a CLI run with another CLAUDE_CONFIG_DIR (claude.env's, brainstem's or a
 * mode's own) does not read.
 */
export function loginCommand(configDir?: string): string {
  return configDir ? `CLAUDE_CONFIG_DIR=${shellWord(configDir)} claude` : 'claude';
}

/**
 * `value` as one word of a POSIX shell, for a command the owner copies: a folder with a space (or
 * `$`, `;`, a quote) would otherwise be cut in two, the rest run as the command. Single-quoted
 * when it holds anything but plain path characters, a `'` inside closed and escaped.
 */
function shellWord(value: string): string {
  return /^[\w@%+=:,./-]+$/.test(value) ? value : `'${value.replaceAll("'", `'\\''`)}'`;
}

/** The CLAUDE_CONFIG_DIR of the shared credentials: claude.env's over brainstem's, a blank one unsetting it. */
export function sharedConfigDir(
  claudeEnv: Record<string, string>,
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  return (claudeEnv.CLAUDE_CONFIG_DIR ?? env.CLAUDE_CONFIG_DIR) || undefined;
}

/** How to renew by hand, in `configDir` (see loginCommand). */
const renewHow = (lang: Lang, configDir?: string) => {
  const cli = loginCommand(configDir);
  return t(
    lang,
    html`To renew by hand, run <code>${cli}</code> on the host and use <code>/login</code> (or <code>${cli} setup-token</code>).`,
    html`Pour renouveler à la main, lancez <code>${cli}</code> sur l’hôte puis <code>/login</code> (ou <code>${cli} setup-token</code>).`,
  );
};

export interface CredentialsWatcherOptions {
  file: string;
  kv: KvStore;
  notifier: Notifier;
  logger: Logger;
  warnBeforeMs: number;
  pollIntervalMs: number;
  /**
   * A mode's own login (a CLAUDE_CONFIG_DIR in `modes.<id>.env`), watched beside claude.env's:
   * `key` keeps its state and notices apart (a digest, never the secret), `where` names it in them.
   */
  scope?: { key: string; where: Record<Lang, string> };
  /** The shared credentials' CLAUDE_CONFIG_DIR (sharedConfigDir), named in the notices' login command. */
  configDir?: string | undefined;
}

export class CredentialsWatcher {
  private poll: NodeJS.Timeout | undefined;
  private deadline: NodeJS.Timeout | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private watcher: FSWatcher | undefined;
  private checking: Promise<void> = Promise.resolve();
  private lastProblem: string | undefined;
  private stopped = false;

  constructor(private readonly opts: CredentialsWatcherOptions) {}

  /** A state key, or a notice's dedupe prefix, of this login's own. */
  private scoped(key: string): string {
    return this.opts.scope ? `${key}:${this.opts.scope.key}` : key;
  }

  /** Where a login renews these: a mode's own login's folder, or the shared one's CLAUDE_CONFIG_DIR. */
  private configDir(): string | undefined {
    return this.opts.scope ? path.dirname(this.opts.file) : this.opts.configDir;
  }

  /** After a notice's text: whose login it is about, for a mode's own. */
  private whose(lang: Lang) {
    const where = this.opts.scope?.where;
    return where ? t(lang, html` (${where.en}.)`, html` (${where.fr}.)`) : '';
  }

  start(): void {
    void this.check();
    this.poll = setInterval(() => void this.check(), this.opts.pollIntervalMs);
    // The directory, not the file: an editor or the CLI may replace the file (a new inode).
    // A bind-mounted file may change without any event reaching us: the poll covers that.
    try {
      const base = path.basename(this.opts.file);
      this.watcher = watch(path.dirname(this.opts.file), (_event, name) => {
        if (name !== null && name !== base) return;
        clearTimeout(this.debounce);
        this.debounce = setTimeout(() => void this.check(), 100);
      });
      this.watcher.on('error', (err) => {
        this.opts.logger.warn({ err }, 'credentials watch failed; polling only');
        this.watcher?.close();
        this.watcher = undefined;
      });
    } catch (err) {
      this.opts.logger.info(
        { file: this.opts.file, reason: (err as Error).message },
        'credentials folder cannot be watched; polling only',
      );
    }
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.poll);
    clearTimeout(this.deadline);
    clearTimeout(this.debounce);
    this.watcher?.close();
  }

  /** Reads the file and sends whichever notices are due; one check at a time. */
  check(): Promise<void> {
    this.checking = this.checking
      .then(() => this.checkNow())
      .catch((err: unknown) => {
        this.opts.logger.warn({ err }, 'credentials check failed');
      });
    return this.checking;
  }

  private async checkNow(): Promise<void> {
    if (this.stopped) return;
    const { kv, notifier, logger, warnBeforeMs, file } = this.opts;
    const read = await readCredentials(file);
    if (this.stopped) return;
    if (!read.ok) {
      if (read.reason.en !== this.lastProblem)
        logger.warn(
          { file, reason: read.reason.en },
          'Claude OAuth credentials not readable: expiry notices are off (fine with ANTHROPIC_API_KEY; otherwise run `claude /login`, or set CLAUDE_CREDENTIALS_FILE)',
        );
      this.lastProblem = read.reason.en;
      return;
    }
    this.lastProblem = undefined;
    const { expiresAt, subscriptionType, renewable } = read.info;
    const lang = noticeLang(kv);
    const now = Date.now();
    const previous = Number(kv.get(this.scoped(EXPIRES_KEY)));
    const renewed = Number.isFinite(previous) && previous > 0 && expiresAt > previous;
    // Kept for /creds whatever the file: "Last renewal seen".
    if (renewed) kv.set(this.scoped(RENEWED_KEY), String(now));
    // A renewal whose new expiry passed already (seen after a stop): the expired notice below tells it.
    // Claude Code's own renewals (a refresh token) are routine: told only when the owner had been told
    // to renew, as a /login after the warning or expiry of a file without one.
    const prefix = this.scoped('credentials');
    const told = (key: string) => notifier.wasSent(`${prefix}:${key}:${previous}`);
    if (renewed && expiresAt > now && (!renewable || told('warning') || told('expired'))) {
      notifier.notify({
        kind: 'credentials',
        dedupeKey: `${prefix}:renewed:${expiresAt}`,
        text: html`${t(
          lang,
          html`🔑 Claude credentials renewed${subscriptionType ? ` (${subscriptionType})` : ''}: valid until ${formatUtc(expiresAt)} (${formatSpan(expiresAt - now, lang)} from now).`,
          html`🔑 Identifiants Claude renouvelés${subscriptionType ? ` (${subscriptionType})` : ''} : valables jusqu’au ${formatUtc(expiresAt)} (dans ${formatSpan(expiresAt - now, lang)}).`,
        )}${this.whose(lang)}`,
      });
    }
    if (previous !== expiresAt) kv.set(this.scoped(EXPIRES_KEY), String(expiresAt));

    const left = expiresAt - now;
    // With a refresh token, Claude Code renews the access token on its next run: no notice falls due.
    if (!renewable && left <= 0) {
      notifier.notify({
        kind: 'credentials',
        dedupeKey: `${prefix}:expired:${expiresAt}`,
        text: html`${t(
          lang,
          html`⛔ Claude credentials expired at ${formatUtc(expiresAt)}. The file has no refresh token, so Claude Code cannot renew them: Claude turns fail until they are renewed. ${renewHow(lang, this.configDir())}`,
          html`⛔ Les identifiants Claude ont expiré à ${formatUtc(expiresAt)}. Le fichier n’a pas de jeton de renouvellement, Claude Code ne peut donc pas les renouveler : les tours Claude échouent jusqu’à leur renouvellement. ${renewHow(lang, this.configDir())}`,
        )}${this.whose(lang)}`,
      });
    } else if (!renewable && left <= warnBeforeMs) {
      notifier.notify({
        kind: 'credentials',
        dedupeKey: `${prefix}:warning:${expiresAt}`,
        text: html`${t(
          lang,
          html`⏳ Claude credentials expire at ${formatUtc(expiresAt)}, in ${formatSpan(left, lang)}. ${renewHow(lang, this.configDir())}`,
          html`⏳ Les identifiants Claude expirent à ${formatUtc(expiresAt)}, dans ${formatSpan(left, lang)}. ${renewHow(lang, this.configDir())}`,
        )}${this.whose(lang)}`,
      });
    }
    if (renewable) clearTimeout(this.deadline);
    else this.scheduleDeadline(expiresAt, now);
    // Once its notices are raised: a test that says none came more waits for later checks on this line.
    logger.debug({ expiresAt }, 'credentials checked');
  }

  /** A check right when the next notice falls due, instead of up to a poll interval later. */
  private scheduleDeadline(expiresAt: number, now: number): void {
    clearTimeout(this.deadline);
    const next = [expiresAt - this.opts.warnBeforeMs, expiresAt].find((at) => at > now);
    if (next === undefined || this.stopped) return;
    const delay = Math.min(next - now + 50, 2 ** 31 - 1);
    this.deadline = setTimeout(() => void this.check(), delay);
  }
}
