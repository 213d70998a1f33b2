import type { FastifyReply } from 'fastify';

/**
 * Aborted when the client goes away before its answer is complete, so that a
 * brain, a command (and the processes it started) or an upstream call does not
 * go on working for nobody. A finished answer closes the connection too, and
 * aborts nothing.
 */
export function callerGone(reply: FastifyReply): AbortSignal {
  const gone = new AbortController();
  reply.raw.on('close', () => {
    if (!reply.raw.writableFinished) gone.abort();
  });
  return gone.signal;
}

/** Runs a tool's `afterDelivery` (self_upgrade's restart) once its answer has left, or at once if the client is gone. */
export function afterDelivery(reply: FastifyReply, after: (() => void) | undefined): void {
  if (!after) return;
  if (reply.raw.closed) after();
  else reply.raw.once('close', after);
}
