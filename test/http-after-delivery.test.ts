import { EventEmitter } from 'node:events';
import type { FastifyReply } from 'fastify';
import { describe, expect, it, vi } from 'vitest';
import { afterDelivery } from '../handlers/http/caller.js';

/** A reply whose raw response closes when the test says: the event afterDelivery waits on. */
function stubReply(closed = false): { reply: FastifyReply; raw: EventEmitter & { closed: boolean } } {
  const raw = Object.assign(new EventEmitter(), { closed });
  return { reply: { raw } as unknown as FastifyReply, raw };
}

describe('afterDelivery (self_upgrade reloads once its answer has left)', () => {
  it('runs `after` only once the response closes, and only once', () => {
    const { reply, raw } = stubReply();
    const after = vi.fn();
    afterDelivery(reply, after);
    expect(after).not.toHaveBeenCalled();
    raw.emit('finish');
    expect(after).not.toHaveBeenCalled();
    raw.closed = true;
    raw.emit('close');
    expect(after).toHaveBeenCalledTimes(1);
    raw.emit('close');
    expect(after).toHaveBeenCalledTimes(1);
  });

  it('runs `after` at once when the client is gone already', () => {
    const { reply } = stubReply(true);
    const after = vi.fn();
    afterDelivery(reply, after);
    expect(after).toHaveBeenCalledTimes(1);
  });

  it('does nothing without `after`', () => {
    const { reply, raw } = stubReply();
    afterDelivery(reply, undefined);
    expect(raw.listenerCount('close')).toBe(0);
  });
});
