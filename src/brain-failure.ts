import type { BrainError } from '../brains/types.js';
import { BrainstemError, type ErrorCode, retryAfter } from './errors.js';

/** The error a brain's failure is answered with, wherever it is answered: the OpenAI endpoint, a brain tool (/api, /mcp). */
export function brainErrorCode(e: BrainError): ErrorCode {
  switch (e.kind) {
    case 'auth':
      return 'BRAIN_AUTH';
    case 'usage_limit':
    case 'rate_limit':
      return 'BRAIN_LIMIT';
    case 'upstream_down':
      return 'BRAIN_DOWN';
    case 'unavailable':
      return 'BRAIN_UNAVAILABLE';
    case 'bad_request':
      return 'INVALID_REQUEST';
    case 'context_overflow':
      return 'CONTEXT_LENGTH_EXCEEDED';
    case 'shutting_down':
      return 'SHUTTING_DOWN';
    default:
      return 'BRAIN_ERROR';
  }
}

/**
 * A brain's failure as the HTTP error it is answered with, with the Retry-After it calls for when
 * the wait is known: the brain's (an upstream's own header, a model loading), else the time to the
 * reset it reported. None otherwise: a made-up wait would have clients sleep for nothing or retry
 * into the same refusal, while without one they back off as they do for any such status.
 */
export function brainFailure(e: BrainError, now = Date.now()): BrainstemError {
  const err = new BrainstemError(brainErrorCode(e), e.message, e.param);
  // A refused login is refused again until someone renews it: a 5xx the SDKs would send twice more.
  if (e.noRetry || e.kind === 'auth') err.noRetry = true;
  const waitMs = e.retryAfterMs ?? (e.resetsAt === undefined ? undefined : e.resetsAt - now);
  return waitMs !== undefined && RETRIED.has(err.status) ? retryAfter(err, waitMs, now) : err;
}

/** Statuses a client retries, and so reads a Retry-After on (a 4xx other than 429 is not sent again). */
const RETRIED = new Set([429, 503]);
