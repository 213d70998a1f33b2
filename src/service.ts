import type { FastifyInstance } from 'fastify';
import { buildServer, type RouteSet } from '../handlers/http/server.js';
import type { Config } from './config.js';
import { type Core, createCore } from './core.js';
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

/** Optional parts that start with the service (Telegram bot, tools, MCP); each returns how to stop it. */
export type Part = (core: Core) => Promise<{ routes?: RouteSet; stop?: () => Promise<void> } | undefined>;

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

export async function startService(config: Config, logger: Logger, parts: Part[] = []): Promise<Service> {
  const started = Date.now();
  const core = createCore(config, logger, packageVersion());
  const stops: (() => Promise<void>)[] = [];
  const routes: RouteSet[] = [];
  for (const part of parts) {
    const p = await part(core);
    if (p?.routes) routes.push(p.routes);
    if (p?.stop) stops.push(p.stop);
  }
  const app = await buildServer(core, routes);
  await app.listen({ host: config.server.host, port: config.server.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.server.port;
  const host = config.server.host.includes(':') ? `[${config.server.host}]` : config.server.host;
  const url = `http://${host}:${port}`;
  // Offered to Claude Code only when the MCP part is wired: the CLI waits for its MCP servers at start-up.
  if (app.hasRoute({ method: 'POST', url: '/mcp' })) {
    core.mcp.url = `http://${LOOPBACK.test(config.server.host) ? host : '127.0.0.1'}:${port}/mcp`;
  }
  announce(core, url, Date.now() - started);
  void announceBrains(core);

  let stopping: Promise<void> | undefined;
  const stop = (graceMs = config.server.shutdownGraceMs) => {
    stopping ??= (async () => {
      // Order matters: stop taking work (bot updates, new requests), let running turns end, then close state.
      const closing = app.close();
      for (const s of stops) await s().catch((err) => logger.warn({ err }, 'part failed to stop'));
      core.limits.stop();
      await core.chat.drain(graceMs);
      // Warm Claude processes outlive turns; nothing will use them now.
      await Promise.all([...core.brains.values()].map((b) => b.close?.()));
      await Promise.race([closing, new Promise((r) => setTimeout(r, 2000))]);
      core.db.pragma('wal_checkpoint(TRUNCATE)');
      core.db.close();
    })();
    return stopping;
  };
  return { core, app, url, stop };
}

/** Each brain's first readiness probe, after listening so start-up never waits for it. */
async function announceBrains(core: Core): Promise<void> {
  for (const l of await core.chat.statusLines(5000)) {
    const fields = { mode: l.mode.id, kind: l.mode.kind, active: l.active };
    if (l.ready) core.logger.info(fields, `brain ${l.mode.id}: ready (${l.detail})`);
    else core.logger.warn(fields, `brain ${l.mode.id}: not ready: ${l.detail}`);
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
      `listening on ${config.server.host}, not loopback: every client on that network can reach the Bearer-protected API and its tools; set BRAINSTEM_HOST=127.0.0.1 unless you mean it`,
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
