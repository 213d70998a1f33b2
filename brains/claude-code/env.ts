/**
 * The environment of a `claude` child, built on purpose: the variables the CLI
 * and the commands it runs need, taken from brainstem's own environment by an
 * allow-list, then `claude.env`. Anything else brainstem holds (its API token,
 * the Telegram bot token, other keys, the SSH agent) stays out: every Bash command Claude
 * runs could read it.
 */

const PASSED = new Set([
  'PATH',
  'HOME',
  'USER',
  'LOGNAME',
  'SHELL',
  'LANG',
  'LANGUAGE',
  'TERM',
  'COLORTERM',
  'TZ',
  'TMPDIR',
  'HTTP_PROXY',
  'HTTPS_PROXY',
  'NO_PROXY',
  'ALL_PROXY',
  'http_proxy',
  'https_proxy',
  'no_proxy',
  'all_proxy',
  'NODE_EXTRA_CA_CERTS',
  'SSL_CERT_FILE',
  'SSL_CERT_DIR',
  // SSH_AUTH_SOCK is left out on purpose: every approved command, and whatever it starts (a
  // package's install script), could sign with each key the owner's agent holds. An owner who
  // wants Claude to push over SSH names the socket in `claude.env`.
  // Knobs of the CLI outside its prefixes below.
  'API_TIMEOUT_MS',
  'MAX_THINKING_TOKENS',
  'MAX_MCP_OUTPUT_TOKENS',
  'ENABLE_TOOL_SEARCH',
  'BASH_DEFAULT_TIMEOUT_MS',
  'BASH_MAX_TIMEOUT_MS',
  'BASH_MAX_OUTPUT_LENGTH',
]);

/** Locale, desktop directories, and the CLI's own settings (DISABLE_TELEMETRY, MCP_TIMEOUT…) and credentials. */
const PASSED_PREFIXES = ['LC_', 'XDG_', 'ANTHROPIC_', 'CLAUDE_', 'DISABLE_', 'MCP_'];

/**
 * A cloud provider's account, when the CLI runs on it (CLAUDE_CODE_USE_BEDROCK / _VERTEX, from
 * brainstem's environment, `claude.env` or a mode's `env`): the variables its SDK reads, or the
 * switch would pass and the account not (the CLI answering "Could not load credentials from any
 * providers"). Passed only then: otherwise a cloud key brainstem holds stays out of Claude's reach.
 */
const PROVIDER_PREFIXES: Record<string, string[]> = {
  CLAUDE_CODE_USE_BEDROCK: ['AWS_'],
  CLAUDE_CODE_USE_VERTEX: ['GOOGLE_', 'GCLOUD_', 'CLOUDSDK_', 'CLOUD_ML_', 'VERTEX_REGION_'],
};

export function cliEnv(from: NodeJS.ProcessEnv, extra: Record<string, string>): Record<string, string> {
  // As the CLI sees the switch: `extra` over brainstem's own, a blank value turning it off.
  const prefixes = [...PASSED_PREFIXES];
  for (const [flag, more] of Object.entries(PROVIDER_PREFIXES))
    if (extra[flag] ?? from[flag]) prefixes.push(...more);
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(from)) {
    if (value !== undefined && (PASSED.has(name) || prefixes.some((p) => name.startsWith(p))))
      env[name] = value;
  }
  return { ...env, ...extra };
}

const PROXY_VARIABLES = ['HTTP_PROXY', 'HTTPS_PROXY', 'ALL_PROXY', 'http_proxy', 'https_proxy', 'all_proxy'];

/**
 * The CLI's environment with brainstem's own address (the `--mcp-config` URL, on loopback or the
 * bind address) exempt from the owner's HTTP proxy. Without it, a proxy meant for the Anthropic API
 * also gets the CLI's /mcp requests, brainstem's API token in their Authorization header, in clear:
 * a `no_proxy` of `localhost`, often set, does not cover `127.0.0.1`; and a proxy elsewhere cannot
 * reach this machine's loopback, so the turn runs without brainstem's tools. The exemption is
 * `host:port`, which both Claude CLIs honour: the proxy still carries anything else on that host.
 * Both spellings get the same list, the owner's entries of each kept: the CLI reads one of them.
 */
export function exemptFromProxy(
  env: Record<string, string>,
  url: string | undefined,
): Record<string, string> {
  if (!url || !PROXY_VARIABLES.some((name) => env[name])) return env;
  const own = new URL(url).host;
  const entries = [env.NO_PROXY, env.no_proxy]
    .flatMap((list) => (list ?? '').split(','))
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
  // A `*` already exempts everything.
  if (entries.includes('*') || entries.includes(own)) return env;
  const list = [...new Set([...entries, own])].join(',');
  return { ...env, NO_PROXY: list, no_proxy: list };
}
