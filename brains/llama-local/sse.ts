import { createParser } from 'eventsource-parser';

/**
 * The `data` fields of a server-sent event stream, yielded as soon as each
 * network chunk completes an event: nothing waits for the end of the body.
 * Breaking out of the loop closes the body (and so the upstream request).
 */
export async function* sseData(body: AsyncIterable<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  const ready: string[] = [];
  const parser = createParser({ onEvent: (e) => ready.push(e.data) });
  for await (const chunk of body) {
    parser.feed(decoder.decode(chunk, { stream: true }));
    yield* ready.splice(0);
  }
}
