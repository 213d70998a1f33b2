import { randomUUID } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { constants } from 'node:os';
import { finished } from 'node:stream/promises';
import { setTimeout as delay, setImmediate as immediate } from 'node:timers/promises';
import { BrainstemError } from '../errors.js';
import { formatDuration, type Lang, t } from '../i18n.js';
import { forgetGroup, MARK_VAR, stopGroup, trackGroup } from '../process-group.js';
import { subprocesses } from '../subprocesses.js';
import { headChars, shorten, tailChars } from '../text.js';
import { EscapingDecoder } from './escaping-decoder.js';

/**
 * The one way tools run programs: argv only (never a shell), a cwd, a wall
 * clock that kills the whole process tree, output capped to its head and tail,
 * and lines handed to `onOutput` as they come. Everything is asynchronous, so
 * a long `make` never holds up chats, /health or other tools.
 */

export interface RunOptions {
  cwd?: string;
  /** The setting that names `cwd` (tools.git.repo): named when that directory is missing. */
  cwdSetting?: string;
  /** Added to the environment (brainstem's own secrets are never passed on). */
  env?: Record<string, string>;
  timeoutMs?: number;
  /** The setting that gave `timeoutMs` (tools.tests.timeoutMs): named when the run is stopped at it. Default: tools.timeoutMs. */
  timeoutSetting?: string;
  signal?: AbortSignal;
  /** Output as it arrives, cut at line ends. */
  onOutput?: (chunk: string) => void;
  /**
   * `all` interleaves stdout and stderr; `stdout` keeps stderr apart (for commands whose stdout is
   * data), and brainstem's own note of a process left in the background goes with stderr.
   */
  capture?: 'all' | 'stdout';
  /** Replaces tools.maxOutputChars for output brainstem parses rather than shows, which a cut would make unreadable. */
  maxOutputChars?: number;
  /** The reader's language, for brainstem's own note in the output (a chat's; absent, English, for a program or a model). */
  lang?: Lang;
  /**
   * Output that holds file names (git's): bytes that are not UTF-8 and bidi controls written as
   * `\377` (EscapingDecoder), where they would show a different name (U+FFFD, a reordered line).
   */
  escapeNames?: boolean;
}

export interface RunResult {
  exitCode: number;
  output: string;
  truncated: boolean;
  /** The tail of stderr when `capture` is `stdout`. */
  stderr: string;
  durationMs: number;
}

export interface RunDefaults {
  timeoutMs: number;
  maxOutputChars: number;
  /** Between SIGTERM and SIGKILL. */
  killGraceMs?: number;
  /** More variables that hold a secret of brainstem's (named by its config: transcription.apiKeyEnv). */
  hiddenEnv?: readonly string[];
}

const noop = () => undefined;

/** How long output may still come once the command exited, before what holds it is deemed a background process. */
const EXIT_DRAIN_MS = 300;

export type Runner = (argv: readonly string[], opts?: RunOptions) => Promise<RunResult>;

/** A run that did not end by itself; carries what the command printed before it stopped. */
export class ToolRunError extends BrainstemError {
  constructor(
    code: 'TOOL_TIMEOUT' | 'TOOL_ABORTED' | 'TOOL_FAILED',
    message: string,
    readonly output = '',
    readonly truncated = false,
    fr?: string,
  ) {
    super(code, message, undefined, fr);
  }
}

/**
 * Variables that hold brainstem's own credentials, its Claude ones included:
 * commands it runs (a make target, a test suite) have no business seeing them.
 * LLAMA_BASE_URL is brainstem's setting, and may carry the upstream's `user:pass@`.
 */
const OWN_SECRETS = [
  'BRAINSTEM_API_TOKEN',
  'LLAMA_BASE_URL',
  'TELEGRAM_BOT_TOKEN',
  'BRAVE_API_KEY',
  'OPENCLAW_GATEWAY_TOKEN',
  'ANTHROPIC_API_KEY',
  'ANTHROPIC_AUTH_TOKEN',
  'CLAUDE_CODE_OAUTH_TOKEN',
];

/** Secrets the config names by their variable (the transcription key), hidden from commands like OWN_SECRETS. */
export function configuredSecrets(config: { transcription?: { apiKeyEnv?: string } }): string[] {
  const key = config.transcription?.apiKeyEnv;
  return key ? [key] : [];
}

export function childEnv(
  extra: Record<string, string> = {},
  hidden: readonly string[] = [],
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  for (const k of [...OWN_SECRETS, ...hidden]) delete env[k];
  return { ...env, ...extra };
}

export function createRunner(defaults: RunDefaults): Runner {
  return (argv, opts = {}) =>
    runCommand(argv, { ...defaults, ...opts, timeoutMs: opts.timeoutMs ?? defaults.timeoutMs });
}

export async function runCommand(
  argv: readonly string[],
  opts: RunOptions & RunDefaults,
): Promise<RunResult> {
  const [file, ...args] = argv;
  if (!file) throw new BrainstemError('INTERNAL', 'empty command');
  refuseNul([...argv, ...(opts.cwd === undefined ? [] : [opts.cwd])]);
  const started = Date.now();
  const capture = opts.capture ?? 'all';
  const { execa } = await subprocesses();
  // What the run starts inherits it: after a crash, a member of its group that started after
  // brainstem last found the run running is told by it from another group's (leftover-groups.ts).
  const mark = randomUUID();
  const child = execa(file, args, {
    cwd: opts.cwd,
    env: { ...childEnv(opts.env, opts.hiddenEnv), [MARK_VAR]: mark },
    extendEnv: false,
    stdin: 'ignore',
    all: capture === 'all',
    buffer: false,
    reject: false,
    // Its own process group, so a kill reaches everything it started (make → sh → compiler …).
    detached: true,
  });
  const pid = child.pid;
  // Not started: nothing to wait for (when execa finds the directory is not one, the streams never end).
  if (pid === undefined) throw await notStarted(file, await child, opts);
  trackGroup(child, mark, 'group');

  let stopped: 'timeout' | 'aborted' | undefined;
  let exited = false;
  const killGraceMs = opts.killGraceMs ?? 3_000;
  const stop = (why: 'timeout' | 'aborted') => {
    if (stopped || exited) return;
    stopped = why;
    // Not cancelled when the run ends: a member that closed the output and ignores SIGTERM is still killed.
    stopGroup(pid, killGraceMs);
  };
  const onAbort = () => stop('aborted');
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  if (opts.signal?.aborted) onAbort();
  const timer = setTimeout(() => stop('timeout'), opts.timeoutMs);

  let stderr = '';
  if (capture === 'stdout') {
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr = tailChars(stderr + chunk.toString('utf8'), 4_096);
    });
  }
  const cap = new OutputCap(opts.maxOutputChars);
  const lines = new LineFeed(opts.onOutput);
  const decoder = opts.escapeNames ? new EscapingDecoder() : new TextDecoder();
  const stream = capture === 'all' ? child.all : child.stdout;
  const onData = (chunk: Buffer) => {
    const text = decoder.decode(chunk, { stream: true });
    cap.push(text);
    lines.push(text);
  };
  stream?.on('data', onData);
  // The output ends once every process holding the pipe has closed it: a background process the
  // command started (`server &`) may hold it long after the command exited.
  const ended = Promise.all(
    [child.stdout, child.stderr].map((pipe) => (pipe ? finished(pipe).then(noop, noop) : undefined)),
  );
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const leftBehind = exit.then(async (status) => {
    // It exited by itself: a timeout or /stop must not kill what it leaves running.
    if (!stopped) exited = true;
    // What it printed just before exiting is still in the pipe: a moment to read it. When that
    // moment ends, the end of the output may be waiting unread behind a loop held up meanwhile (a
    // busy machine): the loop reads what waits before the window is judged, two turns, the
    // second for the pipes' close callbacks.
    const drained = await Promise.race([
      ended.then(() => true),
      delay(EXIT_DRAIN_MS, false, { ref: false }).then(async () => {
        for (let turn = 0; turn < 2; turn++) await immediate(undefined, { ref: false });
        return false;
      }),
    ]);
    if (drained) return undefined;
    if (!stopped) return status;
    // A run brainstem stopped: its group is SIGKILLed within the grace, which closes its ends of the
    // pipe. What holds it after that left the group (setsid, a daemon) and is out of reach: the
    // run must not last as long as it does.
    const closed = await Promise.race([ended.then(() => true), delay(killGraceMs, false, { ref: false })]);
    return closed ? undefined : 'held';
  });
  const background = await Promise.race([ended.then(() => undefined), leftBehind]);
  exited = true;
  clearTimeout(timer);
  opts.signal?.removeEventListener('abort', onAbort);
  forgetGroup(pid);
  const held = background === 'held';
  if (held) {
    // brainstem lets go of its ends of the pipes; the process holding the other end is left running.
    for (const pipe of [child.stdout, child.stderr, child.all]) pipe?.destroy();
  } else if (background) {
    // The command is done; what it started in the background is the owner's, as when they run it
    // in a shell: a deploy that starts a server means it to keep running. So it is left running,
    // and its output is still read (and dropped) so that it never blocks on a full pipe nor dies
    // of SIGPIPE, until it closes it or brainstem stops.
    stream?.off('data', onData);
    stream?.resume();
    const note = `\n${t(
      opts.lang,
      '[The command exited, but a process it started in the background still holds its output; it was left running and its output is not shown (redirect it: > file 2>&1).]',
      '[La commande est terminée, mais un processus qu’elle a lancé en arrière-plan tient encore sa sortie : il tourne toujours, et sa sortie n’est pas montrée (redirigez-la : > fichier 2>&1).]',
    )}\n`;
    // Output that is data (a transcript, JSON) must not get brainstem's words in it: there the note is stderr's.
    const data = capture === 'stdout';
    cap.push(decoder.decode() + (data ? '' : note));
    if (!data) lines.push(note);
    lines.flush();
    const { text, truncated } = cap.result();
    const exitCode =
      background.code ?? 128 + (background.signal ? (constants.signals[background.signal] ?? 0) : 0);
    const errors = data ? tailChars(stderr + note, 4_096) : stderr;
    return { exitCode, output: text, truncated, stderr: errors, durationMs: Date.now() - started };
  }
  const tailText = decoder.decode();
  cap.push(tailText);
  lines.push(tailText);
  lines.flush();

  const { text: output, truncated } = cap.result();
  const shown = argv.join(' ');
  const leftHolding = held
    ? ' A process it started outside its process group (setsid, a daemon) still held its output: it was left running, and its output after this is not shown.'
    : '';
  const leftHoldingFr = held
    ? ' Un processus qu’elle a lancé hors de son groupe de processus (setsid, un démon) tenait encore sa sortie : il tourne toujours, et sa sortie après ceci n’est pas montrée.'
    : '';
  if (stopped === 'timeout') {
    const limit = formatDuration(opts.timeoutMs);
    // The setting that gave this limit: raising tools.timeoutMs does nothing for a command with its own.
    const setting = opts.timeoutSetting ?? 'tools.timeoutMs';
    throw new ToolRunError(
      'TOOL_TIMEOUT',
      `"${shown}" was stopped after ${limit} (its time limit); raise ${setting} if it needs longer.${leftHolding}`,
      output,
      truncated,
      `« ${shown} » a été arrêtée après ${limit} (sa limite de temps) ; augmentez ${setting} si elle a besoin de plus de temps.${leftHoldingFr}`,
    );
  }
  if (stopped === 'aborted') {
    throw new ToolRunError(
      'TOOL_ABORTED',
      `"${shown}" was stopped.${leftHolding}`,
      output,
      truncated,
      `« ${shown} » a été arrêtée.${leftHoldingFr}`,
    );
  }
  const r = await child;
  const durationMs = Date.now() - started;
  if (r.exitCode === undefined && r.signal === undefined) throw await notStarted(file, r, opts);
  // Killed by someone else (OOM killer, an operator): the shell convention 128 + signal number.
  const exitCode = r.exitCode ?? 128 + (r.signal ? (constants.signals[r.signal] ?? 0) : 0);
  return { exitCode, output, truncated, stderr, durationMs };
}

/** Why a program did not start, said so that the owner knows what to fix. */
async function notStarted(
  file: string,
  r: { code?: string | undefined; originalMessage?: string | undefined; shortMessage?: string | undefined },
  opts: RunOptions,
): Promise<BrainstemError> {
  // A missing working directory fails the spawn with the same ENOENT as a missing program.
  if (opts.cwd && (r.code === 'ENOENT' || r.code === 'ENOTDIR')) {
    const missing = await missingDir(opts.cwd, opts.cwdSetting);
    if (missing) return missing;
  }
  if (r.code === 'ENOENT') {
    return new ToolRunError(
      'TOOL_FAILED',
      `"${file}" was not found; install it or put it on brainstem's PATH.`,
      '',
      false,
      `« ${file} » est introuvable ; installez-le ou ajoutez-le au PATH de brainstem.`,
    );
  }
  const why = r.originalMessage ?? r.shortMessage;
  return new ToolRunError(
    'TOOL_FAILED',
    `"${file}" could not be started: ${why}`,
    '',
    false,
    `« ${file} » n’a pas pu être lancé : ${why}`,
  );
}

/** The most of a refused argument quoted back. */
const NUL_QUOTE_MAX = 200;

/**
 * No program's argument or working directory can hold a NUL byte (the kernel's strings end there),
 * and Node throws a bare TypeError on one, which would reach the caller as an internal failure. A
 * tool's input put it there (a git_diff path, an incus_exec argument): the caller's to fix.
 */
function refuseNul(parts: readonly string[]): void {
  const bad = parts.find((p) => p.includes('\0'));
  if (bad === undefined) return;
  const shown = shorten(bad.replaceAll('\0', '\\0'), NUL_QUOTE_MAX);
  throw new BrainstemError(
    'INVALID_REQUEST',
    `An argument holds a NUL character (shown as \\0), which no program can take: "${shown}".`,
    undefined,
    `Un argument contient un caractère NUL (montré comme \\0), qu’aucun programme ne peut recevoir : « ${shown} ».`,
  );
}

/** Why `dir` cannot be a working directory, if it cannot: the setting that names it is then the thing to fix. */
async function missingDir(dir: string, setting: string | undefined): Promise<BrainstemError | undefined> {
  const what = await stat(dir).then(
    (s) => (s.isDirectory() ? undefined : { en: 'is not a directory', fr: 'n’est pas un dossier' }),
    () => ({ en: 'does not exist', fr: 'n’existe pas' }),
  );
  if (!what) return undefined;
  return setting
    ? new BrainstemError(
        'TOOL_NOT_CONFIGURED',
        `${setting} is ${dir}, which ${what.en}; fix it in brainstem.json.`,
        undefined,
        `${setting} vaut ${dir}, qui ${what.fr} ; corrigez-le dans brainstem.json.`,
      )
    : new ToolRunError(
        'TOOL_FAILED',
        `The working directory ${dir} ${what.en}.`,
        '',
        false,
        `Le dossier de travail ${dir} ${what.fr}.`,
      );
}

export const omittedMarker = (n: number) => `\n[… ${n} characters omitted …]\n`;

/** Keeps the first and the last halves of the allowance; what was dropped is counted for the marker. */
export class OutputCap {
  private head = '';
  private tail = '';
  private dropped = 0;
  private readonly headMax: number;
  private readonly tailMax: number;

  constructor(max: number) {
    this.headMax = Math.floor(max / 2);
    this.tailMax = max - this.headMax;
  }

  push(text: string): void {
    let rest = text;
    // Once the tail has begun the head is closed, even one short (an emoji it could not take whole).
    if (!this.tail && this.head.length < this.headMax) {
      const taken = headChars(rest, this.headMax - this.head.length);
      this.head += taken;
      rest = rest.slice(taken.length);
    }
    if (!rest) return;
    this.tail += rest;
    // Trimmed in batches so a chatty command costs amortised constant work per character.
    if (this.tail.length > this.tailMax * 2) this.trim();
  }

  result(): { text: string; truncated: boolean } {
    this.trim();
    const truncated = this.dropped > 0;
    return {
      text: truncated ? this.head + omittedMarker(this.dropped) + this.tail : this.head + this.tail,
      truncated,
    };
  }

  private trim(): void {
    if (this.tail.length <= this.tailMax) return;
    const kept = tailChars(this.tail, this.tailMax);
    this.dropped += this.tail.length - kept.length;
    this.tail = kept;
  }
}

/** Hands output on at line ends; a long line without one (a progress bar) is passed on anyway. */
class LineFeed {
  private pending = '';
  constructor(private readonly sink?: (chunk: string) => void) {}

  push(text: string): void {
    if (!this.sink || !text) return;
    this.pending += text;
    const end = this.pending.lastIndexOf('\n');
    if (end >= 0) {
      this.emit(this.pending.slice(0, end + 1));
      this.pending = this.pending.slice(end + 1);
    }
    if (this.pending.length > 4_096) {
      this.emit(this.pending);
      this.pending = '';
    }
  }

  flush(): void {
    if (this.pending) this.emit(this.pending);
    this.pending = '';
  }

  private emit(chunk: string): void {
    try {
      this.sink?.(chunk);
    } catch {
      // A failing progress display must not fail the command.
    }
  }
}
