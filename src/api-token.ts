import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export interface ApiToken {
  token: string;
  /** Where it came from, for the start-up log (never the token itself). */
  source: 'env' | 'config' | 'file' | 'generated';
  file: string;
}

/**
 * The Bearer token for every route but /health: from the environment or config when
 * given, else generated once and kept in the data dir so clients keep working
 * across restarts. The file is made 0600 on every start, not only when created:
 * a copy or an editor may have loosened it.
 */
export function loadApiToken(dataDir: string, configured: string | undefined): ApiToken {
  const file = path.join(dataDir, 'api-token');
  if (configured) return { token: configured, source: 'env', file };
  if (existsSync(file)) {
    chmodSync(file, 0o600);
    const token = readFileSync(file, 'utf8').trim();
    if (token.length >= 16) return { token, source: 'file', file };
  }
  const token = `bst_${randomBytes(24).toString('base64url')}`;
  writeFileSync(file, `${token}\n`, { mode: 0o600 });
  return { token, source: 'generated', file };
}

/** Constant-time comparison; hashing first makes lengths equal so nothing leaks through timing. */
export function tokenMatches(expected: string, given: string | undefined): boolean {
  if (given === undefined) return false;
  const a = createHash('sha256').update(expected).digest();
  const b = createHash('sha256').update(given).digest();
  return timingSafeEqual(a, b);
}

/** The token from an `Authorization: Bearer …` header. */
export function bearer(header: string | undefined): string | undefined {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return m?.[1];
}
