import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import OpenAI, { APIError } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeLlama, startFakeLlama } from './fakes/llama.js';
import { dataUrlPart, randomPng } from './helpers/images.js';
import { type ServiceProcess, spawnService } from './helpers/process.js';

/**
 * The default body limit (25 MiB) against what OpenClaw sends (up to 20 MB,
 * images as base64), with brainstem as its own process, as clients meet it: a
 * 413 must reach a client that is still sending its body.
 */

const TOKEN = 'body-limit-test-token-0123456789';
const MiB = 1024 * 1024;
let dir: string;
let llama: FakeLlama;
let svc: ServiceProcess;
let client: OpenAI;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'bst-body-'));
  llama = await startFakeLlama({ chunkDelayMs: 0 });
  const file = path.join(dir, 'brainstem.json');
  writeFileSync(
    file,
    JSON.stringify({
      dataDir: path.join(dir, 'data'),
      defaultMode: 'eyes',
      llama: { baseUrl: llama.baseUrl },
      modes: { eyes: { kind: 'llama', vision: true } },
    }),
  );
  svc = await spawnService({
    BRAINSTEM_CONFIG: file,
    HOME: dir,
    BRAINSTEM_API_TOKEN: TOKEN,
    CLAUDE_BIN: path.join(dir, 'no-claude'),
  });
  client = new OpenAI({ baseURL: `${svc.url}/v1`, apiKey: TOKEN, maxRetries: 0, timeout: 60_000 });
});
afterAll(async () => {
  await svc?.stop();
  await llama?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('request body limit', () => {
  it('a 30 MiB body gets a 413 in OpenAI’s shape that the openai SDK and fetch both read', async () => {
    const big = 'x'.repeat(30 * MiB);
    const messages = [{ role: 'user' as const, content: big }];
    for (let i = 0; i < 2; i++) {
      const err = await client.chat.completions.create({ model: 'eyes', messages }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(APIError);
      expect((err as APIError).status).toBe(413);
      expect((err as APIError).code).toBe('body_too_large');
      expect((err as APIError).message).toMatch(
        /too large: over the limit of 25 MiB .*server\.bodyLimitBytes/,
      );

      const res = await fetch(`${svc.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'eyes', messages }),
      });
      expect(res.status).toBe(413);
      expect(((await res.json()) as { error: { type: string } }).error.type).toBe('invalid_request_error');
    }
  });

  it('a body over the limit from OpenClaw reads to its classifier as a request too large, which it compacts', async () => {
    // OpenClaw 2026.9.6 takes `413 … too large` for a context overflow (@openclaw/ai
    // dist/internal/runtime.mjs, CONTEXT_OVERFLOW_PATTERN_SCOPES "failover-explicit"), as it does
    // Anthropic's own 413 request_too_large: it compacts the history (its images with it) and sends
    // the turn again. Any other wording is "unclassified": the same history, and the same 413, every turn.
    const openclaw = new OpenAI({
      baseURL: `${svc.url}/v1`,
      apiKey: TOKEN,
      maxRetries: 0,
      timeout: 60_000,
      defaultHeaders: { 'x-brainstem-client': 'openclaw' },
    });
    const messages = [{ role: 'user' as const, content: 'x'.repeat(30 * MiB) }];
    const err = await openclaw.chat.completions.create({ model: 'eyes', messages }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(APIError);
    expect((err as APIError).status).toBe(413);
    expect((err as APIError).message).toMatch(/413[\s\S]*too large/i);
    expect((err as APIError).message).toMatch(/25 MiB .*server\.bodyLimitBytes/);
  });

  it('a 30 MiB body to /mcp gets the 413 in JSON-RPC’s shape, which an MCP client reads', async () => {
    const res = await fetch(`${svc.url}/mcp`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${TOKEN}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping', params: { pad: 'x'.repeat(30 * MiB) } }),
    });
    expect(res.status).toBe(413);
    expect(await res.json()).toEqual({
      jsonrpc: '2.0',
      id: null,
      error: {
        code: -32000,
        message: expect.stringMatching(
          /^Payload Too Large: The request body is too large: over the limit of 25 MiB /,
        ),
      },
    });
  });

  it('a chunked body (no content-length) gets the 413 once it passes the limit', async () => {
    const url = new URL(`${svc.url}/v1/chat/completions`);
    const piece = Buffer.alloc(MiB, 'x');
    const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(url, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      });
      req.on('response', (r) => {
        let body = '';
        r.setEncoding('utf8');
        r.on('data', (c: string) => {
          body += c;
        });
        r.on('end', () => {
          resolve({ status: r.statusCode ?? 0, body });
          req.destroy();
        });
      });
      req.on('error', reject);
      req.write('{"model":"eyes","messages":[{"role":"user","content":"');
      // Written while the server reads, up to 30 MiB; stops once the answer is in.
      let sent = 0;
      let answered = false;
      req.once('response', () => {
        answered = true;
      });
      const more = () => {
        while (sent < 30 && !answered && !req.destroyed) {
          sent++;
          if (!req.write(piece)) return void req.once('drain', more);
        }
        if (!answered && !req.destroyed) req.end('"}]}');
      };
      more();
    });
    expect(res.status).toBe(413);
    expect((JSON.parse(res.body) as { error: { code: string } }).error.code).toBe('body_too_large');
  });

  it('a 20 MiB body of images is accepted and reaches the model whole', async () => {
    // Four PNGs of 3.9 MB: ~20 MiB of base64.
    const pngs = Array.from({ length: 4 }, () => randomPng(1300, 1000));
    const parts = pngs.map((png) => dataUrlPart(png));
    const size = JSON.stringify(parts).length;
    expect(size).toBeGreaterThan(19.5 * MiB);
    expect(size).toBeLessThan(25 * MiB);
    const before = llama.requests.length;
    const answer = await client.chat.completions.create({
      model: 'eyes',
      messages: [{ role: 'user', content: [{ type: 'text', text: 'four photos' }, ...parts] }],
    });
    expect(answer.choices[0]?.message.content).toBeTruthy();
    const sent = llama.requests.slice(before).find((r) => r.path.endsWith('/chat/completions'));
    const body = sent?.body as { messages?: { content: { image_url?: { url: string } }[] }[] } | undefined;
    const urls = body?.messages?.at(-1)?.content.flatMap((p) => (p.image_url ? [p.image_url.url] : []));
    expect(urls).toEqual(parts.map((p) => p.image_url.url));
  });
});

describe('an image given as its URL alone', () => {
  it('reaches llama-server in OpenAI’s shape, { url }, the one it reads', async () => {
    const url = dataUrlPart(randomPng(8, 8)).image_url.url;
    const before = llama.requests.length;
    const res = await fetch(`${svc.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'eyes',
        messages: [
          {
            role: 'user',
            content: [
              { type: 'text', text: 'what?' },
              { type: 'image_url', image_url: url },
            ],
          },
        ],
      }),
    });
    expect(res.status).toBe(200);
    const sent = llama.requests.slice(before).find((r) => r.path.endsWith('/chat/completions'));
    const body = sent?.body as { messages: { content: unknown[] }[] };
    expect(body.messages.at(-1)?.content.at(-1)).toEqual({ type: 'image_url', image_url: { url } });
  });
});

describe('long strings in a body', () => {
  it('malformed JSON after a string long enough to be lifted out: the parser’s position is in the body as sent', async () => {
    const text = `{"model": "eyes", "messages": [{"role": "user", "content": "${'a'.repeat(70_000)}"}],}`;
    const res = await fetch(`${svc.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: text,
    });
    expect(res.status).toBe(400);
    const { message } = ((await res.json()) as { error: { message: string } }).error;
    expect(message).toMatch(
      new RegExp(`^The request body is not valid JSON: .* at position ${text.length - 1}\\b`),
    );
    // Not the marker the long string stood in for while the rest was parsed.
    expect(message).not.toMatch(/bst-/);
  });

  it('reach the model as sent, whatever they hold, from a chunked body, with a content-length upstream', async () => {
    // Lifted from the bytes on the way in and sliced on the way out: plain ASCII, non-ASCII,
    // one with escapes (parsed and written as usual), a long object key (never lifted).
    const plain = 'x'.repeat(200_000);
    const accents = 'é€'.repeat(40_000);
    const escaped = 'a "quoted" \\ line\n'.repeat(5_000);
    const key = 'k'.repeat(70_000);
    const request = {
      model: 'eyes',
      messages: [
        { role: 'user', content: plain },
        { role: 'assistant', content: accents },
        {
          role: 'user',
          content: [
            { type: 'text', text: escaped },
            { type: 'text', text: plain },
          ],
        },
      ],
      tools: [
        {
          type: 'function',
          function: {
            name: 'f',
            parameters: { type: 'object', properties: { [key]: { type: 'string', description: plain } } },
          },
        },
      ],
    };
    const bytes = Buffer.from(JSON.stringify(request));
    const before = llama.requests.length;
    const res = await fetch(`${svc.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      // No content-length: sent chunked, in pieces that cut through the strings.
      body: new ReadableStream({
        start(controller) {
          for (let i = 0; i < bytes.length; i += 10_000) controller.enqueue(bytes.subarray(i, i + 10_000));
          controller.close();
        },
      }),
      duplex: 'half',
    } as RequestInit);
    expect(res.status).toBe(200);
    await res.text();
    const sent = llama.requests.slice(before).find((r) => r.path.endsWith('/chat/completions'));
    expect(sent?.headers['transfer-encoding']).toBeUndefined();
    expect(Number(sent?.headers['content-length'])).toBeGreaterThan(bytes.length);
    const body = sent?.body as typeof request;
    expect(body.messages).toEqual(request.messages);
    expect(body.tools).toEqual(request.tools);
  });
});
