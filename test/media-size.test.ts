import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeTranscription, startFakeTranscription } from './fakes/transcription.js';
import { randomPng } from './helpers/images.js';
import { type Harness, startHarness } from './telegram-harness.js';

/**
 * Files over the 20 MB a bot may download, on the direct route: the Bot API
 * emulator as Telegram (its "file is too big" injected as Telegram answers
 * it), the fake llama-server as the brain, a fake speech-to-text server.
 */

const BIG = 25 * 1024 * 1024;

let h: Harness;
let stt: FakeTranscription;
beforeAll(async () => {
  stt = await startFakeTranscription();
  h = await startHarness({
    config: {
      modes: { local: { kind: 'llama', description: 'Fake local model', vision: true } },
      transcription: { url: stt.baseUrl, model: 'whisper' },
    },
  });
});
afterAll(async () => {
  await h?.close();
  await stt?.close();
});

const reply = (chatId: number, pattern: RegExp) =>
  h.tg.waitFor(() => h.tg.botMessages(chatId).find((m) => pattern.test(m.text)));
const getFiles = () => h.tg.callsOf('getFile').length;

describe('a file larger than a bot may download', () => {
  it('a document is refused by the size its message gives, before any download, without "again"', async () => {
    const before = getFiles();
    h.tg.user(112).sends({
      document: { file_id: 'big1', file_unique_id: 'ubig1', file_name: 'scan.pdf', file_size: BIG },
      caption: 'summarise please',
    });
    const told = await reply(112, /could not fetch/);
    expect(told.text).toBe(
      '⚙️ [proxy] I could not fetch “scan.pdf”: it is 25.0 MB, and Telegram lets bots download files of up to 20 MB only. Nothing was sent to the brain.',
    );
    expect(getFiles()).toBe(before);
  });

  it('a recording: the user is told why, and not to try again', async () => {
    const before = getFiles();
    h.tg.user(113).sends({
      audio: {
        file_id: 'big2',
        file_unique_id: 'ubig2',
        duration: 3600,
        file_name: 'talk.mp3',
        file_size: BIG,
      },
    });
    const told = await reply(113, /could not transcribe/);
    expect(told.text).toBe(
      '⚙️ [proxy] 🎙 I could not transcribe this recording: it is 25.0 MB, and Telegram lets bots download files of up to 20 MB only. Nothing was sent to the brain; send a shorter recording, or type it.',
    );
    expect(getFiles()).toBe(before);
    expect(stt.requests).toHaveLength(0);
  });

  it('a recording with a caption: the caption goes to the brain, told why the recording did not', async () => {
    const audio = {
      file_id: 'big3',
      file_unique_id: 'ubig3',
      duration: 3600,
      file_name: 'talk.mp3',
      file_size: BIG,
    };
    h.tg.user(115).sends({ audio, caption: 'summarise this talk' });
    const told = await reply(115, /could not transcribe/);
    expect(told.text).toBe(
      '⚙️ [proxy] 🎙 I could not transcribe this recording: it is 25.0 MB, and Telegram lets bots download files of up to 20 MB only. Your caption went to the brain, with a note that the recording was not transcribed; send a shorter recording, or type it.',
    );
    const answer = await reply(115, /^echo: /);
    expect(answer.text).toBe(
      'echo: [The user sent the audio file "talk.mp3", but it was not transcribed (it is 25.0 MB, and Telegram lets bots download files of up to 20 MB only): you do not hear it]\n\nsummarise this talk',
    );
    expect(stt.requests).toHaveLength(0);
  });

  it('Telegram’s own refusal ("file is too big") is said as the size limit, never as grammY’s text', async () => {
    h.tg.failNext('getFile', 1, { code: 400, description: 'Bad Request: file is too big' });
    h.tg.user(114).sendsDocument('scan.png', randomPng(8, 8), undefined, 'image/png');
    const told = await reply(114, /could not read/);
    expect(told.text).toBe(
      '⚙️ [proxy] I could not read “scan.png”: it is larger than the 20 MB Telegram lets bots download. Nothing was sent to the brain.',
    );
  });
});
