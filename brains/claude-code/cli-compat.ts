/**
 * What brainstem knows about Claude Code versions, in one place.
 *
 * Tested: the pinned 2.1.197 and the current 2.1.332 (the native build); CI runs
 * the whole suite on each. Compared on what brainstem reads and writes, they
 * differ in these ways that matter here:
 *
 * - Tool search. 2.1.332 sends MCP tools (brainstem's, `mcp__brainstem__*`) and its
 *   own rarely used tools (TaskList, WebFetch…) with `defer_loading`: the model
 *   sees only their names and must call the `ToolSearch` tool to load one before it
 *   can call it, a model round more. 2.1.197 does the same against Anthropic's API
 *   or with `ENABLE_TOOL_SEARCH=true`, but not against another base URL. Both honour
 *   `alwaysLoad` on an MCP server, so brainstem marks its own server with it (see
 *   mcpServerEntry) and needs no version switch: its few tools are in the first
 *   request, and the CLI's own rare ones stay behind ToolSearch. README
 *   "Tools for Claude Code and scripts" gives the token counts behind this choice.
 *
 * - A turn's cost. Both report `total_cost_usd` and `modelUsage` as running totals,
 *   but 2.1.332 starts them, in a new process that resumes a session, from that
 *   session's earlier cost; it also says what a turn used itself
 *   (`model_usage_since_last_result`), which brainstem takes (ClaudeProcess.turnUsage).
 *   A turn whose CLI died before its result is priced as its CLI would have (CallTally):
 *   2.1.332 charges a call served by US-only inference (`inference_geo` "us") 1.1 times
 *   its tokens, 2.1.197 does not (pricesUsOnlyInference). They price some models
 *   differently too (2.1.197 gives one it does not know its default model's price);
 *   the estimate takes 2.1.332's prices for every CLI (usage-estimate.ts).
 *
 * - Turns nobody asked for. Read as part of the next turn, a turn the CLI starts by itself
 *   would give that turn's message its answer (and every later message the answer to the
 *   one before). guardIdle stops one of any cause between turns and closes its process,
 *   which costs the conversation's next turn a CLI start; the causes known are turned off
 *   instead. 2.1.332 starts
 *   one after each subagent, which it runs in the background (the Task/Agent tool; the
 *   turn's result still waits for it); 2.1.197 runs a subagent within the turn. Both start
 *   one when a Bash command run in the background (`run_in_background`) ends, and when a
 *   prompt scheduled with CronCreate fires (which the CLI runs unasked: "remind me in five
 *   minutes"). ScheduleWakeup, run unasked too with the Cron tools off, schedules the same
 *   kind of wake-up (none was seen to fire within 150 s). 2.1.332's Monitor tool starts one
 *   per line its command prints. So in every CLI: `CLAUDE_CODE_DISABLE_BACKGROUND_TASKS=1` runs subagents within
 *   the turn and drops `run_in_background`, `CLAUDE_CODE_DISABLE_CRON=1` drops the Cron tools
 *   (CLI_ENV), and Monitor and ScheduleWakeup are refused (UNSERVED_TOOLS).
 *
 * - A refusal (`stop_reason: refusal`). 2.1.197 ends the turn there. 2.1.332 goes on once: it
 *   tells the model its answer was stopped and streams a second message, which the fake API's
 *   script, as a real classifier on the same request, may refuse again; only then does it end the
 *   turn. RunReader holds that message's text until it ends: refused, it is dropped, so the answer
 *   is the first one's words once (as with 2.1.197); otherwise it goes on the answer. 2.1.332 asks
 *   to run a tool as soon as the tool's block ends, before its message does: the words before the
 *   tool go on the answer then, ahead of the question (RunReader.releaseHeld).
 *
 * - Words. A usage limit said only in text names the five-hour window "session limit" in
 *   2.1.197 and "5-hour limit" in 2.1.332 (USAGE_LIMIT_TEXT).
 *
 * Not a difference: the other stream-json lines brainstem reads (init, stream_event,
 * rate_limit_event, control_request), `--permission-prompt-tool stdio`,
 * `--max-budget-usd`, `claude auth status --json`. The default model, and so a
 * turn's price, differs between the two; brainstem takes the cost the CLI reports.
 */

/** The oldest CLI the suite runs against; older ones are not known to work. */
export const OLDEST_TESTED = '2.1.197';
/** The newest CLI the suite runs against (`claude-code-current` in package.json). */
export const NEWEST_TESTED = '2.1.332';

/**
 * A usage limit said only in words (the `rate_limit_event` says it too, when it comes): 2.1.197
 * names the five-hour window "session limit", 2.1.332 "5-hour limit".
 */
export const USAGE_LIMIT_TEXT = /hit your (session |5-hour |weekly |opus |)limit|out of extra usage/i;

/**
 * Set in every CLI's environment, over `claude.env` and a mode's `env`: background tasks
 * and scheduled prompts have the CLI start turns nobody asked for, whose answers would
 * reach the wrong message.
 */
export const CLI_ENV = { CLAUDE_CODE_DISABLE_BACKGROUND_TASKS: '1', CLAUDE_CODE_DISABLE_CRON: '1' } as const;

/**
 * How long the CLI waits for brainstem's MCP server to connect (its MCP_CONNECT_TIMEOUT_MS, unless
 * the owner sets one). Both CLIs give a server 5 s, then run the turn without its tools: a CLI
 * started on a busy machine (a local model's server on every core, or a spare at low priority)
 * can miss that, and the suite's CLIs did under load. A connection that comes at once waits nothing.
 */
export const MCP_CONNECT_TIMEOUT_MS = 30_000;

/**
 * Refused in every mode (`--disallowedTools`): each reports through turns nobody asked for.
 * 2.1.332's Monitor starts one per line its command prints; ScheduleWakeup (both CLIs) runs
 * unasked, CLAUDE_CODE_DISABLE_CRON or not, and schedules a wake-up of the session.
 */
export const UNSERVED_TOOLS = ['Monitor', 'ScheduleWakeup'] as const;

/** The `mcpServers` entry of brainstem's MCP server in the `--mcp-config` file. */
export function mcpServerEntry(url: string, headers: Record<string, string>) {
  // alwaysLoad: brainstem's tools go out with their schemas, never deferred behind ToolSearch.
  return { type: 'http', url, headers, alwaysLoad: true } as const;
}

/**
 * Whether the CLI of `version` charges US-only inference 1.1 times: 2.1.332 does, 2.1.197 does
 * not. Which release between them began is not known: any after 2.1.197 is taken to, as is a
 * CLI that did not say its version.
 */
export function pricesUsOnlyInference(version: string | undefined): boolean {
  return version === undefined || compareVersions(version, OLDEST_TESTED) > 0;
}

/** `claude --version` prints e.g. "2.1.332 (Claude Code)": the version, or undefined. */
export function parseCliVersion(output: string): string | undefined {
  return /^\s*(\d+\.\d+\.\d+)\b/.exec(output)?.[1];
}

/** Whether `version` is older than the oldest tested CLI, newer than the newest, or in between. */
export function testedRange(version: string): 'older' | 'tested' | 'newer' {
  if (compareVersions(version, OLDEST_TESTED) < 0) return 'older';
  if (compareVersions(version, NEWEST_TESTED) > 0) return 'newer';
  return 'tested';
}

function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}
