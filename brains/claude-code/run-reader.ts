import type { TurnEvent, TurnUsage } from '../types.js';
import type { FailureSignals } from './errors.js';
import type { CliEvent } from './stream-json.js';
import { CallTally } from './usage-estimate.js';

/**
 * Follows the events of one CLI run: turns them into what the consumer sees
 * as they come, and keeps what the end of the run needs (the result and the
 * failure signals).
 */
export class RunReader {
  sessionId?: string;
  /** Whether the consumer got anything yet (a failed resume can be retried only before that). */
  yielded = false;
  readonly signals: Omit<FailureSignals, 'stderr' | 'exitCode' | 'signal'> = {};
  /** The API calls the stream showed: what the turn cost if its result never comes. */
  readonly calls = new CallTally();
  /** The answer's text as the consumer got it: what the session is known to have said last (answerDigest). */
  text = '';
  private textSeen = false;
  private newBlock = false;
  /**
   * The last message was cut off: after a stop at the output-token limit or at
   * the context window the CLI asks the model to go on mid-thought in a new
   * message, whose text continues the same sentence (or word).
   */
  private cutOff = false;
  /**
   * What the message after a refusal streams, held until that message ends: CLI 2.1.332 goes on
   * once after a refusal (cli-compat.ts). Refused again, it is dropped (the answer so far stands,
   * as in 2.1.197, which does not go on); ended otherwise, it is the answer's next part.
   */
  private held: CliEvent[] | undefined;

  constructor(private readonly onSession: (sessionId: string) => void) {}

  /**
   * The CLI asks to run a tool of the message it streams: 2.1.332 asks once the tool's block
   * ends, before the message does. The words before that tool were not refused, and the question
   * must not come before them: they go to the consumer now, what follows stays held.
   */
  releaseHeld(): TurnEvent[] {
    const held = this.held;
    if (!held?.length) return [];
    this.held = undefined;
    const out = held.flatMap((e) => this.read(e));
    this.held = [];
    return out;
  }

  /** Events the reader does not act on (control traffic, other lines) give nothing. */
  read(ev: CliEvent): TurnEvent[] {
    if (this.held && (ev.type === 'text_block' || ev.type === 'text_delta')) {
      this.held.push(ev);
      return [];
    }
    switch (ev.type) {
      case 'init':
        this.calls.read(ev);
        return ev.sessionId === this.sessionId ? [] : this.session(ev.sessionId);
      case 'text_block':
        this.newBlock = this.textSeen && !this.cutOff;
        this.cutOff = false;
        return [];
      case 'call_usage':
        this.calls.read(ev);
        return [];
      case 'message_end': {
        this.calls.read(ev);
        const held = this.held;
        this.held = undefined;
        const out = held && ev.stopReason !== 'refusal' ? held.flatMap((e) => this.read(e)) : [];
        // The retry refused too is where the CLI gives up: nothing more to hold.
        if (ev.stopReason === 'refusal' && !held) this.held = [];
        this.cutOff = ev.stopReason === 'max_tokens' || ev.stopReason === 'model_context_window_exceeded';
        return out;
      }
      case 'text_delta': {
        // Texts of successive messages (around Claude's own tool use) would otherwise run together.
        const out: TurnEvent[] = this.newBlock ? [{ type: 'text', text: '\n\n' }] : [];
        out.push({ type: 'text', text: ev.text });
        this.text += `${this.newBlock ? '\n\n' : ''}${ev.text}`;
        this.newBlock = false;
        this.textSeen = true;
        this.yielded = true;
        return out;
      }
      case 'rate_limit':
        if (ev.info.status === 'rejected') this.signals.rateLimit = ev.info;
        return [];
      case 'api_error':
        this.signals.apiError = ev.error;
        return [];
      case 'result':
        this.signals.result = ev.result;
        return [];
      default:
        return [];
    }
  }

  /**
   * Events of a successful or failed result: the session id if init never gave
   * it, a success's text if none of it streamed, then the turn's own usage
   * (ClaudeProcess.turnUsage: the result holds running totals).
   */
  settle(usage: TurnUsage): TurnEvent[] {
    const result = this.signals.result;
    if (!result) return [];
    const out = result.sessionId && !this.sessionId ? this.session(result.sessionId) : [];
    // An answer the CLI gave without streaming it (as it answers its own commands) is not lost in silence.
    if (!result.isError && !this.textSeen && result.text) {
      out.push({ type: 'text', text: result.text });
      this.text += result.text;
      this.textSeen = true;
      this.yielded = true;
    }
    out.push({ type: 'usage', usage });
    return out;
  }

  private session(sessionId: string): TurnEvent[] {
    this.sessionId = sessionId;
    this.yielded = true;
    this.onSession(sessionId);
    return [{ type: 'session', sessionId }];
  }
}
