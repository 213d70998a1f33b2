import type { ImageData } from '../../src/images.js';
import type { Logger } from '../../src/logger.js';
import type { TurnEvent } from '../types.js';
import type { PermissionRequest } from './approvals.js';
import type { ClaudeProcess } from './process.js';
import type { RunReader } from './run-reader.js';
import {
  controlError,
  interruptRequest,
  type PermissionAnswer,
  permissionResponse,
  userMessage,
  userMessageWithImages,
} from './stdin.js';
import { type CliEvent, type CliResult, isProgress, parseCliLine } from './stream-json.js';

/**
 * One turn on a CLI process: writes the user turn, reads its events until the
 * turn's `result`, answers the CLI's permission requests meanwhile, and stops
 * the turn on abort (interrupt first, kill if it lingers) or at the time limit.
 */

/** How long an interrupted turn may take to report itself before the process is killed. */
export const INTERRUPT_GRACE_MS = 2_000;

export interface TurnRun {
  prompt: string;
  /** The new turn's images, sent with the prompt in the same user message. */
  images: ImageData[];
  signal: AbortSignal;
  timeoutMs: number;
  /** The session a warm process holds; an init naming another one is a protocol surprise. */
  expectSession?: string;
  reader: RunReader;
  /** Decides a permission request (never throws); `emit` sends events to the consumer. */
  permit(
    req: PermissionRequest,
    signal: AbortSignal,
    emit: (ev: TurnEvent) => void,
  ): Promise<PermissionAnswer>;
  log: Logger;
}

export type TurnEnd =
  | { kind: 'result'; result: CliResult }
  /** Stopped; `result` when the CLI still reported the turn after the interrupt (what it cost so far). */
  | { kind: 'aborted'; result?: CliResult }
  | { kind: 'timeout'; result?: CliResult }
  /** The process ended, or turned out to hold another session, before reporting the turn. */
  | { kind: 'lost'; why: string };

export interface TurnOutcome {
  end: TurnEnd;
  /** Whether the CLI started working on the turn; if not, the turn can go to another process. */
  progressed: boolean;
  /** Lines that did not parse: the process is not to be trusted with another turn. */
  invalidLines: number;
}

type Mail = { kind: 'line'; ev: CliEvent } | { kind: 'eof' } | { kind: 'event'; ev: TurnEvent };

export async function* runTurn(proc: ClaudeProcess, t: TurnRun): AsyncGenerator<TurnEvent, TurnOutcome> {
  // A spare withdrawn by its guard (guardIdle) after it was taken: its lines stay the guard's.
  if (!proc.alive)
    return { end: { kind: 'lost', why: 'it was gone or withdrawn' }, progressed: false, invalidLines: 0 };
  // This turn reads the process from now on, up to its result.
  proc.between(undefined);
  const mail = new Mailbox<Mail>();
  const permissions = new Map<string, AbortController>();
  const answering = new Set<Promise<void>>();
  let stopped: 'aborted' | 'timeout' | undefined;
  let killTimer: NodeJS.Timeout | undefined;
  let progressed = false;
  let invalidLines = 0;

  const stop = (why: 'aborted' | 'timeout') => {
    if (stopped) return;
    stopped = why;
    for (const c of permissions.values()) c.abort();
    // Interrupted, the CLI ends the turn with a result that says what it cost so far; killed, it says nothing.
    if (proc.alive) {
      proc.send(interruptRequest());
      killTimer = setTimeout(() => proc.kill(), INTERRUPT_GRACE_MS);
    }
  };
  const onAbort = () => stop('aborted');
  const timer = setTimeout(() => stop('timeout'), t.timeoutMs);
  t.signal.addEventListener('abort', onAbort, { once: true });

  // Reads up to this turn's result and no further: later lines belong to no turn (guardIdle reads them).
  void (async () => {
    for (;;) {
      const line = await proc.nextLine();
      if (line === undefined) return mail.push({ kind: 'eof' });
      const ev = parseCliLine(line);
      mail.push({ kind: 'line', ev });
      if (ev.type === 'result') return;
    }
  })();

  const permit = (ev: PermissionRequest) => {
    const c = new AbortController();
    // Asked before the CLI saw the interrupt: nobody is bothered for a turn that is over, the
    // request is denied (reported like any other), and the CLI still gets that answer.
    const late = stopped !== undefined;
    if (late) c.abort();
    else permissions.set(ev.requestId, c);
    const task = t
      .permit(ev, c.signal, (e) => mail.push({ kind: 'event', ev: e }))
      .then((answer) => {
        permissions.delete(ev.requestId);
        if (late || !c.signal.aborted) proc.send(permissionResponse(ev.requestId, answer));
      });
    answering.add(task);
    void task.then(() => answering.delete(task));
  };

  /** The end of the turn: pending approvals are withdrawn and their decisions still reported. */
  async function* finish(end: TurnEnd): AsyncGenerator<TurnEvent, TurnOutcome> {
    for (const c of permissions.values()) c.abort();
    await Promise.all(answering);
    for (const m of mail.drain()) if (m.kind === 'event') yield m.ev;
    return { end, progressed, invalidLines };
  }

  try {
    if (t.images.length > 0) proc.sendLine(userMessageWithImages(t.prompt, t.images));
    else proc.send(userMessage(t.prompt));
    if (t.signal.aborted) stop('aborted');
    for (;;) {
      await mail.arrival();
      for (let m = mail.take(); m; m = mail.take()) {
        if (m.kind === 'event') {
          yield m.ev;
          continue;
        }
        if (m.kind === 'eof') {
          return yield* finish(stopped ? { kind: stopped } : { kind: 'lost', why: 'the process ended' });
        }
        const ev = m.ev;
        if (isProgress(ev)) progressed = true;
        switch (ev.type) {
          case 'invalid':
            invalidLines++;
            t.log.warn({ lineType: ev.lineType, problem: ev.problem }, 'unexpected Claude Code output line');
            break;
          case 'init':
            if (t.expectSession !== undefined && ev.sessionId !== t.expectSession) {
              proc.kill();
              return yield* finish({ kind: 'lost', why: `it answered in session ${ev.sessionId}` });
            }
            if (ev.mcpStatus !== undefined && ev.mcpStatus !== 'connected') warnNoTools(t.log, ev.mcpStatus);
            yield* t.reader.read(ev);
            break;
          case 'permission':
            yield* t.reader.releaseHeld();
            permit(ev);
            break;
          case 'control_cancel':
            permissions.get(ev.requestId)?.abort();
            break;
          case 'control_request':
            proc.send(controlError(ev.requestId, `brainstem does not serve "${ev.subtype}" requests`));
            break;
          case 'result':
            t.reader.read(ev);
            return yield* finish(
              stopped ? { kind: stopped, result: ev.result } : { kind: 'result', result: ev.result },
            );
          default:
            yield* t.reader.read(ev);
        }
      }
    }
  } finally {
    t.signal.removeEventListener('abort', onAbort);
    clearTimeout(timer);
    clearTimeout(killTimer);
    for (const c of permissions.values()) c.abort();
  }
}

/**
 * The CLI starts a turn without brainstem's tools when its connection to /mcp failed (a refusal,
 * or no answer within its connect timeout): the model then says it has no such tool, and nothing
 * else would tell the owner why.
 */
function warnNoTools(log: Logger, status: string): void {
  log.warn(
    { mcpStatus: status },
    `Claude Code is not connected to brainstem's MCP server (status "${status}"): this turn runs without brainstem's tools. The /mcp request lines of this log say what it was answered; none at all means it got no answer in time (MCP_CONNECT_TIMEOUT_MS in claude.env, 30000 unless set, gives it longer).`,
  );
}

/** A queue with one reader that can wait until something arrives. */
class Mailbox<T> {
  private items: T[] = [];
  private waiting?: { promise: Promise<void>; resolve: () => void };

  push(item: T): void {
    this.items.push(item);
    this.waiting?.resolve();
    this.waiting = undefined;
  }

  arrival(): Promise<void> {
    if (this.items.length > 0) return Promise.resolve();
    if (!this.waiting) {
      let resolve = () => {};
      const promise = new Promise<void>((r) => {
        resolve = r;
      });
      this.waiting = { promise, resolve };
    }
    return this.waiting.promise;
  }

  take(): T | undefined {
    return this.items.shift();
  }

  drain(): T[] {
    return this.items.splice(0);
  }
}
