import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough, type Readable } from 'node:stream';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { installJsonParser } from '../handlers/http/json-body.js';

/**
 * brainstem's JSON body parser frees each chunk of a body once it has copied
 * it (on Node 24, where an ArrayBuffer can be freed at once). A chunk someone
 * else was also handed must stay whole: one a second listener of the request
 * saw, or one that came through a stream a hook put in the request's place.
 * On Node 20 nothing is freed and these pass either way; CI runs both.
 */

/** A body of some 200 chunks, with a string long enough to be lifted out of the JSON text. */
const BODY = Buffer.from(
  JSON.stringify({ note: 'short', image: `data:image/png;base64,${'QUJD'.repeat(3_000_000)}`, n: 7 }),
);

let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

/** A server with the parser, `hook` installed, and a route that tells what it parsed. */
async function serve(hook: (app: FastifyInstance) => void): Promise<number> {
  app = Fastify({ bodyLimit: 32 * 1024 * 1024 });
  installJsonParser(app);
  hook(app);
  app.post('/echo', async (req) => {
    const body = req.body as { note: string; image: string; n: number };
    return { note: body.note, imageLength: body.image.length, imageTail: body.image.slice(-8), n: body.n };
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  return (app.server.address() as AddressInfo).port;
}

/** POSTs BODY in one write (node:http cuts it into the chunks the server reads); the parsed answer. */
function post(port: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/echo',
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': BODY.length },
      },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('end', () => resolve(JSON.parse(Buffer.concat(parts).toString('utf8'))));
      },
    );
    req.on('error', reject);
    req.end(BODY);
  });
}

const PARSED = { note: 'short', imageLength: 22 + 12_000_000, imageTail: 'QUJDQUJD', n: 7 };

describe('JSON body chunks freed once copied', () => {
  it('a second listener of the request keeps every chunk it was handed whole', async () => {
    const seen: Buffer[] = [];
    const port = await serve((a) =>
      a.addHook('onRequest', async (req) => {
        // Paused first, so this listener does not start the flow before the parser listens too.
        req.raw.pause();
        req.raw.on('data', (c: Buffer) => seen.push(c));
      }),
    );
    expect(await post(port)).toEqual(PARSED);
    expect(seen.length).toBeGreaterThan(10);
    expect(Buffer.concat(seen).equals(BODY)).toBe(true);
  });

  it('a hook that passes the body on through a stream of its own keeps the chunks it saw whole', async () => {
    const seen: Buffer[] = [];
    const port = await serve((a) =>
      a.addHook('preParsing', async (_req, _reply, payload) => {
        (payload as Readable).on('data', (c: Buffer) => seen.push(c));
        return (payload as Readable).pipe(new PassThrough());
      }),
    );
    expect(await post(port)).toEqual(PARSED);
    expect(seen.length).toBeGreaterThan(10);
    expect(Buffer.concat(seen).equals(BODY)).toBe(true);
  });

  it('a body the parser alone reads parses whole, again on the same server', async () => {
    const port = await serve(() => {});
    expect(await post(port)).toEqual(PARSED);
    expect(await post(port)).toEqual(PARSED);
  });
});
