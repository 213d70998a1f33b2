import { get } from 'node:http';
import { z } from 'zod';
import { headChars } from '../../src/text.js';
import { ollamaModelKey } from '../../src/upstream-server.js';
import { parseJson, upstreamErrorMessage } from './upstream.js';

/**
 * Whether a llama upstream has its model loaded, asked the one way both the
 * brain's readiness and `brainstem doctor` ask it: llama-server's /health at
 * the server root answers 200 once the model is loaded and 503 while it loads
 * (/v1/models would answer before the model is loaded). Ollama has no /health:
 * it loads a model on the first request naming it, so it is ready when it has
 * pulled the mode's model (its /api/tags). Each caller words the outcome for its reader.
 *
 * It is a bare GET through node:http, not undici: the readiness board probes at
 * start-up, and loading undici then (~750 kB of source) would hold the event
 * loop ~100 ms right when the first requests come; undici loads with the first turn.
 */

export type LlamaHealth =
  | { state: 'loaded' }
  /**
   * Ollama (it has no /health, and its `/` says "Ollama is running"), with the models it has
   * pulled: it loads one on the first request that names it, so having it is what makes it ready.
   */
  | { state: 'ollama'; models: string[] }
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

/** Ollama's list of pulled models (`GET /api/tags`); other fields are not read. */
const ollamaTagsSchema = z
  .object({ models: z.array(z.object({ name: z.string() })), data: z.unknown().optional() })
  // llama-server answers /api/tags too, for Ollama's clients, with OpenAI's `data` list beside
  // `models` (even while loading): that is no Ollama, whose readiness is its /health.
  .refine((tags) => tags.data === undefined);

/** "Ollama is running": what Ollama's `/` answers (a healthPath of "/" probes it). */
const OLLAMA_ROOT = /^Ollama is running/;

/** Whether Ollama's pulled `models` include `name`. */
export function ollamaHas(models: string[], name: string): boolean {
  const key = ollamaModelKey(name);
  return models.some((m) => ollamaModelKey(m) === key);
}

export async function probeLlamaHealth(
  url: string,
  opts: {
    timeoutMs: number;
    signal?: AbortSignal;
    /**
     * Ollama's `/api/tags` at the same server root: asked when the health path answers 404 (Ollama
     * has no /health) or "Ollama is running" (a healthPath of "/"), to tell Ollama by its answer.
     */
    ollamaTagsUrl?: string;
  },
): Promise<LlamaHealth> {
  const timeout = AbortSignal.timeout(opts.timeoutMs);
  try {
    const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
    const res = await getText(url, signal);
    const maybeOllama = res.status === 404 || (res.status === 200 && OLLAMA_ROOT.test(res.text));
    if (maybeOllama && opts.ollamaTagsUrl) {
      const tags = await getText(opts.ollamaTagsUrl, signal, MAX_TAGS_CHARS);
      const list = tags.status === 200 ? ollamaTagsSchema.safeParse(parseJson(tags.text)) : undefined;
      if (list?.success) return { state: 'ollama', models: list.data.models.map((m) => m.name) };
    }
    if (res.status === 200) return { state: 'loaded' };
    const said = upstreamErrorMessage(parseJson(res.text));
    if (res.status === 503) return { state: 'loading', said };
    return { state: 'http', status: res.status, said };
  } catch (error) {
    if (timeout.aborted) return { state: 'timeout' };
    if (opts.signal?.aborted) return { state: 'cancelled' };
    return { state: 'unreachable', error };
  }
}

/** A health answer is a few bytes; more than this is cut (only an error message is read from it). */
const MAX_BODY_CHARS = 64 * 1024;
/** Ollama's model list: some 400 bytes a model, read whole (a cut list is not JSON). */
const MAX_TAGS_CHARS = 1024 * 1024;

/** A GET's status and text, at most `maxChars` of it. */
export async function getText(
  url: string,
  signal: AbortSignal,
  maxChars = MAX_BODY_CHARS,
): Promise<{ status: number; text: string }> {
  // node:https (TLS) loads only for an https upstream.
  const getter = url.startsWith('https:') ? (await import('node:https')).get : get;
  return new Promise((resolve, reject) => {
    const req = getter(url, { signal, headers: { accept: 'application/json' } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (text.length < maxChars) text += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: headChars(text, maxChars) }));
      res.on('error', reject);
      res.on('close', () => {
        if (!res.complete) reject(new Error('the connection closed before the answer ended'));
      });
    });
    req.on('error', reject);
  });
}
