import { lookup as dnsLookup } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { pipeline, Readable, type Transform } from 'node:stream';
import { BrainstemError } from '../errors.js';
import { undici } from '../http-client.js';
import { headChars } from '../text.js';
import type { ToolsConfig } from './config.js';
import { runDelegate } from './delegate.js';
import type { Runner } from './exec.js';
import { PageReader } from './page-reader.js';
import { type AnyTool, defineTool } from './registry.js';

/**
 * web_fetch: one page as readable text. The SSRF guard judges the addresses a
 * name really resolves to, at connection time (so a DNS answer cannot change
 * between the check and the connection), and again on every redirect.
 */

/**
 * Where a request from brainstem's host must not go: loopback, private, link-local (cloud metadata),
 * and the like. An IPv4-mapped address (`::ffff:a.b.c.d`) is judged by these IPv4 rules: BlockList
 * maps it itself. (A `::ffff:0:0/96` rule would not do: BlockList applies it to every IPv4 address.)
 */
const NON_PUBLIC = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  NON_PUBLIC.addSubnet(net, bits, 'ipv4');
}
for (const [net, bits] of [
  // Local-use NAT64 prefixes translate to whatever the local network decides.
  ['64:ff9b:1::', 48],
  ['100::', 64],
  // Teredo tunnels to a relay; a web server is never reached there.
  ['2001::', 32],
  ['2001:db8::', 32],
  ['fc00::', 7],
  ['fe80::', 10],
  ['fec0::', 10],
  ['ff00::', 8],
] as const) {
  NON_PUBLIC.addSubnet(net, bits, 'ipv6');
}

/**
 * IPv6 ranges that carry an IPv4 address (which 16-bit groups hold it): a packet sent there reaches
 * that IPv4 host, so the address is judged by it. A public one stays reachable (DNS64 hosts get
 * `64:ff9b::<public IPv4>` for every IPv4-only site), a private or loopback one is refused.
 */
const EMBEDDED_IPV4: { net: BlockList; at: number }[] = [
  // IPv4-compatible (deprecated), `::a.b.c.d`; also `::` and `::1` (0.0.0.0/8).
  { net: subnet('::', 96), at: 6 },
  // IPv4-translated (SIIT, RFC 2765), `::ffff:0:a.b.c.d`.
  { net: subnet('::ffff:0:0:0', 96), at: 6 },
  // NAT64, well-known prefix.
  { net: subnet('64:ff9b::', 96), at: 6 },
  // 6to4: 2002:AABB:CCDD::/48 is the site behind a.b.c.d.
  { net: subnet('2002::', 16), at: 1 },
];

function subnet(net: string, bits: number): BlockList {
  const list = new BlockList();
  list.addSubnet(net, bits, 'ipv6');
  return list;
}

/** True when `address` (an IP literal) is loopback, private, link-local or reaches such an IPv4 host. */
export function isNonPublic(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return NON_PUBLIC.check(address, 'ipv4');
  if (family !== 6) return true;
  if (NON_PUBLIC.check(address, 'ipv6')) return true;
  const embedded = EMBEDDED_IPV4.find((e) => e.net.check(address, 'ipv6'));
  if (!embedded) return false;
  const groups = ipv6Groups(address);
  const hi = groups[embedded.at] ?? 0;
  const lo = groups[embedded.at + 1] ?? 0;
  return NON_PUBLIC.check(`${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`, 'ipv4');
}

/** The eight 16-bit groups of a valid IPv6 literal (`::` expanded, a dotted IPv4 tail read as two groups). */
function ipv6Groups(address: string): number[] {
  let text = address.replace(/%.*$/, '');
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const parse = (part: string) => (part ? part.split(':').map((g) => Number.parseInt(g, 16)) : []);
  const left = parse(head);
  const right = tail === undefined ? [] : parse(tail);
  return [...left, ...Array<number>(8 - left.length - right.length).fill(0), ...right];
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const TEXT_TYPES = /^(text\/|application\/(?:json|xml|xhtml\+xml|rss\+xml|atom\+xml|ld\+json)\b)/i;
const HTML_TYPES = /^(text\/html|application\/xhtml\+xml)\b/i;
/** Characters that no text holds, as the HTML standard sniffs binary content (tab, line feeds, form feed, escape are text). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is looked for.
const BINARY = /[\u0000-\u0008\u000b\u000e-\u001a\u001c-\u001f]/;

/** Decides which addresses may be reached: public ones, plus what the configuration allows explicitly. */
class AddressGuard {
  private readonly hosts = new Set<string>();
  private readonly nets = new BlockList();

  constructor(allowPrivate: string[]) {
    for (const entry of allowPrivate) {
      const [addr, bits] = entry.split('/');
      const family = addr ? isIP(addr) : 0;
      if (family === 0) this.hosts.add(normalizeHost(entry));
      else if (bits === undefined) this.nets.addAddress(addr as string, family === 6 ? 'ipv6' : 'ipv4');
      else this.nets.addSubnet(addr as string, Number(bits), family === 6 ? 'ipv6' : 'ipv4');
    }
  }

  allows(host: string, address: string): boolean {
    const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
    return !isNonPublic(address) || this.hosts.has(normalizeHost(host)) || this.nets.check(address, family);
  }
}

const normalizeHost = (h: string) =>
  h
    .toLowerCase()
    .replace(/^\[|\]$/g, '')
    .replace(/\.$/, '');

class BlockedAddress extends BrainstemError {
  constructor(host: string, address: string) {
    super(
      'TOOL_FORBIDDEN',
      `${host} resolves to ${address}, a loopback, private or link-local address; add it to tools.webFetch.allowPrivate if it must be reachable.`,
      'url',
      `${host} mène à ${address}, une adresse locale, privée ou de lien local ; ajoutez-la à tools.webFetch.allowPrivate si elle doit être joignable.`,
    );
  }
}

export function webFetchTool(tools: ToolsConfig, run: Runner): AnyTool {
  const cfg = tools.webFetch;
  const guard = new AddressGuard(cfg.allowPrivate);
  return defineTool(
    {
      name: 'web_fetch',
      description:
        'Fetches one http(s) page and returns its readable text (title and main content); a page cut at a limit comes with a note saying so.',
      authorize: () => {
        if (!cfg.enabled) {
          throw new BrainstemError(
            'TOOL_NOT_CONFIGURED',
            'web_fetch is turned off (tools.webFetch.enabled is false).',
            undefined,
            'web_fetch est désactivé (tools.webFetch.enabled vaut false).',
          );
        }
      },
      run: async (input, ctx) => {
        const maxChars = input.maxChars ?? cfg.maxChars;
        const page = cfg.delegate
          ? await delegated(cfg.delegate, input.url, run, ctx.signal, cfg.timeoutMs)
          : await fetchGuarded(input.url, guard, cfg, ctx.signal);
        const { title, text } = page.html
          ? await reader.read(page.body, cfg.timeoutMs, page.url, ctx.signal)
          : { title: undefined, text: page.body.trim() };
        const cutText = text.length > maxChars;
        // The reader (a model, a person) learns the page goes on, and which limit cut it: `truncated`
        // alone reaches neither a model over MCP nor a chat (which would blame tools.maxOutputChars),
        // and a page cut in its markup may read as whole. The note goes after the output everywhere.
        const notes = [
          ...(cutText
            ? [
                `The text is cut at ${maxChars} of its ${text.length} characters (maxChars, tools.webFetch.maxChars).`,
              ]
            : []),
          ...(page.cut ? [page.cut] : []),
          // Else an empty output: a model over MCP would get the page's data alone, and wonder.
          ...(text === '' && !page.cut ? ['The page has no text.'] : []),
        ];
        return {
          data: { url: page.url, status: page.status, contentType: page.contentType, title },
          output: cutText ? headChars(text, maxChars) : text,
          truncated: page.truncated || cutText,
          ...(notes.length > 0 ? { note: notes.join(' ') } : {}),
        };
      },
    },
    tools,
  );
}

interface Page {
  url: string;
  status?: number;
  contentType?: string;
  html: boolean;
  body: string;
  truncated: boolean;
  /** Said after the text when the body was not read whole. */
  cut?: string;
}

async function fetchGuarded(
  given: string,
  guard: AddressGuard,
  cfg: ToolsConfig['webFetch'],
  callerSignal: AbortSignal,
): Promise<Page> {
  // Credentials in the URL (`http://user:pass@host/`) went nowhere: undici drops them, and the page
  // answered 401 with nothing said. They are sent as Basic auth, as curl sends them, to that origin
  // only (a redirect elsewhere does not get them), and left out of the URLs brainstem says back.
  const asked = new URL(given);
  const auth =
    asked.username || asked.password
      ? {
          origin: asked.origin,
          header: `Basic ${Buffer.from(`${unescaped(asked.username)}:${unescaped(asked.password)}`).toString('base64')}`,
        }
      : undefined;
  const start = withoutCredentials(asked).href;
  const timeout = AbortSignal.timeout(cfg.timeoutMs);
  const signal = AbortSignal.any([callerSignal, timeout]);
  let blocked: BlockedAddress | undefined;
  // Called by the socket for every connection, so the addresses checked are the ones connected to.
  const lookup: LookupFunction = (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, '', 0);
      const bad = addresses.find((a) => !guard.allows(hostname, a.address));
      if (bad) {
        blocked = new BlockedAddress(hostname, bad.address);
        return callback(blocked, '', 0);
      }
      if (options.all) return callback(null, addresses);
      const first = addresses[0];
      return first
        ? callback(null, first.address, first.family)
        : callback(new Error(`no address for ${hostname}`), '', 0);
    });
  };
  const { Agent, request } = await undici();
  const agent = new Agent({ connect: { lookup, timeout: cfg.timeoutMs } });
  try {
    let url = withoutCredentials(asked);
    for (let hop = 0; ; hop++) {
      checkUrl(url, guard);
      const res = await request(url, {
        dispatcher: agent,
        method: 'GET',
        signal,
        headers: {
          'user-agent': 'Mozilla/5.0 (compatible; brainstem web_fetch)',
          accept: 'text/html,application/xhtml+xml,text/plain;q=0.9,application/json;q=0.8,*/*;q=0.1',
          // Said, so that a server compresses only with what decodedBody undoes: without it, any coding is acceptable (RFC 9110).
          'accept-encoding': 'gzip, deflate, br',
          ...(auth && url.origin === auth.origin ? { authorization: auth.header } : {}),
        },
      });
      const location = res.headers.location;
      if (REDIRECTS.has(res.statusCode) && typeof location === 'string') {
        await res.body.dump();
        if (hop >= cfg.maxRedirects) {
          throw new BrainstemError(
            'TOOL_FAILED',
            `${start} redirects more than ${cfg.maxRedirects} times.`,
            'url',
            `${start} redirige plus de ${cfg.maxRedirects} fois.`,
          );
        }
        // A Location's own credentials are not sent: the caller gave none for it.
        url = withoutCredentials(new URL(location, url));
        continue;
      }
      const declared = res.headers['content-type'];
      const contentType = String(declared ?? 'text/plain');
      if (res.statusCode >= 400) {
        await res.body.dump();
        throw new BrainstemError(
          'TOOL_FAILED',
          `${url.href} answered HTTP ${res.statusCode}.`,
          'url',
          `${url.href} a répondu HTTP ${res.statusCode}.`,
        );
      }
      if (!TEXT_TYPES.test(contentType)) {
        await res.body.dump();
        throw new BrainstemError(
          'TOOL_REFUSED',
          `${url.href} is not text (${contentType}).`,
          'url',
          `${url.href} n’est pas du texte (${contentType}).`,
        );
      }
      const { bytes, truncated } = await readCapped(
        await decodedBody(res.body, res.headers['content-encoding'], url.href),
        cfg.maxBytes,
      );
      const body = decode(bytes, contentType);
      // A server that sends no type, or the wrong one, for an image or an archive: its bytes read as
      // text are noise (NULs, controls) a model or a chat can do nothing with.
      if (BINARY.test(body.slice(0, 1_024))) {
        const what = declared === undefined ? 'sent no Content-Type' : `says ${contentType}`;
        throw new BrainstemError(
          'TOOL_REFUSED',
          `${url.href} is not text: it ${what}, but its content is binary.`,
          'url',
          `${url.href} n’est pas du texte : ${declared === undefined ? 'elle n’a pas envoyé de Content-Type' : `elle se dit ${contentType}`}, mais son contenu est binaire.`,
        );
      }
      return {
        url: url.href,
        status: res.statusCode,
        contentType,
        html: HTML_TYPES.test(contentType),
        body,
        truncated,
        cut: truncated
          ? `The page was cut at its first ${cfg.maxBytes} bytes (tools.webFetch.maxBytes): the rest was not read.`
          : undefined,
      };
    }
  } catch (err) {
    if (blocked) throw blocked;
    if (err instanceof BrainstemError) throw err;
    if (timeout.aborted) {
      throw new BrainstemError(
        'TOOL_TIMEOUT',
        `${start} did not answer within ${cfg.timeoutMs / 1000} s.`,
        'url',
        `${start} n’a pas répondu en ${cfg.timeoutMs / 1000} s.`,
      );
    }
    if (callerSignal.aborted) throw new BrainstemError('TOOL_ABORTED');
    const why = (err as Error).message;
    throw new BrainstemError(
      'TOOL_FAILED',
      `Could not fetch ${start}: ${why}`,
      'url',
      `Impossible de récupérer ${start} : ${why}`,
    );
  } finally {
    void agent.destroy();
  }
}

/** A URL's user or password as typed (the URL keeps them percent-encoded); a stray `%` stays as it is. */
function unescaped(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

function withoutCredentials(url: URL): URL {
  const bare = new URL(url);
  bare.username = '';
  bare.password = '';
  return bare;
}

/** Hosts given as IP literals never go through DNS, so they are judged here; so is the scheme of a redirect. */
function checkUrl(url: URL, guard: AddressGuard): void {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new BrainstemError(
      'TOOL_FORBIDDEN',
      `Only http and https URLs can be fetched, not ${url.protocol}`,
      'url',
      `Seules les URL http et https se récupèrent, pas ${url.protocol}`,
    );
  }
  const host = normalizeHost(url.hostname);
  if (isIP(host) && !guard.allows(host, host)) throw new BlockedAddress(host, host);
}

/** What undoes each Content-Encoding web_fetch asks for (its accept-encoding). */
const DECODERS: Record<string, (z: typeof import('node:zlib')) => Transform> = {
  gzip: (z) => z.createGunzip(),
  'x-gzip': (z) => z.createGunzip(),
  deflate: (z) => z.createInflate(),
  br: (z) => z.createBrotliDecompress(),
};

/**
 * The body as the page was before its Content-Encoding: undici's `request` hands the bytes as
 * sent, and a compressed page read as text was binary noise to the page reader. Decoded as it
 * streams, so maxBytes caps what it decodes to (a small bomb cannot fill the memory). A body that
 * does not decode (a server that says gzip and sends plain text) is an error that says so.
 */
async function decodedBody(
  body: Readable & { dump(): Promise<void> },
  header: string | string[] | undefined,
  href: string,
): Promise<AsyncIterable<Buffer>> {
  const codings = String(header ?? '')
    .toLowerCase()
    .split(',')
    .map((c) => c.trim())
    .filter((c) => c !== '' && c !== 'identity')
    // Listed in the order applied: undone last first.
    .reverse();
  if (codings.length === 0) return body;
  const unknown = codings.find((c) => !DECODERS[c]);
  if (unknown) {
    // Dumped, not destroyed: undici's body destroyed unread emits an error no one would hear.
    await body.dump();
    throw new BrainstemError(
      'TOOL_REFUSED',
      `${href} is compressed as ${unknown}, which web_fetch cannot read.`,
      'url',
      `${href} est compressée en ${unknown}, que web_fetch ne sait pas lire.`,
    );
  }
  const zlib = await import('node:zlib');
  // `deflate` is zlib-wrapped by the standard (RFC 9110), but many servers send it raw, as browsers
  // read it too: the first bytes tell which, when it is the first coding to undo.
  let source: Readable = body;
  let rawDeflate = false;
  if (codings[0] === 'deflate') {
    const chunks = body[Symbol.asyncIterator]();
    const first = await chunks.next();
    const head = first.done ? undefined : (first.value as Buffer);
    rawDeflate = head !== undefined && !zlibWrapped(head);
    source = Readable.from(
      (async function* () {
        if (head) yield head;
        // Delegated, so that a read stopped early (maxBytes) ends the body too.
        yield* { [Symbol.asyncIterator]: () => chunks };
      })(),
    );
  }
  const steps = codings.map((c, i) =>
    i === 0 && rawDeflate ? zlib.createInflateRaw() : (DECODERS[c] as (z: typeof zlib) => Transform)(zlib),
  );
  // The first stream to fail is where the failure comes from: the others fail after it, with its error.
  let failed: 'body' | string | undefined;
  source.once('error', () => {
    failed ??= 'body';
  });
  steps.forEach((step, i) => {
    step.once('error', () => {
      failed ??= codings[i];
    });
  });
  const out = pipeline([source, ...steps], () => undefined) as unknown as Readable;
  return (async function* () {
    try {
      for await (const chunk of out) yield chunk as Buffer;
    } catch (err) {
      if (failed === undefined || failed === 'body') throw err;
      const why = (err as Error).message;
      throw new BrainstemError(
        'TOOL_FAILED',
        `${href} says its body is ${failed}-compressed (Content-Encoding), but it does not decompress: ${why}.`,
        'url',
        `${href} se dit compressée en ${failed} (Content-Encoding), mais ne se décompresse pas : ${why}.`,
      );
    } finally {
      out.destroy();
    }
  })();
}

/** Whether a deflate body starts with the zlib header of RFC 1950 (CMF/FLG: method 8, a multiple of 31). */
function zlibWrapped(b: Buffer): boolean {
  const [cmf, flg] = [b[0] ?? 0, b[1]];
  return flg === undefined || ((cmf & 0x0f) === 8 && ((cmf << 8) | flg) % 31 === 0);
}

async function readCapped(body: AsyncIterable<Buffer>, maxBytes: number) {
  const chunks: Buffer[] = [];
  let size = 0;
  let truncated = false;
  for await (const chunk of body) {
    if (size + chunk.length > maxBytes) {
      chunks.push(chunk.subarray(0, maxBytes - size));
      truncated = true;
      break;
    }
    chunks.push(chunk);
    size += chunk.length;
  }
  return { bytes: Buffer.concat(chunks), truncated };
}

/**
 * The page's text, in the encoding the browser would pick: a byte-order mark, else the
 * Content-Type's charset, else (HTML, XML) what the page declares in its first 1,024 bytes
 * (`<meta charset>`, `<meta http-equiv>`, `<?xml encoding?>`), else UTF-8. Many pages in
 * windows-1252 or Shift_JIS say so in the page only: read as UTF-8 they came out as `�`.
 */
function decode(bytes: Uint8Array, contentType: string): string {
  const label = bomCharset(bytes) ?? charsetParam(contentType) ?? declaredCharset(bytes, contentType);
  try {
    const decoder = new TextDecoder(label ?? 'utf-8');
    const text = decoder.decode(bytes);
    return decoder.encoding === 'windows-1252' ? text.replace(/[\u0080-\u009f]/g, cp1252High) : text;
  } catch {
    // A label TextDecoder does not know.
    return new TextDecoder('utf-8').decode(bytes);
  }
}

/**
 * windows-1252's bytes 0x80–0x9F (`€`, `“`, `”`, `…`): Node 20's TextDecoder reads windows-1252,
 * and the labels the Encoding standard makes it (latin1, iso-8859-1, ascii), as ISO-8859-1, whose
 * invisible C1 controls they are there. The five bytes windows-1252 leaves undefined stay as they are.
 */
const CP1252_HIGH = '€\u0081‚ƒ„…†‡ˆ‰Š‹Œ\u008dŽ\u008f\u0090‘’“”•–—˜™š›œ\u009džŸ';
const cp1252High = (c: string): string => CP1252_HIGH[c.charCodeAt(0) - 0x80] ?? c;

function bomCharset(b: Uint8Array): string | undefined {
  if (b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf) return 'utf-8';
  if (b[0] === 0xff && b[1] === 0xfe) return 'utf-16le';
  if (b[0] === 0xfe && b[1] === 0xff) return 'utf-16be';
  return undefined;
}

/** `charset=x`, `charset="x"` or `charset='x'`. */
const charsetParam = (contentType: string): string | undefined =>
  /;\s*charset\s*=\s*["']?([^"';\s]+)/i.exec(contentType)?.[1];

function declaredCharset(bytes: Uint8Array, contentType: string): string | undefined {
  const head = Buffer.from(bytes.subarray(0, 1_024)).toString('latin1');
  const label = HTML_TYPES.test(contentType)
    ? /<meta\s[^>]*?charset\s*=\s*["']?\s*([^"'\s;/>]+)/i.exec(head)?.[1]
    : /xml\b/i.test(contentType)
      ? /^\s*<\?xml\s[^>]*?encoding\s*=\s*["']([^"']+)/i.exec(head)?.[1]
      : undefined;
  // A page read this far in ASCII is not UTF-16, whatever it says (the HTML standard reads it as UTF-8).
  return label && /^utf-?16/i.test(label) ? 'utf-8' : label;
}

/** The request made by a configured command elsewhere (another container); it prints the body. */
async function delegated(
  prefix: string[],
  url: string,
  run: Runner,
  signal: AbortSignal,
  timeoutMs: number,
): Promise<Page> {
  const r = await runDelegate('web_fetch', prefix, url, run, signal, timeoutMs, 'tools.webFetch.timeoutMs');
  const html = /<(?:!doctype html|html|body)[\s>]/i.test(r.output.slice(0, 2_000));
  return { url, html, body: r.output, truncated: r.truncated };
}

/** One reader, so one worker thread, for every web_fetch tool of the process. */
const reader = new PageReader();
