import type { FastifyInstance } from 'fastify';
import { BrainstemError } from '../../src/errors.js';

/** Far above any real request (a tool's JSON Schema nests a dozen levels), far below what overflows a stack. */
const MAX_JSON_DEPTH = 64;

/**
 * fastify's JSON body parser (with its `__proto__` and `constructor` guards),
 * preceded by a nesting check on the raw text: a 10,000-deep array parses,
 * but blows the stack of whatever walks it later (JSON.stringify to a brain).
 */
export function installJsonParser(app: FastifyInstance): void {
  const parse = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = body as string;
    if (nestedDeeperThan(text, MAX_JSON_DEPTH)) {
      done(
        new BrainstemError(
          'JSON_TOO_DEEP',
          `The request body is nested deeper than ${MAX_JSON_DEPTH} levels of arrays and objects; flatten it.`,
        ),
        undefined,
      );
      return;
    }
    parse(request, text, done);
  });
}

/** Counts `[` and `{` outside strings, stopping as soon as the limit is passed; malformed JSON is left to the parser. */
function nestedDeeperThan(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // a backslash escapes the next character, a quote included
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > limit) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}
