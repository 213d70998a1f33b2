import { isUtf8 } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { errorCodes, type FastifyInstance, type FastifyRequest } from 'fastify';
import { BrainstemError } from '../../src/errors.js';

/** Far above any real request (a tool's JSON Schema nests a dozen levels), far below what overflows a stack. */
const MAX_JSON_DEPTH = 64;

/**
 * A string literal this long (an image's base64) is not put through
 * JSON.parse: it is decoded from the body's bytes straight into its own
 * string, so the body exists once as bytes and once as its parsed strings,
 * not also as one whole text in between.
 */
const LIFTED_STRING_BYTES = 64 * 1024;

/**
 * The JSON body parser. It reads the body into one Buffer (sized from
 * content-length, grown only for a chunked body) instead of fastify's list of
 * chunks plus their joined copy plus a text copy, checks the nesting on the
 * bytes (a 10,000-deep array parses, but blows the stack of whatever walks it
 * later: JSON.stringify to a brain), lifts its long plain string literals out
 * (see LIFTED_STRING_BYTES), and parses the rest with fastify's own JSON
 * parser (its `__proto__` and `constructor` guards and errors). The body
 * limit and content-length checks are fastify's, with its error codes, so the
 * error handler answers them as before (413 that a client can read, 400).
 */
export function installJsonParser(app: FastifyInstance): void {
  const fastifyParse = app.getDefaultJsonParser('error', 'error');
  // fastify's parser says only that the body is not valid JSON: the reason is found again here, in
  // the text the client sent (`sent`: the parsed one may have markers in place of long strings).
  const parse = (request: FastifyRequest, text: string, sent: () => string, done: ParseDone) =>
    fastifyParse(request, text, (error, value) => {
      if ((error as { code?: string } | null)?.code === 'FST_ERR_CTP_INVALID_JSON_BODY') {
        done(new BrainstemError('BAD_JSON', jsonProblem(sent())), undefined);
      } else done(error, value);
    });
  app.removeContentTypeParser('application/json');
  // fastify would hand a text/plain body to the routes as a string.
  app.removeContentTypeParser('text/plain');
  app.addContentTypeParser('application/json', (request, payload, done) => {
    // No route takes it: its answer is that 404, not what is wrong with a body nobody reads.
    if (request.is404) {
      done(null, undefined);
      return;
    }
    const refused = unreadableBody(request);
    if (refused) {
      done(refused, undefined);
      return;
    }
    readBody(request, payload as Readable, (err, body) => {
      if (err || !body) {
        done(err ?? new errorCodes.FST_ERR_CTP_EMPTY_JSON_BODY(), undefined);
        return;
      }
      // Decoding would put U+FFFD in place of each broken byte and change the text without a word.
      if (!isUtf8(body)) {
        done(new BrainstemError('BAD_JSON', notUtf8(body)), undefined);
        return;
      }
      const scan = scanJson(body, MAX_JSON_DEPTH);
      if (scan === 'too-deep') {
        done(
          new BrainstemError(
            'JSON_TOO_DEEP',
            `The request body is nested deeper than ${MAX_JSON_DEPTH} levels of arrays and objects; flatten it.`,
          ),
          undefined,
        );
        return;
      }
      if (scan.length === 0) {
        const whole = body.toString('utf8');
        release(body);
        parse(request, whole, () => whole, refuseHalfCharacters(whole, done));
        return;
      }
      const { text, strings, mark } = liftStrings(body, scan);
      release(body);
      // Lifted strings are decoded from valid UTF-8 bytes, which cannot hold half a character.
      parse(
        request,
        text,
        () => unlift(text, mark, strings),
        refuseHalfCharacters(text, (error, value) => {
          done(error, error ? undefined : putBack(value, mark, strings));
        }),
      );
    });
  });
}

/** What is taken before the body's bytes show its declared length is real. */
const FIRST_BUFFER_BYTES = 1024 * 1024;

/** `ArrayBuffer.prototype.transfer` (ES2024): Node 24 has it, Node 20 does not. */
type DetachableBuffer = ArrayBuffer & { transfer?: (length: number) => ArrayBuffer };

/**
 * Gives back the memory of a body buffer whose bytes are no longer needed
 * (decoded into their strings, or copied into a bigger buffer). The Buffer
 * lived through the whole upload, so V8 would keep it until a full collection.
 * Node 24 frees it at once (`transfer(0)` detaches it and drops its bytes):
 * there, the decoded strings live outside V8's heap, collections are rare, and
 * four image turns at once held ~3x their bytes, not ~2x. Node 20 hands the
 * bytes to a fresh ArrayBuffer nothing refers to, gone at the next minor
 * collection.
 */
function release(bytes: Buffer): void {
  const memory = bytes.buffer as DetachableBuffer;
  // Never a slice of Node's shared pool (a small body's first buffer is one).
  if (memory.byteLength <= Buffer.poolSize) return;
  if (memory.transfer) memory.transfer(0);
  else structuredClone(memory, { transfer: [memory] });
}

/**
 * Frees a chunk of the body once its bytes are copied, where Node can (24: see
 * release). node:http hands each chunk over in an ArrayBuffer of its own,
 * malloc'd, which otherwise waits for a garbage collection: on Node 24 four
 * 6 MB uploads at once held ~1.6x their bytes while they arrived, the chunks
 * beside the body buffers. Only a chunk read from the request itself, not from
 * a stream a hook put in its place (which may keep what it passes on), that no
 * other listener was handed, and that is the whole of its ArrayBuffer, so never
 * a slice of Buffer's shared pool (a pooled Buffer is under half the pool's size).
 */
function dropChunk(chunk: Buffer, listeners: number): void {
  const memory = chunk.buffer as DetachableBuffer;
  if (!memory.transfer || listeners !== 1) return;
  if (chunk.byteOffset !== 0 || memory.byteLength !== chunk.length) return;
  memory.transfer(0);
}

type BodyDone = (err: Error | null, body?: Buffer) => void;

/**
 * The body as one Buffer. Each chunk is copied in as it comes and dropped; a
 * body over the route's limit (by content-length or by what arrives) and one
 * whose length differs from its content-length fail with fastify's errors.
 */
function readBody(request: FastifyRequest, payload: Readable | undefined, done: BodyDone): void {
  const limit = request.routeOptions.bodyLimit ?? Number.POSITIVE_INFINITY;
  const declared = Number(request.headers['content-length']);
  if (declared > limit) {
    done(new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE());
    return;
  }
  const stream = payload ?? request.raw;
  const known = Number.isInteger(declared) && declared >= 0;
  // Not all of a declared length up front: a client that says 25 MB and sends nothing holds 1 MiB.
  let buffer = Buffer.allocUnsafe(known ? Math.min(declared, FIRST_BUFFER_BYTES) : 64 * 1024);
  let length = 0;
  const finish = (err: Error | null, body?: Buffer) => {
    stream.removeListener('data', onData);
    stream.removeListener('end', onEnd);
    stream.removeListener('error', onError);
    done(err, body);
  };
  const onData = (chunk: Buffer | string) => {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    if (length + bytes.length > limit) {
      finish(new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE());
      return;
    }
    if (length + bytes.length > buffer.length) {
      // To the declared length once the body passes 1 MiB; past it (refused at the end) or chunked, by doubling.
      const wanted = known && declared > buffer.length ? declared : buffer.length * 2;
      const grown = Buffer.allocUnsafe(Math.min(limit, Math.max(wanted, length + bytes.length)));
      buffer.copy(grown, 0, 0, length);
      release(buffer);
      buffer = grown;
    }
    bytes.copy(buffer, length);
    length += bytes.length;
    if (bytes === chunk && stream === request.raw) dropChunk(bytes, stream.listenerCount('data'));
  };
  const onEnd = () => {
    if (!Number.isNaN(declared) && length !== declared) {
      finish(new errorCodes.FST_ERR_CTP_INVALID_CONTENT_LENGTH());
      return;
    }
    finish(null, length === 0 ? undefined : buffer.subarray(0, length));
  };
  const onError = (err: Error & { statusCode?: number }) => {
    if (!(typeof err.statusCode === 'number' && err.statusCode >= 400)) err.statusCode = 400;
    finish(err);
  };
  stream.on('data', onData);
  stream.on('end', onEnd);
  stream.on('error', onError);
  stream.resume();
}

/** A long string literal's place in the body: from after its opening quote to its closing quote. */
interface Span {
  start: number;
  end: number;
}

/**
 * One pass over the bytes: too deep, or the long string literals to lift (no
 * backslash or control character in them, so their bytes are their text).
 * Malformed JSON is left to the parser.
 */
function scanJson(body: Buffer, limit: number): Span[] | 'too-deep' {
  const spans: Span[] = [];
  let depth = 0;
  for (let i = 0; i < body.length; i++) {
    const c = body[i] as number;
    if (c === 0x22) {
      const start = i + 1;
      let plain = true;
      for (i = start; i < body.length; i++) {
        const s = body[i] as number;
        if (s === 0x22) break;
        if (s === 0x5c) {
          plain = false;
          i++; // a backslash escapes the next character, a quote included
        } else if (s < 0x20) plain = false;
      }
      if (plain && i < body.length && i - start >= LIFTED_STRING_BYTES && !isKey(body, i + 1)) {
        spans.push({ start, end: i });
      }
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > limit) return 'too-deep';
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return spans;
}

/** Whether the string literal that closed before `at` is an object key (a colon follows). */
function isKey(body: Buffer, at: number): boolean {
  let i = at;
  while (i < body.length && (body[i] === 0x20 || body[i] === 0x0a || body[i] === 0x0d || body[i] === 0x09))
    i++;
  return body[i] === 0x3a;
}

/**
 * The body's text with each lifted literal replaced by a short marker (a
 * per-request random prefix no client can forge, and its index), and the
 * lifted strings decoded from the bytes. Cuts fall on quotes, so no UTF-8
 * character is split.
 */
function liftStrings(body: Buffer, spans: Span[]): { text: string; strings: string[]; mark: string } {
  const mark = `\u0000bst-${randomBytes(12).toString('hex')}:`;
  const strings: string[] = [];
  const parts: string[] = [];
  let from = 0;
  spans.forEach((span, k) => {
    parts.push(body.toString('utf8', from, span.start), `\\u0000${mark.slice(1)}${k}`);
    strings.push(body.toString('utf8', span.start, span.end));
    from = span.end;
  });
  parts.push(body.toString('utf8', from));
  return { text: parts.join(''), strings, mark };
}

/** The body's text again from its lifted form (its literals are plain: their text is their JSON). */
function unlift(text: string, mark: string, strings: string[]): string {
  const marker = new RegExp(`\\\\u0000${mark.slice(1)}(\\d+)`, 'g');
  return text.replace(marker, (_, k: string) => strings[Number(k)] ?? '');
}

/** The parsed value with every marker string replaced by the string it stands for. */
function putBack(value: unknown, mark: string, strings: string[]): unknown {
  if (typeof value === 'string') {
    return value.startsWith(mark) ? strings[Number(value.slice(mark.length))] : value;
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = putBack(value[i], mark, strings);
  } else if (value && typeof value === 'object') {
    const record = value as Record<string, unknown>;
    for (const key of Object.keys(record)) record[key] = putBack(record[key], mark, strings);
  }
  return value;
}

type ParseDone = (error: Error | null, value?: unknown) => void;

/** A `\\uD800`–`\\uDFFF` escape: the only way a JSON text can hold half of a UTF-16 surrogate pair. */
const SURROGATE_ESCAPE = /\\u[dD][89a-fA-F]/;

/**
 * Refuses a body whose parsed strings hold half of a surrogate pair (`"\\ud83d"`
 * alone: an emoji cut in two). JSON.parse takes it, but llama-server, the
 * Messages API and Telegram all refuse it, some with a 500 that a client
 * retries; here it is a 400 that names where it is.
 */
function refuseHalfCharacters(text: string, done: ParseDone): ParseDone {
  return (error, value) => {
    const at = error || !SURROGATE_ESCAPE.test(text) ? undefined : halfCharacterAt(value, '');
    if (at === undefined) {
      done(error, value);
      return;
    }
    done(
      new BrainstemError(
        'BAD_JSON',
        `The request body holds half of a character at ${at || 'its top level'}: a lone UTF-16 surrogate (such as "\\ud83d" without the "\\ude00" that completes it), which llama-server, the Messages API and Telegram all refuse. Send whole characters.`,
      ),
    );
  };
}

/** Where the first string (or key) holding a lone surrogate is, as `messages[1].content`; undefined if none. */
function halfCharacterAt(value: unknown, path: string): string | undefined {
  if (typeof value === 'string') return isWellFormed(value) ? undefined : path;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const at = halfCharacterAt(value[i], `${path}[${i}]`);
      if (at !== undefined) return at;
    }
  } else if (value && typeof value === 'object') {
    for (const [key, v] of Object.entries(value)) {
      const here = path ? `${path}.${key}` : key;
      if (!isWellFormed(key)) return `a key of ${path || 'the top level'}`;
      const at = halfCharacterAt(v, here);
      if (at !== undefined) return at;
    }
  }
  return undefined;
}

/** `String.prototype.isWellFormed` (ES2024, in Node 20 and 24; not yet in the ES2022 lib this is typed with). */
const isWellFormed = (text: string): boolean => (text as string & { isWellFormed(): boolean }).isWellFormed();

/** Why fastify refused a body: JSON.parse's reason (with its position), or a key its guard refuses. */
function jsonProblem(text: string): string {
  try {
    JSON.parse(text);
    return 'The request body holds a "__proto__" or "constructor.prototype" key, which brainstem refuses.';
  } catch (err) {
    return `The request body is not valid JSON: ${(err as Error).message}.`;
  }
}

/**
 * Why a body is refused before it is read: compressed (fastify hands the bytes
 * on as they came, so JSON.parse would fail on them), or declared in a charset
 * other than UTF-8, which JSON exchanged between systems must be (RFC 8259).
 */
function unreadableBody(request: FastifyRequest): BrainstemError | undefined {
  const encoding = String(request.headers['content-encoding'] ?? '').trim();
  if (encoding !== '' && encoding.toLowerCase() !== 'identity') {
    return new BrainstemError(
      'UNSUPPORTED_MEDIA_TYPE',
      `The request body is sent with Content-Encoding: ${encoding}, which brainstem does not decode; send it uncompressed, without that header.`,
    );
  }
  const charset = /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(String(request.headers['content-type'] ?? ''))?.[1];
  if (charset !== undefined && !/^utf-?8$/i.test(charset)) {
    return new BrainstemError(
      'UNSUPPORTED_MEDIA_TYPE',
      `The request body is declared as charset=${charset}; JSON is read as UTF-8 only: send it in UTF-8 (charset=utf-8, or no charset).`,
    );
  }
  return undefined;
}

/** Where a body that is not UTF-8 first breaks, and its bytes there, for a message the client can act on. */
function notUtf8(body: Buffer): string {
  const at = firstBrokenCharacter(body);
  const bytes = [...body.subarray(at, at + 4)].map((b) => b.toString(16).padStart(2, '0')).join(' ');
  return `The request body is not valid UTF-8: the bytes at offset ${at} (${bytes}) are not a whole character (a character cut in two, or text in another encoding such as Latin-1). Send the JSON as UTF-8.`;
}

/** The offset of the first byte that does not start a well-formed UTF-8 character (RFC 3629's table). */
function firstBrokenCharacter(body: Buffer): number {
  let i = 0;
  while (i < body.length) {
    const lead = body[i] as number;
    const more =
      lead < 0x80 ? 0 : lead < 0xc2 ? -1 : lead < 0xe0 ? 1 : lead < 0xf0 ? 2 : lead < 0xf5 ? 3 : -1;
    if (more < 0) return i;
    // The second byte's range also rules out overlong forms, surrogates and code points past U+10FFFF.
    const low = lead === 0xe0 ? 0xa0 : lead === 0xf0 ? 0x90 : 0x80;
    const high = lead === 0xed ? 0x9f : lead === 0xf4 ? 0x8f : 0xbf;
    for (let k = 1; k <= more; k++) {
      const b = body[i + k];
      if (b === undefined || b < (k === 1 ? low : 0x80) || b > (k === 1 ? high : 0xbf)) return i;
    }
    i += more + 1;
  }
  return body.length;
}
