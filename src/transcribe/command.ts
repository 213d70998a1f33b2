import { sayError } from '../errors.js';
import { formatDuration } from '../i18n.js';
import { headChars } from '../text.js';
import { runCommand, ToolRunError } from '../tools/exec.js';
import { type AudioFile, type Transcriber, TranscriptionError, transcriptOf } from './types.js';

/** A transcript is short; a command printing more than this is cut (and the text still used). */
const MAX_OUTPUT_CHARS = 64 * 1024;

/**
 * A local speech-to-text command (whisper.cpp's `whisper-cli`, a script):
 * argv, never a shell, the audio file's path as one argv element in place of
 * `{file}`; its stdout is the transcript. The whole process tree is killed
 * when it runs past the time limit or the turn is stopped.
 */
export function commandTranscriber(argv: readonly string[], timeoutMs: number): Transcriber {
  return {
    backend: 'command',
    async transcribe(file: AudioFile, signal?: AbortSignal): Promise<string> {
      const command = argv.map((arg) => (arg === '{file}' ? file.path : arg));
      const program = argv[0] ?? '';
      let result: Awaited<ReturnType<typeof runCommand>>;
      try {
        result = await runCommand(command, {
          timeoutMs,
          maxOutputChars: MAX_OUTPUT_CHARS,
          capture: 'stdout',
          ...(signal ? { signal } : {}),
        });
      } catch (err) {
        if (!(err instanceof ToolRunError)) throw err;
        if (err.code === 'TOOL_TIMEOUT') {
          throw new TranscriptionError(
            'timeout',
            `the transcription command took longer than ${formatDuration(timeoutMs)} (transcription.timeoutMs) and was stopped`,
            `la commande de transcription a pris plus de ${formatDuration(timeoutMs)} (transcription.timeoutMs) et a été arrêtée`,
          );
        }
        if (err.code === 'TOOL_ABORTED')
          throw new TranscriptionError(
            'aborted',
            'the transcription was stopped',
            'la transcription a été arrêtée',
          );
        // Not started (not found, not executable): the owner's to fix, and the same next time.
        throw new TranscriptionError('setup', err.message, sayError(err, 'fr'));
      }
      if (result.exitCode !== 0) {
        const tail = headChars(result.stderr.trim().split('\n').at(-1) ?? '', 200);
        throw new TranscriptionError(
          'failed',
          `the transcription command "${program}" exited with code ${result.exitCode}${tail ? `: ${tail}` : ''}`,
          `la commande de transcription « ${program} » s’est terminée avec le code ${result.exitCode}${tail ? ` : ${tail}` : ''}`,
        );
      }
      return transcriptOf(result.output);
    },
  };
}
