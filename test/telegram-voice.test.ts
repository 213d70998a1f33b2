import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SwitchOutcome } from '../src/switcher.js';
import { type FakeLlama, startFakeLlama } from './fakes/llama.js';
import { type FakeTranscription, startFakeTranscription } from './fakes/transcription.js';
import { randomPng } from './helpers/images.js';
import { killPidIn } from './helpers/procs.js';
import { type Harness, holdOn, nextLog, startHarness, turnsDone } from './telegram-harness.js';

/**
 * Voice notes, audio files and video notes on the direct route: the Bot API
 * emulator serves the recording, brainstem posts it to a fake OpenAI-compatible
 * speech-to-text server (real HTTP, multipart) or runs a local command on it,
 * shows what it understood, and the fake llama-server gets the transcript.
 */

/** Ample for an answer on a loaded machine; the timeout's own test uses a service that never answers. */
const TIMEOUT_MS = 10_000;

const replyIn = (h: Harness, chatId: number, pattern: RegExp, timeoutMs = 30_000) =>
  h.tg.waitFor(() => h.tg.botMessages(chatId).find((m) => pattern.test(m.text)), { timeoutMs });

/** Turns the fake llama-server was asked for; readiness probes (/health) come and go on their own. */
const chatRequests = (h: Harness) => h.llama.requests.filter((r) => r.path === '/v1/chat/completions').length;

/** The last user message the fake llama-server was asked about. */
const lastAsked = (h: Harness) => {
  const body = h.llama.requests.filter((r) => r.path.endsWith('/chat/completions')).at(-1)?.body as
    | { messages: { role: string; content: unknown }[] }
    | undefined;
  return body?.messages.filter((m) => m.role === 'user').at(-1)?.content;
};

const uploadsOf = (h: Harness, chatId: number) => {
  const dir = path.join(h.service.core.config.dataDir, 'uploads', String(chatId));
  return existsSync(dir) ? readdirSync(dir) : [];
};

describe('voice messages through an OpenAI-compatible speech-to-text API', () => {
  let h: Harness;
  let stt: FakeTranscription;
  /** The upstream of mode `coder`: loading until the switch test says it is ready. */
  let coder: FakeLlama;
  beforeAll(async () => {
    stt = await startFakeTranscription();
    coder = await startFakeLlama({ loading: true });
    // brainstem reads the key from its environment at each request (brainstem runs in this process here).
    process.env.STT_TEST_KEY = 'sk-stt-secret-1234';
    h = await startHarness({
      config: {
        modes: { coder: { kind: 'llama', baseUrl: coder.baseUrl, description: 'Slow to load' } },
        // Only the test decides when `coder` is ready.
        llama: { readyTimeoutMs: 120_000 },
        transcription: {
          url: stt.baseUrl,
          model: 'Systran/faster-whisper-small',
          apiKeyEnv: 'STT_TEST_KEY',
          timeoutMs: TIMEOUT_MS,
        },
      },
    });
  });
  afterAll(async () => {
    await h.close();
    await stt.close();
    await coder.close();
    delete process.env.STT_TEST_KEY;
  });

  it('a voice note is posted as multipart with its bytes and the model; the user sees what was understood; the brain gets the transcript', async () => {
    stt.answer({ text: '  Remind me to <buy> milk & eggs  ' });
    const audio = new Uint8Array(4096).map((_, i) => (i * 7) % 256);
    h.tg.user(112).sendsVoice(audio);
    const understood = await replyIn(h, 112, /🎙/);
    // Escaped on the way in: shown as the user said it, never taken as HTML.
    expect(understood.text).toBe('🎙 “Remind me to <buy> milk & eggs”');
    const answer = await replyIn(h, 112, /^echo: /);
    expect(answer.text).toBe('echo: Remind me to <buy> milk & eggs');
    expect(lastAsked(h)).toBe('Remind me to <buy> milk & eggs');
    expect(answer.messageId).toBeGreaterThan(understood.messageId);

    const req = stt.requests.at(-1);
    expect(req?.fields.model).toBe('Systran/faster-whisper-small');
    expect(req?.fields.response_format).toBe('json');
    expect(req?.file?.fileName).toBe('voice.ogg');
    expect(req?.file?.contentType).toBe('audio/ogg');
    expect(Buffer.compare(req?.file?.bytes ?? Buffer.alloc(0), Buffer.from(audio))).toBe(0);
    expect(req?.authorization).toBe('Bearer sk-stt-secret-1234');
    // The key goes nowhere else: not in the log, not in the chat.
    expect(JSON.stringify(h.logs)).not.toContain('sk-stt-secret-1234');
    // The recording does not stay on disk.
    expect(uploadsOf(h, 112)).toEqual([]);
  });

  it('a voice note’s caption goes to the brain after the transcript', async () => {
    stt.answer({ text: 'what does this say' });
    h.tg.user(114).sendsVoice(new Uint8Array([4, 5, 6]), 'reply in French please');
    await replyIn(h, 114, /^echo: /);
    expect(lastAsked(h)).toBe('what does this say\n\nreply in French please');
  });

  it('a long transcript is shown cut, never inside an emoji (Telegram refuses half of one); the brain gets all of it', async () => {
    // The 300-character cut falls between the two halves of 🎵.
    const said = `${'a'.repeat(299)}🎵 and the rest of what was said`;
    stt.answer({ text: said });
    h.tg.user(118).sendsVoice(new Uint8Array([1, 2, 3]));
    const understood = await replyIn(h, 118, /🎙/);
    expect(understood.text).toBe(`🎙 “${'a'.repeat(299)}…”`);
    await replyIn(h, 118, /^echo: a/);
    expect(lastAsked(h)).toBe(said);
  });

  it('a refused "understood" line is logged, and the transcript still reaches the brain', async () => {
    stt.answer({ text: 'book a table for two' });
    h.tg.failNext(
      'sendMessage',
      1,
      { code: 400, description: 'Bad Request: text must be encoded in UTF-8' },
      119,
    );
    h.tg.user(119).sendsVoice(new Uint8Array([4, 5, 6]));
    await replyIn(h, 119, /^echo: book a table for two$/);
    expect(h.tg.botMessages(119).map((m) => m.text)).toEqual(['echo: book a table for two']);
    expect(h.logs.some((l) => l.msg === 'could not show what a recording said' && l.chatId === 119)).toBe(
      true,
    );
  });

  it('/help says voice messages are transcribed', async () => {
    h.tg.user(112).says('/help');
    const help = await replyIn(h, 112, /^⚙️ \[proxy\] brainstem\./);
    expect(help.text).toContain('voice messages are transcribed, and the transcript goes to the brain');
  });

  it('audio files and video notes are transcribed too', async () => {
    stt.answer({ text: 'from an audio file' });
    h.tg.user(113).sendsAudio('memo.m4a', new Uint8Array([9, 8, 7]), 'audio/mp4');
    await replyIn(h, 113, /^echo: from an audio file$/);
    expect(stt.requests.at(-1)?.file?.fileName).toBe('memo.m4a');
    stt.answer({ text: 'from a video note' });
    h.tg.user(113).sendsVideoNote(new Uint8Array([1, 1, 2, 3, 5]));
    await replyIn(h, 113, /^echo: from a video note$/);
    expect(stt.requests.at(-1)?.file?.bytes).toEqual(Buffer.from([1, 1, 2, 3, 5]));
  });

  it('an audio file is posted under a name whose extension OpenAI reads (it tells the format by the name): a WhatsApp ".opus", a name without one, no name', async () => {
    const group = -100732;
    const u = h.tg.user(113, { chatId: group });
    const answers = () => h.tg.botMessages(group).filter((m) => m.text.startsWith('echo: '));
    const cases: [Record<string, unknown>, string][] = [
      [{ file_name: 'PTT-20240101-WA0001.opus', mime_type: 'audio/ogg' }, 'PTT-20240101-WA0001.ogg'],
      [{ file_name: 'Recording', mime_type: 'audio/x-m4a' }, 'Recording.m4a'],
      [{ mime_type: 'audio/ogg' }, 'audio.ogg'],
      [{ file_name: 'talk.MP3', mime_type: 'audio/mpeg' }, 'talk.MP3'],
    ];
    for (const [i, [fields, posted]] of cases.entries()) {
      stt.answer({ text: `recording ${i}` });
      u.sends({ audio: { ...h.tg.storesFile(new Uint8Array([i]), 'bin'), duration: 1, ...fields } });
      await h.tg.waitFor(() => answers()[i], { timeoutMs: 30_000 });
      expect(stt.requests.at(-1)?.file?.fileName).toBe(posted);
    }
  });

  it('a failing service gets a clear reply, and nothing reaches the brain', async () => {
    const asked = chatRequests(h);
    stt.answer({ status: 500, error: 'CUDA out of memory' });
    h.tg.user(114).sendsVoice();
    const failed = await replyIn(h, 114, /could not transcribe/);
    expect(failed.text).toContain('HTTP 500: CUDA out of memory');
    expect(failed.text).toContain('try again, or type it');
    expect(failed.text).toContain('⚙️ [proxy]');
    expect(chatRequests(h)).toBe(asked);
    expect(uploadsOf(h, 114)).toEqual([]);
  });

  it('a service’s own reason is quoted in whatever shape it gives it (whisper.cpp’s server, with HTTP 200; Speaches’ FastAPI), and a bare 404 names transcription.url; a fault of the setup is not one to try again', async () => {
    const asked = chatRequests(h);
    const group = -100731;
    const u = h.tg.user(113, { chatId: group });
    const failures = () => h.tg.botMessages(group).filter((m) => /could not transcribe/.test(m.text));
    const nthFailure = (n: number) => h.tg.waitFor(() => failures()[n - 1], { timeoutMs: 30_000 });
    // whisper.cpp's server started without --convert refuses a voice note (OGG), with HTTP 200.
    stt.answer({ status: 200, json: { error: 'failed to read WAV file' } });
    u.sendsVoice();
    const wav = await nthFailure(1);
    expect(wav.text).toContain('the speech-to-text service said: failed to read WAV file');
    expect(wav.text).toContain('started with --convert');
    // The same refusal awaits every recording until the server is started otherwise.
    expect(wav.text).toMatch(/sending it again will not help until the speech-to-text setup is fixed\.$/);
    expect(wav.text).not.toContain('try again');
    stt.answer({ status: 404, json: { detail: "Model 'tiny' is not installed locally." } });
    u.sendsVoice();
    expect((await nthFailure(2)).text).toContain(
      "the speech-to-text service answered HTTP 404: Model 'tiny' is not installed locally.",
    );
    stt.answer({ status: 422, json: { detail: [{ loc: ['body', 'file'], msg: 'Field required' }] } });
    u.sendsVoice();
    expect((await nthFailure(3)).text).toContain('answered HTTP 422: Field required');
    // No reason at all: a wrong path, as whisper.cpp's server answers one it does not serve.
    stt.answer({ status: 404, json: 'File Not Found' });
    u.sendsVoice();
    const path404 = await nthFailure(4);
    expect(path404.text).toContain(
      `answered HTTP 404 (no ${stt.baseUrl}/audio/transcriptions: check transcription.url`,
    );
    expect(path404.text).not.toContain('try again');
    // A key refused: the owner's to fix, not the user's to retry.
    stt.answer({ status: 401, error: 'Incorrect API key provided: sk-stt***1234' });
    u.sendsVoice();
    const refused = await nthFailure(5);
    expect(refused.text).toContain('answered HTTP 401: Incorrect API key provided');
    expect(refused.text).toContain('will not help until the speech-to-text setup is fixed');
    expect(chatRequests(h)).toBe(asked);
  });

  it('a failing service is told to a reader in French in French, the service’s own words quoted as they are', async () => {
    stt.answer({ status: 500, error: 'CUDA out of memory' });
    // A group of its own: every private chat here is another test's.
    h.tg.user(111, { chatId: -100_701, languageCode: 'fr' }).sendsVoice();
    const failed = await replyIn(h, -100_701, /transcrire/);
    expect(failed.text).toBe(
      '⚙️ [proxy] 🎙 Je n’ai pas pu transcrire cet enregistrement : le service de transcription a répondu HTTP 500 : CUDA out of memory. Rien n’a été envoyé au cerveau ; réessayez, ou tapez-le.',
    );
  });

  it('a service that does not answer within timeoutMs gets a clear reply, and the chat goes on', async (ctx) => {
    // A service of its own with a short limit, since this test waits it out: the file's keeps a long one,
    // which a transcription that does answer never reaches, however loaded the machine.
    const quick = await startHarness({
      config: { transcription: { url: stt.baseUrl, apiKeyEnv: 'STT_TEST_KEY', timeoutMs: 1_000 } },
    });
    ctx.onTestFinished(() => quick.close());
    stt.answer({ hang: true });
    quick.tg.user(115).sendsVoice();
    const failed = await replyIn(quick, 115, /could not transcribe/);
    expect(failed.text).toContain('did not answer within 1.0 s');
    expect(uploadsOf(quick, 115)).toEqual([]);
    // Nothing hangs: the next message is answered.
    quick.tg.user(115).says('still there?');
    await replyIn(quick, 115, /^echo: still there\?$/);
  });

  it('a queued voice note that cannot be transcribed leaves no "queued" notice promising an answer', async () => {
    const release = holdOn(h);
    try {
      const u = h.tg.user(118);
      u.says('hold on');
      await replyIn(h, 118, /Holding/);
      stt.answer({ status: 500, error: 'CUDA out of memory' });
      u.sendsVoice();
      const queued = await replyIn(h, 118, /Queued/);
      release();
      await replyIn(h, 118, /could not transcribe/);
      await turnsDone(h, u);
      expect(h.tg.botMessages(118).map((m) => m.messageId)).not.toContain(queued.messageId);
    } finally {
      release();
    }
  });

  it('a queued voice note whose caption is edited is answered once, with the caption as it now reads, below what was understood', async () => {
    const release = holdOn(h);
    try {
      const u = h.tg.user(117);
      u.says('hold on');
      await replyIn(h, 117, /Holding/);
      stt.answer({ text: 'what is the weather' });
      const voice = u.sendsVoice(new Uint8Array([3, 3, 3]), 'in Paris');
      const queued = await replyIn(h, 117, /Queued/);
      u.edits(voice, 'in Lyon');
      const taken = await replyIn(h, 117, /Edit taken: the queued message will be answered as it now reads/);
      expect(taken.replyTo).toBe(voice);
      release();
      await replyIn(h, 117, /^echo: what is the weather/);
      await turnsDone(h, u);
      const answers = h.tg.botMessages(117).filter((m) => /^echo: what is/.test(m.text));
      expect(answers.map((m) => m.text)).toEqual(['echo: what is the weather\n\nin Lyon']);
      // What was understood first, in the "queued" notice's place; the answer below it.
      expect(queued.text).toBe('🎙 “what is the weather”');
      expect(answers[0]?.messageId).toBeGreaterThan(queued.messageId);
    } finally {
      release();
    }
  });

  it('a queued audio file the user replaces is answered once, as the new recording (the chat told the edit was taken); one swapped for a photo goes without it', async () => {
    const release = holdOn(h);
    try {
      const u = h.tg.user(113);
      u.says('hold on');
      await replyIn(h, 113, /Holding/);
      stt.answer({ text: 'the new memo' });
      const memo = u.sendsAudio('old.m4a', new Uint8Array([6, 6, 6]), 'audio/mp4');
      await replyIn(h, 113, /Queued/);
      const fresh = new Uint8Array([8, 8, 8, 8]);
      const audio = {
        ...h.tg.storesFile(fresh, 'm4a'),
        duration: 2,
        file_name: 'new.m4a',
        mime_type: 'audio/mp4',
      };
      u.replacesMedia(memo, { audio });
      const taken = await replyIn(h, 113, /Edit taken/);
      expect(taken.replyTo).toBe(memo);
      // One swapped for a photo goes without its recording: the photo is a turn of its own.
      const other = u.sendsAudio('other.m4a', new Uint8Array([7, 7, 7]), 'audio/mp4');
      const swapped = nextLog(h, (l) => l.msg === 'a sent file was replaced');
      u.replacesPhoto(other, randomPng(4, 4));
      await swapped();
      const transcribed = stt.requests.length;
      release();
      await replyIn(h, 113, /^echo: the new memo$/);
      await turnsDone(h, u);
      expect(stt.requests.slice(transcribed).map((r) => r.file?.bytes)).toEqual([Buffer.from(fresh)]);
      expect(h.tg.botMessages(113).filter((m) => /^echo: the new memo/.test(m.text))).toHaveLength(1);
      expect(h.tg.botMessages(113).filter((m) => /Edit taken/.test(m.text))).toEqual([taken]);
    } finally {
      release();
    }
  });

  it('a file swapped for an audio file is transcribed, the brain told what it replaced; a switch said in it is not run, as with any edit', async () => {
    const u = h.tg.user(115);
    const doc = u.sendsDocument('notes.txt', new TextEncoder().encode('the notes'), undefined, 'text/plain');
    await replyIn(h, 115, /^echo: [\s\S]*the notes/);
    stt.answer({ text: 'Switch to coder.' });
    const audio = {
      ...h.tg.storesFile(new Uint8Array([5, 5, 5]), 'm4a'),
      duration: 2,
      mime_type: 'audio/mp4',
    };
    u.replacesMedia(doc, { audio });
    const answer = await replyIn(h, 115, /^echo: \[The user replaced/);
    expect(answer.text).toMatch(
      /^echo: \[The user replaced the file of their message of [^\]]+ with this audio file\]\n\nSwitch to coder\.$/,
    );
    expect(h.tg.botMessages(115).map((m) => m.text)).not.toContainEqual(expect.stringMatching(/Switching/));
    expect(h.service.core.switcher.active().id).toBe('local');
  });

  it('a forwarded voice note is someone else’s words: a switch said in it goes to the brain, never run', async () => {
    const earlier = h.tg.botMessages(119).length;
    stt.answer({ text: 'Switch to coder.' });
    const voice = {
      ...h.tg.storesFile(new Uint8Array([2, 4, 6]), 'ogg'),
      duration: 1,
      mime_type: 'audio/ogg',
    };
    const from = { type: 'user', date: 1, sender_user: { id: 999, is_bot: false, first_name: 'Mallory' } };
    h.tg.user(119).sends({ voice, forward_origin: from });
    const answer = await replyIn(h, 119, /^echo: \[The user forwards/);
    expect(answer.text).toMatch(
      /^echo: \[The user forwards a message by "Mallory"[^\]]*\]\n\nSwitch to coder\.$/,
    );
    const said = h.tg.botMessages(119).slice(earlier);
    expect(said.map((m) => m.text)).toEqual(['🎙 “Switch to coder.”', answer.text]);
    expect(h.service.core.switcher.active().id).toBe('local');
  });

  // Last here: it leaves the service on `coder`.
  it('a switch said is run as one typed: its progress line, who asked and where; it is no turn /stop claims to stop', async () => {
    const asked = chatRequests(h);
    const { switcher } = h.service.core;
    const switched = new Promise<SwitchOutcome>((resolve) => switcher.once('switched', resolve));
    stt.answer({ text: 'Switch to coder.' });
    h.tg.user(116).sendsVoice(new Uint8Array([7, 7, 7]));
    await replyIn(h, 116, /^🎙 “Switch to coder\.”$/);
    const progress = await replyIn(h, 116, /Switching to coder… \(waiting until it answers\)$/);
    h.tg.user(116).says('/stop');
    expect((await replyIn(h, 116, /Nothing is running|Stopped/)).text).toBe('⚙️ [proxy] Nothing is running.');
    coder.setLoading(false);
    expect((await switched).trigger).toMatchObject({ source: 'intent', by: '116', chat: { id: 116 } });
    await h.tg.waitFor(() => /^⚙️ \[proxy\] ✅ Mode coder is ready \(from local in /.test(progress.text));
    expect(switcher.active().id).toBe('coder');
    expect(chatRequests(h)).toBe(asked);
  });
});

describe('voice messages through a local command', () => {
  let h: Harness;
  let scratch: string;
  beforeAll(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'brainstem-stt-'));
    const script = path.join(scratch, 'stt.mjs');
    // Prints what it got (bytes and name of the one argv element it was given); a recording starting with "FAIL" fails.
    await writeFile(
      script,
      `import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
const [file, ...rest] = process.argv.slice(2);
const bytes = readFileSync(file);
// "SAY <text>": prints that text, as the transcript.
if (bytes.subarray(0, 4).toString() === 'SAY ') { process.stdout.write(bytes.subarray(4)); process.exit(0); }
if (bytes.subarray(0, 4).toString() === 'FAIL') { console.error('model file not found'); process.exit(3); }
// "BG <file>": starts a server in the background that keeps stdout (as a wrapper starting whisper-server may), its pid in <file>.
if (bytes.subarray(0, 3).toString() === 'BG ') {
  const server = spawn('sleep', ['60'], { stdio: ['ignore', 'inherit', 'ignore'] });
  writeFileSync(bytes.subarray(3).toString(), String(server.pid));
  server.unref();
}
console.log(\`heard \${bytes.length} bytes in \${path.extname(file)} (\${rest.length} extra args)\`);
`,
    );
    h = await startHarness({
      config: { transcription: { command: [process.execPath, script, '{file}'], timeoutMs: 20_000 } },
    });
  });
  afterAll(async () => {
    await h.close();
    await rm(scratch, { recursive: true, force: true });
  });

  it('the command gets the file as one argv element; its stdout is the turn', async () => {
    h.tg.user(116).sendsVoice(new Uint8Array(10));
    await replyIn(h, 116, /^🎙 “heard 10 bytes in \.ogg \(0 extra args\)”$/);
    await replyIn(h, 116, /^echo: heard 10 bytes in \.ogg \(0 extra args\)$/);
    expect(uploadsOf(h, 116)).toEqual([]);
  });

  it('a silent recording, which whisper.cpp transcribes as "[BLANK_AUDIO]", is said to hold nothing understood; nothing reaches the brain', async () => {
    const group = -100734;
    const asked = chatRequests(h);
    h.tg
      .user(117, { chatId: group })
      .sendsVoice(new TextEncoder().encode('SAY  [BLANK_AUDIO]\n [BLANK_AUDIO]'));
    const failed = await replyIn(h, group, /could not transcribe|^echo: /);
    expect(failed.text).toContain(
      'nothing could be understood in this recording. Nothing was sent to the brain',
    );
    expect(h.tg.botMessages(group).map((m) => m.text)).toEqual([failed.text]);
    expect(chatRequests(h)).toBe(asked);
  });

  it('a command that leaves a process holding its stdout: the transcript is what it printed, without brainstem’s note about that process', async (ctx) => {
    const pidFile = path.join(scratch, 'server.pid');
    ctx.onTestFinished(() => killPidIn(pidFile));
    const group = -100733;
    const recording = new TextEncoder().encode(`BG ${pidFile}`);
    h.tg.user(116, { chatId: group }).sendsVoice(recording);
    const said = `heard ${recording.length} bytes in .ogg (0 extra args)`;
    const answer = await replyIn(h, group, /^echo: |could not/);
    expect(answer.text).toBe(`echo: ${said}`);
    expect(h.tg.botMessages(group).map((m) => m.text)).toEqual([`🎙 “${said}”`, answer.text]);
  });

  it('a command that cannot be found is said so, with no "try again" (every recording would fail alike)', async (ctx) => {
    const missing = await startHarness({
      config: { transcription: { command: [path.join(scratch, 'no-whisper-cli'), '{file}'] } },
    });
    ctx.onTestFinished(() => missing.close());
    missing.tg.user(118).sendsVoice();
    const failed = await replyIn(missing, 118, /could not transcribe/);
    expect(failed.text).toContain('no-whisper-cli" was not found; install it or put it on brainstem');
    expect(failed.text).toContain('will not help until the speech-to-text setup is fixed');
    expect(failed.text).not.toContain('try again');
  });

  it('a failing command gets a clear reply naming its exit code and last error line', async () => {
    h.tg.user(117).sendsVoice(new TextEncoder().encode('FAIL and more'));
    const failed = await replyIn(h, 117, /could not transcribe/);
    expect(failed.text).toContain('exited with code 3: model file not found');
    expect(uploadsOf(h, 117)).toEqual([]);
  });

  it('a failing command is told to a reader in French in French', async () => {
    h.tg.user(118, { languageCode: 'fr' }).sendsVoice(new TextEncoder().encode('FAIL again'));
    const failed = await replyIn(h, 118, /transcrire/);
    expect(failed.text).toMatch(
      /^⚙️ \[proxy\] 🎙 Je n’ai pas pu transcrire cet enregistrement : la commande de transcription « .+ » s’est terminée avec le code 3 : model file not found\. Rien n’a été envoyé au cerveau ; réessayez, ou tapez-le\.$/,
    );
  });
});
