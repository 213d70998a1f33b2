import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { Agent, type Dispatcher, request } from 'undici';
import type { BotApiAnswer } from './bot-api.js';

/**
 * The real Bot API, reached with the configured token: a method call goes as
 * it came (JSON, urlencoded or multipart, streamed, not buffered) and
 * Telegram's answer comes back as it was (status, `retry_after`,
 * descriptions), so the caller's own retry and error handling keep working.
 * One keep-alive pool, so a passed-through call costs no new connection.
 */

/** Request headers that describe the body; the rest (host, connection, encodings) is the hop's own. */
const BODY_HEADERS = ['content-type', 'content-length'] as const;

export interface Incoming {
  httpMethod: 'GET' | 'POST';
  /** `?…` as it came, or ''. */
  search: string;
  headers: IncomingHttpHeaders;
  body: Readable | Buffer | undefined;
}

export class Passthrough {
  private readonly agent = new Agent({ keepAliveTimeout: 30_000, connections: 32 });
  private readonly root: string;

  constructor(
    apiRoot: string,
    private readonly token: string,
  ) {
    this.root = apiRoot.replace(/\/+$/, '');
  }

  /** One Bot API method call, forwarded; the caller streams the answer back. */
  forward(method: string, incoming: Incoming, signal: AbortSignal): Promise<Dispatcher.ResponseData> {
    const headers: Record<string, string> = {};
    for (const name of BODY_HEADERS) {
      const value = incoming.headers[name];
      if (typeof value === 'string') headers[name] = value;
    }
    if (Buffer.isBuffer(incoming.body)) headers['content-length'] = String(incoming.body.length);
    return request(`${this.root}/bot${this.token}/${method}${incoming.search}`, {
      method: incoming.httpMethod,
      headers,
      body: incoming.httpMethod === 'POST' ? incoming.body : undefined,
      dispatcher: this.agent,
      signal,
    });
  }

  /** A file download (`/file/bot<token>/<path>`), streamed. */
  download(filePath: string, signal: AbortSignal): Promise<Dispatcher.ResponseData> {
    return request(`${this.root}/file/bot${this.token}/${filePath}`, { dispatcher: this.agent, signal });
  }

  /** A call brainstem makes itself (the merged command menu): JSON in, Telegram's answer as text out. */
  async call(method: string, params: object): Promise<BotApiAnswer> {
    const res = await request(`${this.root}/bot${this.token}/${method}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(params),
      dispatcher: this.agent,
      signal: AbortSignal.timeout(30_000),
    });
    return { status: res.statusCode, body: await res.body.text() };
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}
