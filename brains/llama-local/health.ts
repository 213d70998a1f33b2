import type { Dispatcher } from 'undici';
import { undici } from '../../src/http-client.js';
import { parseJson, upstreamErrorMessage } from './upstream.js';

/**
 * Whether a llama upstream has its model loaded, asked the one way both the
 * brain's readiness and `brainstem doctor` ask it: llama-server's /health at
 * the server root answers 200 once the model is loaded and 503 while it loads
 * (/v1/models would answer before the model is loaded). Each caller words the
 * outcome for its reader.
 */

export type LlamaHealth =
  | { state: 'loaded' }
  | { state: 'loading'; said?: string }
  | { state: 'http'; status: number; said?: string }
  /** No answer within the probe's own time limit. */
  | { state: 'timeout' }
  /** The caller's signal stopped the probe. */
  | { state: 'cancelled' }
  | { state: 'unreachable'; error: unknown };

/** The health URL of a mode's OpenAI-style base URL (`http://host:8081/v1` → `http://host:8081/health`). */
export function llamaHealthUrl(baseUrl: string, healthPath: string): string {
  return `${baseUrl.replace(/\/+$/, '').replace(/\/v1$/, '')}${healthPath}`;
}

export async function probeLlamaHealth(
  url: string,
  opts: { dispatcher: Dispatcher; timeoutMs: number; signal?: AbortSignal },
): Promise<LlamaHealth> {
  const timeout = AbortSignal.timeout(opts.timeoutMs);
  try {
    const { request } = await undici();
    const res = await request(url, {
      dispatcher: opts.dispatcher,
      signal: opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout,
    });
    const text = await res.body.text();
    if (res.statusCode === 200) return { state: 'loaded' };
    const said = upstreamErrorMessage(parseJson(text));
    if (res.statusCode === 503) return { state: 'loading', said };
    return { state: 'http', status: res.statusCode, said };
  } catch (error) {
    if (timeout.aborted) return { state: 'timeout' };
    if (opts.signal?.aborted) return { state: 'cancelled' };
    return { state: 'unreachable', error };
  }
}
