import type { RpcId } from './mcp-protocol.js';

/** One tool call under way: its signal, and whether its client cancelled it. */
export interface RunningCall {
  signal: AbortSignal;
  readonly cancelled: boolean;
  /** The call has settled: a cancel naming it now finds nothing. */
  end(): void;
}

/**
 * The tool calls /mcp is running, by the session that sent each and its
 * JSON-RPC id, so that a client's `notifications/cancelled` (sent in a POST
 * of its own, the call's POST left open) stops the call it names. The
 * session scopes the id: every client numbers its requests from 0, and all of
 * them (each Claude CLI, the spare's included) hold the same API token.
 */
export class RunningCalls {
  private readonly calls = new Map<string, AbortController>();

  /** A call starts; its signal is aborted when its caller goes away (`gone`) or cancels it. */
  start(session: string | undefined, id: RpcId, gone: AbortSignal): RunningCall {
    const cancel = new AbortController();
    const key = session === undefined ? undefined : keyOf(session, id);
    if (key !== undefined) this.calls.set(key, cancel);
    const calls = this.calls;
    return {
      signal: AbortSignal.any([gone, cancel.signal]),
      get cancelled() {
        return cancel.signal.aborted;
      },
      end() {
        if (key !== undefined && calls.get(key) === cancel) calls.delete(key);
      },
    };
  }

  /** A client cancels one of its calls; one that has settled, or was never seen, is ignored (as MCP allows). */
  cancel(session: string, id: RpcId, reason: string | undefined): void {
    this.calls.get(keyOf(session, id))?.abort(reason);
  }
}

/** The id's type is part of it: JSON-RPC's 1 and "1" are two requests. */
const keyOf = (session: string, id: RpcId): string => JSON.stringify([session, id]);
