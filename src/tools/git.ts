import { z } from 'zod';
import { BrainstemError } from '../errors.js';
import type { ToolsConfig } from './config.js';
import type { Runner } from './exec.js';
import { type AnyTool, defineTool, type ToolContext } from './registry.js';

/** Read-only git in the configured repository. */

/**
 * Never a pager, a colour code or a credential prompt: nobody is at a terminal. And no program
 * the repository's own config names: these tools run unasked, and whoever could write .git/config
 * (an approved command) would otherwise have them run its commands (an fsmonitor hook at status,
 * an external diff or a textconv at diff, a signature check's gpg.program at log).
 */
const GIT = [
  'git',
  '--no-pager',
  '-c',
  'color.ui=never',
  '-c',
  'core.quotePath=false',
  '-c',
  'core.fsmonitor=false',
  '-c',
  'log.showSignature=false',
];
const GIT_ENV = { GIT_TERMINAL_PROMPT: '0', GIT_OPTIONAL_LOCKS: '0' };

export function gitTools(cfg: ToolsConfig['git'], run: Runner): AnyTool[] {
  const repo = (): string => {
    if (!cfg.repo) {
      throw new BrainstemError(
        'TOOL_NOT_CONFIGURED',
        'The git tools have no repository: set tools.git.repo in brainstem.json.',
        undefined,
        'Les outils git n’ont pas de dépôt : réglez tools.git.repo dans brainstem.json.',
      );
    }
    return cfg.repo;
  };
  const git = async (args: string[], ctx: ToolContext) => {
    const r = await run([...GIT, ...args], {
      cwd: repo(),
      cwdSetting: 'tools.git.repo',
      env: GIT_ENV,
      signal: ctx.signal,
      onOutput: ctx.onOutput,
      lang: ctx.lang,
    });
    return { output: r.output, exitCode: r.exitCode, truncated: r.truncated };
  };

  return [
    defineTool({
      name: 'git_status',
      description:
        'Branch, upstream distance and changed files of the configured repository (git status --short).',
      input: z.object({}).strict(),
      mutating: false,
      authorize: () => void repo(),
      run: (_input, ctx) => git(['status', '--short', '--branch'], ctx),
    }),
    defineTool({
      name: 'git_log',
      description: 'Latest commits of the configured repository: short hash, date, author, subject.',
      input: z
        .object({
          max: z.number().int().min(1).max(cfg.maxLogEntries).default(20).describe('How many commits.'),
        })
        .strict(),
      mutating: false,
      authorize: () => void repo(),
      run: (input, ctx) =>
        git(['log', '-n', String(input.max), '--date=short', '--format=%h %ad %an  %s'], ctx),
    }),
    defineTool({
      name: 'git_diff',
      description:
        'Uncommitted changes of the configured repository, optionally staged only or for one path.',
      input: z
        .object({
          path: z
            .string()
            .min(1)
            .optional()
            .describe('Limit the diff to this path (relative to the repository).'),
          staged: z
            .boolean()
            .default(false)
            .describe('Show the staged changes instead of the unstaged ones.'),
          stat: z.boolean().default(false).describe('Only the list of files with counts.'),
        })
        .strict(),
      mutating: false,
      authorize: () => void repo(),
      run: (input, ctx) =>
        git(
          [
            'diff',
            '--no-ext-diff',
            '--no-textconv',
            ...(input.staged ? ['--staged'] : []),
            ...(input.stat ? ['--stat'] : []),
            // `--` keeps a path that looks like an option a path.
            ...(input.path ? ['--', input.path] : []),
          ],
          ctx,
        ),
    }),
  ];
}
