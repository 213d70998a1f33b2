import { headChars } from './text.js';

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
  // A PEM private key, lines and all (a file Claude would write, shown `+ `-prefixed in its question),
  // to its END line or, in text cut before it, to the end.
  /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|$)/g,
];

/**
 * A header that carries a credential: all of its value goes (a cookie has spaces), up to the line's or
 * quote's end. Any header one of whose dash-separated words names a secret (`Authorization`,
 * `X-Vault-Token`, `Private-Token`, `X-Api-Key`, `Set-Cookie`…); a word only containing one does not
 * (`Author`, `Monkey`, `Keyboard`). The value starts at a character that is not a space: a quote
 * after `key: ` is no value, and zod's `Unrecognized key: "bogus"` read `key:[redacted]"bogus"`.
 */
const HEADER =
  /(?<![\w.-])((?:[A-Za-z0-9]+-)*(?:authorization|auth|token|secret|key|apikey|password|passwd|credentials?|cookie)(?:-[A-Za-z0-9]+)*)(\s*:\s*)[^\s"'\\][^\r\n"'\\]*/gi;
/** A credential after its scheme, where no header name says so (long enough not to be a word). */
const SCHEME = /\b(Bearer\s+[^\s"'\\,;]{8,}|Basic\s+[A-Za-z0-9+/=]{8,})/gi;
/** `scheme://user:password@host`: the user info goes. */
const USER_INFO = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#@"'\\<>]+@/gi;
/** `name=value` in a query string, a form body or a `--flag=value` argument. */
const PAIR = /(^|[?&;\s"'(])(-{0,2}[A-Za-z][\w.-]*)=([^\s&#"'\\)]+)/g;
/**
 * A secret-named flag and the value after it (`--api-key hunter2`, `--hf-token hf_…`), in a command
 * line or in an argv written as JSON (`"--api-key","hunter2"`, also escaped inside a JSON string):
 * how a logged or shown command gives its secrets away. A value that is itself a flag is left, and
 * one already redacted (text scrubbed twice).
 */
const FLAG_PAIR =
  /(^|[\s"'([,])(--?[A-Za-z][\w-]*)(\s+["']?|\\?"\s*,\s*\\?")(?!-|\[redacted\])([^\s"'\\,\])]+)/g;
/** `"name":"value"` in JSON text (a log line, an error body). */
const JSON_PAIR = /"([^"\\]+)"(\s*:\s*)"((?:[^"\\]|\\.)*)"/g;

/** `text` with every secret it holds replaced by [redacted]. */
export function scrubText(text: string): string {
  let out = scrubCommandLines(text)
    .replace(HEADER, (_m, name: string, sep: string) => `${name}${sep}${REDACTED}`)
    .replace(SCHEME, (m: string) => `${m.split(/\s/)[0]} ${REDACTED}`)
    .replace(USER_INFO, (_m, scheme: string) => `${scheme}${REDACTED}@`)
    .replace(PAIR, (m, lead: string, name: string) =>
      isSecretParam(name) ? `${lead}${name}=${REDACTED}` : m,
    )
    .replace(FLAG_PAIR, (m, lead: string, flag: string, sep: string) =>
      isSecretParam(flag) ? `${lead}${flag}${sep}${REDACTED}` : m,
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
    return clean.length > 200 ? `${headChars(clean, 200)}…(${clean.length} chars)` : clean;
  }
  if (Array.isArray(value)) {
    if (depth > 3) return '[…]';
    const argv = value.every((x) => typeof x === 'string') ? scrubArgv(value as string[]) : value;
    return argv
      .slice(0, 50)
      .map((x, i) =>
        i > 0 && isSecretFlag(argv[i - 1]) && typeof x === 'string' ? REDACTED : redactValue(x, depth + 1),
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

/**
 * Short flags that carry a password for the program they belong to, and so
 * are no secret for another (`-p` is `mkdir -p`, `ssh -p 22`): the flag with
 * its value glued on (`mysql -phunter2`), and, where the program reads it so,
 * the flag followed by its value (`sshpass -p hunter2`). `mysql -p` alone
 * asks for the password: what follows it is the database.
 */
interface SecretFlags {
  glued: readonly string[];
  apart: readonly string[];
}
const MYSQL: SecretFlags = { glued: ['-p'], apart: [] };
const CURL: SecretFlags = { glued: ['-u', '-U'], apart: ['-u', '-U', '--user', '--proxy-user'] };
const PROGRAM_FLAGS: Record<string, SecretFlags> = {
  mysql: MYSQL,
  mysqldump: MYSQL,
  mysqladmin: MYSQL,
  mysqlcheck: MYSQL,
  mysqlimport: MYSQL,
  mysqlshow: MYSQL,
  mariadb: MYSQL,
  'mariadb-dump': MYSQL,
  'mariadb-admin': MYSQL,
  sshpass: { glued: ['-p'], apart: ['-p'] },
  curl: CURL,
  'redis-cli': { glued: ['-a'], apart: ['-a'] },
  smbclient: { glued: ['-U'], apart: ['-U', '--user'] },
};

/**
 * An argv with the values of the secret flags above replaced; the program is
 * found anywhere in it, so `sudo mysql …` and `incus exec web -- mysql …` count.
 */
function scrubArgv(argv: readonly string[]): string[] {
  let flags: SecretFlags | undefined;
  let next = false;
  return argv.map((arg) => {
    const word = arg.replace(/^["']|["']$/g, '');
    if (next) {
      next = false;
      return REDACTED;
    }
    const program = PROGRAM_FLAGS[word.slice(word.lastIndexOf('/') + 1)];
    if (program) {
      flags = program;
      return arg;
    }
    if (!flags) return arg;
    const found = secretIn(word, flags);
    // A program takes one password: what follows it may be another program's (`sshpass -p … ssh -p 22`).
    if (found !== undefined) flags = undefined;
    if (found === '') next = true;
    return found || arg;
  });
}

/** The argument with its secret replaced; '' when the secret is the next argument; undefined when it holds none. */
function secretIn(word: string, flags: SecretFlags): string | undefined {
  if (flags.apart.includes(word)) return '';
  const long = flags.apart.find((f) => f.startsWith('--') && word.startsWith(`${f}=`));
  if (long) return `${long}=${REDACTED}`;
  const glued = flags.glued.find((f) => word.startsWith(f) && word.length > f.length);
  return glued ? `${glued}${REDACTED}` : undefined;
}

/** Command lines in text (a shell command Claude wanted to run, a log line): each one's words through scrubArgv. */
function scrubCommandLines(text: string): string {
  if (!COMMAND_WORD.test(text)) return text;
  return text
    .split(/(\r?\n|&&|\|\||[;|&])/)
    .map((part) => {
      const words = part.split(/(\s+)/);
      const args = words.filter((_, i) => i % 2 === 0);
      const clean = scrubArgv(args);
      return words.map((w, i) => (i % 2 === 0 ? (clean[i / 2] ?? w) : w)).join('');
    })
    .join('');
}

/** Whether the text names one of those programs at all: most text is left alone at once. */
const COMMAND_WORD = new RegExp(
  `(?:^|[\\s/"'])(?:${Object.keys(PROGRAM_FLAGS)
    .map((p) => p.replace(/-/g, '\\-'))
    .join('|')})(?:$|[\\s"'])`,
);
