import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openAiTranscriber } from '../src/transcribe/openai-api.js';
import { type FakeTranscription, startFakeTranscription } from './fakes/transcription.js';

/**
 * The speech-to-text API client on its own, against the fake server over real
 * HTTP, for what the Telegram tests (test/telegram-voice.test.ts) cannot choose:
 * the port the owner's server listens on.
 */

/** Ports the fetch standard blocks ("bad ports"), where a speech-to-text server may still listen. */
const BLOCKED_BY_FETCH = [6000, 6665, 6666, 6667, 6668, 6669, 6697, 10080, 4190, 6679];

async function onABlockedPort(): Promise<FakeTranscription> {
  for (const port of BLOCKED_BY_FETCH) {
    const started = await startFakeTranscription({ port }).catch(() => undefined);
    if (started) return started;
  }
  throw new Error(`every port of ${BLOCKED_BY_FETCH.join(', ')} is taken on this machine`);
}

describe('the OpenAI-compatible speech-to-text client', () => {
  let stt: FakeTranscription;
  let dir: string;
  let audio: string;
  beforeAll(async () => {
    stt = await onABlockedPort();
    dir = await mkdtemp(path.join(tmpdir(), 'brainstem-stt-'));
    audio = path.join(dir, 'voice.ogg');
    await writeFile(audio, 'OggS fake audio');
  });
  afterAll(async () => {
    await stt.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('reaches a service on a port browsers block (6000, 6665–6669, 10080…): fetch refused those with only "fetch failed"', async () => {
    stt.answer({ text: 'hello from port 6000' });
    const transcriber = openAiTranscriber(
      { url: stt.baseUrl, model: 'whisper-1', language: undefined, timeoutMs: 10_000 },
      {},
    );
    await expect(
      transcriber.transcribe({ path: audio, name: 'voice.ogg', mimeType: 'audio/ogg' }),
    ).resolves.toBe('hello from port 6000');
    expect(stt.requests.at(-1)?.file?.bytes.toString()).toBe('OggS fake audio');
  });

  it('follows a redirect that keeps the request (307, 308: a proxy sending http to https, a path given a slash)', async () => {
    stt.answer({ text: 'hello after a redirect' });
    // Caddy answers http with 308 to https; FastAPI (Speaches) a path without its slash with 307.
    const proxy = createServer((req, res) => {
      req.resume();
      res.writeHead(308, { location: `${stt.baseUrl}/audio/transcriptions` }).end();
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = proxy.address() as AddressInfo;
      const transcriber = openAiTranscriber(
        { url: `http://127.0.0.1:${port}/v1`, model: 'whisper-1', language: undefined, timeoutMs: 10_000 },
        {},
      );
      await expect(
        transcriber.transcribe({ path: audio, name: 'voice.ogg', mimeType: 'audio/ogg' }),
      ).resolves.toBe('hello after a redirect');
      expect(stt.requests.at(-1)?.file?.bytes.toString()).toBe('OggS fake audio');
    } finally {
      await new Promise((resolve) => proxy.close(resolve));
    }
  });
});
