import type { IncomingMessage } from 'node:http';
import { pipeline, type Readable, type Transform } from 'node:stream';
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
  const decoder = DECODERS[encoding];
  // pipeline, not pipe: a request cut short ends the decoder too, instead of leaving it waiting.
  const source: Readable = decoder ? pipeline(req, decoder(), () => undefined) : req;
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of source) {
      size += (chunk as Buffer).length;
      if (size > limit) {
        source.destroy();
        return { ok: false, answer: apiError(413, 'Request Entity Too Large') };
      }
      chunks.push(chunk as Buffer);
    }
  } catch (err) {
    // A decoder's failure is the body's; a request cut short (the client gone) is the caller's to see.
    if (source === req || !req.complete) throw err;
    return { ok: false, answer: apiError(400, `Bad Request: the body is not valid ${encoding}`) };
  }
  return { ok: true, bytes: Buffer.concat(chunks) };
}

/** The Content-Encodings taken, and what decodes each (`undefined`: the body is as it came). */
const DECODERS: Record<string, (() => Transform) | undefined> = {
  identity: undefined,
  gzip: createGunzip,
  'x-gzip': createGunzip,
  deflate: createInflate,
  br: createBrotliDecompress,
};
