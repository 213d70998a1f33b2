import { randomBytes } from 'node:crypto';
import { constants, mkdirSync, realpathSync } from 'node:fs';
import {
  chmod,
  chown,
  copyFile,
  lstat,
  open,
  readFile,
  realpath,
  rename,
  stat,
  unlink,
  writeFile,
} from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import JSON5 from 'json5';
import { llamaContextTokens } from '../../brains/llama-local/props.js';
import { loadApiToken } from '../api-token.js';
import { type Config, ConfigError, loadConfig, type ModeConfig } from '../config.js';
import { takesImages } from '../images.js';
import { jsonProblem } from '../json-problem.js';
import { scrubText } from '../redact.js';
import type { TextOut } from './doctor.js';
import { type OpenclawEnv, openclawEnv, sourceOf, substitute, withConfigEnv } from './openclaw-env.js';
import {
  equal,
  gatewayPath,
  IncludeError,
  includeRoots,
  isObject,
  type Json,
  type JsonObject,
  placeChanges,
  relativePathNote,
  resolveIncludes,
} from './openclaw-includes.js';

/**
 * `brainstem openclaw-config [--apply PATH]`: the part of `openclaw.json` that
 * makes brainstem OpenClaw's model provider and points OpenClaw's Telegram
 * channel at brainstem's Bot API front. Printed as JSON, or merged into an
 * existing file with `--apply`. The API and bot tokens appear only in that
 * JSON, which is what the user asked for; messages never show them.
 */

const USAGE = `usage: npm run -s openclaw-config -- [--apply PATH]   (or: node dist/src/main.js openclaw-config [--apply PATH])
  prints the brainstem provider block (and Telegram channel settings) for openclaw.json;
  --apply PATH merges it into that file (a timestamped backup is written first)
`;

export async function runOpenclawConfig(
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
  out: TextOut = process.stdout,
  err: TextOut = process.stderr,
): Promise<number> {
  let apply: string | undefined;
  try {
    const parsed = parseArgs({
      args,
      options: { apply: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
    });
    if (parsed.values.help) {
      out.write(USAGE);
      return 0;
    }
    apply = parsed.values.apply;
  } catch (e) {
    err.write(`brainstem openclaw-config: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }

  let config: Config;
  try {
    config = loadConfig(env);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    err.write(`brainstem openclaw-config: ${e.message}\n`);
    return 1;
  }
  // The same token the server uses: generated and stored now if this runs before the first start.
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const token = loadApiToken(config.dataDir, config.server.apiToken, config.apiTokenFromEnv);
  if (token.source === 'generated')
    err.write(
      `generated the API token in ${token.file}${token.replaced ? ` (replacing what it held: ${token.replaced})` : ''}\n`,
    );
  if (config.telegram.token && !config.telegram.front.enabled) {
    err.write(
      "telegram.front.enabled is off, so OpenClaw's Telegram channel is turned off (brainstem alone polls the bot); turn the front on to keep OpenClaw's channel through brainstem\n",
    );
  }

  const contexts = await modeContexts(config, err);

  if (apply === undefined) {
    out.write(`${JSON.stringify(openclawPatch(config, token.token, contexts), null, 2)}\n`);
    return 0;
  }
  try {
    const result = await applyPatch(path.resolve(apply), config, token.token, contexts, env, err);
    const into = result.written.map((w) => `${w.file} (backup: ${w.backup})`).join(', ');
    out.write(
      result.written.length
        ? `merged the brainstem provider into ${into}; restart the OpenClaw gateway if it does not reload its config\n`
        : `${result.file} already has these settings; nothing changed\n`,
    );
    return 0;
  } catch (e) {
    err.write(`brainstem openclaw-config: ${(e as Error).message}\n`);
    // The settings to place by hand, on stdout as the block is (they hold the tokens).
    if (e instanceof HandEditNeeded) out.write(`${JSON.stringify(e.block, null, 2)}\n`);
    return 1;
  }
}

/**
 * The settings brainstem needs in openclaw.json: itself as provider `brainstem`
 * with the virtual model `active` (the current mode, so a switch needs no
 * OpenClaw restart) and one model per mode; `brainstem/active` as the default;
 * and, when brainstem runs the bot (Telegram allows one poller per token),
 * OpenClaw's Telegram channel on the same token with its Bot API root on
 * brainstem's front, or off when the front is off.
 */
export function openclawPatch(config: Config, token: string, contexts: Contexts): JsonObject {
  const { telegram } = config;
  const channel: JsonObject | undefined = !telegram.token
    ? undefined
    : telegram.front.enabled
      ? { enabled: true, botToken: telegram.token, apiRoot: `${serverUrl(config)}${telegram.front.prefix}` }
      : { enabled: false };
  return {
    models: {
      providers: {
        brainstem: {
          baseUrl: `${serverUrl(config)}/v1`,
          apiKey: token,
          api: 'openai-completions',
          // OpenClaw retries a failed turn up to 8 times and shows its users none of a provider's
          // error text: told who it is, brainstem answers its errors as text (handlers/http/openai.ts).
          headers: { 'x-brainstem-client': 'openclaw' },
          models: [
            {
              id: 'active',
              name: modelName('active', 'the mode brainstem runs now'),
              input: inputOf(config.modes.some(takesImages)),
              ...sizesOf(
                config.modes.find((m) => m.id === config.defaultMode),
                contexts,
              ),
              compat: COMPAT,
            },
            ...config.modes.map((m) => ({
              id: m.id,
              name: modelName(m.id, m.description),
              input: inputOf(takesImages(m)),
              ...sizesOf(m, contexts),
              compat: COMPAT,
            })),
          ],
        },
      },
    },
    agents: { defaults: { model: { primary: 'brainstem/active' } } },
    ...(channel ? { channels: { telegram: channel } } : {}),
  };
}

/**
 * How OpenClaw talks to brainstem's models. It names no conversation unless
 * asked to: `sendSessionAffinityHeaders` sends `x-session-affinity` with its
 * session id, so one OpenClaw session stays one Claude session (without it
 * brainstem matches histories, which a failed turn or a compaction breaks).
 * It asks for a stream's token usage (`stream_options.include_usage`) only of
 * hosts it takes for local ones; brainstem gives it whatever its address.
 */
const COMPAT: JsonObject = { sendSessionAffinityHeaders: true, supportsUsageInStreaming: true };

/**
 * What OpenClaw may send a model: it puts a chat's photos into the request
 * only for a model whose `input` has "image" (a model without `input` is text
 * only), so without it every photo would stop at OpenClaw. `active` has it
 * when some mode sees images; a mode that does not refuses them with a clear
 * error rather than losing them.
 */
function inputOf(images: boolean): Json[] {
  return images ? ['text', 'image'] : ['text'];
}

/** The longest model name OpenClaw's Telegram model picker shows whole. */
const MODEL_NAME_MAX = 38;

/**
 * A model's name as OpenClaw shows it: its Telegram model picker keeps only
 * the last 37 characters of a longer one, after a `…`, which would cut the
 * mode off ("… (Claude Code in the anklume project)"). So the mode comes
 * first, and a long description is cut here, at its end. OpenClaw counts
 * JavaScript characters (UTF-16 units: an emoji is two), so these are
 * counted too, and the cut falls between code points, never inside an emoji.
 */
function modelName(id: string, description: string | undefined): string {
  const full = description ? `${id}: ${description}` : id;
  if (full.length <= MODEL_NAME_MAX) return full;
  let kept = '';
  for (const c of full) {
    if (kept.length + c.length > MODEL_NAME_MAX - 1) break;
    kept += c;
  }
  return `${kept}…`;
}

/** Claude's context (Claude Code compacts its own session within it). */
const CLAUDE_CONTEXT_TOKENS = 200_000;
/** Claude Code's own cap on an answer (CLAUDE_CODE_MAX_OUTPUT_TOKENS' default). */
const CLAUDE_ANSWER_TOKENS = 32_000;
/** OpenClaw's own cap on a model's answer when the block names none. */
const OPENCLAW_ANSWER_TOKENS = 8192;
/** How long llama-server gets to say its context: a server that is up answers at once. */
const PROPS_TIMEOUT_MS = 2000;

/** Each mode's context in tokens, where it is known. */
type Contexts = Map<string, number>;

/**
 * Each mode's context: its `contextWindow`, else Claude's, else what the
 * mode's llama-server says (`GET /props`), asked only when the loaded model
 * is this mode's for sure (no `llamaModel`, or the only one in `llama.models`).
 * A llama mode left without one is named on `err`, with what to do.
 */
async function modeContexts(config: Config, err: TextOut): Promise<Contexts> {
  const contexts: Contexts = new Map();
  for (const m of config.modes) {
    const set = m.contextWindow ?? (m.kind === 'claude' ? CLAUDE_CONTEXT_TOKENS : undefined);
    if (set !== undefined) {
      contexts.set(m.id, set);
      continue;
    }
    const shared = m.llamaModel !== undefined && Object.keys(config.llama.models).length > 1;
    const base = m.baseUrl ?? config.llama.baseUrl;
    const told = shared ? undefined : await llamaContextTokens(base, PROPS_TIMEOUT_MS);
    // Said without the credentials a URL may hold (`http://user:pass@host`).
    const where = scrubText(base);
    if (told !== undefined) {
      contexts.set(m.id, told);
      err.write(
        `modes.${m.id}: a context of ${told} tokens, as llama-server at ${where} says (/props; modes.${m.id}.contextWindow overrides it)\n`,
      );
      continue;
    }
    const why = shared
      ? "brainstem cannot ask llama-server, which may have another mode's model loaded"
      : `llama-server at ${where} did not say (GET /props; Ollama has none)`;
    err.write(
      `modes.${m.id}.contextWindow is not set and ${why}: OpenClaw takes the model for a 200000-token one, so a long conversation reaches the model's own limit before OpenClaw compacts it; set it to llama-server's --ctx-size (per slot)\n`,
    );
  }
  return contexts;
}

/**
 * A model's context and answer sizes as OpenClaw reads them: it compacts a
 * conversation as it nears `contextWindow` and keeps `maxTokens` free for
 * the answer (and asks for no more). Without them it takes any model for a
 * 200000-token one with 8192-token answers, and a local model with a smaller
 * context refuses a long conversation before OpenClaw thinks of compacting
 * it. A llama mode's answer gets a quarter of its context, at most
 * OpenClaw's own 8192. `active` takes the default mode's sizes: OpenClaw
 * cannot know which mode is active, and a smaller window would have it
 * compact Claude conversations early; on a smaller local model a conversation
 * that outgrew it gets llama-server's refusal, which OpenClaw reads as a
 * context overflow (it compacts, or says to start afresh).
 */
function sizesOf(mode: ModeConfig | undefined, contexts: Contexts): JsonObject {
  const contextWindow = mode && contexts.get(mode.id);
  if (!mode || contextWindow === undefined) return {};
  const maxTokens =
    mode.kind === 'claude'
      ? CLAUDE_ANSWER_TOKENS
      : Math.min(OPENCLAW_ANSWER_TOKENS, Math.floor(contextWindow / 4));
  return { contextWindow, maxTokens };
}

/** Where OpenClaw reaches brainstem: a wildcard bind is reached on loopback (they share the host). */
function serverUrl(config: Config): string {
  const { host, port } = config.server;
  const reach = host === '0.0.0.0' || host === '::' || host === '' ? '127.0.0.1' : host;
  return `http://${reach.includes(':') ? `[${reach}]` : reach}:${port}`;
}

/**
 * Merges the patch into the file: objects merge key by key, anything else
 * (arrays included, but for brainstem's models: see withModelsKept) is
 * replaced, so every unrelated setting stays as it was. With `$include`s,
 * into the files that hold each setting (placeIncluded).
 * Reads and checks everything before writing; each file written gets a
 * backup and is replaced whole at once (writeConfigFile).
 */
async function applyPatch(
  given: string,
  config: Config,
  token: string,
  contexts: Contexts,
  env: NodeJS.ProcessEnv,
  err: TextOut,
): Promise<{ file: string; written: { file: string; backup: string }[] }> {
  let file = given;
  let text: string;
  try {
    // Write through a symlink (dotfile managers use them) rather than replace it with a plain file.
    file = await realpath(given);
    text = await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(
      code === 'ENOENT'
        ? `${given} does not exist; run OpenClaw's setup first, or save the printed block (without --apply) as that file`
        : `${given} cannot be read (${code ?? (e as Error).message})`,
    );
  }
  const { value: authored, json5 } = parseConfigText(text, file);
  if (!isObject(authored)) throw new Error(`${file} does not hold a JSON object; nothing changed`);
  // Decided on what OpenClaw reads: the settings its `$include`s bring in included. They resolve
  // against the path OpenClaw is given (a symlink's own directory), as OpenClaw resolves them.
  // With the variables OpenClaw's own .env files give it (OPENCLAW_INCLUDE_ROOTS, OPENCLAW_HOME).
  const dotenv = openclawEnv(env);
  let resolved: ReturnType<typeof resolveIncludes>;
  try {
    resolved = resolveIncludes(authored, given, dotenv.env, parseConfigText);
  } catch (e) {
    if (!(e instanceof IncludeError)) throw e;
    throw new Error(`${e.message}; nothing changed`);
  }
  const current = resolved.value;
  if (!isObject(current)) throw new Error(`${file} does not hold a JSON object; nothing changed`);
  if (resolved.files.size)
    for (const r of includeRoots(dotenv.env).filter((r) => r.relative))
      err.write(
        `${relativePathNote(`OPENCLAW_INCLUDE_ROOTS${rootsFrom(dotenv, env)}: the entry`, r.given, r.dir)}\n`,
      );
  // And the config's own `env` block, which OpenClaw applies once the includes are read.
  const openclaw = withConfigEnv(dotenv, current);

  // What the merge does, said once it is known to be written: a change refused below (its $include
  // files) wrote nothing, and "dropped …, the backup keeps it" would then be false.
  const said: string[] = [];
  const notes: TextOut = { write: (line: string) => said.push(line) };
  const perAccount = await forTelegramAccounts(
    current,
    openclawPatch(config, token, contexts),
    config,
    openclaw,
    notes,
  );
  const patch = keepSecretReferences(current, perAccount.patch, openclaw, notes);
  let merged = withoutStaleFallbacks(
    withoutStaleAllowlist(
      merge(current, withAllowlist(current, withModelsKept(current, patch, notes), config, notes)),
      config,
      notes,
    ),
    config,
    notes,
  );
  for (const at of perAccount.drop) merged = without(merged, at);
  if (JSON.stringify(merged) === JSON.stringify(current)) {
    for (const line of said) err.write(line);
    return { file, written: [] };
  }

  let writes: { file: string; value: Json; json5: boolean }[];
  try {
    writes = resolved.files.size
      ? placeIncluded(authored, current, merged, given, file, json5, resolved, dotenv.env)
      : [{ file, value: merged, json5 }];
  } catch (e) {
    if (e instanceof HandEditNeeded && said.length > 0)
      err.write(`had it been written (nothing was, no backup made):\n${said.map((l) => `  ${l}`).join('')}`);
    throw e;
  }
  let written: { file: string; backup: string }[];
  try {
    written = await writeConfigFiles(
      // Said of the files that hold the token: an included file of agents' settings does not.
      writes.map((w) => ({
        ...w,
        why: JSON.stringify(w.value).includes(token) ? ", since it holds brainstem's API token" : '',
      })),
      err,
    );
  } catch (e) {
    if (e instanceof WriteFailed && e.nothingChanged && said.length > 0)
      err.write(`had it been written (nothing was, no backup kept):\n${said.map((l) => `  ${l}`).join('')}`);
    throw e;
  }
  for (const line of said) err.write(line);
  return { file, written };
}

/** Where OPENCLAW_INCLUDE_ROOTS came from when OpenClaw's .env gave it, to say with it (`` otherwise). */
function rootsFrom(openclaw: OpenclawEnv, env: NodeJS.ProcessEnv): string {
  const given = openclaw.files.get('OPENCLAW_INCLUDE_ROOTS');
  return env.OPENCLAW_INCLUDE_ROOTS === undefined && given ? ` (in ${given.file})` : '';
}

/** A change brainstem would have to write where it cannot: the settings to place by hand come with it. */
class HandEditNeeded extends Error {
  constructor(
    message: string,
    readonly block: JsonObject,
  ) {
    super(message);
    this.name = 'HandEditNeeded';
  }
}

/**
 * The files to write for `merged` when openclaw.json has `$include`s: each
 * change goes into the file that holds the setting (as OpenClaw's own writes
 * do), never beside a `$include`, where it would override the included
 * settings (OpenClaw concatenates arrays there: brainstem's models twice) and
 * leave OpenClaw unable to write that setting itself. What cannot be placed
 * so is refused, nothing written, with the settings to place by hand. The
 * result is read again as OpenClaw would before anything is written.
 */
function placeIncluded(
  authored: JsonObject,
  current: JsonObject,
  merged: JsonObject,
  given: string,
  file: string,
  json5: boolean,
  { files, siblings }: ReturnType<typeof resolveIncludes>,
  env: NodeJS.ProcessEnv,
): { file: string; value: Json; json5: boolean }[] {
  const placed = placeChanges(authored, current, merged, given, files, siblings);
  let refused = placed.refused;
  if (!refused.length) {
    const check = resolveIncludes(placed.main, given, env, parseConfigText, placed.files).value;
    if (!equal(check, merged))
      refused = [{ at: [], why: 'its $includes would not read back as these settings' }];
  }
  if (refused.length) {
    const block = refused.reduce<JsonObject>(
      (b, r) => merge(b, nested(r.at, valueAt(merged, r.at) ?? null)),
      {},
    );
    throw new HandEditNeeded(
      `${file} takes settings from $include files that brainstem cannot write through; nothing changed. ${refused
        .map((r) => `${r.at.join('.') || 'the top level'}: ${r.why}`)
        .join(
          '; ',
        )}. Set these by hand to what the printed block says (the values OpenClaw must end up with)`,
      block,
    );
  }
  const writes: { file: string; value: Json; json5: boolean }[] = [];
  if (JSON.stringify(placed.main) !== JSON.stringify(authored))
    writes.push({ file, value: placed.main, json5 });
  for (const [at, value] of placed.files) {
    const f = files.get(at);
    if (!f || JSON.stringify(value) === JSON.stringify(f.authored)) continue;
    // Through a symlink, as openclaw.json is (confined to the config directory when it was read).
    writes.push({ file: realpathSync(at), value, json5: f.json5 });
  }
  return writes;
}

/**
 * `text` (of `file`) as JSON, else JSON5 as OpenClaw reads it, or an Error saying why not (never
 * quoting the text, which may hold a token).
 */
function parseConfigText(text: string, file: string): { value: Json; json5: boolean } {
  try {
    return { value: JSON.parse(text) as Json, json5: false };
  } catch (e) {
    // OpenClaw reads the file as JSON5 (comments, trailing commas, unquoted keys), which its docs
    // write their examples in: read it so too, rather than leave a hand-edited file to merge by hand.
    const value = readJson5(text, (problem) => {
      throw new Error(
        `${file} is neither JSON (${jsonProblem(text, e)}) nor JSON5 (${problem}); nothing changed`,
      );
    }) as Json;
    return { value, json5: true };
  }
}

/** A file of an `--apply` that could not be written: none of them was changed, or the ones changed were put back. */
class WriteFailed extends Error {
  override name = 'WriteFailed';
  constructor(
    message: string,
    /** No file changed: what the merge would have done was not done. */
    readonly nothingChanged: boolean,
  ) {
    super(message);
  }
}

/** One file of an `--apply` on its way: its backup and new content written beside it, not yet in its place. */
interface Staged {
  file: string;
  /** Its owner, given back to a file put back from its backup when root runs this. */
  owner?: { uid: number; gid: number };
  backup?: string;
  tmp?: string;
  notes: string[];
}

/**
 * Writes each of `writes` as its file's new content, all or nothing: `$include`s spread one
 * change over several files, and a config half written (the provider in one file, the channel
 * still on Telegram in the other) is one OpenClaw would run. First, for every file, a timestamped
 * backup and the new content in a temporary file beside it, fsynced; a failure there (a full
 * disk, a file that cannot be replaced) removes them all and nothing changed. Then each is renamed
 * over its file, so a crash or a power loss leaves either the old file or the new one, never half
 * of one (nor an empty one); a rename failing then (rare: a temporary file renamed in its own
 * directory) puts back the files already renamed from their backups. Returns each file with its backup.
 */
async function writeConfigFiles(
  writes: { file: string; value: Json; json5: boolean; why: string }[],
  err: TextOut,
): Promise<{ file: string; backup: string }[]> {
  const staged: Staged[] = [];
  const others = (file: string) => writes.map((w) => w.file).filter((f) => f !== file);
  const cleanUp = async () => {
    for (const s of staged) {
      if (s.tmp) await unlink(s.tmp).catch(() => undefined);
      if (s.backup) await unlink(s.backup).catch(() => undefined);
    }
  };
  for (const w of writes) {
    const s: Staged = { file: w.file, notes: [] };
    staged.push(s);
    try {
      await stageConfigFile(w, s);
    } catch (e) {
      await cleanUp();
      const rest = others(w.file);
      throw new WriteFailed(
        `${w.file} cannot be written (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); nothing changed${rest.length ? `, in it nor in ${rest.join(', ')} (written together)` : ''}, no backup kept`,
        true,
      );
    }
  }
  for (const [i, s] of staged.entries()) {
    try {
      await rename(s.tmp as string, s.file);
      s.tmp = undefined;
    } catch (e) {
      const done = staged.slice(0, i);
      const restored: string[] = [];
      for (const d of done) {
        // The backup is the file as it was: copied back in place whole, as the new one came.
        const back = `${d.file}.${randomBytes(6).toString('hex')}.restore`;
        try {
          await copyFile(d.backup as string, back, constants.COPYFILE_EXCL);
          if (d.owner && process.getuid?.() === 0) await chown(back, d.owner.uid, d.owner.gid);
          await rename(back, d.file);
          restored.push(d.file);
        } catch {
          await unlink(back).catch(() => undefined);
        }
      }
      for (const r of staged.slice(i)) if (r.tmp) await unlink(r.tmp).catch(() => undefined);
      const unrestored = done.filter((d) => !restored.includes(d.file));
      // A backup of a file as it still is (never replaced, or put back) is no backup of a change.
      for (const r of staged)
        if (!unrestored.includes(r) && r.backup) await unlink(r.backup).catch(() => undefined);
      throw new WriteFailed(
        `${s.file} cannot be replaced (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); ${
          unrestored.length
            ? unrestored
                .map(
                  (d) =>
                    `${d.file} is written but could not be put back: its backup ${d.backup} is what it was`,
                )
                .join('; ')
            : `nothing changed${restored.length ? ` (${restored.join(', ')}, replaced first, put back as it was)` : ''}, no backup kept`
        }`,
        unrestored.length === 0,
      );
    }
  }
  for (const s of staged) for (const line of s.notes) err.write(line);
  // The renames themselves (and the backups' names) durable: a directory entry is the directory's
  // data. Some filesystems refuse a directory's fsync (EINVAL): the files are written by then.
  for (const dir of new Set(staged.map((s) => path.dirname(s.file))))
    await syncFile(dir).catch(() => undefined);
  return staged.map((s) => ({ file: s.file, backup: s.backup as string }));
}

/** `w`'s backup and new content (fsynced, the old file's owner and permissions), beside it; `s` records each as made. */
async function stageConfigFile(
  w: { file: string; value: Json; json5: boolean; why: string },
  s: Staged,
): Promise<void> {
  const { file } = w;
  if (w.json5) {
    s.notes.push(
      `${file} is JSON5: written back as JSON, without its comments, as OpenClaw's own writes do (the backup keeps them)\n`,
    );
  }
  const { mode, uid, gid } = await stat(file);
  s.owner = { uid, gid };
  // openclaw.json holds API keys, brainstem's among them now: its owner's permissions only, as
  // OpenClaw writes it (its doctor and security audit flag a group- or world-readable one).
  const ownerOnly = mode & 0o700;
  if ((mode & 0o077) !== 0) {
    s.notes.push(
      `${file} was readable by others (mode ${(mode & 0o777).toString(8)}); written ${ownerOnly.toString(8)}, as OpenClaw writes it${w.why}\n`,
    );
  }
  const backup = `${file}.bak-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  await copyFile(file, backup, constants.COPYFILE_EXCL);
  s.backup = backup;
  await syncFile(backup);
  // The backup holds the same keys (the file's own, an older brainstem token).
  await chmod(backup, ownerOnly);
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await writeFile(tmp, `${JSON.stringify(w.value, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  } catch (e) {
    // Cut part-way (a full disk), the file is made: removed with the rest (writeConfigFiles). One
    // that was there already (EEXIST) is not this run's.
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') s.tmp = tmp;
    throw e;
  }
  s.tmp = tmp;
  // On disk before the rename: else a power loss after it can leave an empty openclaw.json
  // (ext4 with delalloc, XFS), the rename made durable before the data it names.
  await syncFile(tmp);
  // The new file keeps the old one's owner permissions (whatever the umask) and, when root runs
  // this on a user's file, its owner, so OpenClaw can still read it.
  await chmod(tmp, ownerOnly);
  if (process.getuid?.() === 0) await chown(tmp, uid, gid);
}

/** fsync: what was written to `file` (or a directory's entries) is on disk when this returns. */
async function syncFile(file: string): Promise<void> {
  const handle = await open(file, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * `text` read as JSON5 by the json5 package, which OpenClaw reads the file with; `refuse` gets what
 * is wrong and where, never the text there (it may be a token). `Infinity` and `NaN` are refused
 * too: the file is written back as JSON, which cannot hold them.
 */
function readJson5(text: string, refuse: (problem: string) => never): unknown {
  let value: unknown;
  try {
    value = JSON5.parse(text);
  } catch (e) {
    const { lineNumber, columnNumber } = e as { lineNumber?: number; columnNumber?: number };
    return refuse(`a syntax error at line ${lineNumber ?? '?'} column ${columnNumber ?? '?'}`);
  }
  const finite = (v: unknown): boolean =>
    typeof v === 'number'
      ? Number.isFinite(v)
      : typeof v !== 'object' || v === null || Object.values(v).every(finite);
  return finite(value) ? value : refuse('Infinity or NaN, which JSON cannot hold');
}

const BOT_TOKEN_PATH = ['channels', 'telegram', 'botToken'] as const;
const TOKEN_FILE_PATH = ['channels', 'telegram', 'tokenFile'] as const;

/** Where the patch puts a secret: brainstem's API token, the bot token. */
const SECRET_PATHS = [['models', 'providers', 'brainstem', 'apiKey'], BOT_TOKEN_PATH] as const;

/**
 * A secret the file already gives as a reference OpenClaw resolves (`"${BRAINSTEM_TOKEN}"`, or a
 * SecretRef object such as `{ source: "env", id: … }`) stays a reference: writing the value in its
 * place would put in the file the secret its owner kept out of it. Said, since the reference must
 * hold the value brainstem expects; when brainstem sees the variable (its own environment,
 * OpenClaw's .env, the config's `env`), whether it does. The same goes for a bot token read from a
 * file (`channels.telegram.tokenFile`, which OpenClaw reads before `botToken`), and for one OpenClaw
 * takes from TELEGRAM_BOT_TOKEN in its own .env (or `env`) when the channel gives none: no
 * `botToken` is added. Only a value in OpenClaw's own files counts there: brainstem's environment
 * holds brainstem's TELEGRAM_BOT_TOKEN, which OpenClaw's gateway does not share.
 */
function keepSecretReferences(
  current: JsonObject,
  patch: JsonObject,
  openclaw: OpenclawEnv,
  err: TextOut,
): JsonObject {
  let kept = patch;
  const tokenFile = valueAt(current, TOKEN_FILE_PATH);
  const wantedBot = valueAt(patch, BOT_TOKEN_PATH);
  if (typeof tokenFile === 'string' && tokenFile.trim() && wantedBot !== undefined) {
    kept = without(kept, BOT_TOKEN_PATH);
    err.write(
      `${BOT_TOKEN_PATH.join('.')} is not written: the file reads the bot token from ${TOKEN_FILE_PATH.join('.')}, which must hold brainstem's bot token\n`,
    );
  }
  const fromEnv = openclaw.files.get('TELEGRAM_BOT_TOKEN');
  const botTokenSet = valueAt(current, BOT_TOKEN_PATH);
  const noneInFile = !(typeof tokenFile === 'string' && tokenFile.trim()) && (botTokenSet ?? '') === '';
  if (typeof wantedBot === 'string' && fromEnv && noneInFile) {
    if (fromEnv.value.trim() === wantedBot) {
      kept = without(kept, BOT_TOKEN_PATH);
      err.write(
        `${BOT_TOKEN_PATH.join('.')} is not written: OpenClaw takes the bot token from TELEGRAM_BOT_TOKEN in ${fromEnv.file}, which holds brainstem's bot token\n`,
      );
    } else if (valueAt(kept, BOT_TOKEN_PATH) !== undefined)
      err.write(
        `${BOT_TOKEN_PATH.join('.')} is written with brainstem's bot token, which OpenClaw takes over TELEGRAM_BOT_TOKEN in ${fromEnv.file} (another bot's token)\n`,
      );
  }
  for (const at of SECRET_PATHS) {
    const existing = valueAt(current, at);
    const wanted = valueAt(patch, at);
    // Any `${VAR}` in the string, as OpenClaw substitutes them anywhere in it.
    const named = typeof existing === 'string' ? substitute(existing, openclaw.env) : undefined;
    const isReference =
      (named && named.refs.length > 0) || (isObject(existing) && typeof existing.source === 'string');
    if (!isReference || wanted === undefined) continue;
    kept = merge(kept, nested(at, existing));
    // A string with characters beside its `${VAR}`s holds part of the secret in them: only the
    // variables are said.
    const shown =
      typeof existing !== 'string'
        ? 'a secret reference'
        : /^\$\{[A-Z_][A-Z0-9_]*\}$/.test(existing)
          ? existing
          : `a string naming ${named?.refs.map((n) => `\${${n}}`).join(', ')} (its other characters, part of the secret, not shown)`;
    const what = at.at(-1) === 'apiKey' ? "brainstem's API token" : "brainstem's bot token";
    const holds =
      !named || named.missing.length
        ? ''
        : named.value.trim() === wanted
          ? `, and does (${named.refs.map((n) => `${n} in ${sourceOf(openclaw, n)}`).join(', ')})`
          : `, but it comes out as another value (${named.refs.map((n) => `${n} in ${sourceOf(openclaw, n)}`).join(', ')}): set it to ${what} where OpenClaw reads it`;
    err.write(`${at.join('.')} is kept as ${shown}: OpenClaw must resolve it to ${what}${holds}\n`);
  }
  return kept;
}

const TELEGRAM_PATH = ['channels', 'telegram'] as const;
const ACCOUNTS_PATH = [...TELEGRAM_PATH, 'accounts'] as const;

/** The largest `tokenFile` OpenClaw reads. */
const TOKEN_FILE_MAX_BYTES = 16 * 1024;

/** A bot token as the file gives it: the token, none, or one brainstem cannot read (a reference, a file it cannot open). */
type TokenIn = { token: string } | 'none' | 'unknown';

/**
 * The bot token `settings` (the channel's or an account's, at `at`) give OpenClaw:
 * `tokenFile` first, then `botToken`, as OpenClaw reads them, each with the `${VAR}`s OpenClaw
 * substitutes in every string of the config, from the variables it has (`openclaw`). A relative
 * `tokenFile` is said, with the file it was read as (gatewayPath), and so is a variable named
 * that brainstem does not see set, or a `tokenFile` that OpenClaw refuses (a symlink, a hard link).
 */
async function tokenIn(
  settings: JsonObject,
  at: string,
  openclaw: OpenclawEnv,
  notes: string[],
): Promise<TokenIn> {
  const { env } = openclaw;
  const { tokenFile, botToken } = settings;
  if (typeof tokenFile === 'string' && tokenFile.trim()) {
    const named = substitute(tokenFile, env);
    if (named.missing.length) {
      notes.push(unsetNote(`${at}.tokenFile`, named.missing, openclaw));
      return 'unknown';
    }
    const given = named.value.trim();
    const { path: file, relative } = gatewayPath(given, env);
    if (relative) notes.push(relativePathNote(`${at}.tokenFile`, given, file));
    try {
      // OpenClaw reads only a regular file of its own, not through a symlink, not hard-linked, at
      // most 16 KB (@openclaw/fs-safe's readSecretFileSync): else the account has no token at all.
      const stats = await lstat(file);
      const refused = stats.isSymbolicLink()
        ? 'a symlink'
        : !stats.isFile()
          ? 'not a regular file'
          : stats.nlink > 1
            ? 'hard-linked'
            : stats.size > TOKEN_FILE_MAX_BYTES
              ? 'larger than 16 KB'
              : undefined;
      if (refused) {
        notes.push(
          `${at}.tokenFile ${file} is ${refused}, which OpenClaw refuses (a regular file of its own, at most 16 KB): that account gets no bot token from it`,
        );
        return 'unknown';
      }
      return { token: (await readFile(file, 'utf8')).trim() };
    } catch {
      return 'unknown';
    }
  }
  if (botToken === undefined || botToken === null || botToken === '') return 'none';
  // SecretRef objects are resolved by OpenClaw's secret providers, out of brainstem's sight.
  if (typeof botToken !== 'string') return 'unknown';
  const token = substitute(botToken, env);
  if (token.missing.length) {
    notes.push(unsetNote(`${at}.botToken`, token.missing, openclaw));
    return 'unknown';
  }
  return { token: token.value.trim() };
}

/** What to say of a setting that names variables brainstem does not see set (where it looked, never a value). */
function unsetNote(at: string, missing: string[], openclaw: OpenclawEnv): string {
  const names = missing.map((n) => `\${${n}}`).join(', ');
  return `${at} names ${names}, set neither in brainstem's environment nor in ${openclaw.dotenvFiles.join(' or ')} nor in openclaw.json's env: brainstem cannot tell which bot it is (OpenClaw's gateway may have it in its own environment)`;
}

/**
 * OpenClaw's multi-account form (`channels.telegram.accounts.<id>`): each
 * account is the channel's settings overlaid by its own, and a `botToken` or
 * `tokenFile` on the channel itself adds an account `default` unless one is
 * listed. So the channel-wide `botToken` and `apiRoot` of the patch would
 * start a second account on a bot an account already polls (OpenClaw then
 * refuses one of them: "Duplicate Telegram bot token"), point every other
 * bot's account at brainstem's front (which answers their token 401), and
 * leave an account that gives its own `apiRoot` off the front. Instead the
 * accounts whose token is brainstem's bot's get the front (or are turned off
 * with the front off), the channel's own settings are left as they are, but
 * for an `apiRoot` on the front (an older brainstem's) and a `botToken` that
 * only duplicates an account's; all of it said. Without accounts, the patch
 * is returned as is.
 */
async function forTelegramAccounts(
  current: JsonObject,
  patch: JsonObject,
  config: Config,
  openclaw: OpenclawEnv,
  err: TextOut,
): Promise<{ patch: JsonObject; drop: (readonly string[])[] }> {
  const channel = valueAt(current, TELEGRAM_PATH);
  const accounts = valueAt(current, ACCOUNTS_PATH);
  const wanted = valueAt(patch, TELEGRAM_PATH);
  const botToken = config.telegram.token;
  if (
    !isObject(channel) ||
    !isObject(accounts) ||
    !Object.keys(accounts).length ||
    !isObject(wanted) ||
    !botToken
  )
    return { patch, drop: [] };
  const front = typeof wanted.apiRoot === 'string' ? wanted.apiRoot : undefined;
  const at = ACCOUNTS_PATH.join('.');

  const said: string[] = [];
  const root = await tokenIn(channel, TELEGRAM_PATH.join('.'), openclaw, said);
  const own = new Map<string, TokenIn>();
  for (const [id, settings] of Object.entries(accounts))
    own.set(id, isObject(settings) ? await tokenIn(settings, `${at}.${id}`, openclaw, said) : 'none');
  const inheriting = [...own].filter(([, t]) => t === 'none').map(([id]) => id);
  const isBrainstems = (t: TokenIn) => typeof t === 'object' && t.token === botToken;
  // With no token on the channel, the account `default` alone falls back on TELEGRAM_BOT_TOKEN (as
  // OpenClaw's own .env or `env` give it: brainstem's environment holds brainstem's own).
  const envBot = openclaw.files.get('TELEGRAM_BOT_TOKEN');
  const defaultRoot: TokenIn =
    root !== 'none' ? root : envBot?.value.trim() ? { token: envBot.value.trim() } : 'none';
  const rootOf = (id: string) => (id === 'default' ? defaultRoot : root);
  const named = [...own].filter(([id, t]) => isBrainstems(t === 'none' ? rootOf(id) : t)).map(([id]) => id);
  const drop: (readonly string[])[] = [];

  // The channel's own token (or TELEGRAM_BOT_TOKEN) adds an account `default` (none listed);
  // brainstem's, with an account of its own on it, is only a duplicate: dropped, unless an account
  // takes its token from there; a variable brainstem cannot drop is said.
  let implicit = !('default' in accounts) && defaultRoot !== 'none';
  const ownBrainstems = named.filter((id) => own.get(id) !== 'none');
  const fromBotToken = !(typeof channel.tokenFile === 'string' && channel.tokenFile.trim());
  if (implicit && fromBotToken && isBrainstems(root) && ownBrainstems.length && !inheriting.length) {
    drop.push([...TELEGRAM_PATH, 'botToken']);
    implicit = false;
    said.push(
      `channels.telegram.botToken removed: it is ${at}.${ownBrainstems[0]}'s bot token too, and made OpenClaw run a second account "default" on that bot`,
    );
  } else if (implicit && root === 'none' && envBot && isBrainstems(defaultRoot) && ownBrainstems.length) {
    implicit = false;
    said.push(
      `TELEGRAM_BOT_TOKEN in ${envBot.file} is ${at}.${ownBrainstems[0]}'s bot token too, and makes OpenClaw run a second account "default" on that bot: remove it there`,
    );
  }
  const matching = implicit && isBrainstems(defaultRoot) ? [...named, 'default'] : named;

  if (front !== undefined && channel.apiRoot === front) {
    drop.push([...TELEGRAM_PATH, 'apiRoot']);
    said.push(
      "channels.telegram.apiRoot removed: every account takes it, another bot's too, which brainstem's front refuses (it is set on the account of brainstem's bot instead)",
    );
  }
  const settings: JsonObject = front !== undefined ? { enabled: true, apiRoot: front } : { enabled: false };
  const fix = front !== undefined ? `its apiRoot ${front}` : '"enabled": false';
  for (const id of matching) {
    said.push(
      `${at}.${id} has brainstem's bot token: ${front !== undefined ? `its apiRoot is brainstem's front, ${front}` : 'turned off, as brainstem alone polls the bot'}`,
    );
  }
  if (!matching.length) {
    const unknown = [...own]
      .filter(([id, t]) => (t === 'none' ? rootOf(id) : t) === 'unknown')
      .map(([id]) => id);
    if (implicit && root === 'unknown') unknown.push('default (channels.telegram itself)');
    said.push(
      unknown.length
        ? `no account of ${at} is known to have brainstem's bot token (${unknown.join(', ')} give theirs as a reference or a file brainstem cannot read): give the one that has ${fix}`
        : `no account of ${at} has brainstem's bot token: ${front !== undefined ? `add one with that botToken, ${fix} and its binding to an agent, for OpenClaw to get the bot's messages` : 'nothing to turn off'}`,
    );
  }
  for (const line of said) err.write(`${line}\n`);
  const perAccount = Object.fromEntries(matching.map((id): [string, Json] => [id, settings]));
  return { patch: merge(without(patch, TELEGRAM_PATH), nested(ACCOUNTS_PATH, perAccount)), drop };
}

function valueAt(value: unknown, at: readonly string[]): unknown {
  return at.reduce<unknown>((v, key) => (isObject(v) ? v[key] : undefined), value);
}

/** A copy of `value` without the key at `at`, every other key in its place. */
function without(value: JsonObject, at: readonly string[]): JsonObject {
  const [key, ...rest] = at;
  if (key === undefined || !Object.hasOwn(value, key)) return value;
  const entries = Object.entries(value).flatMap(([k, v]): [string, Json][] =>
    k !== key ? [[k, v]] : rest.length === 0 ? [] : [[k, isObject(v) ? without(v, rest) : v]],
  );
  return Object.fromEntries(entries);
}

/** A copy of `value` with the value at `at` (whose parents exist) replaced, keys kept in their place. */
function replacedAt(value: JsonObject, at: readonly string[], replacement: Json): JsonObject {
  const [key, ...rest] = at;
  if (key === undefined) return value;
  if (rest.length === 0) return { ...value, [key]: replacement };
  const inner = value[key];
  return isObject(inner) ? { ...value, [key]: replacedAt(inner, rest, replacement) } : value;
}

function nested(at: readonly string[], value: unknown): JsonObject {
  return at.reduceRight<unknown>((inner, key) => ({ [key]: inner }), value) as JsonObject;
}

const MODELS_PATH = ['models', 'providers', 'brainstem', 'models'] as const;

/**
 * The brainstem models the file already has keep what their owner added to
 * them (`reasoning`, `cost`, a `compat` flag): each of the patch's models is
 * merged into the file's model of its id, the patch's fields winning, where
 * an array would otherwise replace them all. A model that is no longer a mode
 * is dropped, since brainstem would refuse it, and said.
 */
function withModelsKept(current: JsonObject, patch: JsonObject, err: TextOut): JsonObject {
  const existing = valueAt(current, MODELS_PATH);
  const wanted = valueAt(patch, MODELS_PATH);
  if (!Array.isArray(existing) || !Array.isArray(wanted)) return patch;
  const byId = new Map<Json, JsonObject>();
  for (const m of existing) if (isObject(m) && typeof m.id === 'string') byId.set(m.id, m);
  const models = wanted.map((m) => {
    const had = isObject(m) ? byId.get(m.id ?? null) : undefined;
    return had && isObject(m) ? merge(had, m) : m;
  });
  const kept = new Set(models.map((m) => (isObject(m) ? m.id : undefined)));
  const dropped = [...byId.keys()].filter((id) => !kept.has(id)).map(String);
  const unnamed = existing.length - byId.size;
  if (unnamed) dropped.push(`${unnamed} ${unnamed === 1 ? 'entry' : 'entries'} without an id`);
  if (dropped.length) {
    err.write(
      `${MODELS_PATH.join('.')}: dropped ${dropped.join(', ')}, no longer a brainstem mode (brainstem would refuse ${dropped.length === 1 ? 'it' : 'them'}); the backup keeps ${dropped.length === 1 ? 'it' : 'them'}\n`,
    );
  }
  return merge(patch, nested(MODELS_PATH, models));
}

/**
 * When the file already lists allowed models, OpenClaw refuses any model
 * missing from it: add brainstem's. Two lists: `agents.defaults.models` (the
 * allow-list of OpenClaw before 2026.9, its per-model settings since), given
 * each of brainstem's models, and `agents.defaults.modelPolicy.allow` (the
 * allow-list since, which takes `provider/*`), given `brainstem/*`, which
 * covers the modes to come too; said. Without a list, none is created, since
 * creating one would forbid every other model.
 */
function withAllowlist(current: JsonObject, patch: JsonObject, config: Config, err: TextOut): JsonObject {
  let out = patch;
  const allowed = valueAt(current, ALLOWLIST_PATH);
  if (isObject(allowed)) {
    const additions: JsonObject = {};
    for (const ref of brainstemRefs(config)) if (!(ref in allowed)) additions[ref] = {};
    out = merge(out, nested(ALLOWLIST_PATH, additions));
  }
  const policy = valueAt(current, POLICY_PATH);
  if (Array.isArray(policy) && policy.length > 0 && !policy.some(admitsBrainstem)) {
    err.write(
      `${POLICY_PATH.join('.')}: brainstem/* added, so that OpenClaw may use brainstem's models (an empty list allows any)\n`,
    );
    out = merge(out, nested(POLICY_PATH, [...policy, 'brainstem/*']));
  }
  return out;
}

/** An entry of modelPolicy.allow that admits every brainstem model: `brainstem/*`, or a wider prefix (`*`, `b*`). */
function admitsBrainstem(entry: unknown): boolean {
  return typeof entry === 'string' && entry.endsWith('*') && 'brainstem/'.startsWith(entry.slice(0, -1));
}

const ALLOWLIST_PATH = ['agents', 'defaults', 'models'] as const;
const POLICY_PATH = ['agents', 'defaults', 'modelPolicy', 'allow'] as const;

/** `brainstem/<model>` for each of brainstem's models: `active` and one per mode. */
function brainstemRefs(config: Config): string[] {
  return ['active', ...config.modes.map((m) => m.id)].map((id) => `brainstem/${id}`);
}

/**
 * The allow-list entries of brainstem models that are no longer modes, taken
 * out of the merged file: left in, OpenClaw would offer a model (by its alias
 * too) that brainstem refuses. Dropped even with the owner's `alias` or
 * `params` on it, as the provider's model is (withModelsKept), and said; the
 * other providers' entries are the owner's and stay.
 */
function withoutStaleAllowlist(merged: JsonObject, config: Config, err: TextOut): JsonObject {
  const allowed = valueAt(merged, ALLOWLIST_PATH);
  if (!isObject(allowed)) return merged;
  const wanted = new Set(brainstemRefs(config));
  const stale = Object.keys(allowed).filter((ref) => ref.startsWith('brainstem/') && !wanted.has(ref));
  if (!stale.length) return merged;
  const said = stale.map((ref) => {
    const entry = allowed[ref];
    const settings = isObject(entry) ? Object.keys(entry) : [];
    return settings.length ? `${ref} (with its ${settings.join(', ')})` : ref;
  });
  const them = stale.length === 1 ? 'it' : 'them';
  err.write(
    `${ALLOWLIST_PATH.join('.')}: dropped ${said.join(', ')}, no longer a brainstem mode (brainstem would refuse ${them}); the backup keeps ${them}\n`,
  );
  const kept = Object.fromEntries(Object.entries(allowed).filter(([ref]) => !stale.includes(ref)));
  return replacedAt(merged, ALLOWLIST_PATH, kept);
}

const FALLBACKS_PATH = ['agents', 'defaults', 'model', 'fallbacks'] as const;

/**
 * The fallbacks (`agents.defaults.model.fallbacks`) that name a brainstem model no longer a mode,
 * taken out and said: OpenClaw would fall back on a model brainstem refuses, one failed request
 * more each time the primary fails.
 */
function withoutStaleFallbacks(merged: JsonObject, config: Config, err: TextOut): JsonObject {
  const fallbacks = valueAt(merged, FALLBACKS_PATH);
  if (!Array.isArray(fallbacks)) return merged;
  const wanted = new Set(brainstemRefs(config));
  const stale = fallbacks.filter(
    (ref) => typeof ref === 'string' && ref.startsWith('brainstem/') && !wanted.has(ref),
  );
  if (!stale.length) return merged;
  err.write(
    `${FALLBACKS_PATH.join('.')}: dropped ${stale.join(', ')}, no longer a brainstem mode (brainstem would refuse ${stale.length === 1 ? 'it' : 'them'})\n`,
  );
  return replacedAt(
    merged,
    FALLBACKS_PATH,
    fallbacks.filter((ref) => !stale.includes(ref)),
  );
}

function merge(base: JsonObject, top: JsonObject): JsonObject {
  const out: JsonObject = { ...base };
  for (const [key, value] of Object.entries(top)) {
    const existing = out[key];
    out[key] = isObject(existing) && isObject(value) ? merge(existing, value) : value;
  }
  return out;
}
