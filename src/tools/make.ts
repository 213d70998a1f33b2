import { BrainstemError } from '../errors.js';
import type { ToolsConfig } from './config.js';
import type { Runner } from './exec.js';
import { type AnyTool, defineTool } from './registry.js';

/** What each command's setting may hold, in the message of a tool not set up (a lint is no `npm test`). */
const EXAMPLE_ARGV = { tests: '["npm", "test"]', lint: '["npm", "run", "lint"]' } as const;

/** make targets from an allow-list, and the configured test and lint commands. */
export function makeTools(cfg: ToolsConfig, run: Runner): AnyTool[] {
  const makeDir = cfg.make.dir ?? cfg.git.repo;
  const makeDirSetting = cfg.make.dir ? 'tools.make.dir' : 'tools.git.repo';
  const allowed = new Set(cfg.make.targets);

  const configured = (name: 'tests' | 'lint', tool: string) => {
    const c = cfg[name];
    if (!c) {
      const example = EXAMPLE_ARGV[name];
      throw new BrainstemError(
        'TOOL_NOT_CONFIGURED',
        `${tool} has no command: set tools.${name}.argv in brainstem.json (e.g. ${example}).`,
        undefined,
        `${tool} n’a pas de commande : réglez tools.${name}.argv dans brainstem.json (par exemple ${example}).`,
      );
    }
    const cwd = c.cwd ?? cfg.git.repo;
    if (!cwd) {
      throw new BrainstemError(
        'TOOL_NOT_CONFIGURED',
        `${tool} has no working directory: set tools.${name}.cwd or tools.git.repo in brainstem.json.`,
        undefined,
        `${tool} n’a pas de dossier de travail : réglez tools.${name}.cwd ou tools.git.repo dans brainstem.json.`,
      );
    }
    return {
      argv: c.argv,
      cwd,
      cwdSetting: c.cwd ? `tools.${name}.cwd` : 'tools.git.repo',
      timeoutMs: c.timeoutMs,
      // Named when the command is stopped at its own limit; without one, the runner's tools.timeoutMs.
      timeoutSetting: c.timeoutMs === undefined ? undefined : `tools.${name}.timeoutMs`,
    };
  };

  const commandTool = (name: 'run_tests' | 'lint', key: 'tests' | 'lint', description: string) =>
    // The owner's command may write (`biome check --write`, `eslint --fix`, new snapshots): a brain
    // runs it unasked only when the owner said it only reads (TOOL_MUTATING).
    defineTool(
      {
        name,
        description,
        authorize: () => void configured(key, name),
        run: async (_input, ctx) => {
          const c = configured(key, name);
          const r = await run(c.argv, {
            cwd: c.cwd,
            cwdSetting: c.cwdSetting,
            timeoutMs: c.timeoutMs,
            timeoutSetting: c.timeoutSetting,
            signal: ctx.signal,
            onOutput: ctx.onOutput,
            lang: ctx.lang,
          });
          return { output: r.output, exitCode: r.exitCode, truncated: r.truncated };
        },
      },
      cfg,
    );

  return [
    defineTool({
      name: 'make_target',
      description: `Runs \`make <target>\` for an allowed target (${cfg.make.targets.join(', ') || 'none configured'}).`,
      authorize: (input) => {
        if (allowed.size === 0) {
          throw new BrainstemError(
            'TOOL_FORBIDDEN',
            'No make target is allowed: list them in tools.make.targets in brainstem.json.',
            'target',
            'Aucune cible make n’est permise : listez-les dans tools.make.targets dans brainstem.json.',
          );
        }
        if (!allowed.has(input.target)) {
          throw new BrainstemError(
            'TOOL_FORBIDDEN',
            `make target "${input.target}" is not allowed. Allowed: ${[...allowed].join(', ')}.`,
            'target',
            `la cible make "${input.target}" n’est pas permise. Permises : ${[...allowed].join(', ')}.`,
          );
        }
        if (!makeDir) {
          throw new BrainstemError(
            'TOOL_NOT_CONFIGURED',
            'make_target has no directory: set tools.make.dir or tools.git.repo in brainstem.json.',
            undefined,
            'make_target n’a pas de dossier : réglez tools.make.dir ou tools.git.repo dans brainstem.json.',
          );
        }
      },
      run: async (input, ctx) => {
        const r = await run(['make', input.target], {
          cwd: makeDir,
          cwdSetting: makeDirSetting,
          signal: ctx.signal,
          onOutput: ctx.onOutput,
          lang: ctx.lang,
        });
        return { output: r.output, exitCode: r.exitCode, truncated: r.truncated };
      },
    }),
    commandTool(
      'run_tests',
      'tests',
      'Runs the configured test command (tools.tests) and returns its output.',
    ),
    commandTool('lint', 'lint', 'Runs the configured lint command (tools.lint) and returns its output.'),
  ];
}
