import { createHash, randomUUID } from 'node:crypto';
import type { ChatMessage, ToolCall } from '../brains/types.js';
import type { ChatEvent } from './chat/request.js';
import type { Db } from './db/index.js';
import type { KeptWrites } from './db/kept-writes.js';
import { historyDigest, lastAssistantIndex } from './text.js';
import { collectToolCall } from './tool-calls.js';

/**
 * Which conversation a request continues, for OpenAI clients that send no
 * session header: they resend the whole history each turn, so
 * a conversation is what it has said. After each answer, the digest of the
 * history with that answer is recorded as the conversation's head; a request
 * whose history before its new turn has that digest continues it. A history
 * nobody recorded (a first turn, an edited or regenerated one) starts a
 * conversation of its own, so two conversations that differ anywhere never
 * share a brain session, and a first turn never waits for another's lock.
 */
export class ConversationMap {
  /** Heads taken by a turn running now: a second request with the same history (a twin) starts its own. */
  private readonly claimed = new Set<string>();
  private readonly findStmt;
  private readonly moveStmt;
  private readonly pruneStmt;

  constructor(
    db: Db,
    private readonly kept: KeptWrites,
    private readonly ttlMs: number,
  ) {
    this.findStmt = db.prepare<[string, number], { session_key: string }>(
      'SELECT session_key FROM conversation_heads WHERE history_digest = ? AND updated_at >= ?',
    );
    const remove = db.prepare('DELETE FROM conversation_heads WHERE history_digest = ?');
    const insert = db.prepare(
      `INSERT INTO conversation_heads (history_digest, session_key, updated_at) VALUES (?, ?, ?)
       ON CONFLICT(history_digest) DO UPDATE SET session_key = excluded.session_key, updated_at = excluded.updated_at`,
    );
    this.moveStmt = db.transaction((from: string | undefined, to: string, key: string) => {
      if (from) remove.run(from);
      insert.run(to, key, Date.now());
    });
    this.pruneStmt = db.prepare('DELETE FROM conversation_heads WHERE updated_at < ?');
  }

  /**
   * The conversation `messages` continue (claimed until the turn ends), or a new one: among
   * `user`'s when the request names one, so another user's identical history never continues it.
   */
  claim(messages: ChatMessage[], user?: string): ConversationClaim {
    const digest = (said: ChatMessage[]) =>
      user === undefined
        ? historyDigest(said)
        : createHash('sha256')
            .update(`${user}\0${historyDigest(said)}`)
            .digest('hex');
    const before = lastAssistantIndex(messages);
    const head = before >= 0 ? digest(messages.slice(0, before + 1)) : undefined;
    const found =
      head && !this.claimed.has(head) ? this.findStmt.get(head, Date.now() - this.ttlMs) : undefined;
    if (head && found) this.claimed.add(head);
    const key =
      found?.session_key ?? (user === undefined ? `conv:${randomUUID()}` : `user:${user}:${randomUUID()}`);
    let released = false;
    return {
      key,
      continued: found !== undefined,
      // Never throws: under another process's lock the head is kept until the lock is gone, and the
      // answer still ends (a next turn that comes meanwhile starts a conversation of its own).
      answered: (answer) => {
        const next = digest([...messages, answer]);
        this.kept.run(`the head of conversation ${key}`, () => {
          this.pruneStmt.run(Date.now() - this.ttlMs);
          this.moveStmt(found ? head : undefined, next, key);
        });
      },
      release: () => {
        if (released) return;
        released = true;
        if (found && head) this.claimed.delete(head);
      },
    };
  }
}

export interface ConversationClaim {
  /** The session key of the conversation. */
  key: string;
  /** True when the request continues a recorded conversation. */
  continued: boolean;
  /** Records the answer the client got: the history with it is the conversation's new head. */
  answered(answer: ChatMessage): void;
  /** Ends the claim (answered or not); a failed turn leaves the old head in place for a retry. */
  release(): void;
}

/**
 * Passes a turn's events through and, once the answer is complete, records
 * what the client was sent (its text and tool calls) as the conversation's
 * new head: before the client sees the end, so its next request finds it.
 */
export async function* recordAnswer(
  events: AsyncGenerator<ChatEvent>,
  claim: ConversationClaim,
): AsyncGenerator<ChatEvent> {
  let text = '';
  const calls: ToolCall[] = [];
  try {
    for await (const ev of events) {
      if (ev.type === 'text') text += ev.text;
      else if (ev.type === 'tool_call') collectToolCall(calls, ev);
      else if (ev.type === 'done') {
        const toolCalls = calls.filter(Boolean);
        claim.answered({
          role: 'assistant',
          content: text,
          ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}),
        });
      }
      yield ev;
    }
  } finally {
    claim.release();
  }
}
