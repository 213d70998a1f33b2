import type { FastifyInstance } from 'fastify';
import { buildServer, type RouteSet } from '../handlers/http/server.js';
import type { Config } from './config.js';
import { type Core, createCore } from './core.js';
import { type InstanceLock, lockDataDir } from './instance-lock.js';
import type { Logger } from './logger.js';
import { packageVersion } from './version.js';

export interface Service {
  core: Core;
  app: FastifyInstance;
  /** http://host:port of the listening server. */
  url: string;
  /** Stops taking requests, lets running turns end within the grace period, closes the database. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Optional parts of the service (Telegram bot, tools, MCP). A part is built
 * before the server listens, since fastify takes routes only until then, and
 * does nothing outside yet: `start` (polling, watchers, notices) runs once the
 * server listens, so an instance that cannot listen starts nothing.
 */
export type Part = (
  core: Core,
) => Promise<{ routes?: RouteSet; start?: () => void; stop?: () => Promise<void> } | undefined>;

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

/**
 * Starts brainstem on the data dir that `lock` holds; without one, the lock is
 * taken here, before anything else, so a second instance on it touches nothing.
 */
export async function startService(
  config: Config,
  logger: Logger,
  parts: Part[] = [],
  lock: InstanceLock = lockDataDir(config.dataDir),
): Promise<Service> {
  const started = Date.now();
  let listening: Listening;
  try {
    listening = await listen(config, logger, parts);
  } catch (err) {
    lock.release();
    throw err;
  }
  const { core, app, starts, stops } = listening;
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.server.port;
  const host = config.server.host.includes(':') ? `[${config.server.host}]` : config.server.host;
  const url = `http://${host}:${port}`;
  // Offered to Claude Code only when the MCP part is wired: the CLI waits for its MCP servers at start-up.
  if (app.hasRoute({ method: 'POST', url: '/mcp' })) {
    core.mcp.url = `http://${LOOPBACK.test(config.server.host) ? host : '127.0.0.1'}:${port}/mcp`;
  }
  // Background readiness probes (/health answers from their last results; stopped by chat.drain).
  core.readiness.start();
  for (const start of starts) start();
  announce(core, url, Date.now() - started);

  let stopping: Promise<void> | undefined;
  const stop = (graceMs = config.server.shutdownGraceMs) => {
    stopping ??= (async () => {
      // Order matters: stop taking work (bot updates, new requests), let running turns end, then close state.
      const closing = app.close();
      for (const s of stops) await s().catch((err) => logger.warn({ err }, 'part failed to stop'));
      core.limits.stop();
      core.creditWatcher.stop();
      await core.chat.drain(graceMs);
      // Warm Claude processes outlive turns; nothing will use them now.
      await Promise.all([...core.brains.values()].map((b) => b.close?.()));
      await Promise.race([closing, new Promise((r) => setTimeout(r, 2000))]);
      core.db.pragma('wal_checkpoint(TRUNCATE)');
      core.db.close();
      lock.release();
    })();
    return stopping;
  };
  return { core, app, url, stop };
}

interface Listening {
  core: Core;
  app: FastifyInstance;
  starts: (() => void)[];
  stops: (() => Promise<void>)[];
}

/** The core, the parts built and their routes served; no part started yet. A failure closes what it opened. */
async function listen(config: Config, logger: Logger, parts: Part[]): Promise<Listening> {
  const core = createCore(config, logger, packageVersion());
  let app: FastifyInstance | undefined;
  try {
    const starts: (() => void)[] = [];
    const stops: (() => Promise<void>)[] = [];
    const routes: RouteSet[] = [];
    for (const part of parts) {
      const p = await part(core);
      if (p?.routes) routes.push(p.routes);
      if (p?.start) starts.push(p.start);
      if (p?.stop) stops.push(p.stop);
    }
    app = await buildServer(core, routes);
    await app.listen({ host: config.server.host, port: config.server.port });
    return { core, app, starts, stops };
  } catch (err) {
    await app?.close();
    core.limits.stop();
    core.db.close();
    throw err;
  }
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
  logger.info(
    apiToken.source === 'env'
      ? 'API token: from BRAINSTEM_API_TOKEN'
      : `API token: ${apiToken.source === 'generated' ? 'generated' : 'read from'} ${apiToken.file} (set BRAINSTEM_API_TOKEN to choose one)`,
  );
  if (!LOOPBACK.test(config.server.host)) {
    logger.warn(
      `listening on ${config.server.host}, not loopback: every client on that network can reach the Bearer-protected API and its tools; set BRAINSTEM_HOST=127.0.0.1 unless you mean it (clients must name this address as their Host, or a name listed in server.allowedHosts)`,
    );
  }
  if (!config.telegram.token) logger.info('Telegram bot: off (set TELEGRAM_BOT_TOKEN to turn it on)');
  else if (config.telegram.allowedUsers.length === 0) {
    logger.warn('Telegram bot: on, but TELEGRAM_ALLOWED_USERS is empty, so it will refuse everybody');
  }
  if (config.telegram.token && !config.telegram.front.enabled) {
    logger.info(
      "Bot API front for OpenClaw: off, Telegram messages go straight to the active brain (telegram.front.enabled: true lets OpenClaw's own Telegram channel poll brainstem)",
    );
  }
}
