import type { FastifyInstance } from 'fastify';
import { bearer, tokenMatches } from '../../src/api-token.js';
import { BrainstemError } from '../../src/errors.js';

const PROTECTED = ['/v1/', '/api/', '/api', '/mcp'];

/** Bearer auth on everything but /health: brainstem can run tools, so nothing is open by default. */
export function installAuth(app: FastifyInstance, token: string): void {
  app.addHook('onRequest', async (request) => {
    const path = request.url.split('?')[0] ?? '';
    if (!PROTECTED.some((p) => path === p || path.startsWith(p.endsWith('/') ? p : `${p}/`))) return;
    if (!tokenMatches(token, bearer(request.headers.authorization))) {
      request.log.warn({ path, ip: request.ip }, 'refused: missing or wrong token');
      throw new BrainstemError('UNAUTHORIZED');
    }
  });
}
