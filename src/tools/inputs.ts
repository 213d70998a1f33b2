import { z } from 'zod';
import { BrainstemError } from '../errors.js';
import type { ToolsConfig } from './config.js';

/** The commits a git_log call without `max` returns, unless tools.git.maxLogEntries is lower. */
const DEFAULT_LOG_ENTRIES = 20;

/**
 * Every tool's name, input schema and whether it changes things, from the `tools` section alone.
 * The tools themselves need the running service (the database, the brains, a process runner);
 * what a call may send and whether it may run unasked do not, so loadConfig checks
 * tools.shortcuts and modes.<id>.brainstemTools against these before anything starts
 * (`brainstem doctor` included), and defineTool gives each tool its input and flag from here.
 * Builders, not schemas: each is built when called, like configSchemas(), so no schema tree
 * stays in the idle heap. In the order the tools register.
 */
export const TOOL_INPUTS = {
  git_status: () => z.object({}).strict(),
  git_log: (tools: ToolsConfig) =>
    z
      .object({
        // zod does not check a default against max: a cap below 20 must bound the default too.
        max: z
          .number()
          .int()
          .min(1)
          .max(tools.git.maxLogEntries)
          .default(Math.min(DEFAULT_LOG_ENTRIES, tools.git.maxLogEntries))
          .describe('How many commits.'),
      })
      .strict(),
  git_diff: () =>
    z
      .object({
        path: z
          .string()
          .min(1)
          .optional()
          .describe('Limit the diff to this path (relative to the repository).'),
        staged: z.boolean().default(false).describe('Show the staged changes instead of the unstaged ones.'),
        stat: z.boolean().default(false).describe('Only the list of files with counts.'),
      })
      .strict(),
  make_target: () => z.object({ target: z.string().min(1).describe('One of the allowed targets.') }).strict(),
  run_tests: () => z.object({}).strict(),
  lint: () => z.object({}).strict(),
  incus_list: () =>
    z
      .object({ project: z.string().min(1).optional().describe('Default: the first allowed project.') })
      .strict(),
  incus_exec: () =>
    z
      .object({
        instance: z.string().min(1),
        command: z
          .array(z.string())
          .min(1)
          .describe('Program and arguments, e.g. ["systemctl", "status", "nginx"]; no shell is involved.'),
        project: z.string().min(1).optional(),
        user: z.number().int().min(0).optional().describe('uid to run as.'),
        cwd: z.string().min(1).optional().describe('Working directory inside the instance.'),
      })
      .strict(),
  read_file: (tools: ToolsConfig) =>
    z
      .object({
        path: z.string().min(1),
        maxBytes: z
          .number()
          .int()
          .positive()
          .max(tools.files.maxBytes)
          .optional()
          .describe('Read at most this much.'),
      })
      .strict(),
  web_search: () =>
    z
      .object({
        query: z.string().trim().min(1).max(400),
        count: z.number().int().min(1).max(20).default(5),
      })
      .strict(),
  web_fetch: (tools: ToolsConfig) =>
    z
      .object({
        url: z.url({ protocol: /^https?$/, error: 'an http:// or https:// URL' }),
        maxChars: z
          .number()
          .int()
          .min(100)
          .max(tools.webFetch.maxChars)
          .optional()
          .describe('Return at most this many characters.'),
      })
      .strict(),
  sessions: () =>
    z
      .object({
        action: z.enum(['list', 'clear']).default('list'),
        sessionKey: z
          .string()
          .min(1)
          .optional()
          .describe('The conversation to clear, or whose sessions to list; default for a list: every one.'),
        mode: z
          .string()
          .min(1)
          .optional()
          .describe('List or clear only this mode’s sessions; default: every mode.'),
      })
      .strict()
      .refine((i) => i.action !== 'clear' || i.sessionKey !== undefined, {
        path: ['sessionKey'],
        message: 'required to clear a session',
      }),
  usage: () => z.object({ since: z.string().min(1).default('7d') }).strict(),
  mode: () =>
    z.object({ mode: z.string().min(1).optional().describe('Mode id or alias to switch to.') }).strict(),
  audit: () =>
    z
      .object({
        limit: z.number().int().min(1).max(200).default(20),
        tool: z.string().min(1).optional().describe('Only calls of this tool.'),
      })
      .strict(),
  brain_chat: () =>
    z
      .object({
        mode: z.string().min(1).default('active'),
        message: z.string().trim().min(1),
        sessionKey: z.string().min(1).max(200).optional(),
      })
      .strict(),
  claude_code: () =>
    z
      .object({
        prompt: z.string().trim().min(1),
        allowedTools: z.array(z.string().min(1)).optional().describe('A subset of the granted tools.'),
      })
      .strict(),
  self_upgrade: () =>
    z
      .object({
        action: z.enum(['check', 'apply', 'framework']).default('check'),
        to: z
          .string()
          .regex(/^[0-9a-f]{7,64}$/, 'a commit hash')
          .optional()
          .describe(
            'For `apply`: the upstream commit a check showed (its `target`); nothing is applied if the upstream has moved since.',
          ),
        name: z.string().min(1).optional().describe('For `framework`: which configured upgrade.'),
      })
      .strict(),
} satisfies Record<string, (tools: ToolsConfig) => z.ZodType>;

export type ToolName = keyof typeof TOOL_INPUTS;

/**
 * Whether a call changes things, so a human face asks first and Claude may not run it unasked:
 * always or never; `depends` on the call's input, which the tool's definition judges; or an
 * owner's command (tools.tests, tools.lint), which may write unless its `readOnly` says it only reads.
 */
export type Mutating = boolean | 'depends' | { command: 'tests' | 'lint' };

export const TOOL_MUTATING = {
  git_status: false,
  git_log: false,
  git_diff: false,
  make_target: true,
  run_tests: { command: 'tests' },
  lint: { command: 'lint' },
  incus_list: false,
  incus_exec: true,
  read_file: false,
  web_search: false,
  web_fetch: false,
  sessions: 'depends',
  usage: false,
  mode: 'depends',
  audit: false,
  brain_chat: 'depends',
  claude_code: true,
  self_upgrade: 'depends',
} as const satisfies { [N in ToolName]: Mutating };

/** Whether a call of this tool changes things with this `tools` section (`depends`: on its input). */
export function mutatingIn(name: ToolName, tools: ToolsConfig): boolean | 'depends' {
  const m: Mutating = TOOL_MUTATING[name];
  return typeof m === 'object' ? tools[m.command]?.readOnly !== true : m;
}

/** The setting that lets a brain run this tool unasked (`tools.lint.readOnly`), for the messages that name it. */
export function readOnlySetting(name: string): string | undefined {
  const m: Mutating | undefined = isToolName(name) ? TOOL_MUTATING[name] : undefined;
  return typeof m === 'object' ? `tools.${m.command}.readOnly` : undefined;
}

/** The input schema a tool of this name takes. */
export type InputOf<N extends ToolName> = ReturnType<(typeof TOOL_INPUTS)[N]>;

export function isToolName(name: string): name is ToolName {
  return Object.hasOwn(TOOL_INPUTS, name);
}

export function unknownTool(name: string, known: string[]): BrainstemError {
  return new BrainstemError('TOOL_UNKNOWN', `Unknown tool "${name}". Tools: ${known.join(', ')}.`);
}

/**
 * What zod found wrong in a tool's input, as a caller reads it: `git_log: max: …`, and the field at
 * fault. Of unknown keys, the first is the field (the message names them all): joined, `target` and
 * `path` would read as one field `target.path`.
 */
export function inputIssue(
  name: string,
  issue: z.core.$ZodIssue | undefined,
): { param: string | undefined; message: string } {
  const path =
    issue?.code === 'unrecognized_keys' ? [...issue.path, ...issue.keys.slice(0, 1)] : (issue?.path ?? []);
  const param = path.length > 0 ? path.join('.') : undefined;
  return { param, message: `${name}: ${param ?? 'input'}: ${issue?.message ?? 'invalid'}` };
}
