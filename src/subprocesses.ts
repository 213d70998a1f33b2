import { onFirstUse } from './lazy.js';

/**
 * execa, brainstem's way to run a program (the Claude CLI and its readiness
 * check, /run's commands, /upgrade's steps, llama model swaps), loaded on the
 * first run: with its dependencies it is ~110 kB of source that evaluates on
 * load (~30 ms of a start on a 2-core machine), and serving the first request
 * runs no program. Every program it starts can be killed only once it has a pid
 * (killOnlyStarted).
 *
 *   const { execa } = await subprocesses();
 */
export const subprocesses = onFirstUse(async () => {
  const { execa } = await import('execa');
  // Called as brainstem calls it (a file, its arguments, options): what comes back is the program
  // (execa's other forms, a template or options alone, are not used here).
  const started = ((...args: Parameters<typeof execa>) =>
    killOnlyStarted(execa(...args))) as unknown as typeof execa;
  return { execa: started };
});

export type Execa = Awaited<ReturnType<typeof subprocesses>>['execa'];

/**
 * `sub` whose kill() does nothing while it has no pid. Node's ChildProcess.kill() on a program
 * that failed to start (ENOENT, EACCES), called before its 'error' event, signals the pid its
 * handle never got: 0, which is the caller's whole process group (brainstem, and the shell, pm2
 * or test run it shares a group with), or whatever that memory holds (kill(637536696) was seen).
 * execa calls it so when its cancelSignal was aborted before the start failed: a readiness probe
 * of a `claude` not installed, cut as brainstem stops; a swap command not found, cut by a stop.
 * That ended whole test runs, with no line saying why. Nothing started, nothing to signal.
 */
function killOnlyStarted<T>(sub: T): T {
  if (typeof sub !== 'object' || sub === null || !('kill' in sub) || typeof sub.kill !== 'function')
    return sub;
  const child = sub as T & { pid?: number; kill: (...args: unknown[]) => boolean };
  const kill = child.kill.bind(child);
  child.kill = (...args: unknown[]) => (child.pid === undefined ? false : kill(...args));
  return sub;
}
