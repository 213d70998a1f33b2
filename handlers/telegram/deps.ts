import type { Core } from '../../src/core.js';
import type { Logger } from '../../src/logger.js';
import type { Tools } from '../../src/tools/index.js';
import type { Transcriber } from '../../src/transcribe/index.js';
import type { Front } from '../telegram-front/index.js';
import type { SwitchProgress } from './commands/switch-progress.js';
import type { TurnsUnderWay } from './route/cut-turns.js';
import type { Route } from './route/direct.js';
import type { QueuedMessages } from './route/queued-messages.js';
import type { ChatPaces } from './stream/pacer.js';
import type { ChatTurns } from './turns.js';

/** What the bot's handlers share. */
export interface BotDeps {
  core: Core;
  /** The infra tools, when they run: /run, /upgrade, the shortcut words. */
  tools: Tools | undefined;
  route: Route;
  turns: ChatTurns;
  /** The turns not ended yet, on disk: a crash leaves them to be told at the next start. */
  underWay: TurnsUnderWay;
  /** The messages of turns still waiting in their queue, which an edit of their message changes. */
  queued: QueuedMessages;
  /** Mode switches asked for from a chat, each shown in one message. */
  switches: SwitchProgress;
  /** The streaming pace of each chat, shared by its topics' answers and tool runs. */
  paces: ChatPaces;
  logger: Logger;
  /** For file downloads: the Bot API root and token (the file endpoint is not a method call). */
  apiRoot: string;
  token: string;
  /** The Bot API front, when on: OpenClaw's channel gets every update that is not brainstem's. */
  front?: Front | undefined;
  /** Speech to text for voice notes, audio files and video notes; undefined when not configured. */
  transcriber?: Transcriber | undefined;
}
