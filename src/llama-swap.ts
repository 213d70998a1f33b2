import type { Said } from './i18n.js';
import type { Logger } from './logger.js';
import { type ReadinessProbe, waitUntilReady } from './readiness.js';
import { redactValue, scrubText } from './redact.js';
import { subprocesses } from './subprocesses.js';
import { tailChars } from './text.js';
import { childEnv } from './tools/exec.js';

/** How long one stop/start command may run (a systemctl or docker call, not the model load itself). */
const COMMAND_TIMEOUT_MS = 60_000;
/** How much of a failed command's output goes into the reason shown to the user. */
const OUTPUT_TAIL_CHARS = 600;

export interface SwapOptions {
  /** argv commands that unload the current model, run first, in order. */
  stop: string[][];
  /** argv commands that load the wanted one, run next, in order. */
  start: string[][];
  /** The upstream's readiness probe (LlamaLocalBrain.ready). */
  probe: ReadinessProbe;
  /** How long the model may take to become ready once started. */
  timeoutMs: number;
  intervalMs: number;
  signal?: AbortSignal;
  logger: Logger;
  /** Per-command limit; default 60 s. */
  commandTimeoutMs?: number;
  /** More variables holding a secret of brainstem's (transcription.apiKeyEnv), hidden like its own. */
  hiddenEnv?: readonly string[];
  /** Called once every stop command ran, before the first start command: the model they unload is gone. */
  onStopped?: () => void;
}

export type SwapResult = { ok: true; ms: number } | { ok: false; reason: Said; ms: number };

/**
 * Swaps the model behind a llama upstream: runs the stop commands, then the
 * start commands (argv, never a shell), then polls readiness until the new
 * model answers. Stops at the first failure, with a reason the user can act on.
 * A command may carry a secret (`--api-key`, `--hf-token`), and print it: both
 * are logged and told in the reason redacted.
 */
export async function swapLlamaModel(opts: SwapOptions): Promise<SwapResult> {
  const started = Date.now();
  const ms = () => Date.now() - started;
  const runAll = async (commands: string[][]): Promise<SwapResult | undefined> => {
    for (const argv of commands) {
      const shown = redactValue(argv);
      const failure = await run(argv, shown, opts);
      if (failure) {
        opts.logger.warn({ argv: shown, reason: failure.en }, 'llama swap command failed');
        return { ok: false, reason: failure, ms: ms() };
      }
    }
    return undefined;
  };
  const stopFailed = await runAll(opts.stop);
  if (stopFailed) return stopFailed;
  opts.onStopped?.();
  const startFailed = await runAll(opts.start);
  if (startFailed) return startFailed;
  const ready = await waitUntilReady(opts.probe, {
    timeoutMs: opts.timeoutMs,
    intervalMs: opts.intervalMs,
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  if (!ready.ok) {
    opts.logger.warn({ reason: ready.reason.en }, 'llama model did not become ready');
    const reason = {
      en: `the model did not become ready: ${ready.reason.en}`,
      fr: `le modèle n’est pas devenu prêt : ${ready.reason.fr}`,
    };
    return { ok: false, reason, ms: ms() };
  }
  opts.logger.info({ ms: ms(), waitedMs: ready.waitedMs }, 'llama model ready');
  return { ok: true, ms: ms() };
}

/**
 * Runs one command; returns why it failed, or undefined when it succeeded.
 * `redacted` is the argv as logged and shown. The reason is brainstem's words around the command's
 * own (its argv, its output, its exit code, which stay as they are): a French reader of a failed
 * switch reads those words in French.
 */
async function run(argv: string[], redacted: unknown, opts: SwapOptions): Promise<Said | undefined> {
  const [file, ...args] = argv;
  if (!file) {
    return {
      en: 'an empty command is configured in llama.models',
      fr: 'une commande vide est configurée dans llama.models',
    };
  }
  const shown = JSON.stringify(redacted);
  const timeout = opts.commandTimeoutMs ?? COMMAND_TIMEOUT_MS;
  const started = Date.now();
  const { execa } = await subprocesses();
  const result = await execa(file, args, {
    timeout,
    reject: false,
    all: true,
    stdin: 'ignore',
    // A systemctl or docker call needs the host's environment, not brainstem's tokens and keys.
    env: childEnv({}, opts.hiddenEnv),
    extendEnv: false,
    ...(opts.signal ? { cancelSignal: opts.signal } : {}),
  });
  opts.logger.info(
    { argv: redacted, ms: Date.now() - started, exitCode: result.exitCode },
    'llama swap command ran',
  );
  if (!result.failed) return undefined;

  // Logged too: what a command printed may echo its arguments (a usage error) or the server's key.
  const tail = result.all ? scrubText(tailChars(result.all.trim(), OUTPUT_TAIL_CHARS)) : '';
  const output = tail ? `; last output:\n${tail}` : '';
  const outputFr = tail ? ` ; dernière sortie :\n${tail}` : '';
  if (result.isCanceled) {
    return {
      en: `the swap was cancelled while ${shown} ran`,
      fr: `le changement de modèle a été annulé pendant que ${shown} tournait`,
    };
  }
  if (result.timedOut) {
    return {
      en: `${shown} did not finish within ${timeout / 1000} s and was killed${output}`,
      fr: `${shown} n’a pas fini en ${timeout / 1000} s et a été tué${outputFr}`,
    };
  }
  if (result.signal) {
    return {
      en: `${shown} was killed by ${result.signal}${output}`,
      fr: `${shown} a été tué par ${result.signal}${outputFr}`,
    };
  }
  if (result.exitCode === undefined) {
    const why = result.originalMessage ?? result.shortMessage;
    return {
      en: `${shown} could not run (${why}); check llama.models in the config`,
      fr: `${shown} n’a pas pu se lancer (${why}) ; vérifiez llama.models dans la configuration`,
    };
  }
  return {
    en: `${shown} failed with exit code ${result.exitCode}${output}`,
    fr: `${shown} a échoué avec le code de sortie ${result.exitCode}${outputFr}`,
  };
}
