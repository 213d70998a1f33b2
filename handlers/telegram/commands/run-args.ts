/**
 * The arguments of `/run <tool> …`, in one of two forms:
 *
 *   /run read_file {"path": "/srv/notes.txt"}      one JSON object
 *   /run git_log max=5                             key=value pairs
 *   /run read_file path="/srv/my notes.txt"        a quoted value may hold spaces
 *   /run incus_exec instance=web command=["uptime"]
 *
 * A bare value that reads as JSON (a number, true, false, null, an array, an
 * object) is that value; any other bare value, and every quoted one ("…",
 * '…', or the “…” a phone keyboard types), is a string. Only the shape is
 * checked here: the tool's schema validates the values and names the field.
 */

import { type Lang, t } from '../../../src/i18n.js';
import { shorten } from '../../../src/text.js';

export type ParsedArgs = { ok: true; input: Record<string, unknown> } | { ok: false; error: string };

const KEY = /^[A-Za-z_][\w.-]*/;
const NUMBER = /^-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?$/;
const CLOSING: Record<string, string> = { '"': '"', "'": "'", '“': '”', '”': '”', '«': '»' };

/** `lang`: the reader's, for the errors. */
export function parseRunArgs(text: string, lang: Lang): ParsedArgs {
  const rest = text.trim();
  if (!rest) return { ok: true, input: {} };
  if (rest.startsWith('{')) return parseJsonObject(rest, lang);
  const input: Record<string, unknown> = {};
  let i = 0;
  while (i < rest.length) {
    const key = KEY.exec(rest.slice(i))?.[0];
    if (!key || rest[i + key.length] !== '=') {
      // Shown back short: the word may be the whole of a long message.
      const token = shorten(rest.slice(i).split(/\s/, 1)[0] ?? '', 80);
      return {
        ok: false,
        error: t(
          lang,
          `expected key=value or one JSON object, got “${token}”`,
          `attendu : clé=valeur ou un objet JSON, reçu « ${token} »`,
        ),
      };
    }
    if (Object.hasOwn(input, key))
      return { ok: false, error: t(lang, `${key}: given twice`, `${key} : donné deux fois`) };
    i += key.length + 1;
    const value = readValue(rest, i, lang);
    if ('error' in value) return { ok: false, error: `${key}${t(lang, ':', ' :')} ${value.error}` };
    // An own property whatever the key: `input.__proto__ = …` would set the prototype and the
    // argument would vanish instead of being refused by the tool's schema as a field it lacks.
    Object.defineProperty(input, key, {
      value: value.value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
    i = value.end;
    while (i < rest.length && /\s/.test(rest[i] ?? '')) i++;
  }
  return { ok: true, input };
}

function parseJsonObject(text: string, lang: Lang): ParsedArgs {
  // Phone keyboards turn straight quotes into curly ones; JSON only knows the straight kind.
  for (const candidate of [text, text.replace(/[\u201c\u201d]/g, '"')]) {
    try {
      const value: unknown = JSON.parse(candidate);
      if (value && typeof value === 'object' && !Array.isArray(value))
        return { ok: true, input: value as Record<string, unknown> };
      return {
        ok: false,
        error: t(
          lang,
          'the JSON arguments must be one object, e.g. {"path": "/x"}',
          'les arguments JSON doivent être un seul objet, par exemple {"path": "/x"}',
        ),
      };
    } catch {
      // Tried again with straight quotes; the error below names the problem.
    }
  }
  return {
    ok: false,
    error: t(
      lang,
      'the arguments start with “{” but are not a valid JSON object',
      'les arguments commencent par « { » mais ne sont pas un objet JSON valide',
    ),
  };
}

type Value = { value: unknown; end: number } | { error: string };

/** The value starting at `from`: quoted, JSON-bracketed, or a bare word up to the next space. */
function readValue(text: string, from: number, lang: Lang): Value {
  const first = text[from] ?? '';
  const close = CLOSING[first];
  if (close) return readQuoted(text, from + 1, close, lang);
  if (first === '[' || first === '{') {
    const end = bracketEnd(text, from);
    if (end === -1) return { error: t(lang, `unclosed “${first}”`, `« ${first} » non fermé`) };
    try {
      return { value: JSON.parse(text.slice(from, end)), end };
    } catch (err) {
      return {
        error: t(
          lang,
          `not valid JSON (${(err as Error).message})`,
          `JSON non valide (${(err as Error).message})`,
        ),
      };
    }
  }
  const word = text.slice(from).split(/\s/, 1)[0] ?? '';
  if (!word)
    return {
      error: t(
        lang,
        'no value after “=” (quote an empty string: "")',
        'pas de valeur après « = » (une chaîne vide s’écrit "")',
      ),
    };
  const end = from + word.length;
  if (NUMBER.test(word)) return { value: Number(word), end };
  if (word === 'true' || word === 'false') return { value: word === 'true', end };
  if (word === 'null') return { value: null, end };
  return { value: word, end };
}

/** A quoted string; inside "…", a backslash keeps the next character as it is. */
function readQuoted(text: string, from: number, close: string, lang: Lang): Value {
  let value = '';
  for (let i = from; i < text.length; i++) {
    const ch = text[i] ?? '';
    if (ch === close) return { value, end: i + 1 };
    if (ch === '\\' && close === '"' && i + 1 < text.length) {
      value += text[++i];
      continue;
    }
    value += ch;
  }
  return { error: t(lang, `unclosed quote ${close}`, `guillemet ${close} non fermé`) };
}

/** Where the JSON array or object starting at `from` ends (past its closing bracket), or -1. */
function bracketEnd(text: string, from: number): number {
  let depth = 0;
  let inString = false;
  for (let i = from; i < text.length; i++) {
    const ch = text[i];
    if (inString) {
      if (ch === '\\') i++;
      else if (ch === '"') inString = false;
    } else if (ch === '"') inString = true;
    else if (ch === '[' || ch === '{') depth++;
    else if ((ch === ']' || ch === '}') && --depth === 0) return i + 1;
  }
  return -1;
}
