import type { FastifyReply, FastifyRequest } from 'fastify';

/**
 * Lets a client read the 413 for a body over the limit. fastify answers it
 * before reading the body, with `Connection: close`; Node then closes the
 * socket with the rest of the body unread, the kernel answers the bytes still
 * coming with a reset, and a client still sending (the openai SDK, Node's
 * fetch) gets EPIPE instead of the 413, which the reset also wipes from its
 * receive buffer. Without that header Node reads and drops the rest of the
 * body once the 413 is out (as for any answer given before its body was read)
 * and the connection lives on, for as long as cutUnreadBody allows.
 */
export function lingerOnTooLarge(reply: FastifyReply): void {
  reply.removeHeader('connection');
}

/**
 * After an answer given before its request's body had all come (a refusal: no
 * token, a foreign Host, a body over the limit), Node reads and drops the rest
 * for as long as it comes: a client sending a byte now and then would hold the
 * connection forever, token or not. The rest may come for `waitMs`, time
 * enough to send a real body whose answer came early; then the connection is cut.
 */
export function cutUnreadBody(request: FastifyRequest, waitMs: number): void {
  const req = request.raw;
  if (req.complete) return;
  const timer = setTimeout(() => {
    request.log.warn(
      { ip: request.ip, waitMs },
      'cut a connection: its request was answered, and its body still coming after server.bodyAfterAnswerMs',
    );
    req.socket.destroy();
  }, waitMs);
  timer.unref();
  const done = () => clearTimeout(timer);
  req.once('end', done);
  req.once('close', done);
}
