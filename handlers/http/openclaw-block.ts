import type { FastifyBaseLogger, FastifyRequest } from 'fastify';
import { CLIENT_HEADER } from './spoken-errors.js';

/** What OpenClaw puts in the last user message of every turn (DESIGN: OpenClaw as a client). */
const OPENCLAW_MARK = '<<<BEGIN_OPENCLAW_INTERNAL_CONTEXT>>>';

/**
 * Says once, in the log, that OpenClaw calls with a provider block written by
 * an older brainstem (`openclaw-config` now adds the `x-brainstem-client`
 * header, each model's `input` and `compat`): with it, OpenClaw re-runs failed
 * turns, keeps photos to itself and sends no session id. Its requests are told
 * by the internal context it adds to the last user message; once said, no
 * request is looked at again.
 */
export function staleOpenClawBlock(logger: FastifyBaseLogger): (request: FastifyRequest) => void {
  let said = false;
  return (request) => {
    if (said || request.headers[CLIENT_HEADER] !== undefined) return;
    const messages = (request.body as { messages?: unknown } | null)?.messages;
    const last = Array.isArray(messages) ? (messages.at(-1) as { content?: unknown } | undefined) : undefined;
    if (!textsOf(last?.content).some((text) => text.includes(OPENCLAW_MARK))) return;
    said = true;
    logger.warn(
      `OpenClaw calls with a provider block from an older brainstem (no ${CLIENT_HEADER} header), so it re-runs failed turns, sends no photos and no session id: run \`npm run openclaw-config -- --apply ~/.openclaw/openclaw.json\` and restart OpenClaw's gateway`,
    );
  };
}

/** The texts of a message's content, a string or parts: image parts (megabytes of base64) are not read. */
function textsOf(content: unknown): string[] {
  if (typeof content === 'string') return [content];
  if (!Array.isArray(content)) return [];
  return content.flatMap((part) => {
    const text = (part as { type?: unknown; text?: unknown } | null)?.text;
    return typeof text === 'string' ? [text] : [];
  });
}
