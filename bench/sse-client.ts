import { now } from './stats.js';

export interface StreamTiming {
  ttftMs: number;
  totalMs: number;
  text: string;
}

export interface TimeStreamOptions {
  /**
   * The answer the fake behind the endpoint was scripted to give. brainstem tells some errors
   * (a brain not logged in, a usage limit) as the answer's text, an HTTP 200 stream like any
   * other: without this check such an error would be timed as the answer, and its ratio printed.
   * Compared with the mode tag brainstem may put in front left out, and whitespace at either end.
   */
  answer: string;
  /** Called at the first non-empty content delta. */
  onFirstToken?: () => void;
}

/** The tag `server.modeTag` puts in front of an answer (src/mode-tag.ts): `**[local]** `. */
const MODE_TAG = /^\*\*\[[^\]\n]+\]\*\* /;

/**
 * Times one streamed chat completion with plain fetch (no SDK overhead in the
 * figure): time to the first non-empty content delta and to the end of the
 * stream. An error sent after the headers, a stream that ends without
 * `[DONE]`, or an answer other than `opts.answer` throws: a figure timed on it
 * would be no answer's.
 */
export async function timeStream(
  url: string,
  body: unknown,
  headers: Record<string, string>,
  opts: TimeStreamOptions,
): Promise<StreamTiming> {
  const started = now();
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ stream: true, ...(body as object) }),
  });
  if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  let ttft = -1;
  let text = '';
  let buf = '';
  let done = false;
  const decoder = new TextDecoder();
  for await (const part of res.body) {
    buf += decoder.decode(part as Uint8Array, { stream: true });
    let nl = buf.indexOf('\n\n');
    while (nl !== -1) {
      const event = buf.slice(0, nl);
      buf = buf.slice(nl + 2);
      nl = buf.indexOf('\n\n');
      const data = event.startsWith('data: ') ? event.slice(6) : '';
      if (data === '[DONE]') done = true;
      if (!data || data === '[DONE]') continue;
      const parsed = JSON.parse(data) as { choices?: { delta?: { content?: string } }[]; error?: unknown };
      if (parsed.error !== undefined) throw new Error(`error mid-stream: ${data}`);
      const delta = parsed.choices?.[0]?.delta?.content;
      if (delta) {
        if (ttft < 0) {
          ttft = now() - started;
          opts.onFirstToken?.();
        }
        text += delta;
      }
    }
  }
  const totalMs = now() - started;
  if (ttft < 0) throw new Error(`the stream from ${url} held no text`);
  if (!done) throw new Error(`the stream from ${url} ended without [DONE] after ${JSON.stringify(text)}`);
  if (text.replace(MODE_TAG, '').trim() !== opts.answer.trim()) {
    throw new Error(
      `the stream from ${url} answered ${JSON.stringify(text)}, not the scripted ${JSON.stringify(opts.answer)}`,
    );
  }
  return { ttftMs: ttft, totalMs, text };
}
