import type { ToolCall, TurnEvent } from '../brains/types.js';

/** Assembles streamed tool call deltas (OpenAI shape: id and name on the first delta of an index). */
export function collectToolCall(calls: ToolCall[], ev: Extract<TurnEvent, { type: 'tool_call' }>): void {
  let call = calls[ev.index];
  if (!call) {
    call = { id: ev.id ?? `call_${ev.index}`, type: 'function', function: { name: '', arguments: '' } };
    calls[ev.index] = call;
  }
  if (ev.id) call.id = ev.id;
  if (ev.name) call.function.name += ev.name;
  call.function.arguments += ev.arguments ?? '';
}
