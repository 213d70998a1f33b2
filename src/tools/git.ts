import { BrainstemError } from '../errors.js';
import type { ToolsConfig } from './config.js';
import type { Runner } from './exec.js';
import { type AnyTool, defineTool, type ToolContext } from './registry.js';

/** Read-only git in the configured repository. */

/**
 * Never a pager, a colour code or a credential prompt: nobody is at a terminal (a model or a script
 * reads the output; `color.diff` or `color.status` set to `always`, in the repository's config or
 * the user's, would colour it despite `color.ui`, so each is set too). And no program
 * the repository's own config names: these tools run unasked, and whoever could write .git/config
 * (an approved command) would otherwise have them run its commands (an fsmonitor hook at status,
 * an external diff or a textconv at diff, a signature check's gpg.program at log, the
 * post-index-change hook when diff refreshes the index; filter drivers: see filtersOff). A
 * submodule's changed commit is shown as a line: `diff.submodule=diff` would run a diff inside it,
 * under the submodule's own config, which none of these settings reach.
 */
const GIT = [
  'git',
  '--no-pager',
  '-c',
  'color.ui=never',
  '-c',
  'color.diff=never',
  '-c',
  'color.status=never',
  '-c',
  'core.quotePath=false',
  '-c',
  'core.fsmonitor=false',
  '-c',
  'log.showSignature=false',
  '-c',
  'core.hooksPath=/dev/null',
  '-c',
  'diff.submodule=short',
];
const GIT_ENV = { GIT_TERMINAL_PROMPT: '0', GIT_OPTIONAL_LOCKS: '0' };

/**
 * A submodule's changed commit is shown, but its work tree is not looked into: git would run a
 * status there under the submodule's own config, whose filter drivers filtersOff does not know.
 */
const NO_SUBMODULE_WORKTREES = '--ignore-submodules=dirty';

/** More than any real config's filter drivers; a listing cut there could leave one on. */
const FILTER_LIST_MAX_CHARS = 1_000_000;

/**
 * The environment that turns off every filter driver the config defines. Status and diff run a
 * file's clean filter whenever they compare its content, for any file the repository's own
 * attributes (.gitattributes, .git/info/attributes) map to a driver, and no option skips them; a
 * driver with an empty command and not required leaves the content as it is. Passed as
 * GIT_CONFIG_KEY_n pairs rather than `-c`: a driver's name may hold a `=`, where `-c` would cut it.
 */
function filtersOff(names: ReadonlySet<string>): Record<string, string> {
  const pairs = [...names].flatMap((name) => [
    [`filter.${name}.clean`, ''],
    [`filter.${name}.smudge`, ''],
    [`filter.${name}.process`, ''],
    [`filter.${name}.required`, 'false'],
  ]);
  const env: Record<string, string> = { GIT_CONFIG_COUNT: String(pairs.length) };
  pairs.forEach(([key, value], i) => {
    env[`GIT_CONFIG_KEY_${i}`] = key as string;
    env[`GIT_CONFIG_VALUE_${i}`] = value as string;
  });
  return env;
}

/** `filter.<name>.<variable>` keys, NUL-separated (`git config -z --name-only`) → the driver names. */
function filterNames(listing: string): Set<string> {
  const names = new Set<string>();
  for (const key of listing.split('\0')) {
    const last = key.lastIndexOf('.');
    if (key.startsWith('filter.') && last > 'filter.'.length) names.add(key.slice('filter.'.length, last));
  }
  return names;
}

export function gitTools(tools: ToolsConfig, run: Runner): AnyTool[] {
  const cfg = tools.git;
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
  /**
   * `workTree`: the command compares files with the index (status, diff), where filter drivers run,
   * so they are listed first and turned off; `git log --format` reads commits only.
   */
  const git = async (args: string[], ctx: ToolContext, workTree = true) => {
    if (!workTree) return runGit(args, ctx, GIT_ENV);
    const listed = await run([...GIT, 'config', '-z', '--name-only', '--get-regexp', '^filter\\.'], {
      cwd: repo(),
      cwdSetting: 'tools.git.repo',
      env: GIT_ENV,
      signal: ctx.signal,
      capture: 'stdout',
      maxOutputChars: FILTER_LIST_MAX_CHARS,
    });
    // 1: no filter driver at all. Anything else (a config git cannot read) is what the command would say too.
    if (listed.exitCode !== 0 && listed.exitCode !== 1) {
      return { output: listed.stderr || listed.output, exitCode: listed.exitCode };
    }
    if (listed.truncated) {
      throw new BrainstemError(
        'TOOL_FAILED',
        `The filter drivers configured for ${repo()} take more than ${FILTER_LIST_MAX_CHARS} characters, more than brainstem reads to turn them off, so it runs no git command there.`,
        undefined,
        `Les filtres configurés pour ${repo()} prennent plus de ${FILTER_LIST_MAX_CHARS} caractères, plus que brainstem n’en lit pour les désactiver : il n’y lance aucune commande git.`,
      );
    }
    return runGit(args, ctx, { ...GIT_ENV, ...filtersOff(filterNames(listed.output)) });
  };
  const runGit = async (args: string[], ctx: ToolContext, env: Record<string, string>) => {
    const r = await run([...GIT, ...args], {
      cwd: repo(),
      cwdSetting: 'tools.git.repo',
      env,
      signal: ctx.signal,
      onOutput: ctx.onOutput,
      lang: ctx.lang,
      // File names, which git prints as they are (core.quotePath=false).
      escapeNames: true,
    });
    return { output: r.output, exitCode: r.exitCode, truncated: r.truncated };
  };

  return [
    defineTool({
      name: 'git_status',
      description:
        'Branch, upstream distance and changed files of the configured repository (git status --short).',
      authorize: () => void repo(),
      run: (_input, ctx) => git(['status', '--short', '--branch', NO_SUBMODULE_WORKTREES], ctx),
    }),
    defineTool(
      {
        name: 'git_log',
        description: 'Latest commits of the configured repository: short hash, date, author, subject.',
        authorize: () => void repo(),
        run: (input, ctx) =>
          git(['log', '-n', String(input.max), '--date=short', '--format=%h %ad %an  %s'], ctx, false),
      },
      tools,
    ),
    defineTool({
      name: 'git_diff',
      description:
        'Uncommitted changes of the configured repository, optionally staged only or for one path.',
      authorize: () => void repo(),
      run: (input, ctx) =>
        git(
          [
            'diff',
            '--no-ext-diff',
            '--no-textconv',
            NO_SUBMODULE_WORKTREES,
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
