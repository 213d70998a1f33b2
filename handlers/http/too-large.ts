import type { FastifyReply, FastifyRequest } from 'fastify';

/** How long a client may go on sending a refused body before its connection is cut. */
const LINGER_MS = 30_000;

/**
 * Lets a client read the 413 for a body over the limit. fastify answers it
 * before reading the body, with `Connection: close`; Node then closes the
 * socket with the rest of the body unread, the kernel answers the bytes still
 * coming with a reset, and a client still sending (the openai SDK, Node's
 * fetch) gets EPIPE instead of the 413, which the reset also wipes from its
 * receive buffer. Without that header Node reads and drops the rest of the
 * body once the 413 is out (as for any answer given before its body was read)
 * and the connection lives on; one whose body has not ended LINGER_MS later is cut.
 */
export function lingerOnTooLarge(request: FastifyRequest, reply: FastifyReply): void {
  reply.removeHeader('connection');
  const req = request.raw;
  if (req.complete) return;
  const timer = setTimeout(() => req.socket.destroy(), LINGER_MS);
  timer.unref();
  const done = () => clearTimeout(timer);
  req.once('end', done);
  req.once('close', done);
}
