/**
 * An upload through the Bot API front goes on to Telegram as it comes, so it
 * arrives at the speed of the owner's uplink: a 50 MB video over a slow one
 * outlasts server.requestTimeoutMs while still progressing. Node's
 * whole-request timeout (kept for every other request, and for a request
 * without the bot token) must not cut it while its body keeps coming.
 *
 * No clock here: the upload sends each piece only once Telegram (the
 * emulator) has the one before, and goes on until a connection opened after
 * it began, which sends nothing, has been cut by the timeout: by then the
 * upload is past the same deadline, checked in the same pass.
 */
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from './telegram-harness.js';

/** server.requestTimeoutMs here: its minimum, so the test waits little. */
const REQUEST_TIMEOUT_MS = 1000;

let h: Harness;
let front: URL;

beforeAll(async () => {
  h = await startHarness({
    config: { server: { requestTimeoutMs: REQUEST_TIMEOUT_MS }, telegram: { front: { enabled: true } } },
  });
  front = new URL(`${h.service.url}/telegram`);
});
afterAll(async () => {
  await h?.close();
});

/** A connection that sends nothing; resolves with what the server wrote once it closes it. */
async function silent(): Promise<string> {
  const socket = net.connect(Number(front.port), front.hostname);
  let answer = '';
  socket.on('data', (chunk: Buffer) => {
    answer += chunk.toString('utf8');
  });
  socket.on('error', () => undefined);
  await once(socket, 'close');
  return answer;
}

describe('a slow upload through the Bot API front', () => {
  it('outlasts server.requestTimeoutMs while its body keeps coming, and reaches Telegram whole', async () => {
    const CHAT = 112;
    const req = http.request({
      host: front.hostname,
      port: front.port,
      path: `${front.pathname}/bot${h.tg.token}/sendDocument`,
      method: 'POST',
      headers: { 'content-type': 'multipart/form-data; boundary=B' },
    });
    let settled = false;
    const answered = new Promise<{ status: number; body: string } | Error>((resolve) => {
      req.once('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      });
      req.once('error', resolve);
    }).finally(() => {
      settled = true;
    });
    const base = h.tg.bodyBytes('sendDocument');
    let sent = 0;
    const file: Buffer[] = [];
    /** Writes a piece and waits until Telegram has everything sent so far (or the upload ended). */
    const send = async (piece: Buffer) => {
      req.write(piece);
      sent += piece.length;
      await Promise.race([h.tg.waitFor(() => h.tg.bodyBytes('sendDocument') - base >= sent), answered]);
    };
    const piece = (i: number) => {
      const b = Buffer.alloc(1024, i % 251);
      file.push(b);
      return b;
    };
    await send(
      Buffer.from(
        `--B\r\nContent-Disposition: form-data; name="chat_id"\r\n\r\n${CHAT}\r\n--B\r\nContent-Disposition: form-data; name="document"; filename="slow.bin"\r\n\r\n`,
      ),
    );
    await send(piece(0));
    // Opened after the upload began: once the timeout has cut it, the upload is past its deadline too.
    let cut = false;
    const control = silent().then((answer) => {
      cut = true;
      return answer;
    });
    for (let i = 1; !cut && !settled; i++) await send(piece(i));
    expect(await control).toMatch(/^HTTP\/1\.1 408 /);
    if (!settled) {
      await send(piece(-1));
      req.end('\r\n--B--\r\n');
    }
    const answer = await answered;
    expect(answer).toMatchObject({ status: 200 });
    expect(JSON.parse((answer as { body: string }).body)).toMatchObject({ ok: true });
    const bytes = Buffer.concat(file);
    const stored = h.tg.lastBotMessage(CHAT)?.document;
    expect(stored?.size).toBe(bytes.length);
    expect(Buffer.from(stored?.bytes ?? []).equals(bytes)).toBe(true);
    expect(h.logs.map((l) => l.msg)).toContain(
      'an upload outlasts server.requestTimeoutMs: kept while its body keeps coming',
    );
  }, 30_000);

  it('is cut, logged, once nothing came for server.requestTimeoutMs, and its call to Telegram ends with it', async () => {
    const CHAT = 113;
    const cutShort = h.tg.cutShort.length;
    const base = h.tg.bodyBytes('sendDocument');
    const req = http.request({
      host: front.hostname,
      port: front.port,
      path: `${front.pathname}/bot${h.tg.token}/sendDocument`,
      method: 'POST',
      headers: { 'content-type': 'multipart/form-data; boundary=B' },
    });
    // Not events.once: it would reject on the 'error' (a socket hang up) the cut gives this request.
    req.on('error', () => undefined);
    const closed = new Promise((resolve) => req.once('close', resolve));
    const head = `--B\r\nContent-Disposition: form-data; name="chat_id"\r\n\r\n${CHAT}\r\n--B\r\nContent-Disposition: form-data; name="document"; filename="stalled.bin"\r\n\r\n`;
    req.write(head);
    await h.tg.waitFor(() => h.tg.bodyBytes('sendDocument') - base >= head.length);
    // Nothing more comes: the connection is cut, not kept for ever.
    await closed;
    await h.tg.waitFor(() => h.tg.cutShort.length > cutShort);
    expect(h.tg.botMessages(CHAT)).toHaveLength(0);
    await h.tg.waitFor(() =>
      h.logs.find(
        (l) =>
          l.msg ===
          'front: an upload from OpenClaw sent nothing for server.requestTimeoutMs; its connection was cut',
      ),
    );
  }, 30_000);
});
