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

  data(payload: unknown): void {
    if (this.closed) return;
    this.res.write(`data: ${typeof payload === 'string' ? payload : JSON.stringify(payload)}\n\n`);
  }

  end(): void {
    if (this.closed) return;
    this.open = false;
    this.res.write('data: [DONE]\n\n');
    this.res.end();
  }
}
