import type { ModeConfig } from '../config.js';
import type { StatusLine } from './status-lines.js';

/**
 * What brainstem's answers about itself are made of, whichever face words
 * them: the chat's `status` (src/chat/texts.ts), Telegram's /status. One
 * source, so the faces cannot disagree on the uptime or the readiness.
 */
export interface StatusFacts {
  active: ModeConfig;
  switching: boolean;
  /** Every mode's readiness, probed now (bounded) or reused from a recent probe. */
  lines: StatusLine[];
  uptimeMs: number;
  version: string;
}
