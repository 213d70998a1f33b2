import type { IncomingMessage } from 'node:http';
import type { Transform } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import { apiError, type BotApiAnswer } from './bot-api.js';

/**
 * A call's body as the front reads it (a local method's parameters, a text it
 * may rewrite): whole, at most `limit` bytes once decoded, and decoded from
 * the Content-Encoding a client may send (gzip, deflate, br), as the real Bot
 * API decodes it. The limit counts decoded bytes, so a small compressed body
 * cannot unfold into a large one here.
 */
export async function readCallBody(
  req: IncomingMessage,
  limit: number,
): Promise<{ ok: true; bytes: Buffer } | { ok: false; answer: BotApiAnswer }> {
  const encoding = String(req.headers['content-encoding'] || 'identity')
    .trim()
    .toLowerCase();
  if (!Object.hasOwn(DECODERS, encoding)) {
    return { ok: false, answer: apiError(415, `Unsupported Media Type: Content-Encoding ${encoding}`) };
  }
  const decoder = DECODERS[encoding]?.();
  let cut = false;
  if (decoder) {
    // Piped by hand, not with pipeline: over the limit, the decoder alone is destroyed, and the
    // request stays open for the answer. A request cut short fails the decoder too.
    req.pipe(decoder);
    req.once('close', () => {
      if (req.complete) return;
      cut = true;
      decoder.destroy(new Error('the request was cut short'));
    });
  }
  // Leaving the loop early (over the limit) must not destroy the request: the answer goes on it.
  const source: AsyncIterable<unknown> = decoder ?? req.iterator({ destroyOnReturn: false });
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of source) {
      size += (chunk as Buffer).length;
      if (size > limit) {
        dropRest(req, decoder);
        return { ok: false, answer: apiError(413, 'Request Entity Too Large') };
      }
      chunks.push(chunk as Buffer);
    }
  } catch (err) {
    // A decoder's failure is the body's; a request cut short (the client gone) is the caller's to see.
    if (!decoder || cut) throw err;
    dropRest(req, decoder);
    return { ok: false, answer: apiError(400, `Bad Request: the body is not valid ${encoding}`) };
  }
  return { ok: true, bytes: Buffer.concat(chunks) };
}

/**
 * A body refused before its end: the rest is read and dropped, so the client, still sending,
 * gets the answer (the server's cutUnreadBody bounds how long), instead of a connection reset.
 */
function dropRest(req: IncomingMessage, decoder: Transform | undefined): void {
  if (decoder) req.unpipe(decoder);
  req.resume();
}

/** The Content-Encodings taken, and what decodes each (`undefined`: the body is as it came). */
const DECODERS: Record<string, (() => Transform) | undefined> = {
  identity: undefined,
  gzip: createGunzip,
  'x-gzip': createGunzip,
  deflate: createInflate,
  br: createBrotliDecompress,
};
