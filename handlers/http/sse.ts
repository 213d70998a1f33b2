import type { ServerResponse } from 'node:http';

/**
 * Server-sent events straight on the socket: each event is written the moment
 * it exists (no buffering, no compression), which is the whole point of
 * streaming.
 */
export class SseWriter {
  private open = true;

  constructor(private readonly res: ServerResponse) {}

  /** The headers leave with the first event's write (one packet, not two): call data() right after. */
  start(status = 200): void {
    this.res.writeHead(status, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
  }

  get started(): boolean {
    return this.res.headersSent;
  }

  get closed(): boolean {
    return !this.open || this.res.destroyed || this.res.writableEnded;
  }

  /** One event; `event` names its kind (MCP's are `message`), OpenAI's have none. */
  data(payload: unknown, event?: string): void {
    if (this.closed) return;
    const data = `data: ${typeof payload === 'string' ? payload : JSON.stringify(payload)}\n\n`;
    this.res.write(event === undefined ? data : `event: ${event}\n${data}`);
  }

  /**
   * OpenAI's clients read the end of a stream in `data: [DONE]`; MCP's in their last answer
   * (`done: null`: an MCP client parses every event as JSON-RPC, and reports `[DONE]` as an error).
   */
  end(done: string | null = '[DONE]'): void {
    if (this.closed) return;
    this.open = false;
    if (done !== null) this.res.write(`data: ${done}\n\n`);
    this.res.end();
  }
}
