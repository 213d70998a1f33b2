import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import type { Agent, Dispatcher } from 'undici';
import { undici } from '../../src/http-client.js';
import type { BotApiAnswer } from './bot-api.js';

/**
 * The real Bot API, reached with the configured token: a method call goes as
 * it came (JSON, urlencoded or multipart, streamed, not buffered) and
 * Telegram's answer comes back as it was (status, `retry_after`,
 * descriptions), so the caller's own retry and error handling keep working.
 * One keep-alive pool, so a passed-through call costs no new connection.
 */

/**
 * Request headers that describe a body streamed as it came (Telegram decodes a compressed one, as
 * it would from OpenClaw); the rest (host, connection, transfer encodings) is the hop's own.
 */
const BODY_HEADERS = ['content-type', 'content-length', 'content-encoding'] as const;

/**
 * Request headers of a file download passed on: a span of the file (a download resumed where it
 * was cut, a player seeking), only while the file is the one it began with (If-Range: its ETag or
 * Last-Modified), as Telegram's file server answers them (206 and Content-Range); and a client's
 * check that the copy it keeps is still the file (If-None-Match, If-Modified-Since: 304, no body).
 */
const DOWNLOAD_HEADERS = ['range', 'if-range', 'if-none-match', 'if-modified-since'] as const;

export interface Incoming {
  httpMethod: 'GET' | 'POST';
  /** `?…` as it came, or ''. */
  search: string;
  headers: IncomingHttpHeaders;
  body: Readable | Buffer | undefined;
}

export class Passthrough {
  /** Made on the first call, with undici (src/http-client.ts). */
  private agent: Promise<Agent> | undefined;
  private readonly root: string;

  constructor(
    apiRoot: string,
    private readonly token: string,
  ) {
    this.root = apiRoot.replace(/\/+$/, '');
  }

  /** One Bot API method call, forwarded; the caller streams the answer back. */
  async forward(method: string, incoming: Incoming, signal: AbortSignal): Promise<Dispatcher.ResponseData> {
    const headers: Record<string, string> = {};
    for (const name of BODY_HEADERS) {
      const value = incoming.headers[name];
      if (typeof value === 'string') headers[name] = value;
    }
    // A body read whole (to rewrite it) was decoded then: it goes as it is now.
    if (Buffer.isBuffer(incoming.body)) {
      headers['content-length'] = String(incoming.body.length);
      delete headers['content-encoding'];
    }
    const { request } = await undici();
    return request(`${this.root}/bot${this.token}/${method}${incoming.search}`, {
      method: incoming.httpMethod,
      headers,
      body: incoming.httpMethod === 'POST' ? incoming.body : undefined,
      dispatcher: await this.dispatcher(),
      signal,
    });
  }

  /**
   * A file download (`/file/bot<token>/<path>`), streamed. A HEAD goes to Telegram as a HEAD (its
   * file server answers it with the Content-Length and no body), so asking a file's size never
   * costs the file's download. A Range and the conditions (DOWNLOAD_HEADERS) go with it.
   */
  async download(
    filePath: string,
    httpMethod: 'GET' | 'HEAD',
    incoming: IncomingHttpHeaders,
    signal: AbortSignal,
  ): Promise<Dispatcher.ResponseData> {
    const headers: Record<string, string> = {};
    for (const name of DOWNLOAD_HEADERS) {
      const value = incoming[name];
      if (typeof value === 'string') headers[name] = value;
    }
    const { request } = await undici();
    return request(`${this.root}/file/bot${this.token}/${filePath}`, {
      method: httpMethod,
      headers,
      dispatcher: await this.dispatcher(),
      signal,
    });
  }

  /** A call brainstem makes itself (the merged command menu): JSON in, Telegram's answer as text out. */
  async call(method: string, params: object): Promise<BotApiAnswer> {
    const { request } = await undici();
    const res = await request(`${this.root}/bot${this.token}/${method}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(params),
      dispatcher: await this.dispatcher(),
      signal: AbortSignal.timeout(30_000),
    });
    return { status: res.statusCode, body: await res.body.text() };
  }

  async close(): Promise<void> {
    await (await this.agent)?.close();
  }

  private dispatcher(): Promise<Agent> {
    this.agent ??= undici().then(({ Agent }) => new Agent({ keepAliveTimeout: 30_000, connections: 32 }));
    return this.agent;
  }
}
