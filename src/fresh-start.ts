import type { Brain } from '../brains/types.js';
import type { SessionStore } from './sessions.js';

/**
 * A fresh start for one conversation, in one mode or in all: its stored brain
 * sessions, and what each brain keeps beside them (a warm process that still
 * holds the conversation, what was allowed "for this session"). Clearing only
 * the stored session would leave the warm process answering from the old one.
 * Returns how many stored sessions were removed.
 */
export function freshStart(
  o: { sessions: SessionStore; brains: ReadonlyMap<string, Brain> },
  sessionKey: string,
  mode?: string,
): number {
  const removed = o.sessions.delete(sessionKey, mode);
  for (const [id, brain] of o.brains) if (mode === undefined || id === mode) brain.forget?.(sessionKey);
  return removed;
}
