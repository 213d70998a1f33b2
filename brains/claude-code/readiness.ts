import { z } from 'zod';
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

export const NOT_LOGGED_IN = 'not logged in: run `claude /login`';

/** Only these fields are read: the output may also hold an email address, which goes nowhere. */
const authStatusSchema = z.object({
  loggedIn: z.boolean(),
  authMethod: z.string().optional(),
  apiKeySource: z.string().optional(),
});

const METHODS: Record<string, string> = {
  api_key: 'API key',
  oauth_token: 'OAuth token',
  'claude.ai': 'Claude subscription',
};

/** Every Claude mode runs the same binary with the same environment: one probe serves them all at once. */
const inFlight = new Map<string, Promise<Readiness>>();

export function cliReadiness(
  bin: string,
  env: Record<string, string>,
  signal?: AbortSignal,
): Promise<Readiness> {
  const key = JSON.stringify([bin, env]);
  let probe = inFlight.get(key);
  if (!probe) {
    probe = authStatus(bin, env).finally(() => inFlight.delete(key));
    inFlight.set(key, probe);
  }
  if (!signal) return probe;
  return new Promise<Readiness>((resolve) => {
    const onAbort = () => resolve({ ok: false, reason: 'The readiness check was cancelled.' });
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    void probe.then((r) => {
      signal.removeEventListener('abort', onAbort);
      resolve(r);
    });
  });
}

async function authStatus(bin: string, env: Record<string, string>): Promise<Readiness> {
  const command = `"${bin} auth status"`;
  const { execa } = await subprocesses();
  const r = await execa(bin, ['auth', 'status', '--json'], {
    env,
    // The environment built for the CLI, never brainstem's own (see env.ts).
    extendEnv: false,
    stdin: 'ignore',
    timeout: AUTH_STATUS_TIMEOUT_MS,
    reject: false,
  });
  // A program that is missing or not executable stays so: nobody should wait for it.
  if (r.code === 'ENOENT') return { ok: false, reason: notFound(bin), final: true };
  if (r.code === 'EACCES') return { ok: false, reason: `"${bin}" is not executable.`, final: true };
  if (r.timedOut) {
    return { ok: false, reason: `${command} did not answer within ${AUTH_STATUS_TIMEOUT_MS / 1000} s.` };
  }
  const status = authStatusSchema.safeParse(parseJson(r.stdout));
  if (status.success) {
    const s = status.data;
    if (!s.loggedIn) return { ok: false, reason: NOT_LOGGED_IN, final: true };
    const method = METHODS[s.authMethod ?? ''] ?? s.authMethod ?? 'unknown method';
    return { ok: true, detail: `logged in (${method}${s.apiKeySource ? ` from ${s.apiKeySource}` : ''})` };
  }
  // A CLI too old to report its login state still works with a key in its environment.
  if (!r.failed && keyInEnvironment(env)) return { ok: true, detail: 'API key in its environment' };
  const said = shortReason(r.stderr || r.stdout || r.shortMessage || '');
  return {
    ok: false,
    reason: `${command} did not report a login state${said ? ` (${said})` : ''}; Claude Code 2.1 or later does.`,
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
