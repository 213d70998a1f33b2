import type { FastifyInstance } from 'fastify';
import type { Core } from '../../src/core.js';

/**
 * Liveness plus every brain's readiness; no auth, and nothing secret in it.
 * It answers from the last known readiness (refreshed in the background), so
 * it never waits for a probe, whatever is running.
 */
export function registerHealth(app: FastifyInstance, core: Core): void {
  app.get('/health', { config: { auth: 'public' } }, async (_request, reply) => {
    const lines = core.chat.knownStatus();
    const active = lines.find((l) => l.active);
    return reply.status(200).send({
      status: 'ok',
      version: core.version,
      uptimeMs: Date.now() - core.startedAt,
      activeMode: core.switcher.active().id,
      switching: core.switcher.isSwitching(),
      activeReady: active?.ready ?? false,
      brains: Object.fromEntries(
        lines.map((l) => [
          l.mode.id,
          {
            kind: l.mode.kind,
            ready: l.ready,
            detail: l.detail,
            active: l.active,
            checkedAt: l.checkedAt === undefined ? null : new Date(l.checkedAt).toISOString(),
            checking: l.checking,
          },
        ]),
      ),
    });
  });
}
