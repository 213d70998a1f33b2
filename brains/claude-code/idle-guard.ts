import type { Logger } from '../../src/logger.js';
import type { TurnUsage } from '../types.js';
import type { ClaudeProcess } from './process.js';
import { controlError, interruptRequest, permissionResponse } from './stdin.js';
import { type CliEvent, isProgress, parseCliLine } from './stream-json.js';
import { INTERRUPT_GRACE_MS } from './turn-runner.js';
import { CallTally, unreportedUsage } from './usage-estimate.js';

/**
 * Reads a CLI process between the turns brainstem asks for (a warm process, a
 * spare). A turn the CLI starts by itself (see "Turns nobody asked for" in
 * cli-compat.ts: brainstem turns off every cause it knows, this is for the
 * next one) would otherwise be read by the next turn, whose message then gets
 * its answer, and every later message the answer to the one before.
 *
 * Such a turn is stopped and the process withdrawn: whatever started it (a
 * background shell, a timer of the CLI's) lives in that process and ends with
 * it, and the conversation's next turn resumes the session in a new process
 * once this one has written it and exited (WarmPool.take). The turn is
 * interrupted at once, so it costs what it spent before that at most, and that
 * cost, from its `result`, is counted (`spent`); a turn whose process ends
 * before its result (killed when it did not answer the interrupt in time,
 * crashed) is counted at the price of the tokens its stream showed, as a turn
 * asked for would be (CallTally). Nobody is asked about the
 * tools it wants: they are refused. Other lines between turns (the CLI's status
 * lines) are logged by their type and dropped.
 */

export interface IdleGuardOptions {
  log: Logger;
  /** What a turn nobody asked for cost (from its result, else estimated), the session it ran in and how long it ran. */
  spent(usage: TurnUsage, sessionId: string | undefined, durationMs: number): void;
}

/** A turn nobody asked for, from its first line. */
interface Stray {
  started: number;
  /** Its lines by kind, for the log. */
  lines: Record<string, number>;
  /** Kills it when it does not answer the interrupt. */
  timer: NodeJS.Timeout;
  /** Its API calls: what it cost if its result never comes. */
  calls: CallTally;
  sessionId?: string;
  /** Its cost went to `spent` (from its result, or estimated at the end of stdout). */
  counted?: boolean;
}

/** What the model is told when the CLI's own turn wants a tool. */
const REFUSED = 'Refused: nobody is there to approve tools between the turns of this conversation.';

export function guardIdle(proc: ClaudeProcess, o: IdleGuardOptions): void {
  let stray: Stray | undefined;
  /** Kinds of line already logged at warn: a CLI that repeats one (a heartbeat) logs it once. */
  const told = new Set<string>();
  const log = o.log.child({ pid: proc.pid });
  const unreported = (turn: Stray) => {
    turn.counted = true;
    const durationMs = Date.now() - turn.started;
    const usage = unreportedUsage(turn.calls, log, 'turn nobody asked for');
    if (usage) o.spent(usage, turn.sessionId, durationMs);
    log.warn(
      { durationMs, lines: turn.lines },
      'turn nobody asked for ended without its result; its process closed',
    );
  };
  proc.between((line) => {
    if (line === undefined) {
      clearTimeout(stray?.timer);
      if (stray && !stray.counted) unreported(stray);
      return;
    }
    const ev = parseCliLine(line);
    const what = describe(ev);
    if (!stray && !startsTurn(ev)) {
      if (told.has(what)) log.debug({ line: what }, 'Claude Code wrote between turns; dropped');
      else log.warn({ line: what }, 'Claude Code wrote between turns; dropped');
      told.add(what);
      return;
    }
    if (!stray) {
      log.warn({ line: what }, 'Claude Code started a turn nobody asked for; closing its process');
      proc.withdraw();
      proc.send(interruptRequest());
      // An interrupted turn ends with its result; one that does not is killed like a stopped turn.
      stray = {
        started: Date.now(),
        lines: {},
        timer: setTimeout(() => proc.kill(), INTERRUPT_GRACE_MS),
        calls: new CallTally(),
      };
    }
    stray.lines[what] = (stray.lines[what] ?? 0) + 1;
    stray.calls.read(ev);
    if (ev.type === 'init') stray.sessionId = ev.sessionId;
    if (ev.type === 'permission') {
      log.warn({ tool: ev.tool }, 'tool refused to a turn nobody asked for');
      proc.send(permissionResponse(ev.requestId, { behavior: 'deny', message: REFUSED }));
    } else if (ev.type === 'control_request') {
      proc.send(controlError(ev.requestId, `brainstem does not serve "${ev.subtype}" requests`));
    } else if (ev.type === 'result') {
      clearTimeout(stray.timer);
      stray.counted = true;
      const usage = proc.turnUsage(ev.result);
      const durationMs = Date.now() - stray.started;
      o.spent(usage, ev.result.sessionId, durationMs);
      log.warn(
        { costUsd: usage.costUsd, durationMs, lines: stray.lines },
        'turn nobody asked for stopped; its process closes',
      );
      void proc.close();
    }
  });
}

/** A line that only a running turn writes: its start (`init`), or anything beyond status lines. */
function startsTurn(ev: CliEvent): boolean {
  return ev.type === 'init' || isProgress(ev);
}

/** A line by its type only (e.g. `system/task_notification`): its text may hold anything the session holds. */
function describe(ev: CliEvent): string {
  if (ev.type === 'other') return ev.subtype ? `${ev.lineType}/${ev.subtype}` : ev.lineType;
  return ev.type === 'invalid' ? `invalid ${ev.lineType}` : ev.type;
}
