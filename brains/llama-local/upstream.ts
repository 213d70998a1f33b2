import { z } from 'zod';
import { shorten } from '../../src/text.js';

/**
 * What an OpenAI-compatible upstream (llama-server, Ollama) sends, checked at
 * the boundary. Fields brainstem does not use (`reasoning_content`, `timings`,
 * …) are stripped, and everything optional is nullish because servers differ
 * on null versus absent.
 */

/** One token's entry of `logprobs.content`: its text is read (shown-content.ts), the rest passed on as it is. */
const tokenLogprob = z.looseObject({ token: z.string() });
export type TokenLogprob = z.infer<typeof tokenLogprob>;

const toolCallDelta = z.object({
  /** Left out by some servers (Gemini's OpenAI endpoint, Ollama before 0.4.7): the ids tell the calls apart (CallSlots). */
  index: z.number().int().min(0).nullish(),
  id: z.string().nullish(),
  function: z.object({ name: z.string().nullish(), arguments: z.string().nullish() }).nullish(),
});

export const streamChunkSchema = z.object({
  choices: z
    .array(
      z.object({
        delta: z
          .object({ content: z.string().nullish(), tool_calls: z.array(toolCallDelta).nullish() })
          .nullish(),
        finish_reason: z.string().nullish(),
        /** Asked for with `logprobs`: passed to the client for the text it is shown (shown-content.ts). */
        logprobs: z.object({ content: z.array(tokenLogprob).nullish() }).nullish(),
      }),
    )
    .nullish(),
  usage: z.object({ prompt_tokens: z.number(), completion_tokens: z.number() }).nullish(),
  /** Some llama-server builds report a failure after the headers as a chunk holding only this (others: sse.ts). */
  error: z.unknown().optional(),
});

/** llama-server: `{"error":{"message":…}}`; Ollama: `{"error":"…"}`. */
const errorBodySchema = z.object({
  error: z.union([z.string(), z.object({ message: z.string() })]),
});

/**
 * The longest upstream message quoted: it is shown back in answers, notices and /status, and
 * nothing bounds what a server puts in it (a /health answer of 5,000 characters filled a notice).
 */
export const MAX_SAID_CHARS = 300;

/** The upstream's own error message from a JSON error body or chunk, if it has one, cut to MAX_SAID_CHARS. */
export function upstreamErrorMessage(value: unknown): string | undefined {
  const parsed = errorBodySchema.safeParse(value);
  if (!parsed.success) return undefined;
  const e = parsed.data.error;
  return shorten(typeof e === 'string' ? e : e.message, MAX_SAID_CHARS);
}

/**
 * llama-server's refusal of a prompt longer than its context (a slot's
 * `--ctx-size`): HTTP 400, `type` "exceed_context_size_error" with both counts,
 * or, in older builds, only its message.
 */
const contextOverflowSchema = z.object({
  error: z.object({
    type: z.string().nullish(),
    message: z.string().nullish(),
    n_prompt_tokens: z.number().nullish(),
    n_ctx: z.number().nullish(),
  }),
});

export interface ContextOverflow {
  promptTokens?: number;
  contextTokens?: number;
}

export function contextOverflow(value: unknown): ContextOverflow | undefined {
  const parsed = contextOverflowSchema.safeParse(value);
  if (!parsed.success) return undefined;
  const e = parsed.data.error;
  const says =
    e.type === 'exceed_context_size_error' ||
    /exceeds the available context size|context size has been exceeded/i.test(e.message ?? '');
  if (!says) return undefined;
  return { promptTokens: e.n_prompt_tokens ?? undefined, contextTokens: e.n_ctx ?? undefined };
}

export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
