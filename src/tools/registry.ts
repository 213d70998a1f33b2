import { z } from 'zod';
import french from 'zod/v4/locales/fr.js';
import type { AuditEntry, AuditLog } from '../audit.js';
import { BrainstemError, type ErrorCode } from '../errors.js';
import { formatDuration, formatUtc, type Lang } from '../i18n.js';
import type { Logger } from '../logger.js';
import type { NoticeChat } from '../notices.js';
import { redactValue } from '../redact.js';
import { headChars } from '../text.js';
import { waitAtMost } from '../wait.js';
import type { ToolsConfig } from './config.js';
import { ToolRunError } from './exec.js';
import {
  type InputOf,
  inputIssue,
  mutatingIn,
  TOOL_INPUTS,
  TOOL_MUTATING,
  type ToolName,
  unknownTool,
} from './inputs.js';

/**
 * One definition per tool, served three ways (/api, /mcp, the chat). The
 * registry validates the input (errors name the field), lets the tool refuse
 * what the configuration does not allow, runs it, and audits every call.
 */

export interface ToolContext {
  /** Who asks, for the audit log: `api`, `mcp`, `chat`, `telegram:<user id>` … */
  caller: string;
  signal: AbortSignal;
  /** Output as the tool produces it (command lines), for live progress. */
  onOutput?: (chunk: string) => void;
  /** How many brains stand between a person and this call: 0 (or absent) when a person or a client calls, 1 for a brain's call… */
  depth?: number;
  /** The language of the person who reads the answer in a chat; absent (English) for a program or a model. */
  lang?: Lang;
  /** The Telegram chat (and forum topic) that asked, for what a tool tells it later (self_upgrade's outcome after the restart). */
  chat?: NoticeChat;
}

/** What a tool's `run` returns; a refusal or a failure is thrown as a BrainstemError instead. */
export interface ToolOutput {
  /** Structured result (JSON). */
  data?: unknown;
  /** Text output of a command, capped. */
  output?: string;
  /** Exit code of the command, when the tool ran one; non-zero makes the call not ok. */
  exitCode?: number;
  /** The output is not whole: capped by tools.maxOutputChars, or cut before brainstem had it (`note` says how). */
  truncated?: boolean;
  /** What the caller should do about a result that is not what it looks like (a brain's answer cut at its output limit). */
  note?: string;
  /** Work that must wait until the caller has delivered the result (self_upgrade restarts brainstem). */
  afterDelivery?: () => void;
}

export interface ToolSpec<S extends z.ZodType = z.ZodType> {
  name: string;
  /** What it does and what it needs, for people and for models choosing a tool. */
  description: string;
  input: S;
  /** Whether a call changes something, so a human face asks for confirmation first. */
  mutating: boolean | ((input: z.output<S>) => boolean);
  /** Refuses, before anything runs, what the configuration does not allow (throws BrainstemError). */
  authorize?(input: z.output<S>): void;
  run(input: z.output<S>, ctx: ToolContext): Promise<ToolOutput>;
}

/** Erases a definition's input type so tools of every shape fit in one registry. */
export type AnyTool = ToolSpec<z.ZodType>;

/** A definition's `mutating`: a function of the input where TOOL_MUTATING says `depends`, else none (the table's). */
type MutatingDef<N extends ToolName> = (typeof TOOL_MUTATING)[N] extends 'depends'
  ? { mutating: (input: z.output<InputOf<N>>) => boolean }
  : { mutating?: never };

/** What builds a tool's input and flag: the `tools` section, for an input whose limits it sets or an owner's command. */
type DefineArgs<N extends ToolName> = (typeof TOOL_MUTATING)[N] extends { command: string }
  ? [tools: ToolsConfig]
  : Parameters<(typeof TOOL_INPUTS)[N]>;

/**
 * A tool from its definition, with the input and the `mutating` flag TOOL_INPUTS and TOOL_MUTATING
 * give its name (src/tools/inputs.ts), built with `args`: loadConfig judges modes' brainstemTools
 * by that table, so a definition cannot say otherwise.
 */
export function defineTool<N extends ToolName>(
  def: Omit<ToolSpec<InputOf<N>>, 'input' | 'mutating'> & { name: N } & MutatingDef<N>,
  ...args: DefineArgs<N>
): AnyTool {
  const input = (TOOL_INPUTS[def.name] as (...a: DefineArgs<N>) => z.ZodType)(...args);
  const flag =
    TOOL_MUTATING[def.name] === 'depends' ? def.mutating : mutatingIn(def.name, args[0] as ToolsConfig);
  return { ...def, input, mutating: flag } as unknown as AnyTool;
}

export interface ToolError {
  code: ErrorCode;
  status: number;
  type: string;
  message: string;
  /** The message in French (BrainstemError.fr); say it with sayError. */
  fr?: string;
  /** The input field at fault, when there is one. */
  param?: string;
  /** Seconds to wait before calling again, when known (BrainstemError.retryAfterS): /api's Retry-After. */
  retryAfterS?: number;
  /** When to call again (ISO 8601), when that is further away than retryAfterS can say (BrainstemError.retryAt). */
  retryAt?: string;
  /** The call must not be sent again by itself (BrainstemError.noRetry): /api's `x-should-retry: false`. */
  noRetry?: boolean;
}

export interface ToolResult {
  tool: string;
  /** True when the tool ran and, if it ran a command, the command exited 0. */
  ok: boolean;
  exitCode?: number;
  durationMs: number;
  output?: string;
  data?: unknown;
  truncated: boolean;
  /** See ToolOutput.note. */
  note?: string;
  /** Set when the call was refused, failed, timed out or was stopped. */
  error?: ToolError;
  /** See ToolOutput.afterDelivery: call it once the result has reached the caller. */
  afterDelivery?: () => void;
}

export interface PreparedCall {
  tool: string;
  /** The validated input, defaults filled in. */
  input: unknown;
  mutating: boolean;
}

export interface ToolInfo {
  name: string;
  description: string;
  /** `depends` when it depends on the input (e.g. self_upgrade check vs apply). */
  mutating: boolean | 'depends';
  inputSchema: Record<string, unknown>;
}

export interface CallOptions extends Omit<ToolContext, 'signal'> {
  signal?: AbortSignal;
}

export class ToolRegistry {
  private readonly tools = new Map<string, AnyTool>();
  /** Running calls and when each has settled (audited), stopped when brainstem stops. */
  private readonly running = new Map<AbortController, Promise<void>>();

  constructor(
    private readonly auditLog: AuditLog,
    private readonly logger: Logger,
  ) {}

  register(...tools: AnyTool[]): void {
    for (const t of tools) {
      if (this.tools.has(t.name)) throw new Error(`tool ${t.name} registered twice`);
      this.tools.set(t.name, t);
    }
    this.listed = undefined;
  }

  names(): string[] {
    return [...this.tools.keys()];
  }

  private listed: ToolInfo[] | undefined;

  /** Tools with their JSON Schemas, built once: the local brain's turns ask for them every time. */
  list(): ToolInfo[] {
    this.listed ??= [...this.tools.values()].map((t) => ({
      name: t.name,
      description: t.description,
      mutating: mutatingOf(t),
      inputSchema: inputJsonSchema(t.input),
    }));
    return this.listed;
  }

  /** Whether each tool changes things, without the JSON Schemas (built on the first list(), not at start-up). */
  mutability(): Map<string, ToolInfo['mutating']> {
    return new Map([...this.tools.values()].map((t) => [t.name, mutatingOf(t)]));
  }

  /**
   * Validates and authorizes without running: tells a face whether a call would
   * be refused, and whether it mutates (so it asks for confirmation) before it runs.
   * Throws BrainstemError.
   */
  prepare(name: string, rawInput: unknown): PreparedCall {
    const { tool, input } = this.validate(name, rawInput);
    tool.authorize?.(input);
    const mutating = typeof tool.mutating === 'function' ? tool.mutating(input) : tool.mutating;
    return { tool: name, input, mutating };
  }

  /** Checks the input against the tool's schema only; the error names the field. Throws BrainstemError. */
  validate(name: string, rawInput: unknown): { tool: AnyTool; input: unknown } {
    const tool = this.tools.get(name);
    if (!tool) throw unknownTool(name, this.names());
    const parsed = tool.input.safeParse(rawInput ?? {});
    if (!parsed.success) {
      const { param, message } = inputIssue(name, parsed.error.issues[0]);
      // The same check with zod's French messages, for a reader in French (a schema's own message stays as written).
      const fr = tool.input.safeParse(rawInput ?? {}, { error: french().localeError }).error?.issues[0];
      throw new BrainstemError(
        'INVALID_REQUEST',
        message,
        param,
        `${name} : ${param ?? 'entrée'} : ${fr?.message ?? 'invalide'}`,
      );
    }
    return { tool, input: parsed.data };
  }

  /** Runs one call; never throws: refusals and failures come back in `error`. Every call is audited. */
  async call(name: string, rawInput: unknown, opts: CallOptions): Promise<ToolResult> {
    const started = Date.now();
    const controller = new AbortController();
    const onAbort = () => controller.abort();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    if (opts.signal?.aborted) controller.abort();
    let settled = () => {};
    this.running.set(
      controller,
      new Promise<void>((resolve) => {
        settled = resolve;
      }),
    );
    let result: ToolResult;
    try {
      const prepared = this.prepare(name, rawInput);
      const tool = this.tools.get(name) as AnyTool;
      if (controller.signal.aborted) throw new BrainstemError('TOOL_ABORTED');
      const out = await tool.run(prepared.input, {
        caller: opts.caller,
        signal: controller.signal,
        onOutput: opts.onOutput,
        depth: opts.depth,
        lang: opts.lang,
        ...(opts.chat ? { chat: opts.chat } : {}),
      });
      result = {
        tool: name,
        ok: out.exitCode === undefined || out.exitCode === 0,
        exitCode: out.exitCode,
        durationMs: Date.now() - started,
        output: out.output,
        data: out.data,
        truncated: out.truncated ?? false,
        note: out.note,
        afterDelivery: out.afterDelivery,
      };
    } catch (err) {
      result = this.failure(name, err, Date.now() - started);
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
    }
    this.audit(result, opts.caller, rawInput);
    this.running.delete(controller);
    settled();
    return result;
  }

  /** Stops every running call (their process trees are killed) and waits, within `graceMs`, for their audit lines. */
  async stop(graceMs = 5_000): Promise<void> {
    for (const c of this.running.keys()) c.abort();
    await waitAtMost(Promise.all(this.running.values()), graceMs);
  }

  recentAudit(limit: number, tool?: string): AuditEntry[] {
    return this.auditLog.recent(limit, tool);
  }

  private failure(name: string, err: unknown, durationMs: number): ToolResult {
    let e: BrainstemError;
    if (err instanceof BrainstemError) e = err;
    else {
      this.logger.error({ err, tool: name }, 'tool failed unexpectedly');
      e = new BrainstemError('INTERNAL', `${name} failed unexpectedly; see the brainstem log.`);
    }
    const run = e instanceof ToolRunError ? e : undefined;
    return {
      tool: name,
      ok: false,
      durationMs,
      output: run?.output || undefined,
      truncated: run?.truncated ?? false,
      error: {
        code: e.code,
        status: e.status,
        type: e.type,
        message: e.message,
        ...(e.fr ? { fr: e.fr } : {}),
        param: e.param,
        ...(e.retryAfterS !== undefined ? { retryAfterS: e.retryAfterS } : {}),
        ...(e.retryAt !== undefined ? { retryAt: new Date(e.retryAt).toISOString() } : {}),
        ...(e.noRetry ? { noRetry: true } : {}),
      },
    };
  }

  private audit(r: ToolResult, caller: string, rawInput: unknown): void {
    this.auditLog.write({
      ts: Date.now() - r.durationMs,
      tool: r.tool,
      caller,
      args: summarizeArgs(rawInput),
      ok: r.ok,
      exitCode: r.exitCode,
      durationMs: r.durationMs,
      error: r.error ? `${r.error.code}: ${r.error.message}` : undefined,
    });
    this.logger.info(
      { tool: r.tool, caller, ok: r.ok, exitCode: r.exitCode, ms: r.durationMs, error: r.error?.code },
      'tool call',
    );
  }
}

function mutatingOf(t: AnyTool): ToolInfo['mutating'] {
  return typeof t.mutating === 'function' ? 'depends' : t.mutating;
}

/** The input as published: JSON Schema of what callers send (defaults make fields optional). */
function inputJsonSchema(schema: z.ZodType): Record<string, unknown> {
  const { $schema: _, ...rest } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<
    string,
    unknown
  >;
  return rest;
}

/** A short, secret-free rendering of the arguments for the audit log. */
function summarizeArgs(input: unknown): string {
  const text = JSON.stringify(redactValue(input ?? {})) ?? 'null';
  return text.length > 2_000 ? `${headChars(text, 2_000)}…` : text;
}

/**
 * The result as plain text, for a model (MCP content, the local brain's tool results): data and
 * output, its note, then what went wrong. Data beside an output is not left out: it holds what
 * the model needs to go on (brain_chat's sessionKey, web_fetch's final URL and status, read_file's
 * size and encoding). It comes first, as one compact JSON line: a long result is cut in its middle
 * (the local toolbox keeps its first and last 4,000 characters), and the output is what may be long.
 */
export function resultText(r: ToolResult): string {
  const parts: string[] = [];
  if (r.output) {
    if (r.data !== undefined) parts.push(`Data: ${JSON.stringify(r.data)}`);
    parts.push(r.output);
  } else if (r.data !== undefined) {
    parts.push(typeof r.data === 'string' ? r.data : JSON.stringify(r.data, null, 2));
  }
  if (r.note) parts.push(`Note: ${r.note}`);
  if (r.error) {
    parts.push(`Error (${r.error.code.toLowerCase()}): ${r.error.message}${waitText(r.error)}`);
  } else if (r.exitCode !== undefined && r.exitCode !== 0) parts.push(`Exit code ${r.exitCode}.`);
  return parts.join('\n\n') || '(no output)';
}

/**
 * The wait before calling again, said: an MCP client gets no Retry-After (a tool's failure is a
 * result, HTTP 200). A wait longer than Retry-After's cap (a usage limit resetting in hours) is
 * said as its time, with how far away it is for a model that does not know the time: "try again
 * in 60 s" would have it call every minute until then, each call refused.
 */
function waitText(e: ToolError, now = Date.now()): string {
  if (e.retryAt !== undefined) {
    const at = Date.parse(e.retryAt);
    // formatUtc says the minute: the next whole one, or a model calling at the minute said is refused again.
    const minute = Math.ceil(at / 60_000) * 60_000;
    return ` Do not call it again before ${formatUtc(minute)} (in ${formatDuration(Math.max(0, minute - now))}).`;
  }
  return e.retryAfterS === undefined ? '' : ` Try again in ${e.retryAfterS} s.`;
}

/** The result as JSON for HTTP: everything but the deferred work. */
export function resultJson(r: ToolResult): Omit<ToolResult, 'afterDelivery'> {
  const { afterDelivery: _, ...rest } = r;
  return rest;
}
