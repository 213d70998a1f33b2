import { BrainstemError } from '../errors.js';
import { tailChars } from '../text.js';
import type { Runner } from './exec.js';

/**
 * Runs a web request through a configured command prefix (e.g. in another
 * container, so the host running brainstem can stay offline): the command gets
 * the URL as its last argument and prints the response body.
 */
export async function runDelegate(
  tool: string,
  prefix: string[],
  url: string,
  run: Runner,
  signal: AbortSignal,
  timeoutMs: number,
  /** The setting that gives `timeoutMs` (tools.webFetch.timeoutMs), named when the command is stopped at it. */
  timeoutSetting: string,
): Promise<{ output: string; truncated: boolean }> {
  const r = await run([...prefix, url], { signal, timeoutMs, timeoutSetting, capture: 'stdout' });
  if (r.exitCode !== 0) {
    const said = tailChars(r.stderr.trim(), 500);
    throw new BrainstemError(
      'TOOL_FAILED',
      `The ${tool} delegate exited with ${r.exitCode}: ${said || 'no error output'}`,
      undefined,
      `La commande déléguée de ${tool} s’est terminée avec le code ${r.exitCode} : ${said || 'aucune sortie d’erreur'}`,
    );
  }
  return { output: r.output, truncated: r.truncated };
}
