import { createParser } from 'eventsource-parser';
import { Agent, errors, request } from 'undici';
import { z } from 'zod';

/**
 * The OpenClaw gateway's OpenAI-compatible endpoint, as a streaming client:
 * one user message per turn (OpenClaw keeps the history under the session key),
 * the answer's text deltas as they come, and errors worded for the chat.
 */

export type GatewayEvent =
  | { type: 'text'; text: string }
  | { type: 'error'; message: string }
  | { type: 'done' };

export type GatewayProbe = { ok: true } | { ok: false; reason: string };

const chunkSchema = z.looseObject({
  choices: z
    .array(
      z.looseObject({
        delta: z.looseObject({ content: z.string().nullish() }).nullish(),
        finish_reason: z.string().nullish(),
      }),
    )
    .default([]),
  error: z.looseObject({ message: z.string().optional() }).nullish(),
});

const errorBodySchema = z.looseObject({
  error: z.union([z.string(), z.looseObject({ message: z.string().optional() })]).optional(),
});

export interface OpenClawClientOptions {
  url: string;
  token?: string | undefined;
  /** How long the gateway may stay silent (before the headers or between chunks): agent turns run tools for minutes. */
  silenceTimeoutMs: number;
}

export class OpenClawClient {
  private readonly base: string;
  private readonly agent: Agent;

  constructor(private readonly opts: OpenClawClientOptions) {
    this.base = opts.url.replace(/\/+$/, '').replace(/\/v1$/, '');
    this.agent = new Agent({
      headersTimeout: opts.silenceTimeoutMs,
      bodyTimeout: opts.silenceTimeoutMs,
      connectTimeout: 5_000,
    });
  }

  get url(): string {
    return this.base;
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return {
      ...(this.opts.token ? { authorization: `Bearer ${this.opts.token}` } : {}),
      ...extra,
    };
  }

  /** One turn: POST /v1/chat/completions, streamed. Ends with exactly one `done` or `error`; never throws. */
  async *turn(sessionKey: string, text: string, signal: AbortSignal): AsyncGenerator<GatewayEvent> {
    let res: Awaited<ReturnType<typeof request>>;
    try {
      res = await request(`${this.base}/v1/chat/completions`, {
        method: 'POST',
        dispatcher: this.agent,
        signal,
        headers: this.headers({
          'content-type': 'application/json',
          accept: 'text/event-stream',
          'x-openclaw-session-key': sessionKey,
        }),
        body: JSON.stringify({
          model: 'openclaw/default',
          stream: true,
          messages: [{ role: 'user', content: text }],
        }),
      });
    } catch (err) {
      if (signal.aborted) {
        yield { type: 'done' };
        return;
      }
      yield { type: 'error', message: this.unreachable(err) };
      return;
    }
    if (res.statusCode >= 400) {
      const body = await res.body.text().catch(() => '');
      yield { type: 'error', message: this.refusal(res.statusCode, body) };
      return;
    }

    const decoder = new TextDecoder();
    const events: string[] = [];
    const parser = createParser({ onEvent: (e) => events.push(e.data) });
    let finished = false;
    try {
      for await (const chunk of res.body) {
        parser.feed(decoder.decode(chunk as Uint8Array, { stream: true }));
        for (const data of events.splice(0)) {
          if (data.trim() === '[DONE]') {
            finished = true;
            continue;
          }
          const parsed = chunkSchema.safeParse(safeJson(data));
          if (!parsed.success) continue;
          if (parsed.data.error) {
            res.body.destroy();
            yield {
              type: 'error',
              message: `OpenClaw: ${parsed.data.error.message ?? 'the gateway reported an error'}`,
            };
            return;
          }
          for (const choice of parsed.data.choices) {
            if (choice.delta?.content) yield { type: 'text', text: choice.delta.content };
            if (choice.finish_reason) finished = true;
          }
        }
      }
    } catch (err) {
      if (signal.aborted) {
        yield { type: 'done' };
        return;
      }
      yield { type: 'error', message: this.broken(err) };
      return;
    }
    if (!finished && !signal.aborted) {
      yield { type: 'error', message: 'OpenClaw: the gateway closed the stream before the answer ended.' };
      return;
    }
    yield { type: 'done' };
  }

  /** Whether the gateway answers at all (GET /v1/models), for /status. */
  async probe(signal: AbortSignal): Promise<GatewayProbe> {
    try {
      const res = await request(`${this.base}/v1/models`, {
        dispatcher: this.agent,
        signal,
        headers: this.headers(),
      });
      const body = await res.body.text().catch(() => '');
      if (res.statusCode < 400) return { ok: true };
      return { ok: false, reason: this.refusal(res.statusCode, body) };
    } catch (err) {
      return { ok: false, reason: this.unreachable(err) };
    }
  }

  async close(): Promise<void> {
    await this.agent.close();
  }

  private unreachable(err: unknown): string {
    const code = (err as { code?: string }).code;
    const why =
      err instanceof errors.HeadersTimeoutError
        ? 'it did not answer in time'
        : (code ?? (err as Error).message ?? String(err));
    return `OpenClaw gateway at ${this.base} is not reachable (${why}). Check that OpenClaw runs and OPENCLAW_GATEWAY_URL.`;
  }

  private refusal(status: number, body: string): string {
    const parsed = errorBodySchema.safeParse(safeJson(body));
    const detail = parsed.success
      ? typeof parsed.data.error === 'string'
        ? parsed.data.error
        : parsed.data.error?.message
      : undefined;
    if (status === 401 || status === 403) {
      return `OpenClaw refused the gateway token (HTTP ${status}); check OPENCLAW_GATEWAY_TOKEN.`;
    }
    if (status === 404) {
      return 'OpenClaw does not serve /v1/chat/completions (HTTP 404); enable gateway.http.endpoints.chatCompletions.';
    }
    return `OpenClaw answered HTTP ${status}${detail ? `: ${detail.slice(0, 300)}` : ''}.`;
  }

  private broken(err: unknown): string {
    if (err instanceof errors.BodyTimeoutError) {
      return `OpenClaw went silent for ${Math.round(this.opts.silenceTimeoutMs / 60_000)} min; the answer was cut.`;
    }
    return `OpenClaw: the stream broke (${(err as Error).message ?? String(err)}).`;
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
