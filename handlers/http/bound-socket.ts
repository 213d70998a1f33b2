import net from 'node:net';

/**
 * The listening socket bound before fastify listens, on the Node versions that
 * can (`net.BoundSocket`, Node 24.19 and later). Node's `listen` with a host
 * looks the host up first, an IP literal too, and Node 24 then checks each
 * address it got against its IPv6 pattern: that pattern's first use compiles
 * one of the largest regular expressions in Node, 7–8 ms on the main thread,
 * about 2% of a start. A socket bound here skips both; the port and the
 * address are the same, and a port in use fails with the same EADDRINUSE.
 */

/** What this uses of `net.BoundSocket`, typed here: @types/node 20 does not know it. */
type BoundSocketClass = new (options: { host: string; port: number }) => object;

/**
 * A socket bound to `host:port` for `server.listen({ handle })`, or undefined where Node has no
 * BoundSocket or `host` is a name (which only a lookup resolves). Throws what bind(2) refused.
 */
export function boundSocket(host: string, port: number): object | undefined {
  const BoundSocket = (net as { BoundSocket?: BoundSocketClass }).BoundSocket;
  if (!BoundSocket || net.isIP(host) === 0) return undefined;
  return new BoundSocket({ host, port });
}
