import { readFileSync, realpathSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';

/**
 * OpenClaw's `$include` in `openclaw.json`, as OpenClaw 2026.9 reads it
 * (docs/gateway/config-secrets-env.md, "Config includes"), so that
 * `openclaw-config --apply` decides on the settings OpenClaw will see and
 * writes each change into the file that holds it:
 * - `{ "$include": "./a.json5" }`: the file's content replaces the object;
 * - `{ "$include": ["./a.json5", "./b.json5"] }`: the files deep-merged in order;
 * - keys beside `$include` are deep-merged over the included content; in
 *   both merges arrays are concatenated, not replaced;
 * - paths are relative to the including file, and must stay (after symlinks)
 *   in the directory of `openclaw.json` or one of `OPENCLAW_INCLUDE_ROOTS`;
 * - up to 10 levels, no cycles, at most 2 MB a file.
 */

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

const INCLUDE = '$include';
const MAX_DEPTH = 10;
const MAX_FILE_BYTES = 2 * 1024 * 1024;

/** An `$include` brainstem cannot follow (missing, outside the config directory, a cycle): nothing is written. */
export class IncludeError extends Error {
  override name = 'IncludeError';
}

/** An included file, as read and as it resolves. */
export interface IncludedFile {
  /** Its path as OpenClaw resolves it (against the including file's directory). */
  file: string;
  /** Its content as written (its own `$include`s unresolved). */
  authored: Json;
  /** Whether it was JSON5 rather than JSON. */
  json5: boolean;
  /** Its content as OpenClaw sees it. */
  resolved: Json;
  /** The settings it is included at (`models`, `channels.telegram`): a file included twice is both. */
  at: string[];
  /** Inside the config directory (not only in OPENCLAW_INCLUDE_ROOTS, which OpenClaw keeps read-only too). */
  writable: boolean;
}

/** A file's text read as a JSON value (JSON, else JSON5), or an Error saying why not. */
export type ParseFile = (text: string, file: string) => { value: Json; json5: boolean };

interface Root {
  dir: string;
  real: string;
}

function rootOf(dir: string): Root {
  const normal = path.normalize(dir);
  let real = normal;
  try {
    real = realpathSync(normal);
  } catch {
    // A root that does not exist holds no file: its lexical path is checked alone.
  }
  return { dir: normal, real };
}

function inside(root: string, candidate: string): boolean {
  const rel = path.relative(root, candidate);
  // `..` as a whole first segment: a file of the directory named `..shared.json5` is in it.
  return rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel);
}

/**
 * `value` (the parsed `openclaw.json` at `configPath`, its path as OpenClaw is
 * given it: includes resolve against it, not a symlink's target) with every
 * `$include` resolved, and the files it included. `overlay` stands for files'
 * contents not written yet (the check of what a write would make).
 */
export function resolveIncludes(
  value: Json,
  configPath: string,
  env: NodeJS.ProcessEnv,
  parse: ParseFile,
  overlay: ReadonlyMap<string, Json> = new Map(),
): { value: Json; files: Map<string, IncludedFile>; siblings: WeakMap<JsonObject, JsonObject> } {
  const root = rootOf(path.dirname(path.resolve(configPath)));
  const extra = includeRoots(env).map((r) => rootOf(r.dir));
  const files = new Map<string, IncludedFile>();
  const siblings = new WeakMap<JsonObject, JsonObject>();
  /** Each included file's path after symlinks: two names of one file are one file (see below). */
  const reals = new Map<string, string>();

  const load = (name: string, base: string, at: string[], depth: number, seen: string[]): Json => {
    const where = `$include "${name}" in ${base}`;
    if (name.includes('\0') || name.length >= 4096) throw new IncludeError(`${where}: not a usable path`);
    const file = path.normalize(path.resolve(path.dirname(base), name));
    const lexical = [root, ...extra].find((r) => inside(r.dir, file));
    if (!lexical)
      throw new IncludeError(
        `${where} is outside ${root.dir}, which OpenClaw refuses too (OPENCLAW_INCLUDE_ROOTS allows more directories)`,
      );
    let real: string;
    try {
      real = overlay.has(file) ? file : realpathSync(file);
    } catch (e) {
      throw new IncludeError(`${where}: ${file} cannot be read (${(e as NodeJS.ErrnoException).code})`);
    }
    const confined = [root, ...extra].find((r) => inside(r.real, real) || inside(r.dir, real));
    if (!confined) throw new IncludeError(`${where}: ${file} is a symlink to ${real}, outside ${root.dir}`);
    if (seen.includes(file))
      throw new IncludeError(`${where}: a cycle of $include (${[...seen, file].join(' → ')})`);
    if (depth >= MAX_DEPTH) throw new IncludeError(`${where}: more than ${MAX_DEPTH} levels of $include`);
    let authored: Json;
    let json5 = false;
    const planned = overlay.get(file);
    if (planned !== undefined) authored = planned;
    else {
      let text: string;
      try {
        if (statSync(real).size > MAX_FILE_BYTES)
          throw new IncludeError(`${where}: ${file} is larger than OpenClaw's 2 MB for an included file`);
        text = readFileSync(real, 'utf8');
      } catch (e) {
        if (e instanceof IncludeError) throw e;
        throw new IncludeError(`${where}: ${file} cannot be read (${(e as NodeJS.ErrnoException).code})`);
      }
      try {
        ({ value: authored, json5 } = parse(text, file));
      } catch (e) {
        throw new IncludeError(`${where}: ${(e as Error).message}`);
      }
    }
    reals.set(file, real);
    const resolved = resolve(authored, file, at, depth + 1, [...seen, file]);
    const known = files.get(file);
    if (known) known.at.push(at.join('.'));
    else
      files.set(file, {
        file,
        authored,
        json5,
        resolved,
        at: [at.join('.')],
        writable: inside(root.dir, file) && (inside(root.real, real) || inside(root.dir, real)),
      });
    return resolved;
  };

  const resolve = (v: Json, base: string, at: string[], depth: number, seen: string[]): Json => {
    if (Array.isArray(v)) return v.map((x, i) => resolve(x, base, [...at, String(i)], depth, seen));
    if (!isObject(v)) return v;
    const entries = Object.entries(v).filter(([k]) => k !== INCLUDE);
    const inner = Object.fromEntries(entries.map(([k, x]) => [k, resolve(x, base, [...at, k], depth, seen)]));
    if (!Object.hasOwn(v, INCLUDE)) return inner;
    siblings.set(v, inner);
    const names = includeNames(v[INCLUDE]);
    if (!names)
      throw new IncludeError(`${label(at)} in ${base}: $include must be a file name or a list of file names`);
    const loaded = names.map((n) => load(n, base, at, depth, seen));
    const included = typeof v[INCLUDE] === 'string' ? loaded[0] : loaded.reduce<Json>(deepMerge, {});
    if (!entries.length) return included ?? null;
    if (!isObject(included))
      throw new IncludeError(
        `${label(at)} in ${base}: keys beside $include need the included content to be an object`,
      );
    return deepMerge(included, inner);
  };

  const main = path.resolve(configPath);
  const out = resolve(value, main, [], 0, [main]);
  // A file included under two names (a symlink to another included file) is included at both
  // settings: a change written through one name would be overwritten by the other's, written
  // from the content read before it (brainstem's provider lost, its model still the default).
  const own = new Map([...files.values()].map((f) => [f, [...f.at]]));
  for (const f of files.values()) {
    const same = [...files.values()].filter((g) => reals.get(g.file) === reals.get(f.file));
    if (same.length > 1)
      f.at = same.flatMap((g) => (own.get(g) ?? []).map((a) => (g === f ? a : `${a} (as ${g.file})`)));
  }
  return { value: out, files, siblings };
}

/**
 * A path as OpenClaw reads one it is given (a `tokenFile`, an OPENCLAW_INCLUDE_ROOTS entry): a
 * leading `~` is the home directory (OPENCLAW_HOME, else HOME, as OpenClaw takes it), which its
 * docs and setup write; read as is, `~/.openclaw/…` names nothing.
 */
export function openclawPath(file: string, env: NodeJS.ProcessEnv): string {
  if (file !== '~' && !file.startsWith('~/')) return file;
  const osHome = homeValue(env.HOME) ?? homedir();
  const set = homeValue(env.OPENCLAW_HOME);
  const home = !set ? osHome : set === '~' || set.startsWith('~/') ? path.join(osHome, set.slice(1)) : set;
  return path.join(home, file.slice(1));
}

/**
 * A path as OpenClaw's gateway resolves it (`path.resolve` after openclawPath): what is still
 * relative is taken against the gateway's working directory, not brainstem's. That is the home
 * directory of the user it runs as for the gateway service OpenClaw installs (`openclaw gateway
 * install`: a systemd user unit without `WorkingDirectory`, which systemd starts in the home
 * directory), the OS one (OPENCLAW_HOME moves `~`, not that).
 */
export function gatewayPath(file: string, env: NodeJS.ProcessEnv): { path: string; relative: boolean } {
  const expanded = openclawPath(file, env);
  if (path.isAbsolute(expanded)) return { path: path.normalize(expanded), relative: false };
  return { path: path.resolve(homeValue(env.HOME) ?? homedir(), expanded), relative: true };
}

/** A home directory variable as OpenClaw reads one (normalizeHomeDirValue): blank, `undefined` or `null` is unset. */
function homeValue(value: string | undefined): string | undefined {
  const trimmed = value?.trim();
  return trimmed && trimmed !== 'undefined' && trimmed !== 'null' ? trimmed : undefined;
}

/** What to say of a relative path brainstem took as the gateway takes it (gatewayPath). */
export function relativePathNote(what: string, given: string, resolved: string): string {
  return `${what} "${given}" is relative: OpenClaw resolves it against its gateway's working directory, the home directory for the service it installs (its systemd unit sets none), so it was taken as ${resolved}; an absolute path or ~/… names it whatever the directory`;
}

/**
 * The directories OPENCLAW_INCLUDE_ROOTS adds, as OpenClaw reads the list (resolveIncludeRoots):
 * entries split on the path delimiter, trimmed, `~` expanded (a unit file's Environment= or
 * OpenClaw's .env expands nothing), resolved, the same one once. A relative entry is resolved as
 * OpenClaw resolves it, against its gateway's working directory (gatewayPath), and marked so
 * that it can be said: left out, an include OpenClaw reads was refused as outside.
 */
export function includeRoots(env: NodeJS.ProcessEnv): { given: string; dir: string; relative: boolean }[] {
  const roots: { given: string; dir: string; relative: boolean }[] = [];
  for (const entry of (env.OPENCLAW_INCLUDE_ROOTS ?? '').split(path.delimiter)) {
    const given = entry.trim();
    if (!given) continue;
    const { path: dir, relative } = gatewayPath(given, env);
    if (!roots.some((r) => r.dir === dir)) roots.push({ given, dir, relative });
  }
  return roots;
}

function includeNames(directive: Json | undefined): string[] | undefined {
  if (typeof directive === 'string') return [directive];
  if (Array.isArray(directive) && directive.every((n) => typeof n === 'string')) return directive as string[];
  return undefined;
}

function label(at: readonly string[]): string {
  return at.length ? at.join('.') : 'the top level';
}

/** OpenClaw's merge of includes: objects key by key, arrays concatenated, anything else replaced. */
function deepMerge(base: Json, top: Json): Json {
  if (Array.isArray(base) && Array.isArray(top)) return [...base, ...top];
  if (!isObject(base) || !isObject(top)) return top;
  const out: JsonObject = { ...base };
  for (const [k, v] of Object.entries(top)) out[k] = k in out ? deepMerge(out[k] as Json, v) : v;
  return out;
}

/** A setting brainstem would have to change where it cannot write it without changing what OpenClaw reads otherwise. */
export interface Refusal {
  at: string[];
  why: string;
}

/**
 * Where each change from `before` to `after` (the whole config, resolved)
 * goes: `main`, the new content of `openclaw.json` as written (its
 * `$include`s kept), and `files`, the new content of each included file that
 * changes. A change goes to the file that holds the setting: through a
 * single-file `$include` (as OpenClaw's own writes do), to the one file of
 * an array, or to the keys beside `$include`, that holds it alone. What
 * several of them hold (a key both included and beside `$include`, in two
 * files of an array: arrays there would be concatenated), a file included at
 * two settings, one outside the config directory, or a `$include` that would
 * be replaced whole, is refused rather than flattened.
 */
export function placeChanges(
  main: Json,
  before: Json,
  after: Json,
  configPath: string,
  files: ReadonlyMap<string, IncludedFile>,
  siblingValues: WeakMap<JsonObject, JsonObject>,
): { main: Json; files: Map<string, Json>; refused: Refusal[] } {
  const next = new Map<string, Json>();
  const refused: Refusal[] = [];

  const toFile = (f: IncludedFile, b: Json, a: Json, at: string[]): void => {
    if (!f.writable) {
      refused.push({
        at,
        why: `it is in ${f.file}, outside OpenClaw's config directory, which OpenClaw does not write either`,
      });
      return;
    }
    if (f.at.length > 1) {
      refused.push({
        at,
        why: `it is in ${f.file}, which is included at ${f.at.join(' and ')}: a change there changes both`,
      });
      return;
    }
    next.set(f.file, place(next.get(f.file) ?? f.authored, b, a, at, f.file));
  };

  const place = (authored: Json, b: Json, a: Json, at: string[], file: string): Json => {
    if (equal(b, a)) return authored;
    if (isObject(authored) && Object.hasOwn(authored, INCLUDE)) return through(authored, b, a, at, file);
    if (isObject(authored) && isObject(b) && isObject(a)) {
      const out: JsonObject = {};
      for (const [k, x] of Object.entries(authored)) {
        if (!(k in a)) {
          if (hasInclude(x)) {
            refused.push({ at: [...at, k], why: `removing it would drop the $include in ${file}` });
            out[k] = x;
          }
          continue;
        }
        out[k] = place(x, b[k] as Json, a[k] as Json, [...at, k], file);
      }
      for (const [k, x] of Object.entries(a)) if (!(k in authored)) out[k] = x;
      return out;
    }
    if (hasInclude(authored)) {
      refused.push({
        at,
        why: `its value in ${file} has a $include, which writing the new value would drop`,
      });
      return authored;
    }
    return a;
  };

  /**
   * An object made of several sources (the files of its `$include`, the keys beside it): each
   * changed key goes to the one source that has it; a key several have, all with objects, is
   * looked into the same way; a new key goes to `fallback`.
   */
  type Slot =
    | { kind: 'file'; f: IncludedFile; sub: string[]; value: Json }
    | { kind: 'here'; sub: string[]; value: Json };

  const through = (authored: JsonObject, b: Json, a: Json, at: string[], file: string): Json => {
    const directive = authored[INCLUDE];
    const names = includeNames(directive) ?? [];
    const included = names.map((n) => files.get(path.normalize(path.resolve(path.dirname(file), n))));
    const siblings = Object.keys(authored).filter((k) => k !== INCLUDE);
    const single = typeof directive === 'string' ? included[0] : undefined;
    if (single && !siblings.length) {
      toFile(single, b, a, at);
      return authored;
    }
    const named = `the $include ${JSON.stringify(directive)} in ${file}`;
    if (!isObject(b) || !isObject(a) || included.some((f) => f === undefined)) {
      refused.push({ at, why: `${named} would be replaced whole` });
      return authored;
    }
    let out: JsonObject = { ...authored };
    const wants = new Map<IncludedFile, JsonObject>();
    const fileSlots = included.map(
      (f): Slot => ({ kind: 'file', f: f as IncludedFile, sub: [], value: (f as IncludedFile).resolved }),
    );
    const hereSlot: Slot = { kind: 'here', sub: [], value: siblingValues.get(authored) ?? {} };
    const slots = siblings.length ? [...fileSlots, hereSlot] : fileSlots;
    // A new setting: into the file that is the object, else beside the files, else the last file.
    const fallback = single ? fileSlots[0] : siblings.length ? hereSlot : fileSlots.at(-1);

    const apply = (
      slot: Slot,
      k: string,
      own: Json | undefined,
      want: Json | undefined,
      where: string[],
    ): void => {
      const keyAt = [...slot.sub, k];
      if (slot.kind === 'file') {
        const next = wants.get(slot.f) ?? (slot.f.resolved as JsonObject);
        wants.set(slot.f, setAt(next, keyAt, want));
        return;
      }
      const parent = valueAt(out, slot.sub);
      const had = isObject(parent) ? parent[k] : undefined;
      if (want === undefined) {
        if (had !== undefined && hasInclude(had))
          refused.push({ at: where, why: `removing it would drop the $include in ${file}` });
        else out = setAt(out, keyAt, undefined);
      } else out = setAt(out, keyAt, had === undefined ? want : place(had, own ?? null, want, where, file));
    };

    const spread = (
      from: Slot[],
      bv: JsonObject,
      av: JsonObject,
      where: string[],
      fall: Slot | undefined,
    ): void => {
      for (const k of new Set([...Object.keys(bv), ...Object.keys(av)])) {
        if (equal(bv[k], av[k])) continue;
        const owners = from.filter((s) => isObject(s.value) && k in s.value);
        if (!owners.length && fall) owners.push(fall);
        const [owner] = owners;
        const own = (s: Slot) => (isObject(s.value) ? s.value[k] : undefined);
        if (owners.length === 1 && owner) {
          apply(owner, k, own(owner), av[k], [...where, k]);
          continue;
        }
        // Several sources have it: look into it if all of them hold objects (a sibling's own
        // `$include` down there is not looked into).
        const bk = bv[k];
        const ak = av[k];
        const authoredBeside = (s: Slot) => (s.kind === 'here' ? valueAt(out, [...s.sub, k]) : undefined);
        if (
          isObject(bk) &&
          isObject(ak) &&
          owners.every(
            (s) =>
              isObject(own(s)) && !(isObject(authoredBeside(s)) && hasInclude(authoredBeside(s) as Json)),
          )
        ) {
          const children = owners.map((s): Slot => ({ ...s, sub: [...s.sub, k], value: own(s) as Json }));
          spread(
            children,
            bk,
            ak,
            [...where, k],
            children.find((s) => s.kind === 'file' && s.f === single) ?? children[0],
          );
          continue;
        }
        refused.push({
          at: [...where, k],
          why: `${named} and ${owners.some((s) => s.kind === 'here') ? 'the keys beside it' : 'more than one of its files'} both set it, which OpenClaw merges (arrays added together)`,
        });
      }
    };
    spread(slots, b, a, at, fallback);
    for (const [f, want] of wants) toFile(f, f.resolved, want, at);
    return out;
  };

  const out = place(main, before, after, [], path.resolve(configPath));
  return { main: out, files: next, refused };
}

function valueAt(value: Json | undefined, at: readonly string[]): Json | undefined {
  return at.reduce<Json | undefined>((v, key) => (isObject(v) ? v[key] : undefined), value);
}

/** A copy of `value` with `want` at `at` (or no key there when undefined), parents made as needed, keys kept in their place. */
function setAt(value: JsonObject, at: readonly string[], want: Json | undefined): JsonObject {
  const [key, ...rest] = at;
  if (key === undefined) return value;
  const out: JsonObject = { ...value };
  if (!rest.length) {
    if (want === undefined) delete out[key];
    else out[key] = want;
    return out;
  }
  const inner = out[key];
  out[key] = setAt(isObject(inner) ? inner : {}, rest, want);
  return out;
}

function hasInclude(v: Json): boolean {
  if (Array.isArray(v)) return v.some(hasInclude);
  return isObject(v) && (Object.hasOwn(v, INCLUDE) || Object.values(v).some(hasInclude));
}

export function equal(a: Json | undefined, b: Json | undefined): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => equal(x, b[i]));
  if (!isObject(a) || !isObject(b)) return false;
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => k in b && equal(a[k], b[k]));
}

export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
