/**
 * A fake OpenClaw gateway: its OpenAI-compatible HTTP surface, streamed the
 * way OpenClaw streams (OpenAI chunks, `data: [DONE]`).
 *
 *   const gw = await startFakeOpenClaw({ token: 'gw-secret' });
 *   gw.url                    // what OPENCLAW_GATEWAY_URL holds
 *   gw.reply({ chunks: ['Hel', 'lo'], delayMs: 20 })   // every turn from now on
 *   gw.script((req, n) => ({ chunks: [...] }))          // per turn
 *   gw.requests               // every chat request: headers, body, ended ('completed' | 'closed')
 *   await gw.close()
 *
 * A wrong or missing Bearer token gets 401 with OpenAI's error shape. A reply
 * may end with an `error` chunk, or be cut (`truncate`: no finish, no [DONE]).
 */
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface GatewayReply {
  chunks?: string[];
  delayMs?: number;
  /** Hold the stream after the first chunk until this settles. */
  gate?: Promise<unknown>;
  /** Send an error chunk after the chunks instead of finishing. */
  error?: string;
  /** Close the stream after the chunks with no finish chunk and no [DONE]. */
  truncate?: boolean;
  /** Answer with this HTTP status and an OpenAI error body instead of a stream. */
  status?: number;
}

export interface GatewayRequest {
  headers: http.IncomingHttpHeaders;
  body: { model?: string; stream?: boolean; messages?: { role: string; content: unknown }[] };
  ended: Promise<'completed' | 'closed'>;
}

export interface FakeOpenClaw {
  url: string;
  requests: GatewayRequest[];
  modelsRequests: number;
  reply(r: GatewayReply): void;
  script(fn: (req: GatewayRequest, n: number) => GatewayReply): void;
  close(): Promise<void>;
}

export async function startFakeOpenClaw(opts: { token?: string } = {}): Promise<FakeOpenClaw> {
  const requests: GatewayRequest[] = [];
  let answer: (req: GatewayRequest, n: number) => GatewayReply = () => ({ chunks: ['Hello from OpenClaw.'] });
  let count = 0;
  const fake: FakeOpenClaw = {
    url: '',
    requests,
    modelsRequests: 0,
    reply: (r) => {
      answer = () => r;
    },
    script: (fn) => {
      answer = fn;
    },
    close: async () => {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };

  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const authorized = !opts.token || req.headers.authorization === `Bearer ${opts.token}`;
    const path = (req.url ?? '/').split('?')[0];
    if (!authorized) return json(res, 401, { error: { message: 'Unauthorized', type: 'unauthorized' } });
    if (req.method === 'GET' && path === '/v1/models') {
      fake.modelsRequests++;
      return json(res, 200, { object: 'list', data: [{ id: 'openclaw/default', object: 'model' }] });
    }
    if (req.method !== 'POST' || path !== '/v1/chat/completions')
      return json(res, 404, { error: { message: 'Not Found' } });
    const ended = new Promise<'completed' | 'closed'>((resolve) => {
      res.on('close', () => resolve(res.writableFinished ? 'completed' : 'closed'));
    });
    const recorded: GatewayRequest = {
      headers: req.headers,
      body: JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}'),
      ended,
    };
    requests.push(recorded);
    const r = answer(recorded, count++);
    if (r.status) return json(res, r.status, { error: { message: `fake gateway error ${r.status}` } });
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    const send = (delta: Record<string, unknown>, finish: string | null = null) =>
      res.write(
        `data: ${JSON.stringify({ id: 'chatcmpl-oc', object: 'chat.completion.chunk', created: 0, model: 'openclaw/default', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`,
      );
    send({ role: 'assistant' });
    for (const [i, chunk] of (r.chunks ?? []).entries()) {
      if (i === 1 && r.gate) await r.gate.catch(() => undefined);
      if (i > 0 && r.delayMs) await new Promise((resolve) => setTimeout(resolve, r.delayMs));
      if (res.destroyed) return;
      send({ content: chunk });
    }
    if (r.error) {
      res.end(`data: ${JSON.stringify({ error: { message: r.error, type: 'server_error' } })}\n\n`);
      return;
    }
    if (r.truncate) return res.end();
    send({}, 'stop');
    res.end('data: [DONE]\n\n');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return fake;
}

function json(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}
