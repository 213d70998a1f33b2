import { createParser } from 'eventsource-parser';

/**
 * A field of a server-sent event stream brainstem reads: an event's `data`,
 * or `error`, which is not an SSE field at all but what llama-server writes a
 * failure after the headers as (`error: {"code":500,"message":…}`) in many
 * builds; eventsource-parser drops such a field, and the server's reason with it.
 */
export interface SseField {
  name: 'data' | 'error';
  value: string;
}

/**
 * The fields of a server-sent event stream, yielded as soon as each network
 * chunk completes one: nothing waits for the end of the body. Breaking out of
 * the loop closes the body (and so the upstream request).
 */
export async function* sseFields(body: AsyncIterable<Uint8Array>): AsyncGenerator<SseField> {
  const decoder = new TextDecoder();
  const ready: SseField[] = [];
  const parser = createParser({
    onEvent: (e) => ready.push({ name: 'data', value: e.data }),
    onError: (e) => {
      if (e.type === 'unknown-field' && e.field === 'error')
        ready.push({ name: 'error', value: e.value ?? '' });
    },
  });
  for await (const chunk of body) {
    parser.feed(decoder.decode(chunk, { stream: true }));
    yield* ready.splice(0);
  }
}
