import { now } from './stats.js';

export interface StreamTiming {
  ttftMs: number;
  totalMs: number;
  text: string;
}

/**
 * Times one streamed chat completion with plain fetch (no SDK overhead in the
 * figure): time to the first non-empty content delta (`onFirstToken` is called
 * then) and to the end of the stream. An error sent after the headers, or an
 * answer with no text, throws: a figure timed on it would be no answer's.
 */
export async function timeStream(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
  onFirstToken?: () => void,
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
  const decoder = new TextDecoder();
  for await (const part of res.body) {
    buf += decoder.decode(part as Uint8Array, { stream: true });
    let nl = buf.indexOf('\n\n');
    while (nl !== -1) {
      const event = buf.slice(0, nl);
      buf = buf.slice(nl + 2);
      nl = buf.indexOf('\n\n');
      const data = event.startsWith('data: ') ? event.slice(6) : '';
      if (!data || data === '[DONE]') continue;
      const parsed = JSON.parse(data) as { choices?: { delta?: { content?: string } }[]; error?: unknown };
      if (parsed.error !== undefined) throw new Error(`error mid-stream: ${data}`);
      const delta = parsed.choices?.[0]?.delta?.content;
      if (delta) {
        if (ttft < 0) {
          ttft = now() - started;
          onFirstToken?.();
        }
        text += delta;
      }
    }
  }
  if (ttft < 0) throw new Error(`the stream from ${url} held no text`);
  return { ttftMs: ttft, totalMs: now() - started, text };
}
