import type { FastifyInstance } from 'fastify';
import { bearer, tokenMatches } from '../../src/api-token.js';
import { BrainstemError } from '../../src/errors.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * 'public': no credential at all, for a route with nothing secret (/health).
     * 'own': the route checks a credential of its own before anything else
     * (the Telegram front: the bot token in its path). Absent: the API token.
     */
    auth?: 'public' | 'own';
  }
}

/**
 * Bearer auth decided on the route the router matched, never on the raw URL
 * (which may be percent-encoded, carry a fragment or be in absolute form):
 * every route needs the token unless it is marked `config: { auth: 'public' | 'own' }`,
 * and so does an unknown path, so nothing is learnt without the token.
 * Runs on onRequest, before a body is read.
 */
export function installAuth(app: FastifyInstance, token: string): void {
  app.addHook('onRequest', async (request, reply) => {
    const auth = request.routeOptions.url !== undefined ? request.routeOptions.config.auth : undefined;
    if (auth === 'public' || auth === 'own') return;
    const given = bearer(request.headers.authorization);
    if (!tokenMatches(token, given)) {
      request.log.warn(
        { route: request.routeOptions.url ?? '(none)', ip: request.ip },
        'refused: missing or wrong token',
      );
      reply.header('www-authenticate', bearerChallenge(given !== undefined));
      throw new BrainstemError('UNAUTHORIZED');
    }
  });
}

/**
 * The challenge of a 401, as RFC 6750 §3 asks of every one: the scheme, and `invalid_token` when a
 * token came and is not this one (none without a token: the client did not try). MCP clients read
 * it to tell "send a token" from a server that failed.
 */
function bearerChallenge(tokenGiven: boolean): string {
  return `Bearer realm="brainstem"${tokenGiven ? ', error="invalid_token"' : ''}`;
}
