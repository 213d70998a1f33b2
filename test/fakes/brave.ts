/**
 * A fake Brave Search API: `GET /res/v1/web/search?q=&count=` with the key in
 * `X-Subscription-Token`, answered in Brave's shape (titles and snippets carry
 * <strong> marks and entities, as the real ones do).
 *
 *   const brave = await startFakeBrave({ key: 'k' });
 *   brave.baseUrl            // what tools.webSearch.baseUrl holds (…/res/v1)
 *   brave.requests           // { query, count, token } of each search
 *   brave.failWith(429)      // answer the next searches with this status
 *   brave.answerWith({ type: 'text/html', body: '<html>…' }) // answer the next searches 200 with this (undefined: results again)
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeBrave {
  baseUrl: string;
  requests: { query: string; count: number; token: string | undefined }[];
  failWith(status: number | undefined): void;
  answerWith(raw: { type: string; body: string } | undefined): void;
  close(): Promise<void>;
}

export async function startFakeBrave(opts: { key: string }): Promise<FakeBrave> {
  const requests: FakeBrave['requests'] = [];
  let failure: number | undefined;
  let raw: { type: string; body: string } | undefined;
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://fake');
    const token = req.headers['x-subscription-token'];
    const query = url.searchParams.get('q') ?? '';
    const count = Number(url.searchParams.get('count') ?? '20');
    requests.push({ query, count, token: typeof token === 'string' ? token : undefined });
    if (url.pathname !== '/res/v1/web/search') {
      res.writeHead(404).end();
      return;
    }
    if (token !== opts.key) {
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({ type: 'ErrorResponse', error: { code: 'SUBSCRIPTION_TOKEN_INVALID', status: 401 } }),
      );
      return;
    }
    if (raw) {
      res.writeHead(200, { 'content-type': raw.type }).end(raw.body);
      return;
    }
    if (failure) {
      res.writeHead(failure, { 'content-type': 'application/json' }).end('{}');
      return;
    }
    const results = Array.from({ length: Math.min(count, 20) }, (_, i) => ({
      title: `Result ${i + 1} about <strong>${query}</strong>`,
      url: `https://example.com/${i + 1}`,
      description: `Snippet ${i + 1}: <strong>${query}</strong> &amp; more &quot;quoted&quot;`,
      language: 'en',
    }));
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ type: 'search', query: { original: query }, web: { type: 'search', results } }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}/res/v1`,
    requests,
    failWith(status) {
      failure = status;
    },
    answerWith(answer) {
      raw = answer;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
