import { openAsBlob } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import type { TranscriptionConfig } from '../config.js';
import { undici } from '../http-client.js';
import { formatDuration, type Lang, t } from '../i18n.js';
import { onFirstUse } from '../lazy.js';
import { headChars } from '../text.js';
import { type AudioFile, type Transcriber, TranscriptionError, transcriptOf } from './types.js';

/** `response_format: json`: what OpenAI, whisper.cpp's server and Speaches answer. */
const transcriptionSchema = z.object({ text: z.string() });
/**
 * The service's own reason, in each shape these servers give it: OpenAI's `{error: {message}}`,
 * whisper.cpp's server's `{error: "…"}` (sent with HTTP 200), FastAPI's (Speaches)
 * `{detail: "…"}` and its validation errors `{detail: [{msg}]}`.
 */
const reasonSchema = z.union([
  z.object({ error: z.object({ message: z.string() }) }).transform((e) => e.error.message),
  z.object({ error: z.string() }).transform((e) => e.error),
  z.object({ detail: z.string() }).transform((e) => e.detail),
  z
    .object({ detail: z.array(z.object({ msg: z.string() })).min(1) })
    .transform((e) => e.detail.map((d) => d.msg).join('; ')),
]);

type ApiConfig = Pick<
  TranscriptionConfig,
  'model' | 'language' | 'apiKeyEnv' | 'apiKeyFile' | 'timeoutMs'
> & {
  url: string;
};

/**
 * The connections of the speech-to-text client, which follow a redirect as `fetch` did before
 * `request` replaced it: a proxy sending http to https (Caddy's 308), a path given its slash
 * (FastAPI's 307, Speaches). `request` alone answered those "HTTP 308". A 307 or 308 keeps the
 * POST and its audio; a 301–303 turns it into a GET, which the service then refuses in its words.
 */
const followsRedirects = onFirstUse(async () => {
  const { Agent, interceptors } = await undici();
  return new Agent().compose(interceptors.redirect({ maxRedirections: 3 }));
});

/**
 * An OpenAI-compatible `POST <url>/audio/transcriptions`: the audio as a
 * multipart file, streamed from disk, with the model (and language hint). The
 * key, when there is one, comes from an environment variable or a file at each
 * request and goes nowhere but the Authorization header.
 */
export function openAiTranscriber(config: ApiConfig, env: NodeJS.ProcessEnv): Transcriber {
  const endpoint = `${config.url.replace(/\/+$/, '')}/audio/transcriptions`;
  return {
    backend: 'api',
    async transcribe(file: AudioFile, signal?: AbortSignal): Promise<string> {
      const key = await apiKey(config, env);
      // undici's, not the globals, which are Node's own copy of it (src/http-client.ts); `request`, not
      // `fetch`, which refuses the ports browsers block (6000, 6665–6669, 10080…) with only "fetch failed",
      // where the owner's own speech-to-text server may well listen.
      const { request, FormData } = await undici();
      const dispatcher = await followsRedirects();
      const form = new FormData();
      const blob = await openAsBlob(file.path, file.mimeType ? { type: file.mimeType } : {});
      form.set('file', blob, nameForApi(file.name, file.mimeType));
      form.set('model', config.model);
      form.set('response_format', 'json');
      if (config.language) form.set('language', config.language);
      const timeout = AbortSignal.timeout(config.timeoutMs);
      let status: number;
      let body: string;
      try {
        const res = await request(endpoint, {
          method: 'POST',
          body: form,
          headers: key ? { authorization: `Bearer ${key}` } : {},
          signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
          dispatcher,
        });
        status = res.statusCode;
        body = await res.body.text();
      } catch (err) {
        if (timeout.aborted) {
          throw new TranscriptionError(
            'timeout',
            `the speech-to-text service did not answer within ${formatDuration(config.timeoutMs)} (transcription.timeoutMs)`,
            `le service de transcription n’a pas répondu en ${formatDuration(config.timeoutMs)} (transcription.timeoutMs)`,
          );
        }
        if (signal?.aborted) {
          throw new TranscriptionError(
            'aborted',
            'the transcription was stopped',
            'la transcription a été arrêtée',
          );
        }
        const cause = (err as { code?: string }).code;
        throw new TranscriptionError(
          'failed',
          `the speech-to-text service at ${new URL(endpoint).origin} could not be reached${cause ? ` (${cause})` : ''}`,
          `le service de transcription à ${new URL(endpoint).origin} est injoignable${cause ? ` (${cause})` : ''}`,
        );
      }
      const json = parseJson(body);
      const said = reasonSchema.safeParse(json);
      const reason = said.success ? headChars(said.data, 200) : undefined;
      if (status >= 300) {
        // No reason of its own and no such path: the URL is the likely mistake (no /v1, whisper.cpp's /inference).
        const hint = (lang: Lang) =>
          !reason && status === 404
            ? t(
                lang,
                ` (no ${endpoint}: check transcription.url, the base URL that ends in /v1)`,
                ` (pas de ${endpoint} : vérifiez transcription.url, l’URL de base qui finit par /v1)`,
              )
            : '';
        // A key refused, or no such endpoint or model: the same request would be refused again.
        const setup = [401, 403, 404].includes(status) || formatHint(reason ?? '', 'en') !== '';
        throw new TranscriptionError(
          setup ? 'setup' : 'failed',
          `the speech-to-text service answered HTTP ${status}${reason ? `: ${reason}${formatHint(reason, 'en')}` : hint('en')}`,
          `le service de transcription a répondu HTTP ${status}${reason ? ` : ${reason}${formatHint(reason, 'fr')}` : hint('fr')}`,
        );
      }
      const parsed = transcriptionSchema.safeParse(json);
      if (!parsed.success) {
        throw new TranscriptionError(
          reason && formatHint(reason, 'en') ? 'setup' : 'failed',
          reason
            ? `the speech-to-text service said: ${reason}${formatHint(reason, 'en')}`
            : 'the speech-to-text service gave no transcript (no `text` field in its answer)',
          reason
            ? `le service de transcription a dit : ${reason}${formatHint(reason, 'fr')}`
            : 'le service de transcription n’a rendu aucune transcription (pas de champ `text` dans sa réponse)',
        );
      }
      return transcriptOf(parsed.data.text);
    },
  };
}

/** The extensions OpenAI takes ("Supported formats"): it tells the format by the name, never by the type. */
const KNOWN_EXTENSIONS = new Set(['flac', 'm4a', 'mp3', 'mp4', 'mpeg', 'mpga', 'oga', 'ogg', 'wav', 'webm']);

/** The extension of each audio type Telegram gives, for a name that has none of the above. */
const EXTENSION_OF_TYPE: Record<string, string> = {
  'audio/ogg': 'ogg',
  'audio/opus': 'ogg',
  'audio/mpeg': 'mp3',
  'audio/mp3': 'mp3',
  'audio/mp4': 'm4a',
  'audio/m4a': 'm4a',
  'audio/x-m4a': 'm4a',
  'audio/wav': 'wav',
  'audio/wave': 'wav',
  'audio/x-wav': 'wav',
  'audio/flac': 'flac',
  'audio/x-flac': 'flac',
  'audio/webm': 'webm',
  'video/mp4': 'mp4',
};

/**
 * The file name posted with the audio: its own when its extension is one OpenAI reads, else with the
 * extension of its type. A WhatsApp voice note forwarded as "PTT-….opus" (Ogg Opus), or an audio
 * file with no extension, is refused as "Invalid file format" under its own name.
 */
export function nameForApi(name: string, mimeType: string | undefined): string {
  const dot = name.lastIndexOf('.');
  const ext = dot > 0 ? name.slice(dot + 1).toLowerCase() : '';
  if (KNOWN_EXTENSIONS.has(ext)) return name;
  const known = EXTENSION_OF_TYPE[(mimeType ?? '').split(';')[0]?.trim().toLowerCase() ?? ''];
  if (!known) return name;
  return `${dot > 0 ? name.slice(0, dot) : name}.${known}`;
}

async function apiKey(config: ApiConfig, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  if (config.apiKeyEnv) {
    const key = env[config.apiKeyEnv]?.trim();
    if (!key) {
      throw new TranscriptionError(
        'setup',
        `transcription.apiKeyEnv names ${config.apiKeyEnv}, which is not set in brainstem's environment`,
        `transcription.apiKeyEnv nomme ${config.apiKeyEnv}, qui n’est pas défini dans l’environnement de brainstem`,
      );
    }
    return key;
  }
  if (config.apiKeyFile) {
    const key = await readFile(config.apiKeyFile, 'utf8').then(
      (text) => text.trim(),
      () => '',
    );
    if (!key) {
      throw new TranscriptionError(
        'setup',
        'transcription.apiKeyFile cannot be read or is empty',
        'transcription.apiKeyFile est illisible ou vide',
      );
    }
    return key;
  }
  return undefined;
}

/**
 * whisper.cpp's server reads WAV only unless started with `--convert` (ffmpeg), and a voice note
 * is OGG: its refusal alone does not say what to change.
 */
function formatHint(reason: string, lang: Lang): string {
  return /failed to read WAV file/i.test(reason)
    ? t(
        lang,
        ' (whisper.cpp’s server reads other formats, such as voice notes, only when started with --convert, which needs ffmpeg)',
        ' (le serveur de whisper.cpp ne lit d’autres formats, comme les notes vocales, que lancé avec --convert, qui demande ffmpeg)',
      )
    : '';
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
