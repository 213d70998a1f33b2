import { setImmediate } from 'node:timers/promises';
import type { Approver, Readiness } from '../brains/types.js';
import { ownSources } from './auth-notice.js';
import { hostPort, isLoopback, ownUrl } from './bind-address.js';
import { type BrainMonitorOptions, brainMonitorPart } from './brain-monitor.js';
import type { ChatPorts } from './chat/ports.js';
import { type Config, emptyAllowListAdvice } from './config.js';
import { type Core, createCore } from './core.js';
import {
  CredentialsWatcher,
  type CredentialsWatcherOptions,
  credentialsFromEnv,
  sharedConfigDir,
} from './credentials.js';
import { closeDb } from './db/index.js';
import { type IdleMemoryOptions, idleMemoryPart } from './idle-memory.js';
import { type InstanceLock, lockDataDir } from './instance-lock.js';
import type { Logger } from './logger.js';
import { closeOutboxRoot, outboxRoot } from './outbox.js';
import type { Part } from './part.js';
import type { SwitchOutcome } from './switcher.js';
import { buildTools, type Tools } from './tools/index.js';
import { packageVersion } from './version.js';
import { waitAtMost } from './wait.js';

/**
 * The service's lifecycle, the same in `brainstem serve` and in tests: the
 * core, the parts chosen, the faces handed in by main (the core knows them
 * only by the small interfaces below), then listen, then start.
 */

/** The HTTP face as the lifecycle sees it: its routes are set up when it is built, before listen. */
export interface HttpFace {
  /** Starts listening on config.server; resolves with the port. */
  listen(): Promise<number>;
  /** Resolves once the server has finished its first response. */
  readonly firstAnswered: Promise<void>;
  /** Stops taking requests; resolves once the open ones are answered. */
  close(): Promise<void>;
}

/** The chat face (Telegram): a part, and the approver of turns that come without one. */
export interface BotFace extends Part {
  approver?: Approver;
}

/**
 * How main builds the faces from the core and the tools (handlers/index.ts):
 * the bot (undefined when no bot token is set) and HTTP, which may serve what
 * the bot brings (its Bot API front), known here only as `Bot`. With the front
 * on (`telegram.front.enabled`) the bot is built first and its routes handed
 * to HTTP; otherwise it is built once the server listens, with no routes.
 */
export interface Faces<Bot extends BotFace = BotFace> {
  bot(core: Core, tools: Tools | undefined): Promise<Bot | undefined>;
  http(core: Core, tools: Tools | undefined, bot: Bot | undefined): Promise<HttpFace>;
}

/** Which parts run around the core: all of them in `brainstem serve`, the ones a test needs in tests. */
export interface PartChoice {
  /** The infra tools: /api, /mcp, /run and the shortcut words. */
  tools?: boolean;
  /** The Telegram bot, when TELEGRAM_BOT_TOKEN is set. */
  bot?: boolean;
  /** The Claude credentials watcher, when some mode runs on Claude. */
  credentials?: boolean;
  /** The active brain's health monitor. */
  brainMonitor?: boolean | BrainMonitorOptions;
  /** Spare `claude` processes for the active mode's new conversations (`modes.<id>.spares`). */
  claudeSpares?: boolean;
  /** The memory a burst of work left, given back once the service is idle again. */
  idleMemory?: boolean | IdleMemoryOptions;
}

export const ALL_PARTS: PartChoice = {
  tools: true,
  bot: true,
  credentials: true,
  brainMonitor: true,
  claudeSpares: true,
  idleMemory: true,
};

export interface ServiceOptions<Bot extends BotFace = BotFace> {
  faces: Faces<Bot>;
  parts?: PartChoice;
  /** The data dir's instance lock, taken by main before loading the rest; taken here when absent. */
  lock?: InstanceLock;
}

export interface Service {
  core: Core;
  /** The tools, when they run. */
  tools?: Tools;
  /** What the chat core uses of the parts (see ChatPorts). */
  ports: ChatPorts;
  /** http://host:port of the listening server. */
  url: string;
  /** Stops taking requests, lets running turns end within the grace period, closes the database. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * How long the starts after listen wait for the first request to be answered.
 * A client retrying through a restart connects within a few ms of the listen;
 * waiting longer for one that may never come would only delay the bot's
 * polling and the first readiness probe.
 */
const BACKGROUND_GRACE_MS = 100;

/**
 * Starts brainstem on the data dir that the lock holds: the core, then the
 * tools, the watchers and the faces (none started), then listen, then each
 * part's start. A failure before listening closes what it opened.
 */
export async function startService<Bot extends BotFace>(
  config: Config,
  logger: Logger,
  opts: ServiceOptions<Bot>,
): Promise<Service> {
  const started = Date.now();
  const lock = opts.lock ?? lockDataDir(config.dataDir);
  let wired: Wired;
  try {
    wired = await wire(config, logger, opts);
  } catch (err) {
    lock.release();
    throw err;
  }
  const { core, tools, ports, http, parts, port } = wired;
  const url = `http://${hostPort(config.server.host, port)}`;
  // Offered to Claude Code only when the tools run: the CLI waits for its MCP servers at start-up.
  if (tools) core.mcp.url = `${ownUrl(config.server.host, port)}/mcp`;
  // Each start below holds the event loop for milliseconds (execa's load on the first probe, a
  // spawn, the bot's first call); yielding before each lets a request in between.
  await setImmediate();
  // Background readiness probes (/health answers from their last results; stopped by chat.drain).
  core.readiness.start();
  // Old audit rows and delivered notices: now, in small batches between requests, then daily.
  core.retention.start();
  for (const part of parts) {
    await setImmediate();
    part.start?.();
  }
  announce(core, url, Date.now() - started);
  // Once the parts follow switches (spares, notices): a switch a restart cut is finished now.
  void core.switcher.resumeCut();
  // After it: a switch it resumes loads its own model, and the active mode's is not loaded for nothing.
  void core.switcher.loadActive();

  let stopping: Promise<void> | undefined;
  const stop = (graceMs = config.server.shutdownGraceMs) => {
    stopping ??= (async () => {
      // Order matters: stop taking work (bot updates, new requests), let running turns end, then close state.
      // First, before the bot tells a chat how the next start deals with its switch.
      core.switcher.stop();
      const closing = http.close();
      for (const part of parts) {
        await part.stop?.().catch((err) => logger.warn({ err }, 'part failed to stop'));
      }
      core.limits.stop();
      core.creditWatcher.stop();
      await core.chat.drain(graceMs);
      // Warm Claude processes outlive turns; nothing will use them now.
      await Promise.all([...core.brains.values()].map((b) => b.close?.()));
      await closeOutboxRoot(outboxRoot(config.dataDir)).catch((err: unknown) =>
        logger.warn({ err: (err as Error).message }, 'the outbox folder stays unlistable'),
      );
      if (!(await waitAtMost(closing, 2000))) {
        logger.warn('HTTP connections still open 2 s into the stop; stopping without waiting for them');
      }
      // Writes kept while another process held the database: a last try, or the log says what is lost.
      core.kept.stop();
      core.retention.stop();
      closeDb(core.db, logger);
      lock.release();
    })();
    return stopping;
  };
  return { core, tools, ports, url, stop };
}

interface Wired {
  core: Core;
  tools: Tools | undefined;
  ports: ChatPorts;
  http: HttpFace;
  /** In the order they start and stop. */
  parts: Part[];
  port: number;
}

/** The core, the parts and the faces built, the server listening; no part started yet. */
async function wire<Bot extends BotFace>(
  config: Config,
  logger: Logger,
  opts: ServiceOptions<Bot>,
): Promise<Wired> {
  const choice = opts.parts ?? {};
  // Filled in below as the tools and the bot are built; the chat reads it on every turn.
  const ports: ChatPorts = {};
  const core = createCore(config, logger, packageVersion(), ports);
  let http: HttpFace | undefined;
  try {
    const parts: Part[] = [];
    const tools = choice.tools ? buildTools(core) : undefined;
    if (tools) {
      ports.answerer = tools.answerer;
      ports.shortcutWords = () =>
        tools.shortcuts
          .list()
          .map((s) => s.word)
          .filter((word) => tools.resolveShortcut(word)?.refusal === undefined);
      ports.toolbox = tools.toolbox;
      parts.push(tools);
    }
    const credentials = choice.credentials ? credentialsPart(core) : undefined;
    if (credentials) parts.push(credentials);
    if (choice.brainMonitor) {
      parts.push(brainMonitorPart(core, choice.brainMonitor === true ? {} : choice.brainMonitor));
    }
    if (choice.claudeSpares) parts.push(sparesPart(core));
    if (choice.idleMemory) {
      parts.push(idleMemoryPart(logger, choice.idleMemory === true ? {} : choice.idleMemory));
    }
    const attach = (bot: Bot | undefined) => {
      if (!bot) return;
      // Turns from the OpenAI endpoint (OpenClaw included) have no chat of their own: the bot asks.
      ports.approver = bot.approver;
      parts.push({
        start: () => bot.start?.(),
        stop: async () => {
          // Nobody can answer a question once the bot stops polling.
          ports.approver = undefined;
          await bot.stop?.();
        },
      });
    };
    // A bot with the Bot API front brings HTTP routes, which must exist before listen. Any
    // other bot is built once the server listens: the first request does not wait for grammY
    // and its plugins to load (~55 ms of a start).
    const botFirst = choice.bot === true && config.telegram.front.enabled;
    const early = botFirst ? await opts.faces.bot(core, tools) : undefined;
    attach(early);
    let late: Promise<Bot | undefined> | undefined;
    if (choice.bot && !botFirst) {
      // A turn that starts while the bot is built asks it once it is there (Claude asks for
      // approval seconds into a turn, long after the bot is up).
      ports.approver = async (req, signal) => {
        logger.info(
          { sessionKey: req.sessionKey, tool: req.tool },
          'approval waits for the Telegram bot to start',
        );
        const bot = await late;
        if (bot?.approver) return bot.approver(req, signal);
        return { behavior: 'deny', message: 'tool approvals are not available: no Telegram chat to ask' };
      };
    }
    http = await opts.faces.http(core, tools, early);
    const port = await http.listen();
    // The server answers from here on. What follows (the bot's modules here, then each part's
    // start) holds the event loop for milliseconds: the request that came with the listen is
    // answered first, and with none it all waits at most BACKGROUND_GRACE_MS.
    await waitAtMost(http.firstAnswered, BACKGROUND_GRACE_MS);
    if (choice.bot && !botFirst) {
      late = opts.faces.bot(core, tools);
      const bot = await late;
      // No bot (no token): no approver, the turns' own or none.
      ports.approver = undefined;
      attach(bot);
    }
    return { core, tools, ports, http, parts, port };
  } catch (err) {
    await http?.close();
    core.limits.stop();
    core.kept.stop();
    core.db.close();
    throw err;
  }
}

/**
 * Keeps spares for the active mode from the start (parts start once the MCP
 * endpoint is known: a spare's argv must be what a conversation's would be)
 * and follows switches and readiness: a spare of a mode left behind, or of a
 * brain that cannot answer (not logged in), would only hold memory.
 */
function sparesPart(core: Core): Part {
  const follow = (o: SwitchOutcome) => {
    if (o.ok) core.claudeSpares.serve(o.to);
  };
  const readiness = (modeId: string, r: Readiness) => core.claudeSpares.brainReady(modeId, r.ok);
  return {
    start: () => {
      core.switcher.on('switched', follow);
      core.readiness.on('changed', readiness);
      // What the first probes already said, before this part started.
      for (const { id } of core.modes.all) {
        const known = core.readiness.known(id).result;
        if (known) readiness(id, known);
      }
      core.claudeSpares.serve(core.switcher.active().id);
    },
    stop: async () => {
      core.switcher.off('switched', follow);
      core.readiness.off('changed', readiness);
      await core.claudeSpares.stop();
    },
  };
}

/**
 * Watches CLAUDE_CREDENTIALS_FILE when some mode runs on Claude and the CLI uses that file, and the
 * credentials file of each mode's own CLAUDE_CONFIG_DIR (`modes.<id>.env`), told apart in notices.
 */
function credentialsPart(core: Core): Part | undefined {
  if (!core.modes.all.some((m) => m.kind === 'claude')) return undefined;
  const watcher = (file: string, scope?: CredentialsWatcherOptions['scope']) =>
    new CredentialsWatcher({
      file,
      configDir: sharedConfigDir(core.config.claude.env),
      kv: core.kv,
      notifier: core.notifier,
      logger: core.logger.child({ part: 'credentials', ...(scope ? { of: scope.key } : {}) }),
      warnBeforeMs: core.config.credentials.warnBeforeMinutes * 60_000,
      pollIntervalMs: core.config.credentials.pollIntervalMs,
      ...(scope ? { scope } : {}),
    });
  // The modes' own logins, found once the server listens (start): their ids are digests, and
  // node:crypto is not loaded before (scripts/build.ts, LAZY_BUILTINS).
  const ownWatchers = () =>
    ownSources(core.modes.all, core.config.claude.env).flatMap(({ source, modes }) => {
      if (!source.file) return [];
      const list = modes.join(', ');
      return [
        watcher(source.file, {
          key: source.id,
          where: {
            en: `own login of mode${modes.length > 1 ? 's' : ''} ${list}: ${source.where.en}`,
            fr: `identifiants propres ${modes.length > 1 ? 'des modes' : 'du mode'} ${list} : ${source.where.fr}`,
          },
        }),
      ];
    });
  // A token in the CLI's environment is what it uses: the file's expiry (an old /login's) is not news.
  const fromEnv = credentialsFromEnv(core.config.claude.env);
  let watchers: CredentialsWatcher[] = [];
  return {
    start: () => {
      watchers = [...(fromEnv ? [] : [watcher(core.config.claude.credentialsFile)]), ...ownWatchers()];
      // Said once the server listens, like every part's start: a second instance that cannot listen says nothing.
      if (fromEnv)
        core.logger.info(
          { variable: fromEnv },
          `Claude Code gets its credentials from ${fromEnv}: the credentials file is not watched`,
        );
      for (const w of watchers) w.start();
    },
    stop: async () => {
      for (const w of watchers) w.stop();
    },
  };
}

/** Says what runs, what is off and how to turn it on; never the token itself. */
function announce(core: Core, url: string, ms: number): void {
  const { config, logger, apiToken } = core;
  logger.info(
    {
      url,
      activeMode: core.switcher.active().id,
      modes: core.modes.ids(),
      dataDir: config.dataDir,
      config: config.configFileFound ? config.configPath : `${config.configPath} (absent: built-in defaults)`,
      startupMs: ms,
    },
    `brainstem ${core.version} listening on ${url} (OpenAI endpoint ${url}/v1)`,
  );
  // No colon after "token": the log scrubber takes `token: …` for a secret and hides the rest of the line.
  logger.info(
    apiToken.source === 'env'
      ? 'API token from BRAINSTEM_API_TOKEN'
      : apiToken.source === 'config'
        ? `API token set by server.apiToken in ${config.configPath}`
        : `API token ${apiToken.source === 'generated' ? 'generated in' : 'read from'} ${apiToken.file} (set BRAINSTEM_API_TOKEN to choose one)`,
  );
  if (apiToken.replaced) {
    logger.warn(
      `the API token file ${apiToken.file} was replaced by a generated one: ${apiToken.replaced}; clients holding the old one get 401 (choose one with BRAINSTEM_API_TOKEN: at least 16 visible ASCII characters, no spaces)`,
    );
  }
  if (!isLoopback(config.server.host)) {
    logger.warn(
      `listening on ${config.server.host}, not loopback: every client on that network can reach the Bearer-protected API and its tools; set BRAINSTEM_HOST=127.0.0.1 unless you mean it (clients must name this address as their Host, or a name listed in server.allowedHosts)`,
    );
  }
  if (!config.telegram.token) logger.info('Telegram bot: off (set TELEGRAM_BOT_TOKEN to turn it on)');
  else if (config.telegram.allowedUsers.length === 0) {
    logger.warn(
      `Telegram bot: on, but its allow-list is empty, so it refuses everybody: ${emptyAllowListAdvice(config.configPath)}`,
    );
  }
  // With the front on, voice notes are OpenClaw's (its channel transcribes them, if set up to): this section is unread.
  if (config.telegram.token && config.telegram.front.enabled && config.transcription) {
    logger.warn(
      "transcription is set, but the Bot API front is on: voice messages go to OpenClaw's channel as they came, and brainstem transcribes none (set up OpenClaw's own audio transcription, or turn telegram.front.enabled off)",
    );
  }
  if (config.telegram.token && !config.telegram.front.enabled) {
    logger.info(
      "Bot API front for OpenClaw: off, Telegram messages go straight to the active brain (telegram.front.enabled: true lets OpenClaw's own Telegram channel poll brainstem)",
    );
  }
}
