import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { PageReader } from '../src/tools/page-reader.js';
import { isNonPublic } from '../src/tools/web-fetch.js';
import { type FakeBrave, startFakeBrave } from './fakes/brave.js';
import { ARTICLE_SENTENCE, DEEP_SENTENCE, type FakeWeb, LEGACY_TEXT, startFakeWeb } from './fakes/web.js';
import { startTestService, type TestService } from './helpers/service.js';

// biome-ignore lint/suspicious/noExplicitAny: answers are read by path; a wrong path fails the assertion.
type Answer = Record<string, any>;

let web: FakeWeb;
let brave: FakeBrave;
/** Default web_fetch guard; Brave key from the environment. */
let guarded: TestService;
/** 127.0.0.1 allow-listed, small caps. */
let allowed: TestService;
/** Both web tools delegated to a command. */
let delegating: TestService;

const KEY = 'brave-test-key';

async function api(svc: TestService, tool: string, body: unknown) {
  const res = await fetch(`${svc.url}/api/${tool}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${svc.token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Answer };
}

beforeAll(async () => {
  web = await startFakeWeb();
  brave = await startFakeBrave({ key: KEY });
  const dir = mkdtempSync(path.join(tmpdir(), 'bst-web-'));
  const fetcher = path.join(dir, 'fetch.cjs');
  writeFileSync(
    fetcher,
    `console.log('<!doctype html><html><head><title>Delegated</title></head><body><article><p>Fetched elsewhere: ' + process.argv[2] + '. ' + ${JSON.stringify(ARTICLE_SENTENCE)} + ' The page came through a delegate command running in another container, so the host stays offline.</p></article></body></html>');`,
  );
  const searcher = path.join(dir, 'search.cjs');
  writeFileSync(
    searcher,
    `const u = new URL(process.argv[2]); console.log(JSON.stringify({ web: { results: [{ title: 'Delegated ' + u.searchParams.get('q'), url: 'https://example.org/', description: 'from the delegate' }] } }));`,
  );
  guarded = await startTestService({
    parts: { tools: true },
    config: { claude: { bin: 'true' }, tools: { webSearch: { baseUrl: brave.baseUrl } } },
    env: { BRAVE_API_KEY: KEY },
  });
  allowed = await startTestService({
    parts: { tools: true },
    config: {
      claude: { bin: 'true' },
      tools: {
        webFetch: {
          allowPrivate: ['127.0.0.1'],
          maxBytes: 50_000,
          timeoutMs: 10_000,
          maxRedirects: 2,
          maxChars: 5_000,
        },
        webSearch: { baseUrl: brave.baseUrl, apiKey: 'wrong-key' },
      },
    },
  });
  delegating = await startTestService({
    parts: { tools: true },
    config: {
      claude: { bin: 'true' },
      tools: {
        webFetch: { delegate: [process.execPath, fetcher] },
        webSearch: { delegate: [process.execPath, searcher] },
      },
    },
  });
});

afterAll(async () => {
  await guarded?.close();
  await allowed?.close();
  await delegating?.close();
  await web?.close();
  await brave?.close();
});

describe('web_fetch SSRF guard', () => {
  it('refuses loopback, private and metadata addresses given as IPs, without connecting', async () => {
    const before = web.hits.length;
    const port = new URL(web.url).port;
    for (const url of [
      `${web.url}/article`,
      `http://[::1]:${port}/article`,
      `http://2130706433:${port}/article`,
      'http://169.254.169.254/latest/meta-data/',
      'http://10.1.2.3/',
      'http://[::ffff:127.0.0.1]/',
    ]) {
      const { status, body } = await api(guarded, 'web_fetch', { url });
      expect(status, url).toBe(403);
      expect(body.error.param).toBe('url');
      expect(body.error.message).toContain('tools.webFetch.allowPrivate');
    }
    expect(web.hits.length).toBe(before);
  });

  it('refuses IPv6 forms that carry a private or loopback IPv4 address, without connecting', async () => {
    const before = web.hits.length;
    const port = new URL(web.url).port;
    for (const host of [
      '[::127.0.0.1]', // IPv4-compatible
      '[::ffff:0:7f00:1]', // IPv4-translated (SIIT) 127.0.0.1
      '[64:ff9b::127.0.0.1]', // NAT64 well-known prefix
      '[64:ff9b::a9fe:a9fe]', // NAT64 to 169.254.169.254
      '[2002:7f00:1::1]', // 6to4 of 127.0.0.1
      '[2002:c0a8:101::]', // 6to4 of 192.168.1.1
      '[2001:0:4136:e378:8000:63bf:3fff:fdd2]', // Teredo
    ]) {
      const url = `http://${host}:${port}/article`;
      // Allowing 127.0.0.1 allows that IPv4 literal (and its mapped form), not these.
      for (const svc of [guarded, allowed]) {
        const { status, body } = await api(svc, 'web_fetch', { url });
        expect(status, url).toBe(403);
        expect(body.error.message).toContain('tools.webFetch.allowPrivate');
      }
    }
    expect(web.hits.length).toBe(before);
  });

  it('tells public addresses from the rest, IPv4 and every IPv6 form that embeds one', () => {
    const publicOnes = [
      '93.184.215.14',
      '8.8.8.8',
      '2606:4700:4700::1111',
      '::ffff:93.184.215.14',
      '64:ff9b::93.184.215.14', // what DNS64 gives an IPv6-only host for an IPv4-only site
      '2002:5db8:d70e::1',
    ];
    const others = [
      '127.0.0.1',
      '10.0.0.1',
      '::',
      '::1',
      '::7f00:1',
      '::ffff:127.0.0.1',
      '::ffff:10.0.0.1',
      '64:ff9b::7f00:1',
      '64:ff9b::10.1.2.3',
      '64:ff9b:1::5db8:d70e',
      '2002:a00:1::',
      '2002:7f00:1:2:3:4:5:6',
      '2001:0:4136:e378:8000:63bf:3fff:fdd2',
      'fd00::1',
      'fe80::1%eth0',
    ];
    expect(publicOnes.filter(isNonPublic)).toEqual([]);
    expect(others.filter((a) => !isNonPublic(a))).toEqual([]);
  });

  it('judges a host name by the addresses it resolves to', async () => {
    const before = web.hits.length;
    const { status, body } = await api(guarded, 'web_fetch', {
      url: `http://localhost:${new URL(web.url).port}/article`,
    });
    expect(status).toBe(403);
    expect(body.error.message).toMatch(/localhost resolves to (127\.0\.0\.1|::1)/);
    expect(web.hits.length).toBe(before);
  });

  it('says its refusals in French to a reader in French (a French /run)', async () => {
    const call = async (tool: string, input: unknown) =>
      (await guarded.service.tools?.registry.call(tool, input, { caller: 'telegram:111', lang: 'fr' }))?.error
        ?.fr;
    expect(await call('web_fetch', { url: 'http://10.1.2.3/' })).toBe(
      '10.1.2.3 mène à 10.1.2.3, une adresse locale, privée ou de lien local ; ajoutez-la à tools.webFetch.allowPrivate si elle doit être joignable.',
    );
    brave.failWith(429);
    try {
      expect(await call('web_search', { query: 'x' })).toBe(
        'Limite de débit de Brave Search atteinte (HTTP 429) ; réessayez plus tard.',
      );
    } finally {
      brave.failWith(undefined);
    }
  });

  it('fetches only http and https', async () => {
    const { status, body } = await api(guarded, 'web_fetch', { url: 'file:///etc/passwd' });
    expect(status).toBe(400);
    expect(body.error.param).toBe('url');
  });
});

describe('web_fetch of an allow-listed address', () => {
  it('returns the readable text of the page, without navigation or scripts', async () => {
    const { status, body } = await api(allowed, 'web_fetch', { url: `${web.url}/article` });
    expect(status).toBe(200);
    expect(body.output).toContain(ARTICLE_SENTENCE);
    expect(body.output).not.toContain('Log in');
    expect(body.output).not.toContain('should not appear');
    expect(body.data).toMatchObject({ url: `${web.url}/article`, status: 200 });
    expect(body.data.title).toMatch(/Brainstem notes|How the relay works/);
  });

  it('returns plain text as it is', async () => {
    const { body } = await api(allowed, 'web_fetch', { url: `${web.url}/plain` });
    expect(body.output).toBe('just text');
  });

  it('follows redirects, checking every hop', async () => {
    const ok = await api(allowed, 'web_fetch', { url: `${web.url}/redirect?to=/article` });
    expect(ok.body.output).toContain(ARTICLE_SENTENCE);
    expect(ok.body.data.url).toBe(`${web.url}/article`);
    const toPrivate = await api(allowed, 'web_fetch', {
      url: `${web.url}/redirect?to=http://10.9.8.7/admin`,
    });
    expect(toPrivate.status).toBe(403);
    const toFile = await api(allowed, 'web_fetch', { url: `${web.url}/redirect?to=file:///etc/passwd` });
    expect(toFile.status).toBe(403);
    const loop = `${web.url}/redirect?to=${encodeURIComponent(`/redirect?to=${encodeURIComponent('/redirect?to=/article')}`)}`;
    const tooMany = await api(allowed, 'web_fetch', { url: loop });
    expect(tooMany.status).toBe(502);
    expect(tooMany.body.error.message).toContain('redirects more than 2 times');
  });

  it('caps the size, the text and the time', async (ctx) => {
    const big = await api(allowed, 'web_fetch', { url: `${web.url}/big?kb=500` });
    expect(big.status).toBe(200);
    expect(big.body.truncated).toBe(true);
    const cut = 'The page was cut at its first 50000 bytes (tools.webFetch.maxBytes): the rest was not read.';
    expect(big.body.output).toHaveLength(5000);
    expect(big.body.note).toMatch(
      new RegExp(
        `^The text is cut at 5000 of its \\d+ characters \\(maxChars, tools\\.webFetch\\.maxChars\\)\\. ${cut.replace(/[.()]/g, '\\$&')}$`,
      ),
    );
    // A page cut inside its markup (here 20,000 <div>s of 5 bytes before any text): little or no text,
    // and without the note nothing would say the page goes on.
    const markup = await api(allowed, 'web_fetch', { url: `${web.url}/deep?n=20000` });
    expect(markup.body.truncated).toBe(true);
    expect(markup.body.note).toBe(cut);
    const short = await api(allowed, 'web_fetch', { url: `${web.url}/article`, maxChars: 100 });
    expect(short.body.output).toHaveLength(100);
    expect(short.body.note).toMatch(/^The text is cut at 100 of its \d+ characters/);
    // The time on a service of its own with a short limit, since it is waited out: `allowed` keeps a long
    // one, which a page that does come never reaches, however loaded the machine.
    const quick = await startTestService({
      parts: { tools: true },
      config: {
        claude: { bin: 'true' },
        tools: { webFetch: { allowPrivate: ['127.0.0.1'], timeoutMs: 1_000 } },
      },
    });
    ctx.onTestFinished(() => quick.close());
    const slow = await api(quick, 'web_fetch', { url: `${web.url}/slow` });
    expect(slow.status).toBe(504);
    expect(slow.body.error.message).toContain('did not answer within 1 s');
  });

  it('reads a page nested thousands deep as its text, without handing it to Readability or the DOM parser', async () => {
    // 8,000 deep (40 KB) is past the parser's limit, 500 (3 KB) past Readability's: either held
    // the event loop, every chat's, for seconds to minutes, and Readability's recursion overflowed.
    for (const n of [8_000, 500]) {
      const { status, body } = await api(allowed, 'web_fetch', { url: `${web.url}/deep?n=${n}` });
      expect(status).toBe(200);
      // The heading and the paragraph each on a line of its own, an inline element's words in theirs.
      expect(body.output.split(/\n+/)).toEqual(['Nested page', DEEP_SENTENCE.replace('&amp;', '&')]);
      expect(body.data.title).toBe('Deep');
    }
  });

  it('answers other requests while it reads a large page', async () => {
    // Parsing and extracting this page takes seconds: on the event loop, /health waited for them.
    // A page read first loads what reads pages, so that this one is read as soon as it has come.
    await api(allowed, 'web_fetch', { url: `${web.url}/article` });
    const order: string[] = [];
    const reading = api(allowed, 'web_fetch', { url: `${web.url}/list?kb=45` }).then((r) => {
      order.push('web_fetch');
      return r;
    });
    await web.sent('/list');
    expect((await fetch(`${allowed.url}/health`)).status).toBe(200);
    order.push('health');
    const { status, body } = await reading;
    expect(status).toBe(200);
    expect(body.output).toContain('Some words about entry 0');
    expect(order).toEqual(['health', 'web_fetch']);
  });

  it('stops reading a page whose call is cancelled, so the page queued behind it does not wait for it', async () => {
    const registry = allowed.service.tools?.registry;
    if (!registry) throw new Error('the tools are not running');
    // A page read first starts the worker, so that the next is given to it as soon as it has come.
    await api(allowed, 'web_fetch', { url: `${web.url}/article` });
    const stop = new AbortController();
    const slow = registry.call(
      'web_fetch',
      { url: `${web.url}/nests` },
      { caller: 'test', signal: stop.signal },
    );
    await web.closed('/nests');
    const next = api(allowed, 'web_fetch', { url: `${web.url}/article` });
    await web.closed('/article');
    // Both pages are in the reader, the first being read (seconds of it): the call is cancelled.
    stop.abort();
    expect((await slow).error).toMatchObject({
      code: 'TOOL_ABORTED',
      fr: `${web.url}/nests a été récupérée, mais sa lecture a été arrêtée : l’appel a été annulé, ou brainstem s’arrête.`,
    });
    const { status, body } = await next;
    expect(status).toBe(200);
    expect(body.output).toContain(ARTICLE_SENTENCE);
  });

  it('lets go at once of a page whose call is cancelled while it waits for its turn', async () => {
    const registry = allowed.service.tools?.registry;
    if (!registry) throw new Error('the tools are not running');
    const first = new AbortController();
    const second = new AbortController();
    const settled: string[] = [];
    const reading = registry
      .call('web_fetch', { url: `${web.url}/nests` }, { caller: 'test', signal: first.signal })
      .finally(() => settled.push('first'));
    await web.closed('/nests');
    const waiting = registry.call(
      'web_fetch',
      { url: `${web.url}/nests` },
      { caller: 'test', signal: second.signal },
    );
    await web.closed('/nests');
    const last = api(allowed, 'web_fetch', { url: `${web.url}/article` });
    await web.closed('/article');
    second.abort();
    // Answered while the page ahead of it is still being read (it used to wait for that one, then be read).
    expect((await waiting).error).toMatchObject({ code: 'TOOL_ABORTED' });
    expect(settled).toEqual([]);
    first.abort();
    expect((await reading).error).toMatchObject({ code: 'TOOL_ABORTED' });
    // Neither cancelled page holds the reader: the one behind them is read.
    const { status, body } = await last;
    expect(status).toBe(200);
    expect(body.output).toContain(ARTICLE_SENTENCE);
  });

  it('stops reading a page past its time limit, and reads the next in a new worker', async () => {
    const reader = new PageReader();
    const html = `<html><head><title>Notes</title></head><body><nav>Log in</nav><article><p>${ARTICLE_SENTENCE} ${'More words to read. '.repeat(30)}</p></article></body></html>`;
    // 1 ms is less than the worker takes to start: the page has not even been scanned for its text.
    await expect(reader.read(html, 1, 'http://example.org/')).rejects.toMatchObject({
      code: 'TOOL_TIMEOUT',
      message: 'http://example.org/ was fetched but could not be read within 0.001 s.',
    });
    const page = await reader.read(html, 60_000, 'http://example.org/');
    expect(page.text).toContain(ARTICLE_SENTENCE);
    expect(page.text).not.toContain('Log in');
  });

  it('answers with the page’s whole text when its worker runs out of memory building the page', async () => {
    // A heap of 28 MB: 25,000 elements (within the element bound) are more than its DOM fits in
    // (at 32 MB still), while the scan that sends the whole text first fits. At 16 MB, Node 24's
    // worker ran out during that scan 2 times in 30, and there was no text to answer with.
    const reader = new PageReader(60_000, 28);
    const html = `<html><head><title>Flat</title></head><body>${'line<br>'.repeat(25_000)}end of page</body></html>`;
    const page = await reader.read(html, 60_000, 'http://example.org/');
    expect(page.text).toMatch(/^line\n(line\n)+/);
    expect(page.text).toContain('end of page');
    expect(reader.running).toBe(false);
  });

  it('ends its worker once it has had nothing to read for a while, and starts one for the next page', async () => {
    const reader = new PageReader(50);
    const html = `<html><body><article><p>${ARTICLE_SENTENCE}</p></article></body></html>`;
    expect(reader.running).toBe(false);
    expect((await reader.read(html, 60_000, 'http://example.org/')).text).toContain(ARTICLE_SENTENCE);
    await vi.waitFor(() => expect(reader.running).toBe(false), { timeout: 10_000 });
    expect((await reader.read(html, 60_000, 'http://example.org/')).text).toContain(ARTICLE_SENTENCE);
  });

  it('reads a compressed page (gzip, deflate, br), capping what it decodes to, and says so of one that does not decompress', async () => {
    // `deflate&raw`: without its zlib header, as many servers send it (and browsers read it).
    for (const enc of ['gzip', 'deflate', 'deflate&raw', 'br']) {
      const { status, body } = await api(allowed, 'web_fetch', { url: `${web.url}/packed?enc=${enc}` });
      expect(status, enc).toBe(200);
      expect(body.output, enc).toContain(ARTICLE_SENTENCE);
    }
    // 2 MB of HTML in a few KiB of gzip: read up to maxBytes (50,000), not decoded whole.
    const bomb = await api(allowed, 'web_fetch', { url: `${web.url}/packed?enc=gzip&kb=2000` });
    expect(bomb.status).toBe(200);
    expect(bomb.body.truncated).toBe(true);
    const liar = await api(allowed, 'web_fetch', { url: `${web.url}/packed?enc=gzip&lie=1` });
    expect(liar.status).toBe(502);
    expect(liar.body.error.message).toContain(
      'says its body is gzip-compressed (Content-Encoding), but it does not decompress',
    );
    const unknown = await api(allowed, 'web_fetch', { url: `${web.url}/packed?enc=zstd` });
    expect(unknown.status).toBe(409);
    expect(unknown.body.error.message).toContain('is compressed as zstd');
  });

  it('reads a page in the encoding it declares: <meta charset>, <meta http-equiv>, <?xml?>, a BOM, a quoted charset', async () => {
    const read = async (as: string) =>
      (await api(allowed, 'web_fetch', { url: `${web.url}/legacy?as=${as}` })).body;
    const meta = await read('meta');
    expect(meta.output).toBe(LEGACY_TEXT.latin);
    expect(meta.data.title).toBe('Café');
    expect((await read('http-equiv')).output).toBe(LEGACY_TEXT.japanese);
    expect((await read('xml')).output).toContain('<a>déjà vu</a>');
    expect((await read('bom')).output).toBe(LEGACY_TEXT.japanese);
    expect((await read('quoted')).output).toBe(LEGACY_TEXT.japanese);
  });

  it('sends the credentials of a URL as Basic auth, to that origin only, and says the URL back without them', async () => {
    const port = new URL(web.url).port;
    const withCredentials = `http://user:s3cret%21@127.0.0.1:${port}`;
    const direct = await api(allowed, 'web_fetch', { url: `${withCredentials}/private` });
    expect(direct.status).toBe(200);
    expect(direct.body.output).toBe('welcome, user');
    expect(direct.body.data.url).toBe(`${web.url}/private`);
    const sameOrigin = await api(allowed, 'web_fetch', { url: `${withCredentials}/redirect?to=/private` });
    expect(sameOrigin.body.output).toBe('welcome, user');
    // localhost:port is another origin, though the same server: the credentials stay behind.
    const elsewhere = await api(allowed, 'web_fetch', {
      url: `${withCredentials}/redirect?to=${encodeURIComponent(`http://localhost:${port}/private`)}`,
    });
    expect(JSON.stringify(elsewhere.body)).not.toContain('s3cret');
    expect(elsewhere.body.error?.message).toMatch(/HTTP 401|resolves to/);
  });

  it('reads an HTML page without tags (empty, or a bare word) as its text, and says an empty one has none', async () => {
    const word = await api(allowed, 'web_fetch', { url: `${web.url}/bare?body=OK` });
    expect(word.status).toBe(200);
    expect(word.body.output).toBe('OK');
    const empty = await api(allowed, 'web_fetch', { url: `${web.url}/bare` });
    expect(empty.status).toBe(200);
    expect(empty.body.output).toBe('');
    // Said, for a model that would otherwise get the page's data alone.
    expect(empty.body.note).toBe('The page has no text.');
    expect(word.body.note).toBeUndefined();
  });

  it('refuses what is not text, and reports HTTP errors', async () => {
    const image = await api(allowed, 'web_fetch', { url: `${web.url}/image` });
    expect(image.status).toBe(409);
    expect(image.body.error.message).toContain('image/png');
    const untyped = await api(allowed, 'web_fetch', { url: `${web.url}/binary` });
    expect(untyped.status).toBe(409);
    expect(untyped.body.error.message).toContain(
      'is not text: it sent no Content-Type, but its content is binary',
    );
    const mistyped = await api(allowed, 'web_fetch', { url: `${web.url}/binary?type=text/plain` });
    expect(mistyped.status).toBe(409);
    expect(mistyped.body.error.message).toContain(
      'is not text: it says text/plain, but its content is binary',
    );
    const missing = await api(allowed, 'web_fetch', { url: `${web.url}/missing` });
    expect(missing.status).toBe(502);
    expect(missing.body.error.message).toContain('HTTP 404');
  });
});

describe('web_search (Brave)', () => {
  it('returns title, url and plain-text snippet, with the key from BRAVE_API_KEY', async () => {
    const { status, body } = await api(guarded, 'web_search', { query: 'brainstem relay', count: 3 });
    expect(status).toBe(200);
    expect(body.data.results).toHaveLength(3);
    expect(body.data.results[0]).toEqual({
      title: 'Result 1 about brainstem relay',
      url: 'https://example.com/1',
      snippet: 'Snippet 1: brainstem relay & more "quoted"',
    });
    expect(brave.requests.at(-1)).toEqual({ query: 'brainstem relay', count: 3, token: KEY });
  });

  it('caps count at 20', async () => {
    const { status, body } = await api(guarded, 'web_search', { query: 'x', count: 21 });
    expect(status).toBe(400);
    expect(body.error.param).toBe('count');
  });

  it('says when the key is refused or the rate limit is hit', async () => {
    const refused = await api(allowed, 'web_search', { query: 'x' });
    expect(refused.status).toBe(502);
    expect(refused.body.error.message).toContain('refused the API key');
    expect(JSON.stringify(refused.body)).not.toContain('wrong-key');
    brave.failWith(429);
    try {
      const limited = await api(guarded, 'web_search', { query: 'x' });
      expect(limited.body.error.message).toContain('rate limit');
    } finally {
      brave.failWith(undefined);
    }
  });

  it('says when the answer is not JSON (a proxy’s page, a wrong baseUrl), not that Brave was unreachable', async () => {
    brave.answerWith({ type: 'text/html', body: '<html><body>Please sign in to the network</body></html>' });
    try {
      const { status, body } = await api(guarded, 'web_search', { query: 'x' });
      expect(status).toBe(502);
      expect(body.error.message).toBe(
        'Brave Search answered with something that is not JSON (text/html); check tools.webSearch.baseUrl.',
      );
    } finally {
      brave.answerWith(undefined);
    }
  });

  it('is off, with a clear message, without a key', async () => {
    const plain = await startTestService({ parts: { tools: true }, config: { claude: { bin: 'true' } } });
    try {
      const { status, body } = await api(plain, 'web_search', { query: 'x' });
      expect(status).toBe(501);
      expect(body.error.message).toContain('BRAVE_API_KEY');
    } finally {
      await plain.close();
    }
  });
});

describe('delegated web tools', () => {
  it('web_fetch reads the page a delegate command printed', async () => {
    const { status, body } = await api(delegating, 'web_fetch', { url: 'https://example.org/page' });
    expect(status).toBe(200);
    expect(body.output).toContain('Fetched elsewhere: https://example.org/page');
  });

  it('web_search reads the results a delegate command printed', async () => {
    const { body } = await api(delegating, 'web_search', { query: 'remote' });
    expect(body.data.results).toEqual([
      { title: 'Delegated remote', url: 'https://example.org/', snippet: 'from the delegate' },
    ]);
  });

  it('a delegate stopped at its time limit names the setting that gives it, not tools.timeoutMs', async () => {
    const hang = [process.execPath, '-e', 'setTimeout(() => {}, 120000)'];
    const slow = await startTestService({
      parts: { tools: true },
      config: {
        claude: { bin: 'true' },
        tools: {
          webFetch: { delegate: hang, timeoutMs: 300 },
          webSearch: { delegate: hang, timeoutMs: 300 },
        },
      },
    });
    try {
      const fetched = await api(slow, 'web_fetch', { url: 'https://example.org/page' });
      expect(fetched.status).toBe(504);
      expect(fetched.body.error.message).toMatch(/raise tools\.webFetch\.timeoutMs if it needs longer/);
      const searched = await api(slow, 'web_search', { query: 'remote' });
      expect(searched.status).toBe(504);
      expect(searched.body.error.message).toMatch(/raise tools\.webSearch\.timeoutMs if it needs longer/);
    } finally {
      await slow.close();
    }
  });
});
