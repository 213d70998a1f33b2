import { rm } from 'node:fs/promises';
import type { Bot, Context } from 'grammy';
import type { Message, User } from 'grammy/types';
import { type Lang, langOf, t } from '../../../src/i18n.js';
import { PROXY_TAG } from '../../../src/notices.js';
import { shorten } from '../../../src/text.js';
import { type Transcriber, TranscriptionError } from '../../../src/transcribe/index.js';
import { isForwarded } from '../commands/handler.js';
import type { BotDeps } from '../deps.js';
import { escapeHtml } from '../format/render.js';
import type { ChatOutput } from '../send/output.js';
import { sendHtmlOrOutside } from '../send/outside-topic.js';
import { stopReasonOf } from '../turns.js';
import { formerChat } from './former-chat.js';
import { answerIntent } from './intents.js';
import { FileTooLarge, fetchFailureReason, isSetupFault, safeFileName, saveTelegramFile } from './media.js';
import { submitTurn } from './messages.js';
import { outputFor } from './topic.js';

/** The most of the transcript the "understood" line shows; the brain gets all of it. */
const SHOWN_CHARS = 300;

/** A recording to transcribe, whatever kind of message brought it. */
interface Recording {
  fileId: string;
  name: string;
  mimeType?: string | undefined;
  /** What the message says it weighs: one too large for a bot is refused before any download. */
  size?: number | undefined;
}

/**
 * Voice notes, audio files and video notes: transcribed by the configured
 * speech-to-text service (src/transcribe) when the turn's turn comes, the user
 * shown what was understood, and the transcript (with the caption, if any)
 * is the turn. The downloaded file is removed once transcribed (or not).
 * Registered before the "not supported" replies of messages.ts.
 */
export function registerVoice(bot: Bot, deps: BotDeps): void {
  bot.on(['message:voice', 'message:audio', 'message:video_note'], (ctx) => recordingTurn(deps, ctx));
}

/**
 * The turn of a message that holds a recording (a new one, or one whose photo or file the user
 * replaced by an audio file: media-messages.ts, which gives the `edit` note the brain is told
 * first). The recording is the one the message holds when the turn begins: one replaced while the
 * turn waits is the one transcribed.
 */
export async function recordingTurn(
  deps: BotDeps,
  ctx: Context & { message: Message; from: User },
  edit?: string,
): Promise<void> {
  const lang = langOf(ctx.from.language_code);
  if (!recordingOf(ctx.message)) return;
  const { transcriber } = deps;
  if (!transcriber) {
    // A caption is the user's words all the same: it is answered, as a photo's is when the photo cannot be read.
    if (ctx.message.caption?.trim()) untranscribedTurn(deps, ctx, lang, edit);
    else await outputFor(ctx).sendHtml(notConfiguredText(lang, false));
    return;
  }
  submitTurn(
    deps,
    ctx,
    async ({ signal, out, caption, message, takeQueuedNotice }) => {
      // Replaced while the turn waited by a file of another kind: a turn of its own answers that.
      const recording = recordingOf(message ?? ctx.message);
      if (!recording) return undefined;
      void out.typing().catch(() => undefined);
      let text: string;
      try {
        text = await transcribeRecording(deps, ctx, recording, transcriber, signal);
      } catch (err) {
        // Stopped by /stop: its reply says so. Cut by a restart: the recording must be sent again.
        if (signal.aborted) {
          if (stopReasonOf(signal) === 'shutdown')
            // In a forum topic closed since, to the group outside it, saying why.
            await sendHtmlOrOutside(
              out,
              t(
                lang,
                `${PROXY_TAG} brainstem is restarting; send this recording again in a moment.`,
                `${PROXY_TAG} brainstem redémarre ; renvoyez cet enregistrement dans un instant.`,
              ),
              lang,
            ).catch(() => undefined);
          return undefined;
        }
        // The caption is the user's words all the same, as a photo's is when the photo cannot be read.
        const words = caption?.trim();
        logFailure(deps, ctx, err);
        await showFirst(
          deps,
          ctx,
          out,
          failureText(err, lang, Boolean(words)),
          words ? takeQueuedNotice() : undefined,
        );
        if (!words) return undefined;
        return { text: untranscribed(message ?? ctx.message, reasonOf(err, 'en'), edit, words) };
      }
      await showFirst(deps, ctx, out, understoodLine(text), takeQueuedNotice());
      // A caption is the user's words too, as with a photo's; as it reads now, edited while queued or not.
      const words = caption?.trim();
      const said = words ? `${text}\n\n${words}` : text;
      // Said as typed: a switch request goes to SwitchProgress (its line, who asked), not into a turn /stop claims
      // to stop. Someone else's words (forwarded) and an edit (a file swapped for this one) are not run (edits.ts).
      if (edit) return { text: `${edit}\n\n${said}` };
      const request = !isForwarded(ctx.message) && (await answerIntent(deps, out, said, ctx.from.id, lang));
      return request ? undefined : { text: said };
    },
    lang,
    { readsCaption: true, readsFile: (m) => recordingOf(m) !== undefined },
  );
}

/**
 * The turn of a captioned recording when speech to text is not set up: the caption, as it reads
 * when the turn begins, goes to the brain with a note that the recording was not transcribed, and
 * the user is told so and how to turn transcription on. A caption removed meanwhile leaves only that
 * reply; a recording swapped meanwhile for a file of another kind is a turn of its own.
 */
function untranscribedTurn(
  deps: BotDeps,
  ctx: Context & { message: Message },
  lang: Lang,
  edit: string | undefined,
): void {
  submitTurn(
    deps,
    ctx,
    async ({ out, caption, message, takeQueuedNotice }) => {
      const now = message ?? ctx.message;
      if (!recordingOf(now)) return undefined;
      const words = caption?.trim();
      await showFirst(deps, ctx, out, notConfiguredText(lang, Boolean(words)), takeQueuedNotice());
      return words ? { text: untranscribed(now, 'speech to text is not set up', edit, words) } : undefined;
    },
    lang,
    { readsCaption: true, readsFile: (m) => recordingOf(m) !== undefined },
  );
}

/** What the brain gets of a recording that was not transcribed, and why, sent with a caption: the caption, told of the recording. */
function untranscribed(recording: Message, why: string, edit: string | undefined, caption: string): string {
  const note = `[The user sent ${recordingName(recording)}, but it was not transcribed (${why}): you do not hear it]`;
  return [edit, note, caption].filter(Boolean).join('\n\n');
}

/**
 * What brainstem shows before the answer (what a recording said, or that it was not transcribed):
 * in place of the "queued" notice when the turn waited (the answer then comes below it), else a
 * message of its own; outside a forum topic closed or deleted meanwhile, saying why, as its answer
 * will be. The line only says what became of the recording: Telegram refusing it must not lose what
 * was said.
 */
async function showFirst(
  deps: BotDeps,
  ctx: Context,
  out: ChatOutput,
  line: string,
  queuedNotice: number | undefined,
): Promise<void> {
  try {
    if (queuedNotice !== undefined && (await out.editHtml(queuedNotice, line)) === 'ok') return;
    await sendHtmlOrOutside(out, line, langOf(ctx.from?.language_code), replyIn(ctx));
  } catch (err) {
    deps.logger.warn({ err, chatId: ctx.chat?.id }, 'could not show what a recording said');
  }
}

/** Downloads the recording, transcribes it and removes it again, whatever happens. */
async function transcribeRecording(
  deps: BotDeps,
  ctx: Context,
  recording: Recording,
  transcriber: Transcriber,
  signal: AbortSignal,
): Promise<string> {
  const chatId = ctx.chat?.id ?? 0;
  const saved = await saveTelegramFile({
    api: ctx.api,
    token: deps.token,
    apiRoot: deps.apiRoot,
    dataDir: deps.core.config.dataDir,
    // A supergroup's files go where the group's went (former-chat.ts).
    chatId: formerChat(deps.core.kv, chatId),
    fileId: recording.fileId,
    name: recording.name,
    size: recording.size,
    signal,
  });
  try {
    const text = await transcriber.transcribe(
      { path: saved.path, name: recording.name, mimeType: recording.mimeType },
      signal,
    );
    deps.logger.info(
      { chatId, backend: transcriber.backend, chars: text.length, bytes: saved.size },
      'voice message transcribed',
    );
    return text;
  } finally {
    await rm(saved.path, { force: true });
  }
}

/** The recording a message holds, as the brain is told of it. */
function recordingName(message: Message): string {
  if (message.audio) {
    const name = message.audio.file_name;
    return name ? `the audio file "${name}"` : 'an audio file';
  }
  return message.video_note ? 'a video note' : 'a voice note';
}

function recordingOf(message: Message): Recording | undefined {
  if (message.voice) {
    const v = message.voice;
    return { fileId: v.file_id, name: 'voice.ogg', mimeType: v.mime_type, size: v.file_size };
  }
  if (message.audio) {
    const a = message.audio;
    // Without a name, its type gives the format (src/transcribe/openai-api.ts nameForApi); mp3 is a guess.
    const name = safeFileName(a.file_name ?? (a.mime_type ? 'audio' : 'audio.mp3'));
    return { fileId: a.file_id, name, mimeType: a.mime_type, size: a.file_size };
  }
  if (message.video_note) {
    const n = message.video_note;
    return { fileId: n.file_id, name: 'video-note.mp4', mimeType: 'video/mp4', size: n.file_size };
  }
  return undefined;
}

/** In a group several people talk: brainstem's lines say whose message they are about. */
const replyIn = (ctx: Context) =>
  (ctx.chat?.id ?? 0) < 0 && ctx.message ? { replyTo: ctx.message.message_id } : {};

/** What was understood, short and quoted; the text comes from outside, so it is escaped. */
export function understoodLine(text: string): string {
  const oneLine = text.replace(/\s+/g, ' ');
  return `🎙 <i>“${escapeHtml(shorten(oneLine, SHOWN_CHARS))}”</i>`;
}

function logFailure(deps: BotDeps, ctx: Context, err: unknown): void {
  const chatId = ctx.chat?.id;
  if (err instanceof TranscriptionError)
    deps.logger.warn({ chatId, reason: err.reason, why: err.message }, 'transcription failed');
  else deps.logger.warn({ chatId, err: (err as Error).message }, 'voice message could not be fetched');
}

/** Why a recording has no transcript, in words the user can act on. */
const reasonOf = (err: unknown, lang: Lang) =>
  err instanceof TranscriptionError ? t(lang, err.message, err.fr) : fetchFailureReason(err, lang);

/** Said when a recording could not be transcribed; `captionSent`: its caption went to the brain without it. */
function failureText(err: unknown, lang: Lang, captionSent: boolean): string {
  const why = escapeHtml(reasonOf(err, lang));
  const sent = captionSent
    ? t(
        lang,
        'Your caption went to the brain, with a note that the recording was not transcribed',
        'Votre légende est partie au cerveau, avec une note disant que l’enregistrement n’a pas été transcrit',
      )
    : t(lang, 'Nothing was sent to the brain', 'Rien n’a été envoyé au cerveau');
  const next = nextStep(err, lang);
  return t(
    lang,
    `${PROXY_TAG} 🎙 I could not transcribe this recording: ${why}. ${sent}; ${next}.`,
    `${PROXY_TAG} 🎙 Je n’ai pas pu transcrire cet enregistrement : ${why}. ${sent} ; ${next}.`,
  );
}

/**
 * What the user can do about a recording that failed. A recording too large for a bot stays too
 * large, and a setup fault (a key, a URL, a program; a Bot API server's disk out of reach, a folder
 * for received files that is a link) fails every recording alike until the owner fixes it: trying
 * again cannot help.
 */
function nextStep(err: unknown, lang: Lang): string {
  if (err instanceof FileTooLarge)
    return t(
      lang,
      'send a shorter recording, or type it',
      'envoyez un enregistrement plus court, ou tapez-le',
    );
  if (err instanceof TranscriptionError && err.reason === 'setup')
    return t(
      lang,
      'please type it: sending it again will not help until the speech-to-text setup is fixed',
      'tapez-le : le renvoyer n’y changera rien tant que la transcription n’est pas réparée',
    );
  if (isSetupFault(err))
    return t(
      lang,
      'please type it: sending it again will not help until that is set up',
      'tapez-le : le renvoyer n’y changera rien tant que ce n’est pas configuré',
    );
  return t(lang, 'try again, or type it', 'réessayez, ou tapez-le');
}

/** Said of a recording when speech to text is not set up; `captionSent`: its caption went to the brain without it. */
function notConfiguredText(lang: Lang, captionSent: boolean): string {
  const meanwhile = captionSent
    ? t(
        lang,
        'Your caption went to the brain, with a note that the recording was not transcribed.',
        'Votre légende est partie au cerveau, avec une note disant que l’enregistrement n’a pas été transcrit.',
      )
    : t(lang, 'Meanwhile, please type your message.', 'En attendant, tapez votre message.');
  return t(
    lang,
    `${PROXY_TAG} 🎙 Voice messages need speech to text, which is not set up. Set <code>transcription.url</code> (an OpenAI-compatible <code>/v1/audio/transcriptions</code> service: whisper.cpp’s server, Speaches, OpenAI) or <code>transcription.command</code> (a local program that prints the text) in brainstem.json and restart; see “Voice messages” in the README. ${meanwhile}`,
    `${PROXY_TAG} 🎙 Les messages vocaux demandent une transcription, qui n’est pas configurée. Renseignez <code>transcription.url</code> (un service <code>/v1/audio/transcriptions</code> compatible OpenAI : serveur whisper.cpp, Speaches, OpenAI) ou <code>transcription.command</code> (un programme local qui écrit le texte) dans brainstem.json puis redémarrez ; voir « Voice messages » dans le README. ${meanwhile}`,
  );
}
