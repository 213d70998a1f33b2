import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import type { Core } from '../../src/core.js';
import { redactBotPaths } from '../telegram-front/bot-api.js';
import { installAuth } from './auth.js';
import { installErrorHandler } from './errors.js';
import { registerHealth } from './health.js';
import { installHostGuard } from './host-guard.js';
import { installJsonParser } from './json-body.js';
import { registerOpenAi } from './openai.js';
import { registerUsageChart } from './usage-chart.js';

/** Extra route sets registered by other parts (tools API, MCP), kept out of the core wiring. */
export type RouteSet = (app: FastifyInstance) => void | Promise<void>;

export async function buildServer(core: Core, extra: RouteSet[] = []): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: core.logger.child({ part: 'http' }) as FastifyBaseLogger,
    bodyLimit: core.config.server.bodyLimitBytes,
    // One line per request, written by the onResponse hook below, instead of fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    forceCloseConnections: 'idle',
    return503OnClosing: true,
  });
  app.addHook('onResponse', async (request, reply) => {
    request.log.info(
      {
        method: request.method,
        url: redactBotPaths(request.url.split('?')[0] ?? ''),
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime),
      },
      'request',
    );
  });
  installErrorHandler(app);
  installJsonParser(app);
  // Order matters: a foreign Host or Origin is refused before the token is even looked at.
  installHostGuard(app, { bindHost: core.config.server.host, allowedHosts: core.config.server.allowedHosts });
  installAuth(app, core.apiToken.token);
  registerHealth(app, core);
  registerOpenAi(app, core);
  registerUsageChart(app, core);
  for (const routes of extra) await routes(app);
  return app;
}
