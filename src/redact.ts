/**
 * The one scrubber for what brainstem writes down (audit rows, logs): a secret
 * is found by the name that carries it (a JSON key, a query parameter, a
 * header, a CLI flag) and by its own shape (brainstem's and Telegram's tokens,
 * API keys, credentials in a URL), wherever it sits in the text.
 */

export const REDACTED = '[redacted]';

/** Names whose values are secrets: object keys, query parameters, `--flags`. */
export const SECRET_KEY = /token|secret|passw|api[-_]?key|authorization|cookie|credential/i;
/** Short names that hold secrets in URLs (`?key=…`, `&sig=…`) but are too common to match inside other names. */
const SECRET_PARAM = /^(key|sig|signature|auth|pwd|pass)$/i;
/** A secret-sounding key whose value is not the secret itself (`tokenFile`, `credentialsFile`). */
const NOT_A_VALUE = /(file|path|dir|source|kind|type)$/i;

const isSecretKey = (name: string): boolean => SECRET_KEY.test(name) && !NOT_A_VALUE.test(name);
/** A query parameter or flag name: the short ones count too. */
const isSecretParam = (name: string): boolean => {
  const bare = name.replace(/^-+/, '');
  return isSecretKey(bare) || SECRET_PARAM.test(bare);
};

/** Secrets recognised by their shape alone. */
const SHAPES: RegExp[] = [
  // brainstem's API token (src/api-token.ts): bst_ + 32 base64url characters.
  /\bbst_[A-Za-z0-9_-]{16,}/g,
  // A Telegram bot token, also inside a Bot API URL (`/bot<token>/`).
  /(?<!\d)\d{6,12}:[A-Za-z0-9_-]{30,}/g,
  // Anthropic / OpenAI keys and OAuth tokens (sk-ant-…, sk-…).
  /\bsk-[A-Za-z0-9_-]{6,}/g,
  // GitHub, Slack, AWS access keys, JSON Web Tokens.
  /\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,})/g,
  /\bxox[abprs]-[A-Za-z0-9-]{10,}/g,
  /\bAKIA[0-9A-Z]{16}\b/g,
  /\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/g,
];

/** A header that carries a credential: all of its value goes (a cookie has spaces), up to the line's or quote's end. */
const HEADER =
  /\b(authorization|proxy-authorization|x-api-key|api-key|x-auth-token|cookie|set-cookie)(\s*:\s*)[^\r\n"'\\]+/gi;
/** A credential after its scheme, where no header name says so (long enough not to be a word). */
const SCHEME = /\b(Bearer\s+[^\s"'\\,;]{8,}|Basic\s+[A-Za-z0-9+/=]{8,})/gi;
/** `scheme://user:password@host`: the user info goes. */
const USER_INFO = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#@"'\\<>]+@/gi;
/** `name=value` in a query string, a form body or a `--flag=value` argument. */
const PAIR = /(^|[?&;\s"'(])(-{0,2}[A-Za-z][\w.-]*)=([^\s&#"'\\)]+)/g;
/** `"name":"value"` in JSON text (a log line, an error body). */
const JSON_PAIR = /"([^"\\]+)"(\s*:\s*)"((?:[^"\\]|\\.)*)"/g;

/** `text` with every secret it holds replaced by [redacted]. */
export function scrubText(text: string): string {
  let out = text
    .replace(HEADER, (_m, name: string, sep: string) => `${name}${sep}${REDACTED}`)
    .replace(SCHEME, (m: string) => `${m.split(/\s/)[0]} ${REDACTED}`)
    .replace(USER_INFO, (_m, scheme: string) => `${scheme}${REDACTED}@`)
    .replace(PAIR, (m, lead: string, name: string) =>
      isSecretParam(name) ? `${lead}${name}=${REDACTED}` : m,
    )
    .replace(JSON_PAIR, (m, name: string, sep: string) =>
      isSecretKey(name) ? `"${name}"${sep}"${REDACTED}"` : m,
    );
  for (const shape of SHAPES) out = out.replace(shape, REDACTED);
  return out;
}

/**
 * A copy of `value` fit for the audit log: values under secret-named keys,
 * the argument after a secret-named flag (`--token abc`), and secrets of a
 * known shape in any string are replaced; long strings, arrays and deep
 * objects are cut.
 */
export function redactValue(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') {
    const clean = scrubText(value);
    return clean.length > 200 ? `${clean.slice(0, 200)}…(${clean.length} chars)` : clean;
  }
  if (Array.isArray(value)) {
    if (depth > 3) return '[…]';
    return value
      .slice(0, 50)
      .map((x, i) =>
        i > 0 && isSecretFlag(value[i - 1]) && typeof x === 'string' ? REDACTED : redactValue(x, depth + 1),
      );
  }
  if (value && typeof value === 'object') {
    if (depth > 3) return '{…}';
    return Object.fromEntries(
      Object.entries(value).map(([k, x]) => [k, isSecretKey(k) ? REDACTED : redactValue(x, depth + 1)]),
    );
  }
  return value;
}

const isSecretFlag = (x: unknown): boolean =>
  typeof x === 'string' && /^-{1,2}\w[\w-]*$/.test(x) && isSecretParam(x);
