import type { Dispatcher } from 'undici';
import { z } from 'zod';
import { undici } from '../../src/http-client.js';
import { headChars } from '../../src/text.js';
import { parseJson, upstreamErrorMessage } from './upstream.js';

/**
 * Ollama loads a model only on the first request that names it (and unloads it after its
 * keep_alive, 5 minutes by default), so a mode whose model it has pulled is not yet one that
 * answers: the first message would wait the whole load with nothing said. Its documented way to
 * load a model ahead is a generate request naming it with no prompt (docs/api.md, "Load a
 * model"): the answer comes once the model is in memory, one JSON object
 * `{"model":…,"response":"","done":true,"done_reason":"load"}` (no done_reason before 0.3.10),
 * or an error `{"error":"…"}`: 404 for a model it lacks, 500 for one that does not fit in memory.
 * No keep_alive is sent, so the owner's OLLAMA_KEEP_ALIVE holds.
 */

export type OllamaLoad =
  | { state: 'loaded' }
  /** Ollama answered with an error status; `said` is its own words, when it gave any. */
  | { state: 'refused'; status: number; said?: string }
  /** A 200 that is not the load answer (something else at that address). */
  | { state: 'strange'; text: string }
  /** The caller's signal ended the wait (the switch's deadline, or a stop). */
  | { state: 'cancelled' }
  | { state: 'unreachable'; error: unknown };

/** The fields of the load answer that say it is one; others are not read. */
const loadAnswerSchema = z.object({ done: z.literal(true) });

export async function loadOllamaModel(
  generateUrl: string,
  model: string,
  opts: { signal: AbortSignal; dispatcher: Dispatcher },
): Promise<OllamaLoad> {
  const body = JSON.stringify({ model });
  try {
    const { request } = await undici();
    const res = await request(generateUrl, {
      method: 'POST',
      dispatcher: opts.dispatcher,
      signal: opts.signal,
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body,
      // A big model takes minutes to load, and its answer comes only then: the signal (the
      // switch's llama.readyTimeoutMs, or a stop) bounds the wait, not a silence timer.
      headersTimeout: 0,
      bodyTimeout: 0,
    });
    const text = await res.body.text();
    if (res.statusCode !== 200) {
      return { state: 'refused', status: res.statusCode, said: upstreamErrorMessage(parseJson(text)) };
    }
    if (!loadAnswerSchema.safeParse(parseJson(text)).success) {
      return { state: 'strange', text: headChars(text, 200) };
    }
    return { state: 'loaded' };
  } catch (error) {
    if (opts.signal.aborted) return { state: 'cancelled' };
    return { state: 'unreachable', error };
  }
}
