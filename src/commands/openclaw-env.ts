import { readFileSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseEnv } from 'node:util';
import { gatewayPath, isObject, type Json, openclawPath } from './openclaw-includes.js';

/**
 * The environment OpenClaw reads `openclaw.json` with, as OpenClaw 2026.9 makes it
 * (docs/help/environment.md; src/infra/dotenv-global.ts, src/config/config-env-vars.ts): the
 * process environment (brainstem's stands for it, as it does for OPENCLAW_HOME), then, for each
 * variable it lacks, the global `.env` files OpenClaw loads whatever its working directory, then
 * the config's own `env` block. Without them brainstem misjudged what OpenClaw sees: an
 * OPENCLAW_INCLUDE_ROOTS kept in `~/.openclaw/.env` (where OpenClaw's docs put its variables)
 * had an include OpenClaw reads refused as outside, and a bot token given as `${VAR}` or left to
 * TELEGRAM_BOT_TOKEN was taken for one brainstem cannot know.
 */
export interface OpenclawEnv {
  /** The variables as OpenClaw has them. */
  env: NodeJS.ProcessEnv;
  /**
   * What OpenClaw's own files give (its dotenv files, the config's `env` block), first one
   * winning, with the file: the gateway has these whatever environment it runs in, where
   * brainstem's environment only stands for its own. Said by name and file, never by value.
   */
  files: Map<string, { value: string; file: string }>;
  /** The dotenv files OpenClaw would read, to say where brainstem looked. */
  dotenvFiles: string[];
}

/** OpenClaw's cap on a dotenv file: a larger one is skipped. */
const MAX_DOTENV_BYTES = 1024 * 1024;
/** The variable names OpenClaw takes from a dotenv file or the config's `env` (PORTABLE_ENV_VAR_KEY). */
const PORTABLE_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * `env` with OpenClaw's global dotenv files under it: `.env` in its state directory
 * (OPENCLAW_STATE_DIR, else the directory of OPENCLAW_CONFIG_PATH, else `~/.openclaw`, `~` being
 * OPENCLAW_HOME else HOME), then, with the default state directory, `~/.config/openclaw/gateway.env`.
 * Neither overrides a variable already set, and the first file to set one wins. The `.env` of the
 * gateway's working directory (OpenClaw's lower-trust "workspace" file, read before these, without
 * its OPENCLAW_* and credential-like variables) is not read here.
 */
export function openclawEnv(env: NodeJS.ProcessEnv): OpenclawEnv {
  const stateDir = env.OPENCLAW_STATE_DIR?.trim();
  const configPath = env.OPENCLAW_CONFIG_PATH?.trim();
  const stateEnv = stateDir
    ? path.join(gatewayPath(stateDir, env).path, '.env')
    : configPath
      ? path.join(path.dirname(gatewayPath(configPath, env).path), '.env')
      : openclawPath('~/.openclaw/.env', env);
  const files = [stateEnv];
  // As OpenClaw tests it: OPENCLAW_STATE_DIR set at all (even blank) and elsewhere skips it.
  if (env.OPENCLAW_STATE_DIR === undefined || stateEnv === openclawPath('~/.openclaw/.env', env))
    files.push(openclawPath('~/.config/openclaw/gateway.env', env));

  const given = new Map<string, { value: string; file: string }>();
  for (const file of files)
    for (const [key, value] of Object.entries(readDotEnv(file)))
      if (PORTABLE_KEY.test(key) && !given.has(key)) given.set(key, { value, file });
  const out: NodeJS.ProcessEnv = { ...env };
  for (const [key, { value }] of given) if (out[key] === undefined) out[key] = value;
  return { env: out, files: given, dotenvFiles: files };
}

/**
 * A dotenv file's variables, or none when it is missing, unreadable, not a regular file or over
 * 1 MB (OpenClaw skips it too). Parsed by Node's own dotenv parser, which reads `KEY=value`,
 * quotes, comments and `export` as the `dotenv` package OpenClaw uses does (not its `KEY: value`).
 */
function readDotEnv(file: string): Record<string, string> {
  try {
    const real = realpathSync(file);
    const stats = statSync(real);
    if (!stats.isFile() || stats.size > MAX_DOTENV_BYTES) return {};
    return parseEnv(readFileSync(real, 'utf8')) as Record<string, string>;
  } catch {
    return {};
  }
}

/**
 * `oe` with the config's `env` block (`env.vars.<KEY>`, and `env.<KEY>` itself) under it, as
 * OpenClaw applies it once the `$include`s are resolved: only to a variable unset or blank, only
 * non-blank strings without a `${VAR}` of their own, never OPENCLAW_INCLUDE_ROOTS (read before).
 */
export function withConfigEnv(oe: OpenclawEnv, config: Json): OpenclawEnv {
  const block = isObject(config) ? config.env : undefined;
  if (!isObject(block)) return oe;
  const entries = [
    ...Object.entries(isObject(block.vars) ? block.vars : {}),
    ...Object.entries(block).filter(([k]) => k !== 'vars' && k !== 'shellEnv'),
  ];
  // Keyed as OpenClaw collects them: a key in both places takes `env.<KEY>`'s value.
  const wanted = new Map<string, string>();
  for (const [rawKey, value] of entries) {
    const key = rawKey.trim();
    if (typeof value !== 'string' || !value.trim() || !PORTABLE_KEY.test(key)) continue;
    if (key.toUpperCase() === 'OPENCLAW_INCLUDE_ROOTS' || substitute(value, {}).refs.length) continue;
    wanted.set(key, value);
  }
  const env: NodeJS.ProcessEnv = { ...oe.env };
  const files = new Map(oe.files);
  for (const [key, value] of wanted) {
    if (!files.has(key)) files.set(key, { value, file: 'the env block of openclaw.json' });
    if (!env[key]?.trim()) env[key] = value;
  }
  return { ...oe, env, files };
}

/**
 * `value` with each `${VAR}` (an upper-case name) replaced as OpenClaw replaces it in every
 * string of the config: `$${VAR}` is the literal `${VAR}`; an unset or empty variable stays
 * `${VAR}` and is listed in `missing`. `refs` lists every variable it names.
 */
export function substitute(
  value: string,
  env: NodeJS.ProcessEnv,
): { value: string; refs: string[]; missing: string[] } {
  const refs: string[] = [];
  const missing: string[] = [];
  const out = value.replace(/\$(\$?)\{([A-Z_][A-Z0-9_]*)\}/g, (whole, escaped: string, name: string) => {
    if (escaped) return whole.slice(1);
    refs.push(name);
    const set = env[name];
    if (set === undefined || set === '') {
      missing.push(name);
      return whole;
    }
    return set;
  });
  return { value: out, refs, missing };
}

/** Where the value OpenClaw sees of a variable comes from, to say (never the value). */
export function sourceOf(openclaw: OpenclawEnv, name: string): string {
  const given = openclaw.files.get(name);
  return given && given.value === openclaw.env[name] ? given.file : "brainstem's environment";
}
