/**
 * A small web site on 127.0.0.1 for web_fetch tests: an article page, redirects,
 * a page bigger than the caps, a binary file and a page that never finishes.
 *
 *   const web = await startFakeWeb();
 *   web.url                  // http://127.0.0.1:PORT
 *   web.hits                 // paths requested, in order
 *   await web.sent('/list')  // once the next /list response is written whole
 *   await web.closed('/nests') // once the connection of the next /nests request has closed
 *   await web.close();
 *
 * Routes:
 *   GET /article             HTML page with navigation noise around an <article>
 *   GET /plain               text/plain
 *   GET /redirect?to=<url>   302 to <url>
 *   GET /big?kb=<n>          text/html of n KiB
 *   GET /image               image/png bytes
 *   GET /slow                headers, then nothing until the client gives up
 *   GET /list?kb=<n>         text/html of n KiB: a list of linked entries, slow to parse and extract
 *   GET /deep?n=<n>          text/html: a title, then a heading and DEEP_SENTENCE inside n nested <div>s, never closed
 *   GET /nests?n=<n>         text/html: n blocks of 98 nested <div>s around a word, seconds to read (n = 45: 48 KB)
 *   GET /many?n=<n>          text/html: a title, then n lines `a<br>`, a flat page (5 bytes each: n = 400,000 is 2 MB)
 *   GET /bare?body=<text>    text/html: <text> as it is (no tags: an empty page, a bare `OK`)
 *   GET /packed?enc=<coding> the article compressed with <coding> (gzip, deflate, br), with that Content-Encoding
 *     (`raw`: deflate without its zlib header);
 *                            `&kb=<n>`: a page of n KiB instead (compressing to a few KiB); `&lie=1`: sent uncompressed
 *   GET /legacy?as=<form>    LEGACY_TEXT in an encoding the page says how: `meta` windows-1252 in <meta charset>,
 *                            `http-equiv` Shift_JIS in <meta http-equiv>, `xml` ISO-8859-1 in <?xml encoding?>,
 *                            `bom` UTF-16LE with its BOM, `quoted` Shift_JIS in charset='…'
 *   GET /binary?type=<ct>    PNG bytes as <ct>, or with no Content-Type at all without `type`
 *   GET /private             text/plain `welcome, user` to Basic auth user:s3cret!, else 401
 *   GET /missing             404
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { brotliCompressSync, deflateRawSync, deflateSync, gzipSync } from 'node:zlib';

export interface FakeWeb {
  url: string;
  hits: string[];
  sent(path: string): Promise<void>;
  /**
   * web_fetch closes its connection once it has read the body and hands the page to its reader in
   * the same turn of the event loop, before this server can hear of the close: when this comes, the
   * page is in the reader (same process).
   */
  closed(path: string): Promise<void>;
  close(): Promise<void>;
}

export const DEEP_SENTENCE = 'Deep down there is still a sentence &amp; its entity.';

export const ARTICLE_SENTENCE = 'The brainstem relays every message to the right brain without blocking.';

const ARTICLE = `<!doctype html>
<html><head><title>Brainstem notes</title></head>
<body>
  <nav><a href="/">Home</a> | <a href="/about">About</a> | <a href="/login">Log in</a></nav>
  <article>
    <h1>How the relay works</h1>
    <p>${ARTICLE_SENTENCE} It streams answers as they come, so the user never waits in silence.</p>
    <p>Each tool runs as its own process with a time limit, and its output is capped to keep the chat readable.
       Long commands report progress while they run, and the final result arrives with its exit code.</p>
    <p>Configuration lives in one JSON file, validated at start-up, with an error that names the wrong field.</p>
  </article>
  <footer>© 2026 Example — <script>var tracking = "should not appear";</script></footer>
</body></html>`;

/** What each /legacy page holds, in each page's own encoding. */
export const LEGACY_TEXT = { latin: 'Café “déjà vu”', japanese: '日本語' };

const LEGACY: Record<string, [string, Buffer]> = {
  meta: [
    'text/html',
    Buffer.concat([
      Buffer.from(
        '<html><head><meta charset="windows-1252"><title>Caf\xe9</title></head><body><p>',
        'latin1',
      ),
      // “ and ” are 0x93 and 0x94 in windows-1252 (C1 controls in ISO-8859-1).
      Buffer.from('Caf\xe9 \x93d\xe9j\xe0 vu\x94', 'latin1'),
      Buffer.from('</p></body></html>'),
    ]),
  ],
  'http-equiv': [
    'text/html',
    Buffer.concat([
      Buffer.from(
        '<html><head><meta http-equiv="Content-Type" content="text/html; charset=Shift_JIS"></head><body><p>',
      ),
      // 日本語 in Shift_JIS.
      Buffer.from([0x93, 0xfa, 0x96, 0x7b, 0x8c, 0xea]),
      Buffer.from('</p></body></html>'),
    ]),
  ],
  xml: [
    'application/xml',
    Buffer.from('<?xml version="1.0" encoding="ISO-8859-1"?><a>d\xe9j\xe0 vu</a>', 'latin1'),
  ],
  bom: ['text/plain', Buffer.from(`\ufeff${LEGACY_TEXT.japanese}`, 'utf16le')],
  quoted: ["text/plain; charset='shift_jis'", Buffer.from([0x93, 0xfa, 0x96, 0x7b, 0x8c, 0xea])],
};

export async function startFakeWeb(): Promise<FakeWeb> {
  const hits: string[] = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://fake');
    hits.push(url.pathname);
    res.on('finish', () => server.emit(`sent ${url.pathname}`));
    req.socket.once('close', () => server.emit(`closed ${url.pathname}`));
    route(url, req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    hits,
    async sent(path) {
      await once(server, `sent ${path}`);
    },
    async closed(path) {
      await once(server, `closed ${path}`);
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function route(url: URL, req: IncomingMessage, res: ServerResponse): void {
  switch (url.pathname) {
    case '/article':
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(ARTICLE);
      return;
    case '/plain':
      res.writeHead(200, { 'content-type': 'text/plain' }).end('just text\n');
      return;
    case '/redirect':
      res.writeHead(302, { location: url.searchParams.get('to') ?? '/article' }).end();
      return;
    case '/big': {
      const kb = Number(url.searchParams.get('kb') ?? '64');
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(`<html><body><p>${'x'.repeat(kb * 1024)}</p></body></html>`);
      return;
    }
    case '/list': {
      const kb = Number(url.searchParams.get('kb') ?? '40');
      const entry = (i: number) =>
        `<div class="entry"><h2><a href="/p/${i}">Entry ${i}</a></h2><p>Some words about entry ${i}, with <b>bold</b> and <i>italic</i> text.</p></div>`;
      let html = '<!doctype html><html><head><title>List</title></head><body><main>';
      for (let i = 0; html.length < kb * 1024; i++) html += entry(i);
      res.writeHead(200, { 'content-type': 'text/html' }).end(`${html}</main></body></html>`);
      return;
    }
    case '/image':
      res
        .writeHead(200, { 'content-type': 'image/png' })
        .end(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 0, 0, 0]));
      return;
    case '/deep': {
      const n = Number(url.searchParams.get('n') ?? '1000');
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(
        `<html><head><title>Deep</title></head><body>${'<div>'.repeat(n)}<h1>Nested <em>page</em></h1><p>${DEEP_SENTENCE}</p></body></html>`,
      );
      return;
    }
    case '/nests': {
      // Shallower than 100, so Readability is given it: each block costs it tens of ms.
      const block = `${'<div>'.repeat(98)}word ${'</div>'.repeat(98)}`;
      const n = Number(url.searchParams.get('n') ?? '45');
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(`<html><head><title>Nests</title></head><body>${block.repeat(n)}</body></html>`);
      return;
    }
    case '/many': {
      const n = Number(url.searchParams.get('n') ?? '1000');
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(`<html><head><title>Many</title></head><body>${'a<br>'.repeat(n)}</body></html>`);
      return;
    }
    case '/packed': {
      const enc = url.searchParams.get('enc') ?? 'gzip';
      const kb = url.searchParams.get('kb');
      const page = kb ? `<html><body><p>${'x'.repeat(Number(kb) * 1024)}</p></body></html>` : ARTICLE;
      // `raw`: deflate without its zlib header, as many servers send it.
      const pack = url.searchParams.has('raw')
        ? deflateRawSync
        : ({ gzip: gzipSync, deflate: deflateSync, br: brotliCompressSync }[enc] ?? ((b: string) => b));
      res.writeHead(200, { 'content-type': 'text/html', 'content-encoding': enc });
      res.end(url.searchParams.has('lie') ? page : pack(page));
      return;
    }
    case '/legacy': {
      const [type, body] = LEGACY[url.searchParams.get('as') ?? 'meta'] ?? ['text/plain', Buffer.alloc(0)];
      res.writeHead(200, { 'content-type': type }).end(body);
      return;
    }
    case '/binary': {
      const type = url.searchParams.get('type');
      res.writeHead(200, type ? { 'content-type': type } : {});
      res.end(
        Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, 0x49, 0x48, 0x44, 0x52]),
      );
      return;
    }
    case '/private': {
      const [user, password] = Buffer.from((req.headers.authorization ?? '').replace(/^Basic /, ''), 'base64')
        .toString()
        .split(':');
      if (user === 'user' && password === 's3cret!')
        res.writeHead(200, { 'content-type': 'text/plain' }).end('welcome, user');
      else res.writeHead(401, { 'www-authenticate': 'Basic realm="test"' }).end();
      return;
    }
    case '/bare':
      res.writeHead(200, { 'content-type': 'text/html' }).end(url.searchParams.get('body') ?? '');
      return;
    case '/slow':
      res.writeHead(200, { 'content-type': 'text/html' });
      res.write('<html><body>');
      return;
    default:
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not here');
  }
}
