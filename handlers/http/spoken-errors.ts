import type { FastifyReply, FastifyRequest } from 'fastify';
import type { TurnEvent } from '../../brains/types.js';
import { brainErrorCode } from '../../src/brain-failure.js';
import type { ChatEvent } from '../../src/chat/request.js';
import { BrainstemError } from '../../src/errors.js';
import { PROXY_TAG } from '../../src/notices.js';

/** Names the client; `openclaw` (which openclaw-config puts in OpenClaw's provider block) reads errors as answers. */
export const CLIENT_HEADER = 'x-brainstem-client';
/** On an answer that is an error told as text: the error's code (`images_not_taken`), for machines. */
export const ERROR_HEADER = 'x-brainstem-error';

type ToolCallEvent = Extract<TurnEvent, { type: 'tool_call' }>;

/**
 * Whether a chat request's errors are answered as the assistant's words
 * (see spokenErrors) rather than as an HTTP error or an error object mid-stream.
 * OpenClaw asks for it (`x-brainstem-client: openclaw`): it re-sends a turn
 * that failed as a server error, overload, timeout or rate limit up to 8 or 9
 * times (a Claude turn that already worked, and was billed, runs again, its
 * tools too), and it shows its user a text of its own instead of brainstem's,
 * which says what to do. Only for a body that is a JSON object: of anything
 * else no chat completion can be formed. A missing or wrong token (401) and a
 * body over the limit (413) stay HTTP errors: they are answered before the
 * route runs. So does a conversation longer than the model's context (see
 * spokenErrors).
 */
export function speaksErrors(request: FastifyRequest): boolean {
  const client = request.headers[CLIENT_HEADER];
  const body = request.body;
  return (
    typeof client === 'string' &&
    client.trim().toLowerCase() === 'openclaw' &&
    typeof body === 'object' &&
    body !== null &&
    !Array.isArray(body)
  );
}

/**
 * A turn's events with its first error told as the end of the answer: the
 * error's message (what the HTTP error's body would say) as text, then
 * finish_reason "stop". It may be thrown while the turn is set up (a refused
 * request, an unknown model: today's HTTP 4xx/5xx) or be the brain's, before
 * its first word or mid-answer. Its code goes in ERROR_HEADER if the headers
 * have not gone yet, and in the log.
 *
 * A conversation longer than the model's context stays an error: OpenClaw
 * takes that one for an overflow and compacts its history and sends it
 * again, or tells its user to start afresh; read as an answer, every later
 * turn would fail the same way.
 *
 * Tool calls are held until the answer is done. A call the failure cut off
 * never reaches the client, and the answer says so: an answer that ends as
 * "stop" must not carry a call whose arguments are cut (pi-ai, OpenClaw's
 * provider library, completes unfinished JSON: `rm -rf /tmp/build/cache` cut
 * after `/tmp/build` would read as a whole command). OpenClaw 2026.9.6 was seen
 * not to run such a call either way (`npm run openclaw-check`, turn 5b).
 */
export async function* spokenErrors(
  turn: () => AsyncGenerator<ChatEvent>,
  reply: FastifyReply,
): AsyncGenerator<ChatEvent> {
  let said = false;
  let error: BrainstemError | undefined;
  let calls: ToolCallEvent[] = [];
  try {
    for await (const ev of turn()) {
      if (ev.type === 'error') {
        if (ev.error.kind === 'context_overflow') {
          yield ev;
          return;
        }
        error = new BrainstemError(brainErrorCode(ev.error), ev.error.message, ev.error.param);
        break;
      }
      if (ev.type === 'tool_call') {
        calls.push(ev);
        continue;
      }
      if (ev.type === 'done') {
        yield* calls;
        calls = [];
        // pi-ai, OpenClaw's provider library, maps this finish to its stop reason "error" and throws a
        // failure of its own ("An unknown error occurred"): said as the end of the answer instead.
        if (ev.finishReason === 'content_filter') {
          reply.log.info(`content filter answered as text (${CLIENT_HEADER})`);
          if (!reply.raw.headersSent) reply.header(ERROR_HEADER, 'content_filter');
          yield { type: 'text', text: `${said ? '\n\n' : ''}${FILTERED_TEXT}` };
          yield { type: 'done', finishReason: 'stop' };
          continue;
        }
      }
      if (ev.type === 'text' && ev.text) said = true;
      yield ev;
    }
  } catch (err) {
    if (err instanceof BrainstemError) error = err;
    else {
      reply.log.error({ err }, 'unhandled error');
      error = new BrainstemError('INTERNAL');
    }
  }
  if (!error) {
    // Over without a `done` nor a failure: what came is all there is, as without this wrapper.
    yield* calls;
    return;
  }
  const cut = [...new Set(calls.flatMap((c) => (c.name ? [c.name] : [])))];
  reply.log.info(
    { code: error.code, status: error.status, cutCalls: cut.length > 0 ? cut : undefined },
    `error answered as text (${CLIENT_HEADER}): ${error.message}`,
  );
  if (!reply.raw.headersSent) reply.header(ERROR_HEADER, error.code.toLowerCase());
  const notRun = cut.length > 0 ? `\n\n${cutCallsText(cut)}` : '';
  yield { type: 'text', text: `${said ? '\n\n' : ''}${error.message}${notRun}` };
  yield { type: 'done', finishReason: 'stop' };
}

/** An answer a content filter stopped (a local upstream's, Claude's safety classifier), as the end of its words. */
const FILTERED_TEXT = `${PROXY_TAG} A content filter stopped this answer (Claude's safety classifier, or the local model's server); the rest of it was withheld. Rephrase the request, or start a new conversation.`;

/** Says which tool calls a failure cut off, so the user knows nothing was run. */
function cutCallsText(names: string[]): string {
  return `${PROXY_TAG} The model's call of ${names.join(', ')} was cut off by this failure: not run.`;
}
