import type { FastifyInstance } from 'fastify';
import { bearer, tokenMatches } from '../../src/api-token.js';
import type { Core } from '../../src/core.js';

/**
 * Liveness plus every brain's readiness; no auth, and nothing secret in it.
 * It answers from the last known readiness (refreshed in the background), so
 * it never waits for a probe, whatever is running. Anyone who reaches the port
 * may read it, so why a brain is not ready is a word (unreachable, not signed
 * in…); the upstream's own text (llama-server's error, `claude auth status`'s
 * stderr, the upstream's address) is shown only to a caller with the API token.
 */
export function registerHealth(app: FastifyInstance, core: Core): void {
  app.get('/health', { config: { auth: 'public' } }, async (request, reply) => {
    const owner = tokenMatches(core.apiToken.token, bearer(request.headers.authorization));
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
            detail: owner ? l.detail.en : l.summary,
            active: l.active,
            checkedAt: l.checkedAt === undefined ? null : new Date(l.checkedAt).toISOString(),
            checking: l.checking,
          },
        ]),
      ),
    });
  });
}
