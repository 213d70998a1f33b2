/**
 * The floor for the front's passthrough figure: the same hop with nothing of
 * brainstem's in it (fastify, a body left unparsed, undici streaming it on), in
 * a process of its own like brainstem. `node --import tsx bench/bare-forwarder.ts <target root>`
 * prints `{"url": …}` once it listens.
 */
import Fastify from 'fastify';
import { Agent, request } from 'undici';

const target = process.argv[2] ?? '';
const upstream = new Agent({ keepAliveTimeout: 60_000 });
const app = Fastify();
app.removeAllContentTypeParsers();
app.addContentTypeParser('*', (_request, _payload, done) => done(null));
app.post('/*', async (req, reply) => {
  const res = await request(`${target}${req.url}`, {
    method: 'POST',
    headers: {
      'content-type': String(req.headers['content-type']),
      'content-length': String(req.headers['content-length']),
    },
    body: req.raw,
    dispatcher: upstream,
  });
  reply.code(res.statusCode).header('content-type', String(res.headers['content-type']));
  return reply.send(res.body);
});
await app.listen({ port: 0, host: '127.0.0.1' });
const address = app.server.address();
process.stdout.write(
  `${JSON.stringify({ url: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}` })}\n`,
);
