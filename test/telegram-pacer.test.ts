/**
 * The one streaming pacer (handlers/telegram/stream/pacer.ts) on its own,
 * with an injected send whose calls the test settles by hand and vitest's
 * fake clock: every step is an event the test causes, nothing waits on the
 * wall clock. The senders that use it (edits, drafts, live tool messages)
 * are covered end to end against the Bot API emulator in telegram-stream,
 * telegram-drafts and telegram-delivery.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ChatPaces, Pacer, paceFor, type SendOutcome } from '../handlers/telegram/stream/pacer.js';

/** A send whose calls stay in flight until the test settles them. */
function manualSend() {
  const calls: { value: string; settle: (outcome: SendOutcome) => void }[] = [];
  const send = (value: string) =>
    new Promise<SendOutcome>((settle) => {
      calls.push({ value, settle });
    });
  return { calls, send };
}

/** The sends of several streams into one chat, oldest first, each in flight until the test settles it. */
function chatSends() {
  const calls: { value: string; at: number; settle: (outcome: SendOutcome) => void }[] = [];
  const send = (value: string) =>
    new Promise<SendOutcome>((settle) => {
      calls.push({ value, at: Date.now(), settle });
    });
  return { calls, send };
}

const INTERVAL = 1000;

describe('streaming pacer', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('sends the first value at once, then only the latest, one call in flight, one per interval', async () => {
    const { calls, send } = manualSend();
    const pacer = new Pacer({ intervalMs: INTERVAL, send });
    pacer.push('a');
    await vi.advanceTimersByTimeAsync(0);
    expect(calls.map((c) => c.value)).toEqual(['a']);

    // While 'a' is in flight, newer values replace each other; none goes out.
    pacer.push('b');
    pacer.push('c');
    await vi.advanceTimersByTimeAsync(5 * INTERVAL);
    expect(calls).toHaveLength(1);

    // The pace counts from the end of the call: 'c' goes one interval later, 'b' never.
    calls[0]?.settle('sent');
    await vi.advanceTimersByTimeAsync(INTERVAL - 1);
    expect(calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls.map((c) => c.value)).toEqual(['a', 'c']);
    calls[1]?.settle('sent');

    // Nothing newer: nothing more is sent.
    await vi.advanceTimersByTimeAsync(10 * INTERVAL);
    expect(calls).toHaveLength(2);
  });

  it('an unchanged value costs no call: the next one keeps the earlier pace', async () => {
    const { calls, send } = manualSend();
    const pacer = new Pacer({ intervalMs: INTERVAL, send });
    pacer.push('a');
    await vi.advanceTimersByTimeAsync(0);
    calls[0]?.settle('unchanged');
    await vi.advanceTimersByTimeAsync(0);
    pacer.push('b');
    await vi.advanceTimersByTimeAsync(0);
    expect(calls.map((c) => c.value)).toEqual(['a', 'b']);
  });

  it('a failed send stops the pacing', async () => {
    const { calls, send } = manualSend();
    const pacer = new Pacer({ intervalMs: INTERVAL, send });
    pacer.push('a');
    await vi.advanceTimersByTimeAsync(0);
    pacer.push('b');
    calls[0]?.settle('failed');
    await vi.advanceTimersByTimeAsync(10 * INTERVAL);
    pacer.push('c');
    await vi.advanceTimersByTimeAsync(10 * INTERVAL);
    expect(calls.map((c) => c.value)).toEqual(['a']);
  });

  it('flush waits for the call in flight and drops the value not sent yet', async () => {
    const { calls, send } = manualSend();
    const pacer = new Pacer({ intervalMs: INTERVAL, send });
    pacer.push('a');
    await vi.advanceTimersByTimeAsync(0);
    pacer.push('b');
    let flushed = false;
    const flushing = pacer.flush().then(() => {
      flushed = true;
    });
    await vi.advanceTimersByTimeAsync(0);
    expect(flushed).toBe(false);
    calls[0]?.settle('sent');
    await flushing;
    pacer.push('c');
    await vi.advanceTimersByTimeAsync(10 * INTERVAL);
    expect(calls.map((c) => c.value)).toEqual(['a']);
  });

  it('turn() resolves once the pace allows the next call', async () => {
    const { calls, send } = manualSend();
    const pacer = new Pacer({ intervalMs: INTERVAL, send });
    let first = false;
    await pacer.turn().then(() => {
      first = true;
    });
    expect(first).toBe(true);

    pacer.push('a');
    await vi.advanceTimersByTimeAsync(0);
    calls[0]?.settle('sent');
    await pacer.flush();
    let allowed = false;
    const turn = pacer.turn().then(() => {
      allowed = true;
    });
    await vi.advanceTimersByTimeAsync(INTERVAL - 1);
    expect(allowed).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await turn;
    expect(allowed).toBe(true);
  });

  it('a group’s stream pace (paceFor) spaces the paced sends, not the final call', async () => {
    const { calls, send } = manualSend();
    const pace = paceFor(-100500, INTERVAL);
    expect(paceFor(111, INTERVAL)).toEqual({ intervalMs: INTERVAL, streamIntervalMs: INTERVAL });
    const pacer = new Pacer({ ...pace, send });
    pacer.push('a');
    await vi.advanceTimersByTimeAsync(0);
    calls[0]?.settle('sent');
    pacer.push('b');
    await vi.advanceTimersByTimeAsync(pace.streamIntervalMs - 1);
    expect(calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls.map((c) => c.value)).toEqual(['a', 'b']);
    calls[1]?.settle('sent');

    // The final text waits one interval only: the group's budget keeps room for it.
    await pacer.flush();
    let allowed = false;
    const turn = pacer.turn().then(() => {
      allowed = true;
    });
    await vi.advanceTimersByTimeAsync(INTERVAL);
    await turn;
    expect(allowed).toBe(true);
    expect(pace.streamIntervalMs).toBeGreaterThanOrEqual(4 * INTERVAL);
  });

  it('re-sends the last value sent after repeatAfterMs without a newer one, until flushed', async () => {
    const { calls, send } = manualSend();
    const pacer = new Pacer({ intervalMs: INTERVAL, send, repeatAfterMs: 20 * INTERVAL });
    pacer.push('a');
    await vi.advanceTimersByTimeAsync(0);
    calls[0]?.settle('sent');
    await vi.advanceTimersByTimeAsync(20 * INTERVAL - 1);
    expect(calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls.map((c) => c.value)).toEqual(['a', 'a']);
    calls[1]?.settle('sent');
    await pacer.flush();
    await vi.advanceTimersByTimeAsync(100 * INTERVAL);
    expect(calls).toHaveLength(2);
  });

  it('the streams of one chat (its topics) share its pace: one call in flight, the next one an interval after the chat’s last, in turns', async () => {
    const paces = new ChatPaces();
    expect(paces.of(-100500)).toBe(paces.of(-100500));
    expect(paces.of(-100501)).not.toBe(paces.of(-100500));
    const pace = paceFor(-100500, INTERVAL);
    const { calls, send } = chatSends();
    const [a, b, c] = [0, 1, 2].map(() => new Pacer({ ...pace, chat: paces.of(-100500), send }));
    if (!a || !b || !c) throw new Error('three pacers');
    const values = () => calls.map((x) => x.value);
    a.push('a1');
    b.push('b1');
    c.push('c1');
    await vi.advanceTimersByTimeAsync(0);
    // One call in flight in the chat: the others wait for its end, however long (a 429 waited out).
    expect(values()).toEqual(['a1']);
    await vi.advanceTimersByTimeAsync(10 * pace.streamIntervalMs);
    expect(values()).toEqual(['a1']);

    // Each next call goes one stream interval after the end of the chat's last, whichever stream makes it.
    const settleAndWait = async () => {
      const before = calls.length;
      calls.at(-1)?.settle('sent');
      const endedAt = Date.now();
      await vi.advanceTimersByTimeAsync(pace.streamIntervalMs - 1);
      expect(calls).toHaveLength(before);
      await vi.advanceTimersByTimeAsync(1);
      expect(calls).toHaveLength(before + 1);
      expect(calls.at(-1)?.at).toBe(endedAt + pace.streamIntervalMs);
    };
    await settleAndWait();
    expect(values()).toEqual(['a1', 'b1']);
    // Newer text replaces what waits; the streams take turns, none is starved.
    a.push('a2');
    c.push('c2');
    b.push('b2');
    await settleAndWait();
    await settleAndWait();
    await settleAndWait();
    expect(values()).toEqual(['a1', 'b1', 'c2', 'a2', 'b2']);

    // A final call keeps out of the chat's pace: another stream's call in flight does not hold it.
    await c.flush();
    let allowed = false;
    const turn = c.turn().then(() => {
      allowed = true;
    });
    await vi.advanceTimersByTimeAsync(0);
    await turn;
    expect(allowed).toBe(true);

    // A stream flushed while it waits for its turn sends nothing more, and holds no one up.
    a.push('a3');
    await a.flush();
    calls.at(-1)?.settle('sent');
    await vi.advanceTimersByTimeAsync(10 * pace.streamIntervalMs);
    expect(values()).toEqual(['a1', 'b1', 'c2', 'a2', 'b2']);
    await b.flush();
  });

  it('streams of one chat with different intervals go in the order they came: the quicker one does not starve the other', async () => {
    // A private chat's answer at a 300 ms editIntervalMs next to a tool run's 1 s live progress.
    const chat = new ChatPaces().of(500);
    const { calls, send } = chatSends();
    const answer = new Pacer({ intervalMs: 300, chat, send });
    const tool = new Pacer({ intervalMs: 1000, chat, send });
    for (let t = 0; t < 40; t++) {
      answer.push(`a${t}`);
      tool.push(`t${t}`);
      calls.at(-1)?.settle('sent');
      await vi.advanceTimersByTimeAsync(50);
    }
    const byTool = calls.filter((c) => String(c.value).startsWith('t')).length;
    const byAnswer = calls.length - byTool;
    expect(byTool).toBeGreaterThan(0);
    expect(Math.abs(byTool - byAnswer)).toBeLessThanOrEqual(1);
    calls.at(-1)?.settle('sent');
    await answer.flush();
    await tool.flush();
  });

  it('a send that throws ends its own stream only: the chat’s other streams go on', async () => {
    const chat = new ChatPaces().of(-100500);
    const { calls, send } = chatSends();
    const broken = new Pacer<string>({
      intervalMs: INTERVAL,
      chat,
      send: () => {
        throw new Error('render failed');
      },
    });
    const other = new Pacer({ intervalMs: INTERVAL, chat, send });
    broken.push('x');
    await vi.advanceTimersByTimeAsync(0);
    other.push('y');
    await vi.advanceTimersByTimeAsync(INTERVAL);
    expect(calls.map((c) => c.value)).toEqual(['y']);
    calls[0]?.settle('sent');
    await other.flush();
    await broken.flush();
  });

  it('a call Telegram refused holds the chat’s other streams back no longer than its flight (a refused draft’s edits go at once)', async () => {
    const chat = new ChatPaces().of(-100500);
    const pace = paceFor(-100500, INTERVAL);
    const { calls, send } = chatSends();
    const draft = new Pacer({ ...pace, chat, send });
    const edits = new Pacer({ ...pace, chat, send });
    draft.push('draft');
    await vi.advanceTimersByTimeAsync(0);
    edits.push('edit');
    await vi.advanceTimersByTimeAsync(0);
    expect(calls.map((c) => c.value)).toEqual(['draft']);
    calls[0]?.settle('failed');
    await vi.advanceTimersByTimeAsync(0);
    expect(calls.map((c) => c.value)).toEqual(['draft', 'edit']);
    calls[1]?.settle('sent');
    await edits.flush();
  });
});
