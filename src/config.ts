import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { grantsBrainstemTools } from '../brains/claude-code/tool-names.js';
import { TOKEN_CHARS, TOKEN_MIN_CHARS } from './api-token.js';
import { ConfigError } from './config-error.js';
import { jsonProblem } from './json-problem.js';
import { timerMs } from './timer-ms.js';
import { parseToolsSection, type ToolsConfig } from './tools/config.js';
import { brainstemToolProblems } from './tools/read-only.js';
import { shortcutProblems } from './tools/shortcut-table.js';

/**
 * The name clients use for "whatever mode is active", so a switch never needs a client restart;
 * reserved: no mode may take it.
 */
export const ACTIVE = 'active';

/**
 * Configuration: `brainstem.json` (optional) overlaid by environment variables.
 * Every field has a default so a fresh machine starts with no file at all.
 * The `.describe()` texts are the configuration reference: `npm run config-docs`
 * writes docs/configuration.md from them.
 */

/**
 * The `from` Telegram gives a message sent on behalf of a chat: shared by
 * everyone who writes that way, in every group, so it names nobody.
 */
export const TELEGRAM_SHARED_SENDERS: ReadonlyMap<number, string> = new Map([
  [1087968824, 'GroupAnonymousBot, the sender of every anonymous group admin'],
  [777000, 'Telegram, the sender of every post a linked channel forwards to its group'],
  [136817688, 'Channel_Bot, the sender of everyone writing in a group as a channel'],
]);

/**
 * The schemas of brainstem.json, built when called. brainstem reads its
 * configuration once, at start (and `npm run config-docs` once), and a zod
 * schema keeps every node of its tree alive: held by the module, these and the
 * `tools` section's stayed in the idle heap for good: 0.8 MB retained (heap
 * snapshot of an idle service on Node 24), 0.9 MB of idle RSS (A/B probes).
 */
export function configSchemas() {
  const argv = z.array(z.string().min(1)).min(1);
  const HOST_NAME = /^([a-z0-9.-]+|\[[0-9a-f:.]+\])$/i;

  const modeSchema = z
    .object({
      kind: z
        .enum(['claude', 'llama'])
        .describe('Which brain answers: the Claude Code CLI or a llama-server/Ollama model.'),
      description: z.string().default('').describe('Shown in /mode, /status and `GET /v1/models`.'),
      aliases: z
        .array(z.string())
        .default([])
        .describe(
          'Other names that select this mode (in /mode, switch requests and the `model` field), case-insensitive.',
        ),
      cwd: z
        .string()
        .optional()
        .describe(
          'Claude: working directory of the CLI (its sessions live per cwd). Default: `<dataDir>/workspaces/<mode id>`.',
        ),
      model: z
        .string()
        .optional()
        .describe('Claude: passed as `--model` (e.g. `sonnet`). Llama: the model name sent upstream.'),
      systemPrompt: z
        .string()
        .optional()
        .describe(
          'Claude: added to the system prompt (`--append-system-prompt`; a long one goes into the first turn).',
        ),
      allowedTools: z
        .array(z.string())
        .default([])
        .describe(
          'Claude: `--allowedTools` rules, used without asking (others are asked in Telegram). Llama: the read-only brainstem tools offered when the client brings none (tools the client brings pass by `toolFilter`). `"*"` = every read-only one. Empty = none.',
        ),
      toolFilter: z
        .object({
          allow: z
            .array(z.string().min(1))
            .optional()
            .describe('Only these pass (absent: every tool not denied).'),
          deny: z.array(z.string().min(1)).default([]).describe('These never pass.'),
        })
        .strict()
        .optional()
        .describe(
          'Llama: which of the client’s tools reach the model (absent: all); what it removes is logged and named in the `x-brainstem-filtered-tools` header, never dropped in silence.',
        ),
      deniedTools: z
        .array(z.string())
        .default([])
        .describe(
          'Claude: `--disallowedTools` rules, never used. A llama mode: brainstem tools never offered to its model, even when `allowedTools` names them; naming `run_tests` or `lint` here keeps them from it on purpose, without the start-up warning.',
        ),
      spares: z
        .number()
        .int()
        .min(0)
        .max(4)
        .optional()
        .describe(
          'Claude: `claude` processes started ahead while this is the active mode; a new conversation takes one and skips the CLI start-up (0 = none). Default: 1.',
        ),
      brainstemTools: z
        .array(z.string())
        .optional()
        .describe(
          'Claude: brainstem’s own tools (registry names) the CLI may run without asking; read-only ones only. Default: every read-only tool. The others always ask the approver.',
        ),
      llamaModel: z
        .string()
        .optional()
        .describe(
          'Llama: the entry of `llama.models` that must be loaded for this mode (its commands run on a switch).',
        ),
      personaDir: z
        .string()
        .optional()
        .describe(
          'Llama: a workspace whose persona files (SOUL.md, AGENTS.md, MEMORY.md) become a concise system prompt, in place of the client’s system and developer messages (OpenClaw’s long one).',
        ),
      baseUrl: z
        .string()
        .url()
        .optional()
        .describe('Llama: the upstream base URL of this mode when it differs from `llama.baseUrl`.'),
      templateOpensThink: z
        .boolean()
        .optional()
        .describe(
          'Llama: the model’s chat template ends the prompt with `<think>` (DeepSeek-R1, QwQ, Qwen3 Thinking) and the server passes the reasoning on as answer text (llama-server `--reasoning-format none`): what comes before the first `</think>` is reasoning and is not shown (an answer with none is shown whole once it ends). Default: false (only `<think>…</think>` blocks the model writes are removed).',
        ),
      env: z
        .record(z.string(), z.string())
        .optional()
        .describe(
          'Claude: extra environment of this mode’s CLI, over `claude.env` (an `ANTHROPIC_API_KEY` here bills the mode to that key, never to the credit).',
        ),
      contextWindow: z
        .number()
        .int()
        .min(1000)
        .optional()
        .describe(
          "The model's context in tokens, which `openclaw-config` writes into OpenClaw's provider block so that OpenClaw compacts a conversation before it outgrows the model. Default: 200000 for Claude modes; for a llama mode, what its llama-server says (`GET /props`) when `openclaw-config` runs, unless another model may be loaded there (set llama-server's `--ctx-size` per slot here).",
        ),
      vision: z
        .boolean()
        .optional()
        .describe(
          'Whether the model takes images. Default: true for Claude modes, false for llama modes (set true for a vision model served with its projector, e.g. llama-server `--mmproj`). A mode that takes none answers an image with a clear refusal.',
        ),
      budget: z
        .object({
          turnUsd: z
            .number()
            .positive()
            .optional()
            .describe('Most one turn may spend (the CLI’s `--max-budget-usd`).'),
          dayUsd: z.number().positive().optional().describe('Most the mode may spend per UTC day.'),
        })
        .strict()
        .optional()
        .describe(
          'Claude: spending caps in USD; a turn stopped or refused by one says which and when it resets.',
        ),
    })
    .strict();

  const llamaModelSchema = z
    .object({
      start: z
        .array(argv)
        .default([])
        .describe(
          'argv commands run in order to load this model (e.g. `[["systemctl", "start", "llama-qwen"]]`).',
        ),
      stop: z
        .array(argv)
        .default([])
        .describe('argv commands that unload it, run when a switch needs another model.'),
    })
    .strict();

  const WARM_DEFAULTS = { enabled: true, idleMs: 10 * 60_000, max: 4 };

  const CREDIT_DEFAULTS = {
    notifyAtPercent: [50, 80, 95, 100],
    runOutWarnDays: 3,
    switchAtPercent: 95,
    resetDay: 1,
  };

  /** The monthly Agent SDK credit that `claude -p` on a subscription draws from. */
  const creditSchema = z
    .object({
      monthlyUsd: z
        .number()
        .min(0)
        .optional()
        .describe(
          'USD a cycle. Unset: from the plan in the credentials file (Pro 20, Max 5x 100, Max 20x 200, Team Standard 20, Team Premium 100); 0: no credit (API billing).',
        ),
      resetDay: z
        .union([z.number().int().min(1).max(31), z.string().datetime({ offset: true })])
        .default(CREDIT_DEFAULTS.resetDay)
        .describe(
          'The day of the month (00:00 UTC) the credit renews, or the ISO date-time of one renewal; monthly from there.',
        ),
      notifyAtPercent: z
        .array(z.number().positive().max(100))
        .default(CREDIT_DEFAULTS.notifyAtPercent)
        .describe(
          'Shares of the credit (percent) that each send one notice per cycle (and once more for a credit changed mid-cycle, e.g. Pro to Max).',
        ),
      runOutWarnDays: z
        .number()
        .min(0)
        .default(CREDIT_DEFAULTS.runOutWarnDays)
        .describe(
          'One notice when the forecast says the credit runs out more than this many days before the renewal.',
        ),
      switchAtPercent: z
        .number()
        .positive()
        .max(100)
        .default(CREDIT_DEFAULTS.switchAtPercent)
        .describe(
          'With `usageLimit.fallbackMode`: switch to it at this share of the credit (and when it is spent).',
        ),
    })
    .strict();

  const warmSchema = z
    .object({
      enabled: z
        .boolean()
        .default(WARM_DEFAULTS.enabled)
        .describe(
          'Keep a `claude` process per conversation between turns (false: every turn starts the CLI and `--resume`s).',
        ),
      idleMs: timerMs()
        .positive()
        .default(WARM_DEFAULTS.idleMs)
        .describe('An idle warm process is closed after this long.'),
      max: z
        .number()
        .int()
        .min(1)
        .default(WARM_DEFAULTS.max)
        .describe(
          'How many warm processes may live at once, all Claude modes together; the least recently used idle one goes first.',
        ),
    })
    .strict();

  const ms = (what: string) => timerMs().positive().describe(what);

  /** Telegram user ids: a person's own, never a shared sender's (anyone could write as it). */
  const telegramUserIds = z.array(z.number().int()).superRefine((ids, ctx) => {
    for (const id of ids) {
      const shared = TELEGRAM_SHARED_SENDERS.get(id);
      if (shared)
        ctx.addIssue({
          code: 'custom',
          message: `${id} is ${shared}: it names nobody, and would let in everyone who writes that way; list each person's own id (the bot tells anyone writing to it as themselves their id)`,
        });
    }
  });

  /**
   * The bot token, without the whitespace a copy adds (a trailing newline): no token has any. One of
   * another shape (quotes an .env file kept, `bot` of the URL copied with it) is refused here, saying
   * what is wrong without the token: Telegram's own 401 came as the only word, the token hidden in the
   * log, so the quotes never showed. Blank is unset (no bot), as for the variable. No "token:" before
   * prose in the message: doctor prints it scrubbed (src/redact.ts), which hides what follows that.
   */
  const botToken = z
    .string()
    .trim()
    .superRefine((token, ctx) => {
      if (token === '' || /^\d+:[A-Za-z0-9_-]+$/.test(token)) return;
      const quoted = /^(["'`]).*\1$/s.test(token)
        ? '; it has quotes around it, which are not part of it'
        : '';
      ctx.addIssue({
        code: 'custom',
        message: `is not shaped like a bot token (@BotFather's is digits, a colon, then letters, digits, - and _, as in 123456789:AAH…)${quoted}`,
      });
    })
    .transform((token) => token || undefined);

  const FRONT_DEFAULTS = { enabled: false, prefix: '/telegram', stallNoticeMs: 60_000 };
  /** The first path segments brainstem's HTTP faces serve (handlers/http). */
  const OWN_PATHS = ['/v1', '/api', '/mcp', '/health'];

  const frontSchema = z
    .object({
      enabled: z
        .boolean()
        .default(FRONT_DEFAULTS.enabled)
        .describe(
          'Serve the Bot API front: OpenClaw’s own Telegram channel polls brainstem instead of Telegram, and everything that is not brainstem’s goes to it.',
        ),
      prefix: z
        .string()
        .regex(/^\/[A-Za-z0-9_-]+$/, 'one path segment, e.g. "/telegram"')
        // Under one of brainstem's own paths the front's routes would clash with its own at start.
        .refine((prefix) => !OWN_PATHS.includes(prefix.toLowerCase()), {
          message: `is one of brainstem's own paths (${OWN_PATHS.join(', ')}): pick another, e.g. "/telegram"`,
        })
        .default(FRONT_DEFAULTS.prefix)
        .describe(
          'Path the front is served under: OpenClaw’s `channels.telegram.apiRoot` is `http://<host>:<port><prefix>`.',
        ),
      stallNoticeMs: timerMs()
        .min(1_000)
        .default(FRONT_DEFAULTS.stallNoticeMs)
        .describe(
          'Updates waiting this long because nobody fetches them: one notice, and one when fetching resumes.',
        ),
    })
    .strict();

  const TRANSCRIPTION_TIMEOUT_MS = 120_000;

  /**
   * Speech to text for voice notes, audio files and video notes on the direct
   * Telegram route: an OpenAI-compatible endpoint or a local command (exactly
   * one; see crossProblems). Absent: such messages get a reply saying how to
   * turn it on.
   */
  const transcriptionSchema = z
    .object({
      url: z
        .string()
        .url()
        // "whisper:8000/v1" is a URL too (scheme "whisper:"), and one with user:pass@ is one fetch refuses
        // to send: either would fail at every voice note as "could not be reached".
        // Run after .url() even when it failed: an unparsable one is .url()'s to report.
        .refine((u) => !URL.canParse(u) || /^https?:$/.test(new URL(u).protocol), {
          message: 'an http:// or https:// URL, e.g. `http://127.0.0.1:8000/v1` (the scheme is missing?)',
        })
        .refine((u) => !URL.canParse(u) || (!new URL(u).username && !new URL(u).password), {
          message:
            'no user:password@ in it (it cannot be sent from there); a key goes in `apiKeyEnv` or `apiKeyFile`, sent as a Bearer token',
        })
        .optional()
        .describe(
          'Base URL of an OpenAI-compatible speech-to-text API (whisper.cpp’s server, Speaches, OpenAI), e.g. `http://127.0.0.1:8000/v1`: the audio is posted to `<url>/audio/transcriptions`.',
        ),
      model: z
        .string()
        .min(1)
        .default('whisper-1')
        .describe('With `url`: the `model` field of the request (e.g. `Systran/faster-whisper-small`).'),
      language: z
        .string()
        .regex(/^[a-z]{2,3}$/, 'an ISO-639-1 code such as "fr"')
        .optional()
        .describe('With `url`: the spoken language, as a hint (`language`); unset: detected.'),
      apiKeyEnv: z
        .string()
        .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name')
        .optional()
        .describe('With `url`: the environment variable holding the API key (sent as a Bearer token).'),
      apiKeyFile: z
        .string()
        .optional()
        .describe('With `url`: a file holding the API key (read at each request; keep it 0600).'),
      command: argv
        .optional()
        .describe(
          'A local command (argv, no shell) that prints the transcript on stdout; the element `{file}` is replaced by the audio file’s path, e.g. `["whisper-cli", "-m", "model.bin", "-nt", "-f", "{file}"]`.',
        ),
      timeoutMs: ms('How long one transcription may take before the user is told it failed.').default(
        TRANSCRIPTION_TIMEOUT_MS,
      ),
    })
    .strict();

  const configSchema = z
    .object({
      dataDir: z
        .string()
        .default('./data')
        .describe(
          'SQLite database, the generated API token, uploads and Claude workspaces (env `BRAINSTEM_DATA_DIR`).',
        ),
      server: z
        .object({
          host: z
            .string()
            .default('127.0.0.1')
            .describe(
              'HTTP bind address (env `BRAINSTEM_HOST`); any non-loopback address is logged as a warning.',
            ),
          port: z
            .number()
            .int()
            .min(0)
            .max(65535)
            .default(9090)
            .describe('HTTP port (env `BRAINSTEM_PORT`; 0 = any free port).'),
          bodyLimitBytes: z
            .number()
            .int()
            .positive()
            .default(25 * 1024 * 1024)
            .describe(
              'Largest request body accepted (OpenClaw sends up to 20 MB, images as base64); a bigger one gets 413 naming the limit.',
            ),
          modeTag: z
            .boolean()
            .default(true)
            .describe(
              'Prefix brain answers (endpoint and Telegram) with the mode that wrote them, e.g. `**[local]** `.',
            ),
          apiToken: z
            .string()
            .min(TOKEN_MIN_CHARS)
            // Sent as `Authorization: Bearer <token>`: a space or a character outside visible ASCII
            // cannot be sent there as written, so such a token would start fine and refuse every client.
            .regex(
              TOKEN_CHARS,
              'visible ASCII characters only, without spaces: clients send it in an `Authorization: Bearer …` header, which cannot carry others',
            )
            .optional()
            .describe(
              'Bearer token for every route but `/health` (which shows the upstreams’ own error text only with it) and the Telegram front (which checks the bot token), at least 16 visible ASCII characters without spaces (env `BRAINSTEM_API_TOKEN`). Unset: generated once into `<dataDir>/api-token` (0600).',
            ),
          allowedHosts: z
            .array(z.string().regex(HOST_NAME, 'a host name or IP address, without scheme or port'))
            .default([])
            .describe(
              'Host names or addresses, besides the bind address, `localhost`, `127.0.0.1` and `[::1]` on brainstem’s port, that clients may use to reach it (a LAN address, a reverse proxy’s name); any other `Host` gets 403 (DNS rebinding).',
            ),
          bodyAfterAnswerMs: timerMs()
            .min(0)
            .default(30_000)
            .describe(
              'A request answered before its whole body came (refused: no or a wrong token, a foreign `Host`, a body over the limit) may go on sending that body this long, so a client can read the answer; then its connection is cut, so nobody without the token holds connections open by sending slowly.',
            ),
          requestTimeoutMs: timerMs()
            .min(1_000)
            .default(300_000)
            .describe(
              'A request whose headers and body have not all come this long after it began gets 408 and its connection is cut, token or not: so a slow body cannot hold a connection (and its buffer) for ever. Node’s own default, which fastify turns off; a 25 MiB body needs ~90 KB/s. An upload through the Telegram front with the bot token, streamed on to Telegram at the uplink’s speed, is kept past it while its body keeps coming, and cut once nothing came for this long.',
            ),
          maxConnections: z
            .number()
            .int()
            .min(1)
            .default(256)
            .describe(
              'Most connections open at once; one more is closed as it comes (logged), so that a flood of idle or slow connections cannot use up the process’s file descriptors (which SQLite, the Telegram poller and every command need too).',
            ),
          shutdownGraceMs: timerMs()
            .min(0)
            .default(10_000)
            .describe(
              'On SIGTERM, how long running answers may go on before they are cut with a notice (keep pm2’s `kill_timeout` longer).',
            ),
          readinessRefreshMs: timerMs()
            .min(1_000)
            .default(30_000)
            .describe(
              'Every brain’s readiness is probed in the background this often; `/health` answers at once from the last probe.',
            ),
          streamHeadersWaitMs: timerMs()
            .min(0)
            .default(2_000)
            .describe(
              'A streamed answer’s HTTP headers wait this long for the brain’s first words, so that a brain failing at once gets its HTTP status (a 429 a client can retry); past it (a turn queued, Claude at work with its tools) they go, with keep-alive heartbeats.',
            ),
          streamHeartbeatMs: timerMs()
            .min(1_000)
            .default(15_000)
            .describe(
              'Once a stream’s headers went, a keep-alive comment goes this often until the next words, so that a proxy or client with an idle timeout keeps the line open while Claude works or a turn waits.',
            ),
        })
        .strict()
        .default({
          host: '127.0.0.1',
          port: 9090,
          bodyLimitBytes: 25 * 1024 * 1024,
          modeTag: true,
          allowedHosts: [],
          bodyAfterAnswerMs: 30_000,
          requestTimeoutMs: 300_000,
          maxConnections: 256,
          shutdownGraceMs: 10_000,
          readinessRefreshMs: 30_000,
          streamHeadersWaitMs: 2_000,
          streamHeartbeatMs: 15_000,
        })
        .describe('The HTTP server: OpenAI endpoint, tools API, MCP, health.'),
      defaultMode: z
        .string()
        .default('assistant')
        .describe(
          'The mode active on a fresh data dir (afterwards the last active mode is kept across restarts).',
        ),
      modes: z
        .record(
          // The id's form is checked with the rest (crossProblems): zod names a bad record key without saying why.
          z.string(),
          modeSchema,
        )
        .optional()
        .describe(
          'Modes by id, added to the built-in ones (`anklume`, `assistant`, `local`); an entry with a built-in id replaces it whole.',
        ),
      claude: z
        .object({
          bin: z.string().default('claude').describe('The Claude Code CLI (env `CLAUDE_BIN`).'),
          credentialsFile: z
            .string()
            .optional()
            .describe(
              'OAuth credentials watched for expiry, shown by /creds (env `CLAUDE_CREDENTIALS_FILE`). Default: the file Claude Code reads, `.credentials.json` in `CLAUDE_CONFIG_DIR` (of `claude.env`, else brainstem’s environment), else `~/.claude/.credentials.json`.',
            ),
          maxRetries: z
            .number()
            .int()
            .min(0)
            .max(15)
            .default(2)
            .describe(
              'Retries inside the CLI (`CLAUDE_CODE_MAX_RETRIES`), bounded so a refused credential fails quickly.',
            ),
          apiTimeoutMs: ms('Timeout of one API request inside the CLI (`API_TIMEOUT_MS`).').default(600_000),
          turnTimeoutMs: ms(
            'Wall clock of a whole turn: the CLI is stopped when it is hit, and the user is told.',
          ).default(30 * 60_000),
          sessionTtlHours: z
            .number()
            .positive()
            .default(7 * 24)
            .describe('A conversation unused for this long forgets its Claude session and starts a new one.'),
          env: z
            .record(z.string(), z.string())
            .default({})
            .describe(
              'Extra environment for the CLI (e.g. `CLAUDE_CONFIG_DIR`). `CLAUDE_CODE_DISABLE_BACKGROUND_TASKS` and `CLAUDE_CODE_DISABLE_CRON` are always 1: a background task or a scheduled prompt has the CLI start turns nobody asked for.',
            ),
          warm: warmSchema
            .default(WARM_DEFAULTS)
            .describe('Warm processes: a follow-up skips the CLI start-up.'),
          approvalTimeoutMs: ms(
            'A tool approval nobody answers within this time is denied, and the user is told.',
          ).default(120_000),
          maxProcesses: z
            .number()
            .int()
            .min(1)
            .default(6)
            .describe(
              '`claude` processes alive at once, warm ones, spares and the `claude_code` tool’s included; spares, then idle warm ones are closed to make room, and a turn over it is refused with a message rather than queued (a brain waiting for a slot its own caller holds would wait forever).',
            ),
          credit: creditSchema
            .default(CREDIT_DEFAULTS)
            .describe(
              'The monthly Agent SDK credit `claude -p` on a subscription draws from: meter, notices, switch.',
            ),
        })
        .strict()
        .default({
          bin: 'claude',
          maxRetries: 2,
          apiTimeoutMs: 600_000,
          turnTimeoutMs: 1_800_000,
          sessionTtlHours: 168,
          env: {},
          warm: WARM_DEFAULTS,
          approvalTimeoutMs: 120_000,
          maxProcesses: 6,
          credit: CREDIT_DEFAULTS,
        })
        .describe('The Claude brains (modes of kind `claude`).'),
      llama: z
        .object({
          baseUrl: z
            .string()
            .url()
            .default('http://127.0.0.1:8081/v1')
            .describe(
              'OpenAI-compatible upstream of the llama modes: llama-server, Ollama (env `LLAMA_BASE_URL`).',
            ),
          healthPath: z
            .string()
            // Appended to the server root as is: `health` made `http://127.0.0.1:8081health`, no URL at all.
            .regex(/^\//, 'a path from the server root, starting with "/" (e.g. "/health")')
            .default('/health')
            .describe(
              'Readiness probe, relative to the server root (llama-server answers 503 while loading). Ollama, which has none (or answers "Ollama is running" on `/`), is told by its model list (`/api/tags`): ready when it has pulled the mode’s `model`.',
            ),
          readyTimeoutMs: ms('How long a switch waits for the upstream to be ready before it fails.').default(
            180_000,
          ),
          pollIntervalMs: ms('Pause between two readiness probes during a switch.').default(500),
          downGraceMs: ms(
            'How long a switch that starts nothing waits for an upstream where nothing answers (connection refused, unknown host) before it fails; one loading its model is waited for up to `llama.readyTimeoutMs`.',
          ).default(10_000),
          connectTimeoutMs: ms(
            'How long to wait for a connection and the first byte of an answer before calling the upstream down.',
          ).default(5_000),
          streamIdleMs: ms(
            'How long the upstream may go silent between two chunks once the answer streams: a running model sends one per token, so a minute of silence means it hung.',
          ).default(60_000),
          models: z
            .record(z.string(), llamaModelSchema)
            .default({})
            .describe(
              'Models by name, each with the commands that load and unload it (see `modes.<id>.llamaModel`).',
            ),
        })
        .strict()
        .default({
          baseUrl: 'http://127.0.0.1:8081/v1',
          healthPath: '/health',
          readyTimeoutMs: 180_000,
          pollIntervalMs: 500,
          downGraceMs: 10_000,
          connectTimeoutMs: 5_000,
          streamIdleMs: 60_000,
          models: {},
        })
        .describe('The local brain (modes of kind `llama`).'),
      telegram: z
        .object({
          token: botToken
            .optional()
            .describe(
              'Bot token (env `TELEGRAM_BOT_TOKEN`), as @BotFather gives it (`123456789:AAH…`, no quotes; surrounding whitespace is dropped); unset: no bot. brainstem must be its only poller.',
            ),
          apiRoot: z
            .string()
            .url()
            .optional()
            .describe(
              'Bot API root (env `TELEGRAM_API_ROOT`): a self-hosted Bot API server. Default: Telegram’s.',
            ),
          allowedUsers: telegramUserIds
            .default([])
            .describe(
              'Telegram user ids that may use the bot (env `TELEGRAM_ALLOWED_USERS`, comma-separated); empty: nobody.',
            ),
          notifyChats: z
            .array(z.number().int())
            .optional()
            .describe(
              'Chats that get the `⚙️ [proxy]` notices (switches, credentials, brains, usage limit). Default: the allowed users.',
            ),
          approvers: telegramUserIds
            .optional()
            .describe(
              'Telegram user ids that may answer tool approvals (Allow / Deny) and the confirmations others asked for (Confirm / Cancel), also when not among the allowed users: those buttons only, nothing else of the bot. Default: the allowed users.',
            ),
          streaming: z
            .enum(['draft', 'edit', 'off'])
            .default('draft')
            .describe(
              '`draft`: Bot API drafts in private chats (edits where a draft is refused); `edit`: one message edited in place; `off`: typing, then the whole answer.',
            ),
          editIntervalMs: timerMs()
            .min(100)
            .default(1_000)
            .describe(
              'Minimum time between two edits (or drafts) of a streamed answer or a tool’s progress, shared by the streams of one chat (its forum topics): they take turns (a group: 4 s).',
            ),
          confirmTimeoutMs: timerMs()
            .min(1_000)
            .default(120_000)
            .describe(
              'How long a confirmation (a mutating tool, /upgrade) waits for its answer before nothing runs.',
            ),
          questionCheckMs: timerMs()
            .min(100)
            .default(20_000)
            .describe(
              'How often a tool approval question still unanswered is checked to be still there (one call to Telegram; it says nothing of a deleted message or forum topic): one deleted, by hand or with its topic, is denied then, and the user told, instead of waiting out `claude.approvalTimeoutMs`.',
            ),
          albumQuietMs: timerMs()
            .min(100)
            .default(1_000)
            .describe(
              'How long an album (photos sent together) waits for its next photo before it goes to the brain as one turn; raise it on a slow uplink.',
            ),
          front: frontSchema
            .default(FRONT_DEFAULTS)
            .describe(
              'The Bot API front OpenClaw’s own Telegram channel polls instead of Telegram (see "OpenClaw setup").',
            ),
        })
        .strict()
        .default({
          allowedUsers: [],
          streaming: 'draft',
          editIntervalMs: 1_000,
          confirmTimeoutMs: 120_000,
          questionCheckMs: 20_000,
          albumQuietMs: 1_000,
          front: FRONT_DEFAULTS,
        })
        .describe('The Telegram bot.'),
      credentials: z
        .object({
          warnBeforeMinutes: z
            .number()
            .int()
            .positive()
            .default(60)
            .describe(
              'Notice this long before the Claude OAuth token expires, when the credentials file has no refresh token (with one, Claude Code renews the token when it runs: no notice).',
            ),
          pollIntervalMs: ms(
            'How often the credentials file is read again (it is also watched for changes).',
          ).default(60_000),
        })
        .strict()
        .default({ warnBeforeMinutes: 60, pollIntervalMs: 60_000 })
        .describe('Watching the Claude credentials file (`claude.credentialsFile`).'),
      usageLimit: z
        .object({
          fallbackMode: z
            .string()
            .optional()
            .describe(
              'When Claude’s subscription limit is hit, switch to this mode until the reset, then back (unless the user switched meanwhile). Unset: no fallback.',
            ),
        })
        .strict()
        .default({})
        .describe('Claude’s subscription usage limit.'),
      retention: z
        .object({
          auditDays: z
            .number()
            .int()
            .min(0)
            .default(90)
            .describe(
              'Audit rows (every tool call and approval decision) older than this many days are removed, at start and then daily; 0 keeps them for ever (about 70 MB a year).',
            ),
          noticeDays: z
            .number()
            .int()
            .min(0)
            // A delivered notice's key is what keeps it from being sent again (a credit threshold, once per
            // monthly cycle): removed sooner than a cycle, the same notice could come twice in it.
            .refine((days) => days === 0 || days >= 32, {
              message:
                '0 (kept for ever) or at least 32: a delivered notice is what keeps it from being sent again within a monthly credit cycle',
            })
            .default(90)
            .describe(
              'Notices delivered more than this many days ago are removed, at start and then daily (one not yet delivered never is, nor the latest of each cause: an expired credential is told once); 0 keeps them for ever, else at least 32 (a notice is not sent twice in a monthly credit cycle because it is still there).',
            ),
        })
        .strict()
        .default({ auditDays: 90, noticeDays: 90 })
        .describe('How long the state database keeps the audit log and delivered notices.'),
      transcription: transcriptionSchema
        .optional()
        .describe(
          'Speech to text for voice notes, audio files and video notes sent to the bot (direct route): `url` or `command`. Unset: they get a reply saying how to turn it on.',
        ),
      tools: z
        .record(z.string(), z.unknown())
        .default({})
        .describe('The infrastructure tools behind `/api`, `/mcp`, `/run` and the shortcut words.'),
    })
    .strict();
  return { configSchema, modeSchema, warmSchema, creditSchema, transcriptionSchema };
}

type Schemas = ReturnType<typeof configSchemas>;
type ModeSchema = Schemas['modeSchema'];

export type ConfigFile = z.input<Schemas['configSchema']>;
export type ModeConfig = z.infer<ModeSchema> & { id: string };
export type WarmConfig = z.infer<Schemas['warmSchema']>;
export type CreditConfig = z.infer<Schemas['creditSchema']>;
export type TranscriptionConfig = z.infer<Schemas['transcriptionSchema']>;
type Parsed = z.infer<Schemas['configSchema']>;

export interface Config extends Omit<Parsed, 'modes' | 'claude' | 'tools'> {
  configPath: string;
  configFileFound: boolean;
  dataDir: string;
  modes: ModeConfig[];
  /** The `tools` section, its relative paths resolved against the config file's directory. */
  tools: ToolsConfig;
  claude: Parsed['claude'] & { credentialsFile: string };
  /** `server.apiToken` came from BRAINSTEM_API_TOKEN, not the file: the start-up log and doctor say which. */
  apiTokenFromEnv: boolean;
  logLevel: string;
}

export { ConfigError };

/**
 * OpenClaw's built-in tools (openclaw 2026.9.6 tool groups) other than read,
 * ls, web_search and web_fetch: they write, run commands, drive browsers,
 * devices, messages, sessions or the gateway, or read memory and images. With
 * its Tool Search on (the default), OpenClaw offers most tools only through a
 * catalog: `tool_call` runs any of them by name (`exec` included), so the
 * catalog's tools are kept back too.
 */
export const OPENCLAW_TOOLS_NOT_READ_ONLY = [
  'tool_call',
  'tool_search',
  'tool_describe',
  'computer',
  'openclaw',
  'sessions_yield',
  'view_image',
  'write',
  'edit',
  'apply_patch',
  'exec',
  'bash',
  'process',
  'code_execution',
  'browser',
  'canvas',
  'nodes',
  'cron',
  'gateway',
  'message',
  'tts',
  'image',
  'agents_list',
  'sessions_list',
  'sessions_history',
  'sessions_send',
  'sessions_spawn',
  'session_status',
  'memory_search',
  'memory_get',
];

/** The modes of the original deployment; a config file may add to or override them. */
export function defaultModes(): Record<string, z.input<ModeSchema>> {
  return {
    anklume: {
      kind: 'claude',
      description: 'Claude Code in the anklume project',
      aliases: ['ank', 'anklum', 'projet', 'project'],
    },
    assistant: {
      kind: 'claude',
      description: 'Claude Code as a general assistant',
      aliases: ['assist', 'assistent', 'claude', 'asistant'],
    },
    local: {
      kind: 'llama',
      description: 'Local model on llama-server',
      aliases: ['lical', 'locale', 'llama', 'ollama'],
      // brainstem's own read-only tools, offered when the client brings none (the direct route).
      allowedTools: ['web_search', 'web_fetch', 'git_status', 'git_log', 'git_diff', 'read_file'],
      // A small model chooses badly among OpenClaw's long tool list: of OpenClaw's tools only the
      // read-only read, ls, web_search and web_fetch reach it. Any other client's tools pass.
      toolFilter: { deny: OPENCLAW_TOOLS_NOT_READ_ONLY },
    },
  };
}

/** The environment as a config overlay; a variable that cannot be read is added to `problems` and left out. */
function envOverlay(env: NodeJS.ProcessEnv, problems: string[]): Record<string, unknown> {
  // Blank is unset (see overlay): `TELEGRAM_ALLOWED_USERS=` in an .env leaves the file's list.
  const list = (v: string | undefined) =>
    v?.trim()
      ? v
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
      : undefined;
  const ids = (v: string | undefined, name: string) =>
    list(v)?.flatMap((s) => {
      const n = Number(s);
      if (Number.isInteger(n)) return [n];
      problems.push(`${name}: "${s}" is not a Telegram user id (digits only)`);
      return [];
    });
  if (env.OPENCLAW_GATEWAY_URL) {
    problems.push(
      "OPENCLAW_GATEWAY_URL: the gateway relay is gone; OpenClaw's own Telegram channel now polls brainstem's Bot API front (set telegram.front.enabled, see the README's \"OpenClaw setup\") and this variable must be unset",
    );
  }
  // Blank is unset, as for every other variable (see overlay): Number('') is 0, any free port.
  const portText = env.BRAINSTEM_PORT?.trim() || undefined;
  let port = portText === undefined ? undefined : Number(portText);
  if (port !== undefined && !Number.isInteger(port)) {
    problems.push(`BRAINSTEM_PORT: "${env.BRAINSTEM_PORT}" is not a port number`);
    port = undefined;
  }
  let token = env.BRAINSTEM_API_TOKEN;
  if (token && token.length < 16) {
    problems.push(
      `BRAINSTEM_API_TOKEN: must be at least 16 characters (it has ${token.length}); unset it to use the token brainstem generates in its data dir`,
    );
    token = undefined;
  }
  if (env.LOG_LEVEL !== undefined && !LOG_LEVELS.includes(env.LOG_LEVEL)) {
    problems.push(`LOG_LEVEL: "${env.LOG_LEVEL}" is not one of ${LOG_LEVELS.join(', ')}`);
  }
  return {
    dataDir: env.BRAINSTEM_DATA_DIR,
    server: { host: env.BRAINSTEM_HOST, port, apiToken: token },
    telegram: {
      token: env.TELEGRAM_BOT_TOKEN,
      apiRoot: env.TELEGRAM_API_ROOT,
      allowedUsers: ids(env.TELEGRAM_ALLOWED_USERS, 'TELEGRAM_ALLOWED_USERS'),
    },
    claude: { bin: env.CLAUDE_BIN, credentialsFile: env.CLAUDE_CREDENTIALS_FILE },
    llama: { baseUrl: env.LLAMA_BASE_URL },
    tools: { webSearch: { apiKey: env.BRAVE_API_KEY } },
  };
}

/** Deep merge where `undefined` (an unset variable) never overrides a value from the file. */
function overlay(base: unknown, top: unknown): unknown {
  if (top === undefined || top === '') return base;
  if (isPlainObject(base) && isPlainObject(top)) {
    const out: Record<string, unknown> = { ...base };
    for (const [k, v] of Object.entries(top)) out[k] = overlay(base[k], v);
    return out;
  }
  return top;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** pino's levels: what LOG_LEVEL may say. */
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** The fields an environment variable sets (see envOverlay): a wrong value there is the variable's. */
const ENV_FIELDS: Record<string, string> = {
  dataDir: 'BRAINSTEM_DATA_DIR',
  'server.host': 'BRAINSTEM_HOST',
  'server.port': 'BRAINSTEM_PORT',
  'server.apiToken': 'BRAINSTEM_API_TOKEN',
  'telegram.token': 'TELEGRAM_BOT_TOKEN',
  'telegram.apiRoot': 'TELEGRAM_API_ROOT',
  'telegram.allowedUsers': 'TELEGRAM_ALLOWED_USERS',
  'claude.bin': 'CLAUDE_BIN',
  'claude.credentialsFile': 'CLAUDE_CREDENTIALS_FILE',
  'llama.baseUrl': 'LLAMA_BASE_URL',
};

/**
 * Each problem, named by where the value came from: the variable when the environment overlay
 * (`fromEnv`) holds a value at that path, else the file. A variable refused already (a port that is
 * no number) put nothing there, so the wrong value is the file's.
 */
function formatIssues(error: z.ZodError, source: string, fromEnv: Record<string, unknown>): string[] {
  return error.issues.map((i) => {
    const where = i.path.length > 0 ? i.path.join('.') : '(top level)';
    const variable = ENV_FIELDS[where];
    if (variable && valueAt(fromEnv, i.path) !== undefined) return `${variable} (${where}): ${i.message}`;
    return `${source}: ${where}: ${i.message}`;
  });
}

function valueAt(value: unknown, at: readonly PropertyKey[]): unknown {
  return at.reduce<unknown>((v, key) => (isPlainObject(v) ? v[key as string] : undefined), value);
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Config {
  const configPath = path.resolve(cwd, env.BRAINSTEM_CONFIG ?? 'brainstem.json');
  let fileValue: unknown = {};
  const configFileFound = existsSync(configPath);
  if (configFileFound) {
    // An editor may start the file with a byte order mark, which JSON.parse refuses as an
    // unexpected token it shows as nothing at all.
    let text: string;
    try {
      text = readFileSync(configPath, 'utf8').replace(/^\uFEFF/, '');
    } catch (err) {
      // A folder, a file root cannot read on a network mount: said with the path, not as bare EISDIR.
      const code = (err as NodeJS.ErrnoException).code;
      throw new ConfigError([
        `${configPath}: cannot be read (${code === 'EISDIR' ? 'it is a folder; BRAINSTEM_CONFIG names the file' : (code ?? (err as Error).message)})`,
      ]);
    }
    try {
      fileValue = JSON.parse(text);
    } catch (err) {
      throw new ConfigError([`${configPath}: not valid JSON (${jsonProblem(text, err)})`]);
    }
    if (!isPlainObject(fileValue)) throw new ConfigError([`${configPath}: must hold a JSON object`]);
  }
  const problems: string[] = [];
  if (isPlainObject(fileValue) && 'openclaw' in fileValue) {
    problems.push(
      `${configPath}: openclaw: the gateway relay is gone; OpenClaw's own Telegram channel now polls brainstem's Bot API front (set telegram.front.enabled, see the README's "OpenClaw setup") and this section must go`,
    );
    const { openclaw: _gone, ...rest } = fileValue;
    fileValue = rest;
  }
  const fromEnv = envOverlay(env, problems);
  const merged = overlay(fileValue, fromEnv) as Record<string, unknown>;
  const { configSchema, modeSchema } = configSchemas();
  const parsed = configSchema.safeParse(merged);
  if (!parsed.success) problems.push(...formatIssues(parsed.error, configPath, fromEnv));
  // The tools' own section is checked by their schema (src/tools/config.ts), with the rest.
  const tools = parseToolsSection(merged.tools, configPath);
  if (!tools.ok) problems.push(...tools.problems.map((p) => `${configPath}: ${p}`));
  // Here, not once the tools are built: start-up names them with the rest, and doctor sees them.
  else problems.push(...shortcutProblems(tools.config).map((p) => `${configPath}: ${p}`));
  // The checks between fields run on every section that is readable, so one start-up names every problem.
  const sections = parsed.success ? parsed.data : readableSections(configSchema, merged);
  const modes = modeList(modeSchema, sections.modes ?? readableModes(modeSchema, merged.modes));
  problems.push(
    ...crossProblems(sections, modes, Object.keys(isPlainObject(merged.modes) ? merged.modes : {})).map(
      (p) => `${configPath}: ${p}`,
    ),
  );
  // Whether tools.tests and tools.lint only read is the tools section's to say: checked once it is valid.
  if (tools.ok)
    problems.push(...brainstemToolProblems(modes, tools.config).map((p) => `${configPath}: ${p}`));
  if (!parsed.success || !tools.ok || problems.length > 0) throw new ConfigError(problems);
  const c = parsed.data;

  const dataDir = path.resolve(cwd, c.dataDir);
  const claudeEnv = withConfigDir(c.claude.env, env.CLAUDE_CONFIG_DIR, cwd, c.claude.env.HOME || env.HOME);
  for (const m of modes) {
    if (m.env?.CLAUDE_CONFIG_DIR)
      m.env = withConfigDir(m.env, undefined, cwd, m.env.HOME || claudeEnv.HOME || env.HOME);
    if (m.cwd) m.cwd = path.resolve(cwd, m.cwd);
    if (m.personaDir) m.personaDir = path.resolve(cwd, m.personaDir);
  }
  return {
    ...c,
    configPath,
    configFileFound,
    dataDir,
    modes,
    tools: tools.config,
    claude: {
      ...c.claude,
      env: claudeEnv,
      credentialsFile: path.resolve(cwd, c.claude.credentialsFile ?? cliCredentialsFile(claudeEnv, env)),
    },
    ...(c.transcription?.apiKeyFile
      ? { transcription: { ...c.transcription, apiKeyFile: path.resolve(cwd, c.transcription.apiKeyFile) } }
      : {}),
    apiTokenFromEnv: valueAt(fromEnv, ['server', 'apiToken']) !== undefined,
    logLevel: env.LOG_LEVEL ?? 'info',
  };
}

/**
 * `claudeEnv` with its CLAUDE_CONFIG_DIR (else `inherited`, brainstem's own, which the CLI gets too)
 * as one absolute path, the one every CLI, watcher and login command is given. The CLI expands no
 * `~` (with `~/.claude-work` it made a folder named `~` in its cwd, the mode's workspace, and found
 * no login: seen with 2.1.197 and 2.1.332) and reads a relative path from its cwd, while brainstem
 * read both from its own cwd: a login that neither found, or each its own. So `~` is the HOME the
 * CLI sees, a relative path is from brainstem's cwd as every path of brainstem.json, and the same
 * folder spelled two ways (`cfg/`, `x/../cfg`) is one login, watched and shown once. A blank value
 * (no config dir) is left as it is.
 */
function withConfigDir(
  claudeEnv: Record<string, string>,
  inherited: string | undefined,
  cwd: string,
  home: string | undefined,
): Record<string, string> {
  const dir = claudeEnv.CLAUDE_CONFIG_DIR ?? inherited;
  if (!dir?.trim()) return claudeEnv;
  const expanded = /^~(?=$|\/)/.test(dir) ? path.join(home || homedir(), dir.slice(1)) : dir;
  const absolute = path.resolve(cwd, expanded);
  return absolute === dir ? claudeEnv : { ...claudeEnv, CLAUDE_CONFIG_DIR: absolute };
}

/**
 * The credentials file Claude Code itself reads on Linux: `.credentials.json` in its config dir,
 * which `CLAUDE_CONFIG_DIR` moves (the README suggests it in `claude.env`), else `~/.claude`. The
 * CLI gets brainstem's environment overridden by `claude.env` (brains/claude-code/env.ts), HOME
 * included. Watching `~/.claude` while the CLI uses another dir would show /creds, the expiry
 * notices and the credit's plan for a file the CLI never reads, and leave the one it reads open
 * to Claude's file tools (src/own-files.ts). A blank value is ignored: the CLI then has no login.
 */
function cliCredentialsFile(claudeEnv: Record<string, string>, env: NodeJS.ProcessEnv): string {
  const set = (v: string | undefined) => (v?.trim() ? v : undefined);
  const configDir =
    set(claudeEnv.CLAUDE_CONFIG_DIR) ??
    set(env.CLAUDE_CONFIG_DIR) ??
    path.join(set(claudeEnv.HOME) ?? set(env.HOME) ?? homedir(), '.claude');
  return path.join(configDir, '.credentials.json');
}

type Sections = Partial<Parsed>;

/** Each top-level section that is valid on its own; a wrong one is left out (its problems are reported already). */
function readableSections(configSchema: Schemas['configSchema'], merged: Record<string, unknown>): Sections {
  const out: Record<string, unknown> = {};
  for (const [key, schema] of Object.entries(configSchema.shape)) {
    const r = schema.safeParse(merged[key]);
    if (r.success) out[key] = r.data;
  }
  return out as Sections;
}

/** The valid entries of a `modes` section that has wrong ones. */
function readableModes(modeSchema: ModeSchema, raw: unknown): Record<string, z.infer<ModeSchema>> {
  const out: Record<string, z.infer<ModeSchema>> = {};
  for (const [id, value] of Object.entries(isPlainObject(raw) ? raw : {})) {
    const m = modeSchema.safeParse(value);
    if (m.success) out[id] = m.data;
  }
  return out;
}

/** The built-in modes overlaid by the configured ones. */
function modeList(modeSchema: ModeSchema, configured: Record<string, z.infer<ModeSchema>>): ModeConfig[] {
  const defaults = Object.entries(defaultModes()).map(([id, raw]) => [id, modeSchema.parse(raw)] as const);
  const all = new Map<string, z.infer<ModeSchema>>([...defaults, ...Object.entries(configured)]);
  return [...all].map(([id, m]) => ({ ...m, id, aliases: m.aliases.map((a) => a.toLowerCase()) }));
}

/**
 * Problems between fields: names used twice, references to modes and models that
 * do not exist. `configuredIds` holds every configured mode id, valid or not, so
 * that a mode with a wrong field is not reported as missing too.
 */
const MODE_ID = /^[a-z0-9_-]{1,40}$/;

/**
 * The mode fields only one kind of brain reads. Set on the other kind they
 * would change nothing, and the owner would believe they do (a `systemPrompt`
 * a local model never sees, a `personaDir` Claude never reads), so they are
 * refused, as `toolFilter` on a Claude mode is with a message of its own.
 */
const CLAUDE_ONLY = ['cwd', 'systemPrompt', 'spares', 'brainstemTools', 'env', 'budget'] as const;
const LLAMA_ONLY = ['llamaModel', 'personaDir', 'baseUrl', 'templateOpensThink'] as const;
/** What the owner most likely meant by two of them. */
const INSTEAD: Partial<Record<(typeof CLAUDE_ONLY | typeof LLAMA_ONLY)[number], string>> = {
  systemPrompt: 'a llama mode takes the client’s system message, or its persona from `personaDir`',
  baseUrl: 'a Claude mode’s API address is `ANTHROPIC_BASE_URL` in its `env`',
};

function crossProblems(c: Sections, modes: ModeConfig[], configuredIds: string[]): string[] {
  const problems: string[] = [];
  for (const id of configuredIds) {
    // At most 40: a /mode button carries the id in Telegram's 64 bytes of callback data.
    if (!MODE_ID.test(id))
      problems.push(`modes.${id}: mode ids are 1 to 40 lower-case letters, digits, - and _`);
  }
  const ids = new Set([...modes.map((m) => m.id), ...configuredIds]);
  const seen = new Map<string, string>();
  for (const m of modes) {
    for (const name of [m.id, ...m.aliases]) {
      // `active` in the `model` field is the mode running now; a `/` there ends a provider prefix.
      // (An id's own characters are checked above.)
      const unusable = name !== m.id && (name.includes('/') || name !== name.trim() || name === '');
      if (name === ACTIVE || unusable) {
        problems.push(
          `modes.${m.id}: name "${name}" can never be chosen (${name === ACTIVE ? '"active" names the mode running now' : 'a name has no "/", no surrounding spaces and is not empty'}); pick another`,
        );
        continue;
      }
      const other = seen.get(name);
      if (other && other !== m.id)
        problems.push(`modes.${m.id}: name "${name}" is already used by mode "${other}"`);
      seen.set(name, m.id);
    }
    for (const rule of m.kind === 'claude' ? m.allowedTools : []) {
      if (grantsBrainstemTools(rule))
        problems.push(
          `modes.${m.id}.allowedTools: "${rule}" would let Claude run brainstem's tools without asking; list read-only ones by name in modes.${m.id}.brainstemTools instead`,
        );
    }
    if (m.toolFilter && m.kind !== 'llama') {
      problems.push(
        `modes.${m.id}.toolFilter: only llama modes take client tools (Claude Code uses its own)`,
      );
    }
    for (const field of m.kind === 'claude' ? LLAMA_ONLY : CLAUDE_ONLY) {
      if (m[field] !== undefined) {
        const [reads, is] = m.kind === 'claude' ? ['llama', 'a Claude'] : ['Claude', 'a llama'];
        const instead = INSTEAD[field] ? ` (${INSTEAD[field]})` : '';
        problems.push(
          `modes.${m.id}.${field}: only ${reads} modes read it, and this is ${is} mode${instead}`,
        );
      }
    }
    if (c.llama && m.llamaModel && !c.llama.models[m.llamaModel]) {
      problems.push(`modes.${m.id}.llamaModel: "${m.llamaModel}" is not defined under llama.models`);
    }
  }
  const stt = c.transcription;
  if (stt && (stt.url === undefined) === (stt.command === undefined)) {
    problems.push(
      'transcription: set either `url` (an OpenAI-compatible API) or `command`, not both or neither',
    );
  }
  if (stt?.command && !stt.command.includes('{file}')) {
    problems.push('transcription.command: one element must be `{file}` (the audio file’s path)');
  }
  // Only the API reads it: a command given it would transcribe in its own default (whisper-cli's is English).
  if (stt?.command && stt.language !== undefined) {
    problems.push(
      `transcription.language: only \`url\` reads it; with \`command\`, put the language in its argv (whisper-cli: "-l", "${stt.language}")`,
    );
  }
  const list = [...ids].join(', ');
  const fallback = c.usageLimit?.fallbackMode;
  if (fallback !== undefined && !ids.has(fallback) && !seen.has(fallback)) {
    problems.push(`usageLimit.fallbackMode: "${fallback}" is not a mode (modes: ${list})`);
  }
  if (c.defaultMode !== undefined && !ids.has(c.defaultMode)) {
    problems.push(`defaultMode: "${c.defaultMode}" is not a mode (modes: ${list})`);
  }
  return problems;
}

/** The working directory of a Claude mode: configured, or a folder of its own under the data dir. */
export function modeCwd(config: Pick<Config, 'dataDir'>, mode: ModeConfig): string {
  return mode.cwd ?? path.join(config.dataDir, 'workspaces', mode.id);
}

/** The chats that get every notice: `telegram.notifyChats`, else the allowed users. */
export function notifyChatsOf(telegram: Config['telegram']): readonly number[] {
  return telegram.notifyChats ?? telegram.allowedUsers;
}

/**
 * What to do about an empty allow-list (the bot refuses everybody): both places it is set, and how
 * an owner who does not know their id learns it (the bot tells whoever writes to it: access.ts).
 */
export function emptyAllowListAdvice(configPath: string): string {
  return `set TELEGRAM_ALLOWED_USERS to your numeric Telegram user id (comma-separated for several), or "telegram": { "allowedUsers": [<id>] } in ${configPath}; write to the bot and it tells you your id`;
}
