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
): Promise<{ output: string; truncated: boolean }> {
  const r = await run([...prefix, url], { signal, timeoutMs, capture: 'stdout' });
  if (r.exitCode !== 0) {
    throw new BrainstemError(
      'TOOL_FAILED',
      `The ${tool} delegate exited with ${r.exitCode}: ${tailChars(r.stderr.trim(), 500) || 'no error output'}`,
    );
  }
  return { output: r.output, truncated: r.truncated };
}
