import type { ToolCall, TurnEvent } from '../brains/types.js';

/** The id of a call whose brain gave none (an upstream that sends no ids): the same streamed or not. */
export const defaultCallId = (index: number) => `call_${index}`;

/** Assembles streamed tool call deltas (OpenAI shape: id and name on the first delta of an index). */
export function collectToolCall(calls: ToolCall[], ev: Extract<TurnEvent, { type: 'tool_call' }>): void {
  let call = calls[ev.index];
  if (!call) {
    call = { id: ev.id ?? defaultCallId(ev.index), type: 'function', function: { name: '', arguments: '' } };
    calls[ev.index] = call;
  }
  if (ev.id) call.id = ev.id;
  if (ev.name) call.function.name += ev.name;
  call.function.arguments += ev.arguments ?? '';
}
