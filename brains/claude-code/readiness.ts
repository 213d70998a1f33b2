import { statSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { type Said, untranslated } from '../../src/i18n.js';
import { subprocesses } from '../../src/subprocesses.js';
import type { Readiness } from '../types.js';
import { notFound, shortReason } from './errors.js';

/**
 * Whether the CLI can answer at all: it runs and it is logged in. `claude
 * auth status` says so without touching the network; 2.1.197 prints
 * `{"loggedIn":false,"authMethod":"none",…}` (exit code 1) with no
 * credentials, `{"loggedIn":true,"authMethod":"api_key","apiKeySource":
 * "ANTHROPIC_API_KEY"}` with a key, `"oauth_token"` with
 * CLAUDE_CODE_OAUTH_TOKEN and `"claude.ai"` with a credentials file.
 */

const AUTH_STATUS_TIMEOUT_MS = 30_000;

export const NOT_LOGGED_IN: Said = {
  en: 'not logged in: run `claude /login`',
  fr: 'pas connecté : lancez `claude /login`',
};

/** Only these fields are read: the output may also hold an email address, which goes nowhere. */
const authStatusSchema = z.object({
  loggedIn: z.boolean(),
  authMethod: z.string().optional(),
  apiKeySource: z.string().optional(),
});

const METHODS: Record<string, Said> = {
  api_key: { en: 'API key', fr: 'clé API' },
  oauth_token: { en: 'OAuth token', fr: 'jeton OAuth' },
  'claude.ai': { en: 'Claude subscription', fr: 'abonnement Claude' },
};

/**
 * A logged-in answer stands while what it depends on stays as it was, for at
 * most this long: a background round every 30 s would otherwise start the CLI
 * 120 times an hour (0.6 to 1 s of CPU and ~150 to 300 MB each time) to learn
 * nothing new. A change it cannot see (a CLAUDE_CONFIG_DIR that moves the
 * credentials elsewhere) shows within this time.
 */
const KEEP_LOGGED_IN_MS = 10 * 60_000;

/**
 * Every Claude mode runs the same binary with the same environment: one probe serves them all at
 * once. Its child is ended once every caller waiting for it has given up (a shutdown aborts them all).
 */
interface Check {
  probe: Promise<Readiness>;
  /** Callers waiting for its answer; a caller without a signal never gives up. */
  waiting: number;
  cancel: AbortController;
}
const inFlight = new Map<string, Check>();
const kept = new Map<string, { result: Readiness; inputs: string; at: number }>();

const CANCELLED: Readiness = {
  ok: false,
  reason: { en: 'The readiness check was cancelled.', fr: 'La vérification a été annulée.' },
};

export interface CliReadinessOptions {
  /** The credentials file `claude /login` writes and `/logout` removes (claude.credentialsFile). */
  credentialsFile: string;
  signal?: AbortSignal;
}

export function cliReadiness(
  bin: string,
  env: Record<string, string>,
  { credentialsFile, signal }: CliReadinessOptions,
): Promise<Readiness> {
  // Asked once brainstem is stopping: no child is started that the stop would have to wait for.
  if (signal?.aborted) return Promise.resolve(CANCELLED);
  const key = JSON.stringify([bin, env]);
  const inputs = inputsOf(bin, env, credentialsFile);
  const last = kept.get(key);
  if (last && last.inputs === inputs && Date.now() - last.at < KEEP_LOGGED_IN_MS) {
    return Promise.resolve(last.result);
  }
  let check = inFlight.get(key);
  if (!check) {
    const at = Date.now();
    const cancel = new AbortController();
    const probe = authStatus(bin, env, cancel.signal)
      .then((result) => {
        if (result.ok) kept.set(key, { result, inputs, at });
        else kept.delete(key);
        return result;
      })
      .finally(() => inFlight.delete(key));
    check = { probe, waiting: 0, cancel };
    inFlight.set(key, check);
  }
  const joined = check;
  joined.waiting++;
  if (!signal) return joined.probe;
  return new Promise<Readiness>((resolve) => {
    const onAbort = () => {
      // The last one waiting: its child is ended, and this answers once it has, so that a shutdown
      // that waits for its probes leaves no `claude auth status` behind. The others answer at once.
      if (--joined.waiting === 0) joined.cancel.abort();
      else resolve(CANCELLED);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    void joined.probe.then((r) => {
      signal.removeEventListener('abort', onAbort);
      resolve(r);
    });
  });
}

/**
 * What a login state depends on besides the environment (part of the key): the
 * CLI's file, which an upgrade replaces, and the credentials file. Taken before
 * the probe starts, so that a change while it runs is seen next time.
 */
function inputsOf(bin: string, env: Record<string, string>, credentialsFile: string): string {
  return [onPath(bin, env.PATH), credentialsFile].map(fileState).join(' ');
}

/** The file a bare command name runs, as the CLI's PATH finds it. */
function onPath(bin: string, searchPath = ''): string | undefined {
  if (bin.includes('/')) return bin;
  for (const dir of searchPath.split(path.delimiter)) {
    const file = dir ? path.join(dir, bin) : '';
    if (file && fileState(file) !== 'absent') return file;
  }
  return undefined;
}

function fileState(file: string | undefined): string {
  if (!file) return 'none';
  try {
    const s = statSync(file);
    return `${s.ino}:${s.size}:${s.mtimeMs}`;
  } catch {
    return 'absent';
  }
}

async function authStatus(bin: string, env: Record<string, string>, cancel: AbortSignal): Promise<Readiness> {
  const command = `"${bin} auth status"`;
  const { execa } = await subprocesses();
  const r = await execa(bin, ['auth', 'status', '--json'], {
    env,
    // The environment built for the CLI, never brainstem's own (see env.ts).
    extendEnv: false,
    stdin: 'ignore',
    timeout: AUTH_STATUS_TIMEOUT_MS,
    cancelSignal: cancel,
    reject: false,
  });
  if (r.isCanceled) return CANCELLED;
  // A program that is missing or not executable stays so: nobody should wait for it.
  if (r.code === 'ENOENT') return { ok: false, reason: notFound(bin), final: true, kind: 'not installed' };
  if (r.code === 'EACCES')
    return {
      ok: false,
      reason: { en: `"${bin}" is not executable.`, fr: `« ${bin} » n’est pas exécutable.` },
      final: true,
    };
  if (r.timedOut) {
    const s = AUTH_STATUS_TIMEOUT_MS / 1000;
    return {
      ok: false,
      reason: { en: `${command} did not answer within ${s} s.`, fr: `${command} n’a pas répondu en ${s} s.` },
    };
  }
  const status = authStatusSchema.safeParse(parseJson(r.stdout));
  if (status.success) {
    const s = status.data;
    if (!s.loggedIn) return { ok: false, reason: NOT_LOGGED_IN, final: true, kind: 'not signed in' };
    const method = METHODS[s.authMethod ?? ''] ?? untranslated(s.authMethod ?? '?');
    const from = s.apiKeySource ?? '';
    return {
      ok: true,
      detail: {
        en: `logged in (${method.en}${from && ` from ${from}`})`,
        fr: `connecté (${method.fr}${from && ` depuis ${from}`})`,
      },
    };
  }
  // A CLI too old to report its login state still works with a key in its environment.
  if (!r.failed && keyInEnvironment(env))
    return { ok: true, detail: { en: 'API key in its environment', fr: 'clé API dans son environnement' } };
  const said = shortReason(r.stderr || r.stdout || r.shortMessage || '');
  return {
    ok: false,
    reason: {
      en: `${command} did not report a login state${said ? ` (${said})` : ''}; Claude Code 2.1 or later does.`,
      fr: `${command} n’a pas donné d’état de connexion${said ? ` (${said})` : ''} ; Claude Code 2.1 ou plus récent le donne.`,
    },
  };
}

function keyInEnvironment(env: Record<string, string>): boolean {
  return Boolean(env.ANTHROPIC_API_KEY || env.CLAUDE_CODE_OAUTH_TOKEN);
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
