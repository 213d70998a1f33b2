import type { TurnEvent } from '../../brains/types.js';

type ToolCallEvent = Extract<TurnEvent, { type: 'tool_call' }>;

/**
 * Keeps a model's calls of the client's tools to the ones its mode gave it.
 * A tool the mode keeps back (`toolFilter`) is still named in the client's
 * own prompt (OpenClaw's lists `exec` and `tool_call`), and the client runs
 * whatever call it gets back: a call of a tool not offered, by a model that
 * follows the prompt or an injection in it, must never reach the client. Each
 * index is judged on its first delta, which carries the name (TurnEvent's
 * contract); a later delta cannot rename a call that passed. The calls that
 * pass are numbered anew from 0, as the client would have had them without
 * the ones held back: a hole (no call at 0 beside one at 1) breaks clients
 * that gather a stream's calls by index (the openai SDK's stream helper).
 */
export class OfferedCallsOnly {
  /** Upstream index → the call's index for the client, or null when it is held back. */
  private readonly judged = new Map<number, number | null>();
  /** Names of the calls held back, in order, for the answer to say. */
  readonly refused: string[] = [];
  private passed = 0;
  /** Client indexes of the calls that passed and have had some arguments. */
  private readonly withArguments = new Set<number>();

  constructor(private readonly offered: ReadonlySet<string>) {}

  /** The delta as it may go to the client, or undefined when its call is held back. */
  pass(ev: ToolCallEvent): ToolCallEvent | undefined {
    const judged = this.judged.get(ev.index);
    if (judged === undefined) {
      const ok = ev.name !== undefined && this.offered.has(ev.name);
      if (!ok) {
        this.judged.set(ev.index, null);
        this.refused.push(ev.name ?? '(a call without a name)');
        return undefined;
      }
      const index = this.passed++;
      this.judged.set(ev.index, index);
      if (ev.arguments) this.withArguments.add(index);
      return { ...ev, index };
    }
    if (judged === null) return undefined;
    if (ev.arguments) this.withArguments.add(judged);
    const { name: _renamed, ...rest } = ev;
    return { ...rest, index: judged };
  }

  /**
   * The closing deltas of the calls that passed with no arguments at all (an
   * upstream that leaves `arguments` out of a call of a tool without
   * parameters): `{}`, as OpenAI sends. An empty string is not JSON, and
   * clients fail on it (LangChain makes the call an invalid_tool_call, the
   * openai SDK's runTools throws).
   */
  emptyArguments(): ToolCallEvent[] {
    const closing: ToolCallEvent[] = [];
    for (let index = 0; index < this.passed; index++) {
      if (!this.withArguments.has(index)) closing.push({ type: 'tool_call', index, arguments: '{}' });
    }
    return closing;
  }

  /** Whether some call went to the client (the answer still ends in `tool_calls`). */
  anyPassed(): boolean {
    return this.passed > 0;
  }
}
