/**
 * What the configured bind address (`server.host`) means for who reaches
 * brainstem, and where its own children reach it.
 */

/** Addresses only this machine reaches: the default, and the only bind that needs no warning. */
export function isLoopback(host: string): boolean {
  return /^(127\.\d+\.\d+\.\d+|::1|localhost)$/.test(unbracketed(host));
}

/** `host:port` as a URL writes it (an IPv6 address in brackets). */
export function hostPort(host: string, port: number): string {
  const bare = unbracketed(host);
  return `${bare.includes(':') ? `[${bare}]` : bare}:${port}`;
}

/**
 * Where brainstem's own children on this machine (Claude Code's MCP client)
 * reach it: on loopback when it listens on every address (`0.0.0.0`, `::`),
 * else on the address it listens on. A LAN address is reached there and only
 * there: 127.0.0.1 would find nothing listening.
 */
export function ownUrl(host: string, port: number): string {
  const bare = unbracketed(host);
  return `http://${hostPort(bare === '0.0.0.0' || bare === '::' ? '127.0.0.1' : bare, port)}`;
}

const unbracketed = (host: string) => host.replace(/^\[(.*)\]$/, '$1');
