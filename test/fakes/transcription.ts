/**
 * A fake OpenAI-compatible speech-to-text server (`POST /v1/audio/transcriptions`,
 * multipart/form-data), as whisper.cpp's server, Speaches or OpenAI answer it.
 *
 *   const stt = await startFakeTranscription();   // stt.baseUrl = http://127.0.0.1:N/v1
 *   await startFakeTranscription({ port: 6000 })   // on that port (rejects if it is taken)
 *   stt.answer({ text: 'hello' })                  // every request gets this JSON (default {"text":"fake transcript"})
 *   stt.answer({ status: 500, error: 'model crashed' })   // OpenAI's error shape with that status
 *   stt.answer({ status: 200, json: { error: 'failed to read WAV file' } })   // any JSON body (whisper.cpp's server, Speaches)
 *   stt.answer({ hang: true })                     // never answers (until close)
 *   stt.requests        // every request: headers, the form fields, the file part (name, type, bytes)
 *   await stt.waitForRequests(n)
 *   await stt.close()
 *
 * The multipart body is parsed strictly (boundary from the header, each part's
 * headers, CRLF framing, the closing delimiter): a malformed body gets a 400,
 * as a real server would refuse it.
 */
import { EventEmitter, once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeTranscriptionRequest {
  path: string;
  authorization: string | undefined;
  fields: Record<string, string>;
  file?: { fileName: string; contentType: string | undefined; bytes: Buffer };
}

export type FakeTranscriptionAnswer =
  | { text: string }
  | { status: number; error: string }
  | { status: number; json: unknown }
  | { hang: true };

export interface FakeTranscription {
  baseUrl: string;
  requests: FakeTranscriptionRequest[];
  answer(a: FakeTranscriptionAnswer): void;
  waitForRequests(n: number): Promise<void>;
  close(): Promise<void>;
}

export async function startFakeTranscription(opts: { port?: number } = {}): Promise<FakeTranscription> {
  const requests: FakeTranscriptionRequest[] = [];
  const changed = new EventEmitter();
  let current: FakeTranscriptionAnswer = { text: 'fake transcript' };
  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    const send = (status: number, json: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(json));
    };
    if (req.method !== 'POST' || req.url !== '/v1/audio/transcriptions') {
      send(404, { error: { message: 'not found' } });
      return;
    }
    let parts: Part[];
    try {
      parts = parseMultipart(req.headers['content-type'], body);
    } catch (err) {
      send(400, { error: { message: (err as Error).message } });
      return;
    }
    const record: FakeTranscriptionRequest = {
      path: req.url,
      authorization: req.headers.authorization,
      fields: {},
    };
    for (const p of parts) {
      if (p.fileName !== undefined)
        record.file = { fileName: p.fileName, contentType: p.contentType, bytes: p.body };
      else record.fields[p.name] = p.body.toString('utf8');
    }
    requests.push(record);
    changed.emit('request');
    if (!record.file || !record.fields.model) {
      send(400, { error: { message: 'file and model are required' } });
      return;
    }
    const a = current;
    if ('hang' in a) return;
    if ('json' in a) send(a.status, a.json);
    else if ('status' in a) send(a.status, { error: { message: a.error, type: 'server_error' } });
    else send(200, { text: a.text });
  });
  server.listen(opts.port ?? 0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    requests,
    answer(a) {
      current = a;
    },
    async waitForRequests(n) {
      while (requests.length < n) await once(changed, 'request');
    },
    async close() {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}

interface Part {
  name: string;
  fileName?: string;
  contentType?: string;
  body: Buffer;
}

/** RFC 7578 multipart/form-data, strictly: every part framed by the boundary, headers, a blank line. */
function parseMultipart(contentType: string | undefined, body: Buffer): Part[] {
  const boundary = /^multipart\/form-data;.*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType ?? '');
  const b = boundary?.[1] ?? boundary?.[2];
  if (!b) throw new Error('not multipart/form-data with a boundary');
  const delimiter = Buffer.from(`--${b}`);
  const parts: Part[] = [];
  let at = body.indexOf(delimiter);
  if (at !== 0) throw new Error('the body does not start with the boundary');
  for (;;) {
    at += delimiter.length;
    if (body.subarray(at, at + 2).toString() === '--') return parts;
    if (body.subarray(at, at + 2).toString() !== '\r\n') throw new Error('bad framing after a boundary');
    at += 2;
    const headEnd = body.indexOf('\r\n\r\n', at);
    if (headEnd === -1) throw new Error('a part without headers');
    const headers = body.subarray(at, headEnd).toString('utf8');
    const next = body.indexOf(Buffer.from(`\r\n--${b}`), headEnd + 4);
    if (next === -1) throw new Error('a part without its closing boundary');
    const disposition = /content-disposition:\s*form-data;([^\r\n]*)/i.exec(headers)?.[1] ?? '';
    const name = /\bname="([^"]*)"/.exec(disposition)?.[1];
    if (name === undefined) throw new Error('a part without a name');
    const fileName = /\bfilename="([^"]*)"/.exec(disposition)?.[1];
    const type = /content-type:\s*([^\r\n]+)/i.exec(headers)?.[1]?.trim();
    parts.push({
      name,
      ...(fileName !== undefined ? { fileName } : {}),
      ...(type ? { contentType: type } : {}),
      body: Buffer.from(body.subarray(headEnd + 4, next)),
    });
    at = next + 2;
  }
}
