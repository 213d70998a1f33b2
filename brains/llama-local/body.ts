import { randomBytes } from 'node:crypto';

/**
 * A request body as JSON, sent in pieces: the long strings of a request (an
 * image's base64 data URL, megabytes) go out in slices of their own text
 * instead of being copied into one whole JSON string and then into a Buffer
 * of it, so a turn with images adds no copy of them on its way upstream.
 * The slices stay strings: the socket copies each into native memory it frees
 * as soon as the write is done, where a Buffer per slice is garbage that waits
 * for a collection: on Node 24, where a turn's decoded image lives outside
 * V8's heap and collections are rare, four image turns at once grew memory by
 * 2.0-2.4x their bytes with Buffers and 1.8-2.1x with strings.
 */

/** Strings this long are sent in slices rather than copied into the JSON text. */
const SLICED_STRING_CHARS = 64 * 1024;
const SLICE_CHARS = 64 * 1024;

/** Printable ASCII but `"` and `\`: text JSON writes as it is, one byte a character. */
const NEEDS_ESCAPE = /[^\x20\x21\x23-\x5b\x5d-\x7e]/;

export interface JsonBody {
  /** Its length in bytes (for content-length: llama-server and Ollama get no chunked body). */
  length: number;
  /**
   * The whole text, when no string was long enough to slice (a turn without
   * images): sent as one Buffer, it leaves in the same write as the headers,
   * where a stream of pieces costs a write of its own (~1 ms to the first
   * token on a busy machine).
   */
  whole: Buffer | undefined;
  pieces: () => AsyncGenerator<Buffer | string>;
}

export function jsonBody(value: unknown): JsonBody {
  // Drawn on the first long string only: a turn without one is sent whole and needs no mark.
  let mark: string | undefined;
  const strings: string[] = [];
  const text = JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v !== 'string' || v.length < SLICED_STRING_CHARS || NEEDS_ESCAPE.test(v)) return v;
    mark ??= `\u0000bst-${randomBytes(12).toString('hex')}:`;
    strings.push(v);
    return `${mark}${strings.length - 1}`;
  });
  if (mark === undefined) {
    const whole = Buffer.from(text);
    return {
      length: whole.length,
      whole,
      pieces: async function* () {
        yield whole;
      },
    };
  }
  // JSON.stringify writes the marker's NUL as \u0000: the text between the quotes of a sliced string.
  const parts = text.split(new RegExp(`\\\\u0000${mark.slice(1)}\\d+`));
  const buffers = parts.map((p) => Buffer.from(p));
  const length = buffers.reduce((n, b) => n + b.length, 0) + strings.reduce((n, s) => n + s.length, 0);
  return {
    length,
    whole: undefined,
    pieces: async function* () {
      for (let k = 0; k < buffers.length; k++) {
        yield buffers[k] as Buffer;
        const s = strings[k];
        if (s === undefined) continue;
        for (let i = 0; i < s.length; i += SLICE_CHARS) yield s.slice(i, i + SLICE_CHARS);
      }
    },
  };
}
