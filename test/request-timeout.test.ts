/**
 * keepWhileFlowing (handlers/http/request-timeout.ts) holds a connection on an idle timer of its
 * own while an upload's body comes, and gives the socket's timer back when the body is in. When the
 * answer went out before the body was in (the front refusing an upload at once, Telegram's early
 * 413), Node has already set the connection's keep-alive timeout by then: giving the timer back
 * must not clear it, or the idle kept-alive connection is never closed by the server.
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { keepWhileFlowing } from '../handlers/http/request-timeout.js';

const servers: ReturnType<typeof createServer>[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((resolve) => s.close(resolve));
  }
});

describe('an upload answered before its body is in', () => {
  it('leaves the kept-alive connection on its keep-alive timeout once the body has come', async () => {
    const requests: IncomingMessage[] = [];
    const server = createServer({ requestTimeout: 60_000 }, (req, res) => {
      requests.push(req);
      keepWhileFlowing(req, res, 60_000, () => {});
      res.writeHead(429, { 'content-length': '2' }).end('no');
    });
    servers.push(server);
    server.keepAliveTimeout = 5000;
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const socket = connect((server.address() as AddressInfo).port, '127.0.0.1');
    await once(socket, 'connect');
    socket.write('POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n12345');
    // The answer came: the rest of the body follows it.
    await once(socket, 'data');
    socket.write('67890');
    const [req] = requests;
    if (!req) throw new Error('no request');
    if (!req.destroyed) await once(req, 'close');
    await new Promise((resolve) => setImmediate(resolve));
    expect((req.socket as unknown as { timeout?: number }).timeout).toBeGreaterThanOrEqual(
      server.keepAliveTimeout,
    );
    socket.destroy();
  });
});
