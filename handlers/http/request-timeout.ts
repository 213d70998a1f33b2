import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/**
 * Node's whole-request timeout (`server.requestTimeoutMs`) bounds how long a
 * request's headers and body take to arrive, token or not, so nobody holds a
 * connection by sending a byte now and then. A body a route has let in (its
 * credential checked) and streams on as it comes arrives only as fast as the
 * far end takes it: a 50 MB file OpenClaw sends through the Bot API front
 * goes at the speed of the uplink to Telegram (7 minutes at 1 Mbit/s), and
 * cutting it at the deadline would fail an upload that was progressing.
 *
 * Such a request is marked here. When the deadline comes (Node hands the
 * timeout to the server's clientError handler, which decides whether to cut),
 * it is kept while its body keeps coming: it is cut only once nothing came
 * for `idleMs`. The mark ends with the body.
 */
const flowing = new WeakMap<Socket, IncomingMessage>();

export function keepWhileFlowing(
  req: IncomingMessage,
  res: ServerResponse,
  idleMs: number,
  onIdle: () => void,
): void {
  if (req.complete || req.destroyed) return;
  const socket = req.socket;
  flowing.set(socket, req);
  // Any byte read resets the socket's idle timer (Node's parser does so even on a consumed socket).
  const idle = () => {
    onIdle();
    socket.destroy();
  };
  req.setTimeout(idleMs, idle);
  const done = () => {
    if (flowing.get(socket) === req) flowing.delete(socket);
    req.off('timeout', idle);
    // The body is in: the socket's idle timer is Node's again (keep-alive sets its own after the
    // answer). An answer already sent (an upload refused before its body was in) has set it: kept.
    if (!socket.destroyed && !res.writableFinished) socket.setTimeout(0);
  };
  req.once('end', done);
  req.once('close', done);
}

/** Whether a request past the whole-request deadline on this socket is one kept while its body flows. */
export function outlivesRequestTimeout(socket: Socket): boolean {
  const req = flowing.get(socket);
  return req !== undefined && !req.complete && !req.destroyed && !socket.destroyed;
}
