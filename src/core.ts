import { ClaudeCodeBrain } from '../brains/claude-code/index.js';
import type { McpOptions } from '../brains/claude-code/mcp.js';
import { ProcessCap } from '../brains/claude-code/process-cap.js';
import { Spares } from '../brains/claude-code/spares.js';
import { WarmPool } from '../brains/claude-code/warm-pool.js';
import { DeafModels } from '../brains/llama-local/deaf-models.js';
import { LlamaLocalBrain } from '../brains/llama-local/index.js';
import type { Brain } from '../brains/types.js';
import { type ApiToken, loadApiToken } from './api-token.js';
import { AuditLog } from './audit.js';
import { credentialSource } from './auth-notice.js';
import type { ChatPorts } from './chat/ports.js';
import { ChatService } from './chat/service.js';
import { type Config, type ModeConfig, modeCwd } from './config.js';
import { ConversationMap } from './conversations.js';
import { noteRefusal } from './credentials.js';
import { billingOf, creditBypass } from './credit/billing.js';
import { Budgets } from './credit/budget.js';
import { CreditMeter } from './credit/meter.js';
import { CreditSource } from './credit/plan.js';
import { CreditWatcher } from './credit/watcher.js';
import { type Db, KvStore, openDb } from './db/index.js';
import { KeptWrites } from './db/kept-writes.js';
import type { Logger } from './logger.js';
import { ModeRegistry } from './modes.js';
import { Notifier } from './notices.js';
import { outboxRoot } from './outbox.js';
import { ownFiles, unreadableByClaude } from './own-files.js';
import { ReadinessBoard } from './readiness.js';
import { Retention } from './retention.js';
import { SessionStore } from './sessions.js';
import { SwitchEnds } from './switch-ends.js';
import { Switcher } from './switcher.js';
import { UsageLedger } from './usage.js';
import { UsageLimitWatcher } from './usage-limit.js';

/**
 * Where Claude Code reaches brainstem's own MCP server: the URL is known once
 * the server listens, the read-only tools once the tools part has registered them.
 */
export type McpEndpoint = McpOptions;

/** Everything the faces (HTTP, Telegram, tools) share. Built once at start-up. */
export interface Core {
  config: Config;
  logger: Logger;
  db: Db;
  kv: KvStore;
  /** Background writes (usage, notices, audit rows…) kept while another process holds the database. */
  kept: KeptWrites;
  /** Tool calls and approval decisions, whoever made them. */
  audit: AuditLog;
  apiToken: ApiToken;
  sessions: SessionStore;
  /** Which conversation an OpenAI request continues when it names none. */
  conversations: ConversationMap;
  ledger: UsageLedger;
  modes: ModeRegistry;
  brains: Map<string, Brain>;
  switcher: Switcher;
  notifier: Notifier;
  chat: ChatService;
  /** Every brain's last known readiness; all probes go through it. */
  readiness: ReadinessBoard;
  /** Removes old audit rows and delivered notices (started by the service once it listens). */
  retention: Retention;
  limits: UsageLimitWatcher;
  /** The monthly Agent SDK credit: what is spent, what is left, the forecast. */
  meter: CreditMeter;
  /** Its notices and the switch before it runs dry. */
  creditWatcher: CreditWatcher;
  /** Filled in by the service once the HTTP server listens; Claude brains read it per turn. */
  mcp: McpEndpoint;
  /** Every `claude` process brainstem runs counts here (claude.maxProcesses). */
  claudeProcesses: ProcessCap;
  /** `claude` processes started ahead for the active mode's new conversations (kept by the service's spares part). */
  claudeSpares: Spares;
  startedAt: number;
  version: string;
}

/** Bound of one readiness probe; each brain bounds its own probe more tightly. */
const READINESS_PROBE_TIMEOUT_MS = 40_000;

/**
 * The core on the data dir: the database, the brains, the switcher and the chat.
 * `ports` is how the chat reaches the parts built from the core later (see ChatPorts).
 */
export function createCore(config: Config, logger: Logger, version: string, ports: ChatPorts): Core {
  const startedAt = Date.now();
  const db = openDb(config.dataDir);
  const kv = new KvStore(db);
  const kept = new KeptWrites(db, logger.child({ part: 'db' }));
  const audit = new AuditLog(db, kept);
  const apiToken = loadApiToken(config.dataDir, config.server.apiToken, config.apiTokenFromEnv);
  const sessions = new SessionStore(db, kept, config.claude.sessionTtlHours * 3_600_000);
  const conversations = new ConversationMap(db, kept, config.claude.sessionTtlHours * 3_600_000);
  const ledger = new UsageLedger(db, kept);
  const modes = new ModeRegistry(config.modes);
  // Where what the lock keeps from the database waits for the next start: the ends of switches, notices.
  const ends = new SwitchEnds(config.dataDir, logger.child({ part: 'db' }));
  const notifier = new Notifier(db, kept, ends, logger.child({ part: 'notices' }));
  const retention = new Retention(db, config.retention, logger.child({ part: 'retention' }));
  const mcp: McpEndpoint = { url: '', token: apiToken.token, configDir: config.dataDir, readOnlyTools: [] };
  const claudeProcesses = new ProcessCap(config.claude.maxProcesses);
  const brains = new Map<string, Brain>();
  // One pool for every Claude mode, so `claude.warm.max` bounds them all together.
  const warm = config.claude.warm.enabled
    ? new WarmPool(config.claude.warm, logger.child({ part: 'claude-warm' }))
    : undefined;
  const unreadable = unreadableByClaude(ownFiles(config));
  // What a local server refused audio for, shared by the modes on it (one server, several personas).
  const deafModels = new DeafModels();
  const claudeSpares = new Spares(claudeProcesses, logger.child({ part: 'claude-spares' }));
  for (const mode of config.modes) {
    const log = logger.child({ brain: mode.id });
    brains.set(
      mode.id,
      mode.kind === 'claude'
        ? new ClaudeCodeBrain({
            mode,
            cwd: modeCwd(config, mode),
            claude: config.claude,
            sessions,
            logger: log,
            mcp,
            warm,
            processes: claudeProcesses,
            spares: claudeSpares,
            outboxRoot: outboxRoot(config.dataDir),
            // A turn the CLI started by itself between turns (guardIdle) is paid like any other.
            unasked: ({ sessionKey, sessionId, usage, durationMs }) => {
              const billing = billingOf(mode, config.claude.env);
              ledger.record({
                ts: Date.now() - durationMs,
                mode: mode.id,
                sessionKey: sessionKey ?? 'spare',
                brainSessionId: sessionId,
                source: 'unasked',
                ...usage,
                durationMs,
                error: 'a turn Claude Code started by itself, stopped',
                billing,
              });
              chat.emit('turn', { mode, billing, costUsd: usage.costUsd });
            },
            unreadable,
          })
        : new LlamaLocalBrain({
            mode,
            baseUrl: mode.baseUrl ?? config.llama.baseUrl,
            llama: config.llama,
            logger: log,
            deaf: deafModels,
          }),
    );
  }
  const readiness = new ReadinessBoard(brains, {
    refreshMs: config.server.readinessRefreshMs,
    timeoutMs: READINESS_PROBE_TIMEOUT_MS,
    logger: logger.child({ part: 'readiness' }),
  });
  const switcher = new Switcher({
    config,
    modes,
    brains,
    readiness,
    kv,
    keptWrites: kept,
    ends,
    notifier,
    logger: logger.child({ part: 'switch' }),
  });
  const meter = new CreditMeter({
    ledger,
    source: new CreditSource(
      config.claude.credit,
      config.claude.credentialsFile,
      creditBypass(config.modes, config.claude.env),
    ),
    config: config.claude.credit,
    kv,
  });
  const budgets = new Budgets(ledger);
  const chat = new ChatService({
    config,
    modes,
    brains,
    switcher,
    ledger,
    notifier,
    kv,
    audit,
    logger,
    ports,
    readiness,
    budgets,
    meter,
    startedAt,
    version,
  });
  // /creds tells a refusal the credentials file does not show (a revoked refresh token): one of the
  // credentials /creds describes, so not a llama server's, nor a mode's own key (`modes.<id>.env`),
  // even one in the same variable as claude.env's, nor its own CLAUDE_CONFIG_DIR's file: the same
  // credentials, not merely the same kind.
  const ownCredentials = (mode: ModeConfig) => {
    if (mode.kind !== 'claude') return false;
    const { env: _own, ...shared } = mode;
    return credentialSource(mode, config.claude.env).id === credentialSource(shared, config.claude.env).id;
  };
  chat.on('brainError', ({ mode, error }) => {
    if (error.kind !== 'auth' || mode.kind !== 'claude') return;
    // A mode's own credentials are kept apart, under their source's id: /creds tells them per mode.
    if (ownCredentials(mode)) noteRefusal(kv, kept);
    else noteRefusal(kv, kept, Date.now(), credentialSource(mode, config.claude.env).id);
  });
  const limits = new UsageLimitWatcher({ config, kv, modes, switcher, notifier, chat, logger });
  ports.fallbackFor = (mode, error) => limits.fallbackFor(mode, error);
  const creditWatcher = new CreditWatcher({
    config,
    kv,
    modes,
    switcher,
    notifier,
    chat,
    meter,
    logger: logger.child({ part: 'credit' }),
  });
  return {
    config,
    logger,
    db,
    kv,
    kept,
    audit,
    apiToken,
    sessions,
    conversations,
    ledger,
    modes,
    brains,
    switcher,
    notifier,
    chat,
    readiness,
    retention,
    limits,
    meter,
    creditWatcher,
    mcp,
    claudeProcesses,
    claudeSpares,
    startedAt,
    version,
  };
}
