/** What a speech-to-text backend takes and gives, and how it fails. */

export interface AudioFile {
  path: string;
  /** The name sent with the audio (its extension tells an API the format). */
  name: string;
  mimeType?: string | undefined;
}

export interface Transcriber {
  /** Where the text comes from, for the log (never a key). */
  readonly backend: 'api' | 'command';
  /** The transcript, trimmed and never empty; a TranscriptionError otherwise. */
  transcribe(file: AudioFile, signal?: AbortSignal): Promise<string>;
}

/**
 * `setup`: what the owner must change first (a key missing or refused, no such endpoint or model, a
 * program not found, a server that cannot read the format): sending the recording again cannot help.
 */
export type TranscriptionFailure = 'timeout' | 'failed' | 'setup' | 'empty' | 'aborted';

/**
 * Why there is no transcript, in words the user can act on (never a key, never a stack): `message`
 * for the log and the brain's note, `fr` for a reader in French (the service's or command's own
 * words quoted in it stay as they are).
 */
export class TranscriptionError extends Error {
  constructor(
    readonly reason: TranscriptionFailure,
    message: string,
    readonly fr: string,
  ) {
    super(message);
    this.name = 'TranscriptionError';
  }
}

/** What whisper.cpp (its server and whisper-cli) gives for a recording without speech, in place of text. */
const NO_SPEECH = /^(\s*\[BLANK_AUDIO\]\s*)+$/i;

/** The text as a transcript: trimmed, and an error when nothing was understood (no text, or whisper.cpp's "[BLANK_AUDIO]"). */
export function transcriptOf(text: string): string {
  const trimmed = text.trim();
  if (!trimmed || NO_SPEECH.test(trimmed)) {
    throw new TranscriptionError(
      'empty',
      'nothing could be understood in this recording',
      'rien n’a pu être compris dans cet enregistrement',
    );
  }
  return trimmed;
}
