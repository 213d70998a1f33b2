import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { grantsBrainstemTools } from '../brains/claude-code/tool-names.js';

/**
 * Configuration: `brainstem.json` (optional) overlaid by environment variables.
 * Every field has a default so a fresh machine starts with no file at all.
 */

const argv = z.array(z.string().min(1)).min(1);
const HOST_NAME = /^([a-z0-9.-]+|\[[0-9a-f:.]+\])$/i;

const modeSchema = z
  .object({
    kind: z.enum(['claude', 'llama']),
    description: z.string().default(''),
    aliases: z.array(z.string()).default([]),
    /** Claude: working directory (sessions live per cwd). Default: a folder of its own under the data dir. */
    cwd: z.string().optional(),
    /** Claude: `--model`; llama: the model name sent upstream. */
    model: z.string().optional(),
    /** Claude: prepended to the first turn of a new session (`--append-system-prompt`). */
    systemPrompt: z.string().optional(),
    /** Claude: `--allowedTools`; llama: brainstem's own read-only tools it may call when the client brings none. */
    allowedTools: z.array(z.string()).default([]),
    /** Llama: which of the client's tools reach the model (absent = all); what it removes is reported, never silent. */
    toolFilter: z
      .object({
        /** Only these pass (absent = every tool not denied). */
        allow: z.array(z.string().min(1)).optional(),
        /** These never pass. */
        deny: z.array(z.string().min(1)).default([]),
      })
      .strict()
      .optional(),
    /** Claude: `--disallowedTools`. */
    deniedTools: z.array(z.string()).default([]),
    /**
     * Claude: brainstem's own tools (registry names) the CLI may run without asking; only
     * read-only ones may be listed. Default: every read-only tool. The rest ask the approver.
     */
    brainstemTools: z.array(z.string()).optional(),
    /** Llama: which entry of `llama.models` must be loaded for this mode. */
    llamaModel: z.string().optional(),
    /** Llama: build a concise system prompt from persona files in this workspace dir. */
    personaDir: z.string().optional(),
    /** Llama: upstream base URL when it differs from `llama.baseUrl`. */
    baseUrl: z.string().url().optional(),
    /** Claude: extra environment of this mode's CLI, over `claude.env` (ANTHROPIC_API_KEY bills it to an API key). */
    env: z.record(z.string(), z.string()).optional(),
    /** Claude: spending caps in USD, per turn (the CLI's `--max-budget-usd`) and per UTC day. */
    budget: z
      .object({ turnUsd: z.number().positive().optional(), dayUsd: z.number().positive().optional() })
      .strict()
      .optional(),
  })
  .strict();

const llamaModelSchema = z
  .object({
    /** argv commands run in order to load this model (e.g. stop one unit, start another). */
    start: z.array(argv).default([]),
    /** argv commands that unload it, run when another model is needed. */
    stop: z.array(argv).default([]),
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
    /** USD a cycle; unset: from the plan in the credentials file; 0: no credit (API billing). */
    monthlyUsd: z.number().min(0).optional(),
    /** The day of the month (00:00 UTC) the credit renews, or the ISO date-time of one renewal; monthly from there. */
    resetDay: z
      .union([z.number().int().min(1).max(31), z.string().datetime({ offset: true })])
      .default(CREDIT_DEFAULTS.resetDay),
    /** Shares of the credit (percent) that each send one notice per cycle. */
    notifyAtPercent: z.array(z.number().positive().max(100)).default(CREDIT_DEFAULTS.notifyAtPercent),
    /** A notice when the forecast says the credit runs out more than this many days before the reset. */
    runOutWarnDays: z.number().min(0).default(CREDIT_DEFAULTS.runOutWarnDays),
    /** With usageLimit.fallbackMode: switch to it at this share of the credit (and when it is spent). */
    switchAtPercent: z.number().positive().max(100).default(CREDIT_DEFAULTS.switchAtPercent),
  })
  .strict();

const warmSchema = z
  .object({
    enabled: z.boolean().default(WARM_DEFAULTS.enabled),
    /** An idle process is closed after this long. */
    idleMs: z.number().int().positive().default(WARM_DEFAULTS.idleMs),
    /** How many may live at once, all Claude modes together; the least recently used goes first. */
    max: z.number().int().min(1).default(WARM_DEFAULTS.max),
  })
  .strict();

export const configSchema = z
  .object({
    dataDir: z.string().default('./data'),
    server: z
      .object({
        host: z.string().default('127.0.0.1'),
        port: z.number().int().min(0).max(65535).default(9090),
        bodyLimitBytes: z
          .number()
          .int()
          .positive()
          .default(4 * 1024 * 1024),
        /** Prefix answers with the mode tag, e.g. `**[local]** `. */
        modeTag: z.boolean().default(true),
        apiToken: z.string().min(16).optional(),
        /** Host names (besides the bind address and localhost) clients and browsers may use to reach brainstem. */
        allowedHosts: z
          .array(z.string().regex(HOST_NAME, 'a host name or IP address, without scheme or port'))
          .default([]),
        /** On SIGTERM, how long running turns may go on before they are cut short (pm2's kill_timeout is longer). */
        shutdownGraceMs: z.number().int().min(0).default(10_000),
        /** Every brain's readiness is probed in the background this often; /health answers from the last probe. */
        readinessRefreshMs: z.number().int().min(1_000).default(30_000),
      })
      .strict()
      .default({
        host: '127.0.0.1',
        port: 9090,
        bodyLimitBytes: 4 * 1024 * 1024,
        modeTag: true,
        allowedHosts: [],
        shutdownGraceMs: 10_000,
        readinessRefreshMs: 30_000,
      }),
    defaultMode: z.string().default('assistant'),
    modes: z
      .record(
        z.string().regex(/^[a-z0-9_-]+$/, 'mode ids are lower-case letters, digits, - and _'),
        modeSchema,
      )
      .optional(),
    claude: z
      .object({
        bin: z.string().default('claude'),
        credentialsFile: z.string().optional(),
        /** Bounded retries inside the CLI so an auth failure ends quickly (CLAUDE_CODE_MAX_RETRIES). */
        maxRetries: z.number().int().min(0).max(15).default(2),
        /** Per-request API timeout inside the CLI (API_TIMEOUT_MS). */
        apiTimeoutMs: z.number().int().positive().default(600_000),
        /** Wall clock for a whole turn; the user is told when it is hit. */
        turnTimeoutMs: z
          .number()
          .int()
          .positive()
          .default(30 * 60_000),
        sessionTtlHours: z
          .number()
          .positive()
          .default(7 * 24),
        /** Extra environment for the CLI (e.g. CLAUDE_CONFIG_DIR). */
        env: z.record(z.string(), z.string()).default({}),
        /** A CLI process kept per conversation between turns, so a follow-up skips the CLI start-up. */
        warm: warmSchema.default(WARM_DEFAULTS),
        /** A tool approval nobody answers within this time is denied, and the user is told. */
        approvalTimeoutMs: z.number().int().positive().default(120_000),
        /** CLI processes alive at once (warm ones included, all modes and tools together); a turn over it is refused. */
        maxProcesses: z.number().int().min(1).default(6),
        credit: creditSchema.default(CREDIT_DEFAULTS),
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
      }),
    llama: z
      .object({
        baseUrl: z.string().url().default('http://127.0.0.1:8081/v1'),
        /** Readiness probe path relative to the server root (llama-server answers 503 while loading). */
        healthPath: z.string().default('/health'),
        readyTimeoutMs: z.number().int().positive().default(180_000),
        pollIntervalMs: z.number().int().positive().default(500),
        /** How long to wait for the first byte of an answer before calling the upstream dead. */
        connectTimeoutMs: z.number().int().positive().default(5_000),
        /**
         * How long the upstream may go silent between two chunks once the answer streams: a running
         * model sends one per token, so a minute of silence means it hung.
         */
        streamIdleMs: z.number().int().positive().default(60_000),
        models: z.record(z.string(), llamaModelSchema).default({}),
      })
      .strict()
      .default({
        baseUrl: 'http://127.0.0.1:8081/v1',
        healthPath: '/health',
        readyTimeoutMs: 180_000,
        pollIntervalMs: 500,
        connectTimeoutMs: 5_000,
        streamIdleMs: 60_000,
        models: {},
      }),
    telegram: z
      .object({
        token: z.string().optional(),
        apiRoot: z.string().url().optional(),
        allowedUsers: z.array(z.number().int()).default([]),
        /** Chats that get switch, credential and brain notices. Default: the allowed users. */
        notifyChats: z.array(z.number().int()).optional(),
        /** Who may answer tool approval buttons. Default: the allowed users. */
        approvers: z.array(z.number().int()).optional(),
        /** Bot API drafts in private chats (edits wherever a draft is refused), edits in place, or typing then the answer. */
        streaming: z.enum(['draft', 'edit', 'off']).default('draft'),
        /** Minimum time between two edits of a streamed message. */
        editIntervalMs: z.number().int().min(100).default(1_000),
        /** How long a confirmation (a mutating tool call, /upgrade) waits for its answer before nothing runs. */
        confirmTimeoutMs: z.number().int().min(1_000).default(120_000),
      })
      .strict()
      .default({ allowedUsers: [], streaming: 'draft', editIntervalMs: 1_000, confirmTimeoutMs: 120_000 }),
    openclaw: z
      .object({
        gatewayUrl: z.string().url().optional(),
        gatewayToken: z.string().optional(),
        /** openclaw.json to keep in step with the active mode, if wanted. */
        configPath: z.string().optional(),
      })
      .strict()
      .default({}),
    credentials: z
      .object({
        warnBeforeMinutes: z.number().int().positive().default(60),
        pollIntervalMs: z.number().int().positive().default(60_000),
      })
      .strict()
      .default({ warnBeforeMinutes: 60, pollIntervalMs: 60_000 }),
    usageLimit: z
      .object({
        /** When Claude's subscription limit is hit, switch to this mode until the reset (off when unset). */
        fallbackMode: z.string().optional(),
      })
      .strict()
      .default({}),
    /** Settings of the infrastructure tools (see src/tools). */
    tools: z.record(z.string(), z.unknown()).default({}),
  })
  .strict();

export type ConfigFile = z.input<typeof configSchema>;
export type ModeConfig = z.infer<typeof modeSchema> & { id: string };
export type LlamaModelConfig = z.infer<typeof llamaModelSchema>;
export type WarmConfig = z.infer<typeof warmSchema>;
export type CreditConfig = z.infer<typeof creditSchema>;
type Parsed = z.infer<typeof configSchema>;

export interface Config extends Omit<Parsed, 'modes' | 'claude'> {
  configPath: string;
  configFileFound: boolean;
  dataDir: string;
  modes: ModeConfig[];
  claude: Parsed['claude'] & { credentialsFile: string };
  logLevel: string;
}

/** A config that cannot be used: one line per wrong field, ready to print. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/**
 * OpenClaw's built-in tools (openclaw 2026.9.6 tool groups) other than read,
 * ls, web_search and web_fetch: they write, run commands, drive browsers,
 * devices, messages, sessions or the gateway, or read memory and images.
 */
export const OPENCLAW_TOOLS_NOT_READ_ONLY = [
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
function defaultModes(): Record<string, z.input<typeof modeSchema>> {
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

function envOverlay(env: NodeJS.ProcessEnv): Record<string, unknown> {
  const list = (v: string | undefined) =>
    v
      ?.split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  const ids = (v: string | undefined, name: string) =>
    list(v)?.map((s) => {
      const n = Number(s);
      if (!Number.isInteger(n))
        throw new ConfigError([`${name}: "${s}" is not a Telegram user id (digits only)`]);
      return n;
    });
  const port = env.BRAINSTEM_PORT === undefined ? undefined : Number(env.BRAINSTEM_PORT);
  if (port !== undefined && !Number.isInteger(port)) {
    throw new ConfigError([`BRAINSTEM_PORT: "${env.BRAINSTEM_PORT}" is not a port number`]);
  }
  const token = env.BRAINSTEM_API_TOKEN;
  if (token && token.length < 16) {
    throw new ConfigError([
      `BRAINSTEM_API_TOKEN: must be at least 16 characters (it has ${token.length}); unset it to use the token brainstem generates in its data dir`,
    ]);
  }
  return {
    dataDir: env.BRAINSTEM_DATA_DIR,
    server: { host: env.BRAINSTEM_HOST, port, apiToken: env.BRAINSTEM_API_TOKEN },
    telegram: {
      token: env.TELEGRAM_BOT_TOKEN,
      apiRoot: env.TELEGRAM_API_ROOT,
      allowedUsers: ids(env.TELEGRAM_ALLOWED_USERS, 'TELEGRAM_ALLOWED_USERS'),
    },
    claude: { bin: env.CLAUDE_BIN, credentialsFile: env.CLAUDE_CREDENTIALS_FILE },
    llama: { baseUrl: env.LLAMA_BASE_URL },
    openclaw: { gatewayUrl: env.OPENCLAW_GATEWAY_URL, gatewayToken: env.OPENCLAW_GATEWAY_TOKEN },
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

function formatIssues(error: z.ZodError, source: string): string[] {
  return error.issues.map((i) => {
    const where = i.path.length > 0 ? i.path.join('.') : '(top level)';
    return `${source}: ${where}: ${i.message}`;
  });
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Config {
  const configPath = path.resolve(cwd, env.BRAINSTEM_CONFIG ?? 'brainstem.json');
  let fileValue: unknown = {};
  const configFileFound = existsSync(configPath);
  if (configFileFound) {
    try {
      fileValue = JSON.parse(readFileSync(configPath, 'utf8'));
    } catch (err) {
      throw new ConfigError([`${configPath}: not valid JSON (${(err as Error).message})`]);
    }
    if (!isPlainObject(fileValue)) throw new ConfigError([`${configPath}: must hold a JSON object`]);
  }
  const merged = overlay(fileValue, envOverlay(env));
  const parsed = configSchema.safeParse(merged);
  if (!parsed.success) throw new ConfigError(formatIssues(parsed.error, configPath));
  const c = parsed.data;

  const modeInputs = { ...defaultModes(), ...(c.modes ?? {}) };
  const modes: ModeConfig[] = [];
  const problems: string[] = [];
  for (const [id, raw] of Object.entries(modeInputs)) {
    const m = modeSchema.safeParse(raw);
    if (!m.success) problems.push(...formatIssues(m.error, `${configPath}: modes.${id}`));
    else modes.push({ ...m.data, id, aliases: m.data.aliases.map((a) => a.toLowerCase()) });
  }
  const dataDir = path.resolve(cwd, c.dataDir);
  for (const m of modes) {
    if (m.cwd) m.cwd = path.resolve(cwd, m.cwd);
    if (m.personaDir) m.personaDir = path.resolve(cwd, m.personaDir);
  }
  const seen = new Map<string, string>();
  for (const m of modes) {
    for (const name of [m.id, ...m.aliases]) {
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
    if (m.llamaModel && !c.llama.models[m.llamaModel]) {
      problems.push(`modes.${m.id}.llamaModel: "${m.llamaModel}" is not defined under llama.models`);
    }
  }
  const fallback = c.usageLimit.fallbackMode;
  if (fallback !== undefined && !modes.some((m) => m.id === fallback || m.aliases.includes(fallback))) {
    problems.push(
      `usageLimit.fallbackMode: "${fallback}" is not a mode (modes: ${modes.map((m) => m.id).join(', ')})`,
    );
  }
  if (!modes.some((m) => m.id === c.defaultMode)) {
    problems.push(
      `defaultMode: "${c.defaultMode}" is not a mode (modes: ${modes.map((m) => m.id).join(', ')})`,
    );
  }
  if (problems.length > 0) throw new ConfigError(problems);

  return {
    ...c,
    configPath,
    configFileFound,
    dataDir,
    modes,
    claude: {
      ...c.claude,
      credentialsFile: path.resolve(
        cwd,
        c.claude.credentialsFile ?? path.join(env.HOME ?? homedir(), '.claude', '.credentials.json'),
      ),
    },
    logLevel: env.LOG_LEVEL ?? 'info',
  };
}

/** The working directory of a Claude mode: configured, or a folder of its own under the data dir. */
export function modeCwd(config: Pick<Config, 'dataDir'>, mode: ModeConfig): string {
  return mode.cwd ?? path.join(config.dataDir, 'workspaces', mode.id);
}
