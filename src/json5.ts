/**
 * A JSON5 reader (https://spec.json5.org): the format OpenClaw reads
 * `openclaw.json` in, so a file its owner edited by hand (comments, trailing
 * commas, unquoted keys, single-quoted strings) can be merged into as OpenClaw
 * itself does. Values only: comments are not kept (OpenClaw's own writes drop
 * them too). `Infinity` and `NaN` are refused, since JSON cannot write them
 * back. Errors say where, never the text there (it may be a token).
 */

export type Json5Value = null | boolean | number | string | Json5Value[] | { [key: string]: Json5Value };

export class Json5Error extends Error {}

/** JSON5 whitespace: JSON's, plus VT, FF, NBSP, the line and paragraph separators, BOM and Unicode spaces. */
const SPACE = /[\t\n\v\f\r \u00a0\u2028\u2029\ufeff\p{Zs}]/u;
const LINE_END = /[\n\r\u2028\u2029]/;
const ID_START = /[\p{L}\p{Nl}$_]/u;
const ID_PART = /[\p{L}\p{Nl}\p{Mn}\p{Mc}\p{Nd}\p{Pc}$_\u200c\u200d]/u;
const NUMBER = /^[+-]?(?:0[xX][0-9a-fA-F]+|(?:(?:0|[1-9]\d*)(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)/;
const SINGLE_ESCAPES: Record<string, string> = {
  b: '\b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
  v: '\v',
  '0': '\0',
};

export function parseJson5(text: string): Json5Value {
  let i = 0;

  const fail = (what: string): never => {
    const before = text.slice(0, i);
    const line = before.split(/\r\n|[\n\r\u2028\u2029]/).length;
    const column = i - Math.max(...['\n', '\r', '\u2028', '\u2029'].map((c) => before.lastIndexOf(c)));
    throw new Json5Error(`${what} at line ${line} column ${column}`);
  };

  const skip = (): void => {
    for (;;) {
      const c = text[i];
      if (c !== undefined && SPACE.test(c)) i++;
      else if (text.startsWith('//', i)) while (i < text.length && !LINE_END.test(text[i] ?? '')) i++;
      else if (text.startsWith('/*', i)) {
        const end = text.indexOf('*/', i + 2);
        if (end < 0) fail('unterminated comment');
        i = end + 2;
      } else return;
    }
  };

  const hex = (n: number): string => {
    const digits = text.slice(i, i + n);
    if (!new RegExp(`^[0-9a-fA-F]{${n}}$`).test(digits)) fail('bad escape');
    i += n;
    return String.fromCharCode(Number.parseInt(digits, 16));
  };

  const string = (): string => {
    const quote = text[i++];
    let out = '';
    for (;;) {
      const c = text[i];
      if (c === undefined) return fail('unterminated string');
      if (c === quote) {
        i++;
        return out;
      }
      if (c === '\n' || c === '\r') fail('line break in a string');
      i++;
      if (c !== '\\') {
        out += c;
        continue;
      }
      const e = text[i++];
      if (e === undefined) return fail('unterminated string');
      if (e === '\r') {
        if (text[i] === '\n') i++;
      } else if (e === 'x') out += hex(2);
      else if (e === 'u') out += hex(4);
      else if (e === '0' && /\d/.test(text[i] ?? '')) fail('bad escape');
      else if (/[1-9]/.test(e)) fail('bad escape');
      else if (!LINE_END.test(e)) out += SINGLE_ESCAPES[e] ?? e;
    }
  };

  const identifier = (): string => {
    let out = '';
    for (;;) {
      const c = text[i];
      if (c === '\\') {
        if (text[i + 1] !== 'u') fail('bad escape');
        i += 2;
        out += hex(4);
      } else if (c !== undefined && (out ? ID_PART : ID_START).test(c)) {
        out += c;
        i++;
      } else if (!out) return fail('expected a property name');
      else return out;
    }
  };

  const value = (): Json5Value => {
    skip();
    const c = text[i];
    if (c === '{') {
      i++;
      // Own properties, `__proto__` included, as JSON.parse makes them.
      const obj: { [key: string]: Json5Value } = {};
      for (;;) {
        skip();
        if (text[i] === '}') {
          i++;
          return obj;
        }
        const key = text[i] === '"' || text[i] === "'" ? string() : identifier();
        skip();
        if (text[i] !== ':') fail("expected ':'");
        i++;
        Object.defineProperty(obj, key, {
          value: value(),
          enumerable: true,
          writable: true,
          configurable: true,
        });
        skip();
        if (text[i] === ',') i++;
        else if (text[i] !== '}') fail("expected ',' or '}'");
      }
    }
    if (c === '[') {
      i++;
      const arr: Json5Value[] = [];
      for (;;) {
        skip();
        if (text[i] === ']') {
          i++;
          return arr;
        }
        arr.push(value());
        skip();
        if (text[i] === ',') i++;
        else if (text[i] !== ']') fail("expected ',' or ']'");
      }
    }
    if (c === '"' || c === "'") return string();
    for (const [word, v] of [
      ['null', null],
      ['true', true],
      ['false', false],
    ] as const) {
      if (text.startsWith(word, i) && !ID_PART.test(text[i + word.length] ?? '')) {
        i += word.length;
        return v;
      }
    }
    if (/^[+-]?(?:Infinity|NaN)/.test(text.slice(i, i + 9))) fail('Infinity or NaN (JSON cannot hold it)');
    const number = NUMBER.exec(text.slice(i, i + 400));
    if (number && !ID_PART.test(text[i + number[0].length] ?? '')) {
      i += number[0].length;
      const n = number[0];
      const unsigned = n.replace(/^[+-]/, '');
      const magnitude = /^0[xX]/.test(unsigned) ? Number.parseInt(unsigned, 16) : Number(unsigned);
      return n.startsWith('-') ? -magnitude : magnitude;
    }
    return fail(c === undefined ? 'unexpected end' : 'unexpected character');
  };

  const result = value();
  skip();
  if (i < text.length) fail('unexpected character after the end');
  return result;
}
