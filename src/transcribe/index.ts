import type { TranscriptionConfig } from '../config.js';
import { commandTranscriber } from './command.js';
import { openAiTranscriber } from './openai-api.js';
import type { Transcriber } from './types.js';

/**
 * Speech to text, for the faces that take voice: one backend per file here,
 * chosen by the `transcription` config. The core knows no face: a face hands
 * over a file on disk and gets the text back.
 */

export { type Transcriber, TranscriptionError } from './types.js';

/** The configured backend; undefined when transcription is off. */
export function createTranscriber(
  config: TranscriptionConfig | undefined,
  env: NodeJS.ProcessEnv = process.env,
): Transcriber | undefined {
  if (!config) return undefined;
  if (config.command) return commandTranscriber(config.command, config.timeoutMs);
  if (config.url) return openAiTranscriber({ ...config, url: config.url }, env);
  return undefined;
}
