import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export interface ApiToken {
  token: string;
  /** Where it came from, for the start-up log (never the token itself). */
  source: 'env' | 'config' | 'file' | 'generated';
  file: string;
  /** Generated in place of what the file held, and why that was unusable (never the token itself). */
  replaced?: string;
}

/** The characters an `Authorization: Bearer <token>` header carries as written: visible ASCII. */
export const TOKEN_CHARS = /^[\x21-\x7e]+$/;
/** The shortest token brainstem takes. */
export const TOKEN_MIN_CHARS = 16;

/** What a client can send as its Bearer token, the rule server.apiToken is held to too (src/config.ts). */
export function usableToken(text: string): boolean {
  return text.length >= TOKEN_MIN_CHARS && TOKEN_CHARS.test(text);
}

/**
 * The Bearer token for every route but /health: from the environment or config when
 * given, else generated once and kept in the data dir so clients keep working
 * across restarts. The file is made 0600 on every start, not only when created:
 * a copy or an editor may have loosened it.
 */
export function loadApiToken(dataDir: string, configured: string | undefined, fromEnv: boolean): ApiToken {
  const file = path.join(dataDir, 'api-token');
  if (configured) return { token: configured, source: fromEnv ? 'env' : 'config', file };
  let replaced: string | undefined;
  if (existsSync(file)) {
    chmodSync(file, 0o600);
    const held = readFileSync(file, 'utf8').trim();
    if (usableToken(held)) return { token: held, source: 'file', file };
    // An owner may have written their own there: said, or their clients' 401s would have no reason.
    if (held)
      replaced = `it held ${held.length < TOKEN_MIN_CHARS ? `${held.length} characters, under the ${TOKEN_MIN_CHARS} needed` : 'a space or a character outside visible ASCII, which no Authorization header carries'}`;
  }
  const token = `bst_${randomBytes(24).toString('base64url')}`;
  writeFileSync(file, `${token}\n`, { mode: 0o600 });
  return { token, source: 'generated', file, ...(replaced ? { replaced } : {}) };
}

/**
 * Constant-time comparison, in JavaScript rather than by hashing both with
 * node:crypto: every request runs it (/health to tell the owner), the first one included, and
 * loading node:crypto costs ~10 ms of a start. Every character of `given` is
 * compared, whatever matched before, with no branch on the comparison, and never
 * past the token's end (the index wraps): how long it takes follows from the
 * lengths, the one of `given` known to its sender, and never from the token's
 * characters.
 */
export function tokenMatches(expected: string, given: string | undefined): boolean {
  if (given === undefined || expected.length === 0) return false;
  let diff = expected.length ^ given.length;
  for (let i = 0; i < given.length; i++) {
    diff |= given.charCodeAt(i) ^ expected.charCodeAt(i % expected.length);
  }
  return diff === 0;
}

/** The token from an `Authorization: Bearer …` header. */
export function bearer(header: string | undefined): string | undefined {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return m?.[1];
}
