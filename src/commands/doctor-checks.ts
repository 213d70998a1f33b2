import { accessSync, constants, existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type Database from 'better-sqlite3';
import { type Dispatcher, request } from 'undici';
import { z } from 'zod';
import {
  NEWEST_TESTED,
  OLDEST_TESTED,
  parseCliVersion,
  testedRange,
} from '../../brains/claude-code/cli-compat.js';
import { cliEnv } from '../../brains/claude-code/env.js';
import { llamaHealthUrl, ollamaHas, probeLlamaHealth } from '../../brains/llama-local/health.js';
import { usableToken } from '../api-token.js';
import { ownSources } from '../auth-notice.js';
import { hostPort, isLoopback } from '../bind-address.js';
import { type Config, emptyAllowListAdvice } from '../config.js';
import {
  credentialsFromEnv,
  loginCommand,
  readCredentials,
  runningAs,
  sharedConfigDir,
} from '../credentials.js';
import { migrations } from '../db/migrations.js';
import Sqlite from '../db/sqlite.js';
import { formatDuration, formatSpan, formatUtc } from '../i18n.js';
import { loadsOnSwitch } from '../modes.js';
import { subprocesses } from '../subprocesses.js';
import { serverKey } from '../upstream-server.js';

/**
 * The checks of `brainstem doctor`, one function each. A check never throws: it
 * answers ok or not, with what it saw and, when not ok, what to do about it.
 * None of them prints a secret.
 */

export interface CheckResult {
  name: string;
  ok: boolean;
  /** What was found; may span several lines. */
  detail: string;
  /** What to do, when not ok. */
  fix?: string;
}

/** Every network check gives up after this long. */
export const NET_TIMEOUT_MS = 3_000;
const noAnswer = `no answer within ${NET_TIMEOUT_MS / 1000} s`;
/** `claude --version` starts Node and loads the CLI; a cold start can take a few seconds. */
const CLAUDE_VERSION_TIMEOUT_MS = 15_000;
/** Where loadApiToken keeps a generated token (src/api-token.ts). */
const API_TOKEN_FILE = 'api-token';
const DB_FILE = 'brainstem.sqlite';
const ok = (name: string, detail: string): CheckResult => ({ name, ok: true, detail });
const fail = (name: string, detail: string, fix: string): CheckResult => ({ name, ok: false, detail, fix });

export function checkDataDir(config: Config): CheckResult {
  const dir = config.dataDir;
  const name = 'data dir';
  const st = statOrUndefined(dir);
  if (st && !st.isDirectory()) {
    return fail(name, `${dir} exists but is not a directory`, 'set BRAINSTEM_DATA_DIR to a directory');
  }
  if (st) {
    return writable(dir)
      ? ok(name, `${dir} (writable)`)
      : fail(
          name,
          `${dir} is not writable by this user`,
          `give this user write access (chown or chmod u+rwx ${dir}) or set BRAINSTEM_DATA_DIR`,
        );
  }
  // Absent: brainstem creates it at start, which works when the nearest existing parent is a writable directory.
  let parent = path.dirname(dir);
  while (!statOrUndefined(parent) && parent !== path.dirname(parent)) parent = path.dirname(parent);
  const pst = statOrUndefined(parent);
  if (pst?.isDirectory() && writable(parent)) {
    return ok(name, `${dir} does not exist yet; it is created at first start`);
  }
  return fail(
    name,
    `${dir} does not exist and cannot be created: ${parent} is ${pst?.isDirectory() ? 'not writable' : 'not a directory'}`,
    'set BRAINSTEM_DATA_DIR to a directory this user can create or write',
  );
}

export function checkSqlite(config: Config): CheckResult {
  const name = 'SQLite';
  const file = path.join(config.dataDir, DB_FILE);
  const latest = Math.max(...migrations.map((m) => m.version));
  let db: Database.Database | undefined;
  try {
    if (!existsSync(file)) {
      // Still load the native module: a build for another Node version fails here, not at start.
      new Sqlite(':memory:').close();
      return ok(name, `${file} not created yet (created and migrated at first start)`);
    }
    db = new Sqlite(file, { readonly: true, fileMustExist: true });
    const version = db.pragma('user_version', { simple: true }) as number;
    const journal = db.pragma('journal_mode', { simple: true }) as string;
    const integrity = db.pragma('quick_check', { simple: true }) as string;
    if (integrity !== 'ok') {
      return fail(
        name,
        `${file} is damaged: ${integrity}`,
        'stop brainstem and restore a backup of the data dir (or move the file away to start afresh)',
      );
    }
    if (version > latest) {
      return fail(
        name,
        `${file} has schema ${version}, newer than this brainstem knows (${latest})`,
        'upgrade brainstem, or restore a backup made by this version',
      );
    }
    if (journal.toLowerCase() !== 'wal') {
      return fail(
        name,
        `${file} is in ${journal} journal mode, not WAL`,
        'start brainstem once (it switches the database to WAL); check no other program rewrites the file',
      );
    }
    const pending = version < latest ? `, ${latest - version} migration(s) applied at next start` : '';
    return ok(name, `${file} (schema ${version} of ${latest}${pending}, WAL, integrity ok)`);
  } catch (err) {
    const message = (err as Error).message;
    return fail(
      name,
      `${file}: ${message}`,
      /NODE_MODULE_VERSION|invalid ELF|was compiled against/.test(message)
        ? 'the native module was built for another Node version: run `npm rebuild better-sqlite3`'
        : 'check the file and its folder are readable by this user',
    );
  } finally {
    db?.close();
  }
}

/** The `node_modules/.bin` folders npm puts on PATH while it runs a script (`npm run doctor`). */
const NPM_BIN = /[\\/]node_modules[\\/]\.bin[\\/]?$/;

export async function checkClaudeBinary(config: Config, env: NodeJS.ProcessEnv): Promise<CheckResult> {
  const name = 'claude binary';
  if (!usesClaude(config)) return ok(name, 'not used (no Claude mode)');
  const bin = config.claude.bin;
  // Looked for on the PATH the service gets under pm2, not on npm's: there, the Claude Code
  // that npm installed for the tests would be found, and the service would not find it.
  const dirs = (env.PATH ?? '').split(path.delimiter);
  const servicePath = dirs.filter((d) => !NPM_BIN.test(d)).join(path.delimiter);
  const { execa } = await subprocesses();
  const r = await execa(bin, ['--version'], {
    reject: false,
    timeout: CLAUDE_VERSION_TIMEOUT_MS,
    stdin: 'ignore',
    // The environment the service gives the CLI (env.ts), never brainstem's tokens and keys.
    env: cliEnv({ ...env, PATH: servicePath }, config.claude.env),
    extendEnv: false,
  });
  if (!r.failed) return claudeVersion(name, bin, firstLine(r.stdout));
  const npmOnly = bin.includes('/')
    ? undefined
    : dirs.filter((d) => NPM_BIN.test(d)).find((d) => existsSync(path.join(d, bin)));
  if (r.code === 'ENOENT' && npmOnly) {
    return fail(
      name,
      `${bin} is found only in ${npmOnly}, which npm puts on PATH for its scripts: pm2 and \`node dist/src/main.js\` will not find it`,
      `install Claude Code for this user (\`npm install -g @anthropic-ai/claude-code\`) or set CLAUDE_BIN to ${path.join(npmOnly, bin)}`,
    );
  }
  if (r.code === 'ENOENT') {
    return fail(
      name,
      `${bin} not found`,
      'install Claude Code (`npm install -g @anthropic-ai/claude-code`) or set CLAUDE_BIN to its full path',
    );
  }
  if (r.timedOut) {
    return fail(
      name,
      `\`${bin} --version\` did not answer within ${CLAUDE_VERSION_TIMEOUT_MS / 1000} s`,
      'run it by hand to see what it waits for',
    );
  }
  const said = firstLine(r.stderr) || firstLine(r.stdout) || r.shortMessage;
  return fail(
    name,
    `\`${bin} --version\` failed (exit ${r.exitCode ?? r.signal}): ${said}`,
    'reinstall Claude Code or set CLAUDE_BIN to a working one',
  );
}

/** What `claude --version` printed, against the versions the suite runs (brains/claude-code/cli-compat.ts). */
function claudeVersion(name: string, bin: string, printed: string): CheckResult {
  const version = parseCliVersion(printed);
  if (!version) return ok(name, `${bin}: ${printed || '(no version printed)'}`);
  const range = testedRange(version);
  if (range === 'older') {
    return fail(
      name,
      `${bin}: ${version} is older than the oldest Claude Code tested with brainstem (${OLDEST_TESTED})`,
      'update Claude Code (`npm install -g @anthropic-ai/claude-code`) or set CLAUDE_BIN to a newer one',
    );
  }
  const note = range === 'newer' ? `newer than the newest tested, ${NEWEST_TESTED}` : 'tested';
  return ok(name, `${bin}: ${printed} (${note})`);
}

export async function checkCredentials(
  config: Config,
  env: NodeJS.ProcessEnv,
  now = Date.now(),
): Promise<CheckResult> {
  const name = 'credentials';
  if (!usesClaude(config)) return ok(name, 'not used (no Claude mode)');
  const fromEnv = credentialsFromEnv(config.claude.env, env);
  if (fromEnv) return ok(name, `${fromEnv} is set: Claude Code uses it, not the credentials file`);
  return credentialsFileCheck(
    name,
    config.claude.credentialsFile,
    now,
    '',
    loginCommand(sharedConfigDir(config.claude.env, env)),
  );
}

/**
 * The credentials file of each mode's own CLAUDE_CONFIG_DIR (`modes.<id>.env`): a login apart, whose
 * absence or expiry fails only that mode's turns. Its line names the modes; a key of a mode's own
 * shows no expiry, so it has none.
 */
export async function checkModeCredentials(
  config: Config,
  env: NodeJS.ProcessEnv,
  now = Date.now(),
): Promise<CheckResult[]> {
  const own = ownSources(config.modes, config.claude.env, env).filter((g) => g.source.file);
  return Promise.all(
    own.map(({ source, modes }) =>
      credentialsFileCheck(
        'credentials',
        source.file ?? '',
        now,
        `mode${modes.length > 1 ? 's' : ''} ${modes.join(', ')}, own login: `,
        loginCommand(path.dirname(source.file ?? '')),
      ),
    ),
  );
}

/** The check of one credentials file; `whose` prefixes its detail, `run` is how to start a login there. */
async function credentialsFileCheck(
  name: string,
  file: string,
  now: number,
  whose = '',
  run: string,
): Promise<CheckResult> {
  const read = await readCredentials(file);
  if (!read.ok) {
    return fail(
      name,
      `${whose}${file}: ${read.reason.en}`,
      read.missing
        ? `log in once: run \`${run}\` on this host and use /login${whose ? '' : ' (or set CLAUDE_CREDENTIALS_FILE to where the file is)'}`
        : read.denied
          ? // The CLI brainstem starts runs as brainstem's user: it cannot read that file either.
            `log in as ${runningAs()}, the user brainstem and the Claude Code it starts run as (run \`${run}\` as that user and use /login, then set CLAUDE_CREDENTIALS_FILE to that login's file, or unset it), or run brainstem as the file's owner`
          : `log in again: run \`${run}\` on this host and use /login; it rewrites the file`,
    );
  }
  const { expiresAt, subscriptionType, renewable } = read.info;
  const plan = subscriptionType ? `, ${subscriptionType} plan` : '';
  const left = expiresAt - now;
  // With a refresh token, an access token that expired is one no turn needed since: Claude Code
  // renews it when it runs (a refresh that fails is a turn refused, which the `auth` notice tells).
  if (left <= 0 && renewable) {
    return ok(
      name,
      `${whose}${file}: access token expired ${formatSpan(-left, 'en')} ago (${formatUtc(expiresAt)}${plan}); Claude Code renews it with its refresh token when it runs`,
    );
  }
  if (left <= 0) {
    return fail(
      name,
      `${whose}${file}: expired ${formatSpan(-left, 'en')} ago (${formatUtc(expiresAt)}${plan}), and the file has no refresh token`,
      `run \`${run}\` on this host and use /login (or \`claude setup-token\` and set CLAUDE_CODE_OAUTH_TOKEN${whose ? ' in the mode’s env' : ''})`,
    );
  }
  return ok(
    name,
    `${whose}${file}: valid until ${formatUtc(expiresAt)}, ${formatSpan(left, 'en')} left${plan}`,
  );
}

/** One result per distinct llama upstream (modes may point at different servers). */
export async function checkLlama(config: Config): Promise<CheckResult[]> {
  // Keyed by server, not by URL as written: `http://localhost:11434/v1` and `http://127.0.0.1:11434`
  // are one server, probed once and named with all its modes; probed at the first mode's URL.
  const byServer = new Map<string, { base: string; modes: string[] }>();
  for (const m of config.modes) {
    if (m.kind !== 'llama') continue;
    const base = (m.baseUrl ?? config.llama.baseUrl).replace(/\/+$/, '');
    const key = serverKey(base);
    const seen = byServer.get(key);
    if (seen) seen.modes.push(m.id);
    else byServer.set(key, { base, modes: [m.id] });
  }
  if (byServer.size === 0) return [ok('llama upstream', 'not used (no llama mode)')];
  return Promise.all(
    [...byServer.values()].map(async ({ base, modes }) => {
      const name = 'llama upstream';
      const used = `; mode${modes.length > 1 ? 's' : ''} ${modes.join(', ')}`;
      const url = llamaHealthUrl(base, config.llama.healthPath);
      const h = await probeLlamaHealth(url, {
        timeoutMs: NET_TIMEOUT_MS,
        ollamaTagsUrl: llamaHealthUrl(base, '/api/tags'),
      });
      if (h.state === 'ollama') return ollamaCheck(config, name, llamaHealthUrl(base, ''), modes, h.models);
      // Models brainstem starts itself on a switch (llama.models): none loaded, or one loading, is
      // what /mode shows as 💤, not a fault; the switch says if a start command fails.
      const started = modes.every((id) => startedOnSwitch(config, id));
      if (started && (h.state === 'unreachable' || h.state === 'loading')) {
        const now =
          h.state === 'loading' ? 'answers 503: a model is loading' : 'not reachable: no model loaded now';
        return ok(name, `${url} ${now}; brainstem starts one on a switch (llama.models)${used}`);
      }
      if (h.state === 'timeout' || h.state === 'unreachable' || h.state === 'cancelled') {
        const why = h.state === 'unreachable' ? netError(h.error) : noAnswer;
        return fail(
          name,
          `${url} not reachable (${why})${used}`,
          'start llama-server, or set LLAMA_BASE_URL (or the mode’s baseUrl) to where it listens',
        );
      }
      if (h.state === 'loaded') return ok(name, `${url} answers 200 (model loaded)${used}`);
      if (h.state === 'loading') {
        return fail(
          name,
          `${url} answers 503: the model is still loading${used}`,
          'wait until llama-server has loaded the model; if it never does, read its log',
        );
      }
      return fail(
        name,
        `${url} answers HTTP ${h.status}${used}`,
        h.status === 404
          ? `the server has no ${config.llama.healthPath}: check LLAMA_BASE_URL, or set llama.healthPath`
          : 'check LLAMA_BASE_URL points at llama-server (or Ollama) and ends in /v1',
      );
    }),
  );
}

/** Ollama at `root` serves `modes` when it has pulled the model each names (it loads one on demand). */
function ollamaCheck(
  config: Config,
  name: string,
  root: string,
  modes: string[],
  models: string[],
): CheckResult {
  const lacking = modes.flatMap((id) => {
    const mode = config.modes.find((m) => m.id === id);
    const model = mode?.model;
    return model !== undefined && ollamaHas(models, model) ? [] : [{ id, model }];
  });
  const has = models.length > 0 ? models.join(', ') : 'no model yet';
  if (lacking.length === 0)
    return ok(
      name,
      `${root} is Ollama and has ${has}; mode${modes.length > 1 ? 's' : ''} ${modes.join(', ')}`,
    );
  return fail(
    name,
    `${root} is Ollama (it has ${has}); ${lacking.map((l) => (l.model === undefined ? `mode ${l.id} names no model` : `mode ${l.id} names ${l.model}, not pulled`)).join('; ')}`,
    lacking
      .map((l) =>
        l.model === undefined
          ? `set modes.${l.id}.model to one of its models`
          : `run \`ollama pull ${l.model}\``,
      )
      .join('; '),
  );
}

/** The mode's model is one brainstem loads itself when switching to it: `llama.models` gives start commands. */
function startedOnSwitch(config: Config, modeId: string): boolean {
  const mode = config.modes.find((m) => m.id === modeId);
  return mode !== undefined && loadsOnSwitch(config.llama, mode);
}

const getMeSchema = z.looseObject({
  ok: z.boolean(),
  result: z.looseObject({ id: z.number(), username: z.string().optional() }).optional(),
  description: z.string().optional(),
});

export async function checkTelegram(config: Config, dispatcher: Dispatcher): Promise<CheckResult> {
  const name = 'Telegram';
  const { token, apiRoot, allowedUsers } = config.telegram;
  if (!token) return ok(name, 'off (set TELEGRAM_BOT_TOKEN to turn the bot on)');
  const root = (apiRoot ?? 'https://api.telegram.org').replace(/\/+$/, '');
  // The token is part of the URL: neither the URL nor an error message is shown unscrubbed.
  const r = await httpGet(`${root}/bot${token}/getMe`, dispatcher);
  if ('error' in r) {
    return fail(
      name,
      `getMe: ${root} not reachable (${scrub(r.error, token)})`,
      'check this host’s network access to Telegram (or TELEGRAM_API_ROOT)',
    );
  }
  const body = getMeSchema.safeParse(parseJson(r.body));
  const said = body.success && body.data.description ? `: ${scrub(body.data.description, token)}` : '';
  if (r.status === 401 || r.status === 404) {
    return fail(
      name,
      `getMe refused the bot token (HTTP ${r.status}${said})`,
      'check TELEGRAM_BOT_TOKEN against @BotFather (/token shows it, /revoke makes a new one)',
    );
  }
  if (r.status !== 200 || !body.success || !body.data.ok || !body.data.result) {
    return fail(
      name,
      `getMe answered HTTP ${r.status}${said}`,
      'try again later; check TELEGRAM_API_ROOT if set',
    );
  }
  const bot = body.data.result.username ? `@${body.data.result.username}` : `bot ${body.data.result.id}`;
  if (allowedUsers.length === 0) {
    return fail(
      name,
      `${bot} answers, but its allow-list is empty, so it refuses everybody`,
      emptyAllowListAdvice(config.configPath),
    );
  }
  return ok(name, `${bot} answers getMe; ${allowedUsers.length} allowed user(s)`);
}

/** Where the front keeps when OpenClaw last polled it (handlers/telegram-front/update-queue.ts). */
const FRONT_POLLED_KEY = 'front_last_polled_at';

/**
 * The Bot API front: whether OpenClaw's channel fetches its updates. Read from
 * the database (read-only), so it answers whether brainstem runs or not.
 */
export function checkFront(config: Config, now = Date.now()): CheckResult {
  const name = 'OpenClaw front';
  const { token, front } = config.telegram;
  if (!front.enabled) {
    return ok(name, 'off (telegram.front.enabled: true lets OpenClaw’s own Telegram channel poll brainstem)');
  }
  // The front comes with the bot: without it, OpenClaw's channel polls a route nobody serves.
  if (!token) {
    return fail(
      name,
      'telegram.front.enabled is true, but the bot is off (no bot token): there is no front for OpenClaw to poll',
      'set TELEGRAM_BOT_TOKEN (or telegram.token), or turn telegram.front.enabled off',
    );
  }
  const file = path.join(config.dataDir, DB_FILE);
  if (!existsSync(file)) return ok(name, 'on; not started yet (nothing to fetch)');
  const setUp = `run OpenClaw’s gateway with channels.telegram.apiRoot = http://${config.server.host}:${config.server.port}${front.prefix} (\`npm run openclaw-config -- --apply <openclaw.json>\` sets it)`;
  let db: Database.Database | undefined;
  try {
    db = new Sqlite(file, { readonly: true, fileMustExist: true });
    if ((db.pragma('user_version', { simple: true }) as number) < 3) {
      return ok(name, 'on; its tables are created at the next start');
    }
    const w = db
      .prepare<[], { count: number; oldestAt: number | null }>(
        'SELECT COUNT(*) AS count, MIN(received_at) AS oldestAt FROM front_updates',
      )
      .get();
    const polled = db
      .prepare<[string], { value: string }>('SELECT value FROM kv WHERE key = ?')
      .get(FRONT_POLLED_KEY)?.value;
    const lastPolled =
      polled === undefined
        ? 'OpenClaw never polled it'
        : `OpenClaw last polled it ${formatDuration(now - Number(polled))} ago`;
    const count = w?.count ?? 0;
    if (count > 0 && w?.oldestAt != null && now - w.oldestAt >= front.stallNoticeMs) {
      return fail(name, `${count} update(s) waiting since ${formatUtc(w.oldestAt)}; ${lastPolled}`, setUp);
    }
    if (polled === undefined) return fail(name, `on, but ${lastPolled}`, setUp);
    return ok(name, `${lastPolled}; ${count} update(s) waiting`);
  } catch (err) {
    return fail(
      name,
      `${file}: ${(err as Error).message}`,
      'check the file and its folder are readable by this user',
    );
  } finally {
    db?.close();
  }
}

export function checkBind(config: Config): CheckResult {
  const { host, port } = config.server;
  const shown = hostPort(host, port);
  if (isLoopback(host)) return ok('bind address', `${shown} (loopback: only this machine connects)`);
  return fail(
    'bind address',
    `${shown} is not loopback: anyone who can reach it may call the API and its tools, guarded by the token alone`,
    'set BRAINSTEM_HOST=127.0.0.1 unless you mean it (then firewall the port and put TLS in front)',
  );
}

export function checkApiToken(config: Config): CheckResult {
  const name = 'API token';
  if (config.server.apiToken) {
    return ok(
      name,
      config.apiTokenFromEnv
        ? 'set by BRAINSTEM_API_TOKEN'
        : `set by server.apiToken in ${config.configPath}`,
    );
  }
  const file = path.join(config.dataDir, API_TOKEN_FILE);
  const st = statOrUndefined(file);
  // Normal before the first start: the service makes one.
  if (!st) return ok(name, `none yet: the first start generates one in ${file} (or set BRAINSTEM_API_TOKEN)`);
  let token: string;
  try {
    token = readFileSync(file, 'utf8').trim();
  } catch (err) {
    return fail(
      name,
      `${file} cannot be read (${(err as NodeJS.ErrnoException).code})`,
      'fix its owner or mode',
    );
  }
  if (!usableToken(token)) {
    return fail(
      name,
      `${file} holds no usable token (under 16 characters, or a space or a character outside visible ASCII)`,
      `delete it (the next start generates a new one) or set BRAINSTEM_API_TOKEN`,
    );
  }
  if (st.mode & 0o077) {
    return fail(
      name,
      `${file} is readable by other users (mode ${(st.mode & 0o777).toString(8)})`,
      `chmod 600 ${file}`,
    );
  }
  return ok(name, `stored in ${file} (mode 600)`);
}

export function usesClaude(config: Config): boolean {
  return config.modes.some((m) => m.kind === 'claude');
}

type HttpAnswer = { status: number; body: string } | { error: string };

async function httpGet(
  url: string,
  dispatcher: Dispatcher,
  headers: Record<string, string> = {},
): Promise<HttpAnswer> {
  const timeout = AbortSignal.timeout(NET_TIMEOUT_MS);
  try {
    const res = await request(url, { dispatcher, headers, signal: timeout });
    return { status: res.statusCode, body: await res.body.text() };
  } catch (err) {
    if (timeout.aborted) return { error: noAnswer };
    return { error: netError(err) };
  }
}

/** What a failed connection says, from undici's error or its cause. */
function netError(err: unknown): string {
  const e = err as Error & { code?: string; cause?: { code?: string; message?: string } };
  return e.cause?.message ?? e.message ?? e.code ?? String(err);
}

function scrub(text: string, secret: string | undefined): string {
  return secret ? text.replaceAll(secret, '<token>') : text;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function statOrUndefined(p: string) {
  try {
    return statSync(p);
  } catch {
    return undefined;
  }
}

function writable(dir: string): boolean {
  try {
    accessSync(dir, constants.W_OK | constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function firstLine(text: string | undefined): string {
  return text?.trim().split('\n')[0]?.trim() ?? '';
}
