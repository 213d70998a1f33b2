import type { Approver, ChatMessage, TurnEvent } from '../../../brains/types.js';
import type { Core } from '../../../src/core.js';
import { sayError, sayThrown } from '../../../src/errors.js';
import { freshStart } from '../../../src/fresh-start.js';
import type { Lang } from '../../../src/i18n.js';
import { type ImageData, imagePart } from '../../../src/images.js';
import { ANY_MODE_TAG } from '../../../src/mode-tag.js';
import { prepareOutbox } from '../../../src/outbox.js';
import { telegramSessionKey } from '../../../src/session-keys.js';
import { formerChat, recordUpgrade } from './former-chat.js';
import type { ChatHistory } from './history.js';
import { turnOutbox } from './outbox.js';
import { uploadsDir } from './uploads.js';

/**
 * Where a chat's plain messages go without the Bot API front: the active brain
 * through the core (brainstem keeps a short history). With the front on they
 * go to OpenClaw's own Telegram channel instead (handlers/telegram-front).
 */

export type RelayEvent =
  | { type: 'text'; text: string }
  | { type: 'error'; message: string }
  /** A tool approval asked (and then settled), and brainstem's notices about the turn: the answer shows them. */
  | Extract<TurnEvent, { type: 'approval_pending' | 'approval' | 'notice' }>
  /** A mode switch runs (a model may be loading): the answer waits for it, and says so meanwhile. */
  | { type: 'switch_wait' };

export interface TurnInput {
  chatId: number;
  /** Who wrote, for the log and the switch trigger. */
  userId: number;
  /** The forum topic the turn came from: a conversation of its own (see topic.ts). */
  topicId?: number | undefined;
  text: string;
  /** Photos sent with the text (a photo, an album, an image document), for the brain to see. */
  images?: ImageData[];
  lang: Lang;
}

export interface Route {
  turn(input: TurnInput, signal: AbortSignal): AsyncIterable<RelayEvent>;
  /** Starts a fresh conversation for the chat, or for one of its forum topics; throws, having reset nothing, while another process holds the database. */
  reset(chatId: number, topicId?: number): void;
  /** The group `from` became the supergroup `to` (a new chat id): its conversation goes on there. */
  follow(from: number, to: number): void;
}

export class DirectRoute implements Route {
  /** Groups upgraded to supergroups while this run ran: an answer under way records its exchange under the new id. */
  private readonly upgraded = new Map<number, number>();

  constructor(
    private readonly core: Core,
    private readonly history: ChatHistory,
    /** Who is asked about tools outside the mode's allow-list, for a chat's turn. */
    private readonly approverFor?: (chatId: number, lang: Lang, topicId?: number) => Approver,
  ) {}

  async *turn(input: TurnInput, signal: AbortSignal): AsyncGenerator<RelayEvent> {
    const key = telegramSessionKey(input.chatId, input.topicId);
    const outbox = turnOutbox(this.core, input.chatId, input.topicId);
    const images = input.images ?? [];
    const content: ChatMessage['content'] =
      images.length > 0
        ? [...(input.text ? [{ type: 'text', text: input.text }] : []), ...images.map(imagePart)]
        : input.text;
    const messages: ChatMessage[] = [...this.history.load(key), { role: 'user', content }];
    let answer = '';
    let fromBrain = false;
    try {
      await prepareOutbox(outbox);
      const events = this.core.chat.run(
        {
          model: 'active',
          sessionKey: key,
          messages,
          source: 'telegram',
          lang: input.lang,
          approve: this.approverFor?.(input.chatId, input.lang, input.topicId),
          // Its files are sent after the answer (messages.ts, outbox.ts).
          outbox,
          // The documents the chat's users sent, whose paths the brain was told (media-messages.ts).
          uploads: uploadsDir(this.core.config.dataDir, formerChat(this.core.kv, input.chatId)),
        },
        signal,
      );
      for await (const ev of events) {
        if (ev.type === 'text') {
          answer += ev.text;
          yield { type: 'text', text: ev.text };
        } else if (ev.type === 'mode') fromBrain = true;
        else if (ev.type === 'error') yield { type: 'error', message: sayError(ev.error, input.lang) };
        else if (
          ev.type === 'approval_pending' ||
          ev.type === 'approval' ||
          ev.type === 'notice' ||
          ev.type === 'switch_wait'
        )
          yield ev;
      }
    } catch (err) {
      // A refusal of brainstem's (a photo to a text-only mode, a locked database) carries its French too.
      yield { type: 'error', message: sayThrown(err, input.lang) };
    } finally {
      // Answers brainstem gave itself (help, switch replies) are not part of the conversation.
      // The history keeps text: a later turn is told the photos were there (a resumed Claude session still has them).
      if (fromBrain && answer.trim()) {
        const said = [input.text, ...images.map((i) => `[${i.mediaType} photo sent]`)].filter(Boolean);
        const now = this.upgraded.get(input.chatId);
        const to = now === undefined ? key : telegramSessionKey(now, input.topicId);
        // The core put the mode tag in front of the answer; the history keeps what the brain said.
        this.history.append(to, said.join('\n'), answer.replace(ANY_MODE_TAG, ''));
      }
    }
  }

  /**
   * A basic group upgraded to a supergroup gets a new chat id, and with it, keyed by that id, a new
   * conversation: the brain forgot everything said before. Its history and brain sessions move to
   * the new id (a basic group has no topics). Told twice by Telegram (the old chat's last message,
   * the new one's first): the second finds nothing left to move.
   */
  follow(from: number, to: number): void {
    this.upgraded.set(from, to);
    const [old, now] = [telegramSessionKey(from), telegramSessionKey(to)];
    this.history.move(old, now);
    this.core.sessions.move(old, now);
    // The group's Claude session was told the group's outbox folder and the paths of the files sent
    // there: the supergroup keeps the group's folders (formerChat).
    recordUpgrade(this.core, from, to);
    // A warm Claude process of the group holds the session: it goes on serving it, under the new id.
    for (const brain of this.core.brains.values()) brain.move?.(old, now);
  }

  reset(chatId: number, topicId?: number): void {
    const key = telegramSessionKey(chatId, topicId);
    this.history.clear(key);
    freshStart(this.core, key);
  }
}
