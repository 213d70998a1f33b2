import { setTimeout as sleep } from 'node:timers/promises';
import type { Dispatcher } from 'undici';
import { z } from 'zod';
import { undici } from '../../src/http-client.js';
import { headChars } from '../../src/text.js';
import { getText, ollamaHas } from './health.js';
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

/** Ollama's list of the models in memory (`GET /api/ps`); other fields are not read. */
const ollamaPsSchema = z.object({ models: z.array(z.object({ name: z.string() })) });

/**
 * The models Ollama has in memory now (`GET /api/ps`, since 0.1.38): it unloads one its keep_alive
 * ran out on, and a mode whose model is not there has its first message wait the whole load.
 * Undefined when it does not say (an older Ollama, no answer): the caller loads the model then,
 * which Ollama answers at once for one in memory.
 */
export async function ollamaInMemory(
  psUrl: string,
  opts: { timeoutMs: number; signal?: AbortSignal },
): Promise<string[] | undefined> {
  const timeout = AbortSignal.timeout(opts.timeoutMs);
  try {
    const res = await getText(
      psUrl,
      opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout,
      1024 * 1024,
    );
    if (res.status !== 200) return undefined;
    const ps = ollamaPsSchema.safeParse(parseJson(res.text));
    return ps.success ? ps.data.models.map((m) => m.name) : undefined;
  } catch {
    return undefined;
  }
}

export type OllamaUnload =
  /** Ollama no longer lists the model in memory (or never had it there). */
  | { state: 'gone' }
  /** Ollama took the unload, but its `/api/ps` does not say (an older Ollama): nothing to wait on. */
  | { state: 'unverified' }
  /** The caller's signal ended the wait while `/api/ps` still listed the model: its memory is still held. */
  | { state: 'still loaded' }
  /** Ollama answered the unload with an error status; `said` is its own words, when it gave any. */
  | { state: 'refused'; status: number; said?: string }
  | { state: 'unreachable'; error: unknown };

/**
 * Unloads a model from Ollama's memory now rather than after its keep_alive (5 minutes by default),
 * as its docs/api.md "Unload a model" says: a generate request naming it with `keep_alive` 0 and no
 * prompt. Ollama answers that at once (`"done_reason":"unload"`), before its runner has freed the
 * memory, so this then watches `/api/ps` until the model is no longer listed, every `intervalMs`,
 * until `signal` ends the wait. A model Ollama has not pulled (404) holds no memory.
 */
export async function unloadOllamaModel(
  urls: { generate: string; ps: string },
  model: string,
  opts: { signal: AbortSignal; dispatcher: Dispatcher; intervalMs: number; probeTimeoutMs: number },
): Promise<OllamaUnload> {
  const { signal } = opts;
  try {
    const { request } = await undici();
    const res = await request(urls.generate, {
      method: 'POST',
      dispatcher: opts.dispatcher,
      signal,
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ model, keep_alive: 0 }),
    });
    const text = await res.body.text();
    if (res.statusCode === 404) return { state: 'gone' };
    if (res.statusCode !== 200) {
      return { state: 'refused', status: res.statusCode, said: upstreamErrorMessage(parseJson(text)) };
    }
  } catch (error) {
    if (signal.aborted) return { state: 'still loaded' };
    return { state: 'unreachable', error };
  }
  while (!signal.aborted) {
    const inMemory = await ollamaInMemory(urls.ps, { timeoutMs: opts.probeTimeoutMs, signal });
    if (signal.aborted) break;
    if (inMemory === undefined) return { state: 'unverified' };
    if (!ollamaHas(inMemory, model)) return { state: 'gone' };
    // Ends early when the wait is over: the loop's test then says so.
    await sleep(opts.intervalMs, undefined, { signal }).catch(() => undefined);
  }
  return { state: 'still loaded' };
}
