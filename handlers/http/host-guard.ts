import type { FastifyInstance } from 'fastify';
import { BrainstemError } from '../../src/errors.js';

/** `name`, `1.2.3.4` or `[::1]`, with an optional port; anything else (userinfo, paths, spaces) is refused. */
const HOST = /^(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(?::(\d{1,5}))?$/;

const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '[::1]'];

/** What a request may name as its Host: the loopback names and the bind address on the listening port, and configured names on any port (a reverse proxy's). */
export interface HostPolicy {
  bindHost: string;
  allowedHosts: string[];
}

/**
 * Refuses what a web page could make a browser send: a Host that is not ours
 * (DNS rebinding points a foreign name at 127.0.0.1) and, on anything but GET
 * and HEAD, an Origin that is not ours (a cross-site form or fetch needs no
 * preflight). Clients that are not browsers (the openai SDK, curl) send
 * `Host: 127.0.0.1:<port>` and no Origin, and pass. Runs before auth and
 * before any body is read.
 */
export function installHostGuard(app: FastifyInstance, policy: HostPolicy): void {
  const bind = policy.bindHost.includes(':') ? `[${policy.bindHost}]` : policy.bindHost;
  const local = new Set([...LOOPBACK_NAMES, bind.toLowerCase()]);
  const named = new Set(policy.allowedHosts.map((h) => h.toLowerCase()));
  const allowed = (host: string, defaultPort: number, listening: number): boolean => {
    const m = HOST.exec(host.toLowerCase());
    if (!m?.[1]) return false;
    if (named.has(m[1])) return true;
    return local.has(m[1]) && Number(m[2] ?? defaultPort) === listening;
  };

  app.addHook('onRequest', async (request) => {
    const listening = request.socket.localPort ?? 0;
    const host = request.headers.host ?? '';
    if (!allowed(host, 80, listening)) {
      request.log.warn({ host, ip: request.ip }, 'refused: foreign Host');
      throw new BrainstemError(
        'FORBIDDEN_HOST',
        // No "DNS" in it: OpenClaw takes a provider error that says so for a failed lookup and benches the key.
        `Host "${host}" is not one brainstem answers to (its Host-header guard, against rebinding attacks). Use 127.0.0.1:${listening} or localhost:${listening}, or add the name to server.allowedHosts in brainstem.json.`,
      );
    }
    const origin = request.headers.origin;
    if (origin === undefined || request.method === 'GET' || request.method === 'HEAD') return;
    if (!sameSite(origin, (h, port) => allowed(h, port, listening))) {
      request.log.warn({ origin, ip: request.ip }, 'refused: cross-site Origin');
      throw new BrainstemError(
        'FORBIDDEN_ORIGIN',
        `A request from a page at ${origin} may not change anything here (cross-site guard). Browsers' pages must come from an allowed host (server.allowedHosts); other clients send no Origin.`,
      );
    }
  });
}

/** Whether an Origin header (`scheme://host[:port]`, or `null` from sandboxed pages) names an allowed host. */
function sameSite(origin: string, allowed: (host: string, defaultPort: number) => boolean): boolean {
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return false;
  return allowed(url.host, url.protocol === 'https:' ? 443 : 80);
}
