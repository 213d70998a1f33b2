import path from 'node:path';
import { z } from 'zod';
import { timerMs } from '../timer-ms.js';

/**
 * The `tools` section of brainstem.json. Everything that lets a tool reach
 * further (a repository, make targets, instances, file roots, private hosts)
 * is an allow-list that starts empty, so a fresh install exposes nothing.
 * Relative paths are resolved against the directory of the config file.
 */

/** The schemas of the `tools` section, built when called: see configSchemas() in src/config.ts. */
export function toolsConfigSchemas() {
  const argv = z.array(z.string().min(1)).min(1);
  /** A command's or a request's time limit. */
  const duration = () => timerMs().positive();

  const command = z
    .object({
      argv: argv.describe('The command as an argv array (never a shell string).'),
      cwd: z.string().optional().describe('Where it runs. Default: the git repository (`tools.git.repo`).'),
      timeoutMs: duration().optional().describe('Its time limit. Default: `tools.timeoutMs`.'),
      readOnly: z
        .boolean()
        .default(false)
        .describe(
          'true when the command only reads (no `--write`, no `--fix`, no snapshot update): Claude and local models then run it without asking, and its shortcut word without a confirmation. false: it may write, so they ask first.',
        ),
    })
    .strict();

  /** Names passed to make or incus as arguments: no option-looking or odd characters. */
  const plainName = z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9_.:/-]*$/, 'letters, digits and _ . : / - only');

  const shortcutSchema = z
    .object({
      tool: z.string().describe('The tool the word runs, e.g. `make_target`.'),
      input: z
        .record(z.string(), z.unknown())
        .default({})
        .describe('The tool’s input, e.g. `{"target": "deploy"}`.'),
      aliases: z
        .array(z.string().min(1))
        .default([])
        .describe('Other words (French, English, typos) that mean the same.'),
      mutating: z
        .boolean()
        .optional()
        .describe(
          'Overrides the tool’s own flag (a mutating call asks first), e.g. a make target known to only read.',
        ),
      description: z.string().optional().describe('Shown by /run.'),
    })
    .strict();

  const toolsConfigSchema = z
    .object({
      timeoutMs: duration()
        .default(300_000)
        .describe('Wall clock of one command; its whole process tree is killed when it is hit.'),
      maxOutputChars: z
        .number()
        .int()
        .min(1_000)
        .default(200_000)
        .describe(
          'Output kept per call: the head and the tail, with a marker where the middle was dropped. Not incus_list’s JSON, which is read, not shown: it has a cap of its own, megabytes, and fails past it.',
        ),
      chatOutputChars: z
        .number()
        .int()
        .min(500)
        .default(12_000)
        .describe(
          'How much of a shortcut word’s output is streamed into a chat answer (OpenAI endpoint, direct route); beyond it, only the end is shown.',
        ),
      maxBrainDepth: z
        .number()
        .int()
        .min(0)
        .max(5)
        .default(1)
        .describe(
          'How deep brains may call brains (`brain_chat`, `claude_code`): 1 lets a brain ask another, which may not ask a third; 0 never.',
        ),
      git: z
        .object({
          repo: z
            .string()
            .optional()
            .describe(
              'The repository of `git_status`, `git_log`, `git_diff`, and the default cwd of make and commands. Unset: git tools refuse.',
            ),
          maxLogEntries: z
            .number()
            .int()
            .min(1)
            .max(1_000)
            .default(100)
            .describe('The most commits one `git_log` call may ask for.'),
        })
        .strict()
        .prefault({})
        .describe('The git tools: `git_status`, `git_log`, `git_diff`.'),
      make: z
        .object({
          dir: z.string().optional().describe('Where make runs. Default: the git repository.'),
          targets: z
            .array(plainName)
            .default([])
            .describe('The make targets `make_target` may run; empty: none.'),
        })
        .strict()
        .prefault({})
        .describe('`make_target`: make targets of one directory.'),
      tests: command
        .optional()
        .describe('The command `run_tests` runs (e.g. `{"argv": ["npm", "test"]}`). Unset: refused.'),
      lint: command.optional().describe('The command `lint` runs. Unset: refused.'),
      incus: z
        .object({
          bin: z.string().default('incus').describe('The incus CLI.'),
          instances: z
            .array(plainName)
            .default([])
            .describe('Instances `incus_exec` may run in; empty: none.'),
          projects: z
            .array(plainName)
            .default([])
            .describe(
              'Projects `incus_list` and `incus_exec` may use (the first is the default one); empty: none.',
            ),
          commands: z
            .array(z.string().min(1))
            .default([])
            .describe('Programs (the first argv element) `incus_exec` may run; empty: none.'),
        })
        .strict()
        .prefault({})
        .describe('`incus_list` and `incus_exec`, each limited by an allow-list that starts empty.'),
      files: z
        .object({
          roots: z
            .array(z.string())
            .default([])
            .describe(
              'Directories `read_file` may read under (resolved with realpath: `..` and symlinks cannot escape); empty: none.',
            ),
          maxBytes: z
            .number()
            .int()
            .positive()
            .default(1_000_000)
            .describe('The largest file `read_file` returns.'),
        })
        .strict()
        .prefault({})
        .describe('`read_file`.'),
      webSearch: z
        .object({
          apiKey: z
            .string()
            .min(1)
            .optional()
            .describe(
              'Brave Search API key (env `BRAVE_API_KEY`). Unset (and no delegate): `web_search` refuses.',
            ),
          baseUrl: z.url().default('https://api.search.brave.com/res/v1').describe('Brave Search API root.'),
          timeoutMs: duration().default(15_000).describe('Time limit of one search.'),
          delegate: argv
            .optional()
            .describe(
              'argv prefix run with the request URL appended instead of calling Brave here; it prints Brave’s JSON and holds the key itself.',
            ),
        })
        .strict()
        .prefault({})
        .describe('`web_search` through Brave Search.'),
      webFetch: z
        .object({
          enabled: z.boolean().default(true).describe('false turns `web_fetch` off.'),
          allowPrivate: z
            .array(z.string().min(1))
            .default([])
            .describe(
              'Hosts, IPs or CIDRs that may be fetched although loopback or private (checked after DNS resolution and on every redirect); empty: none.',
            ),
          maxBytes: z
            .number()
            .int()
            .positive()
            .default(2_000_000)
            .describe('The largest body read, counted once decompressed (gzip, deflate and br are read).'),
          maxChars: z
            .number()
            .int()
            .min(500)
            .default(20_000)
            .describe('The most text returned (the readable part of the page).'),
          timeoutMs: duration()
            .default(20_000)
            .describe(
              'Time limit of one fetch, redirects included, and then of reading the page: past it, its whole text is returned, without picking the main part.',
            ),
          maxRedirects: z.number().int().min(0).max(20).default(5).describe('Redirects followed.'),
          delegate: argv
            .optional()
            .describe(
              'argv prefix run with the URL appended instead of fetching here; it prints the page body (fetched from elsewhere).',
            ),
        })
        .strict()
        .prefault({})
        .describe('`web_fetch`: a page as readable text, private addresses blocked.'),
      claudeCode: z
        .object({
          cwd: z
            .string()
            .optional()
            .describe('Where `claude_code` tasks run. Default: `<dataDir>/workspaces/claude_code`.'),
          allowedTools: z
            .array(z.string().min(1))
            .default([])
            .describe(
              'The most a `claude_code` call may grant the task (a call may ask for fewer); empty: none.',
            ),
          model: z.string().optional().describe('`--model` of the tasks.'),
        })
        .strict()
        .prefault({})
        .describe('`claude_code`: one-shot Claude Code tasks (`claude -p`) for other callers.'),
      selfUpgrade: z
        .object({
          repo: z.string().optional().describe('The checkout /upgrade pulls. Default: brainstem’s own.'),
          steps: z
            .array(argv)
            // `--include=dev`: under pm2 brainstem runs with NODE_ENV=production (ecosystem.config.cjs),
            // which the steps inherit, and a bare `npm ci` then leaves out the development
            // dependencies the build needs (tsx, esbuild): every upgrade failed at `npm run build`.
            .default([
              ['npm', 'ci', '--include=dev'],
              ['npm', 'run', 'build'],
            ])
            .describe(
              'Commands run in order once the checkout moved to the checked commit (`git merge --ff-only`); again on the old commit when one fails.',
            ),
          reload: argv
            .default(['pm2', 'reload', 'brainstem'])
            .describe(
              'Started detached once the outcome is in the chat, since it restarts brainstem itself.',
            ),
          framework: z
            .record(plainName, z.array(argv).min(1))
            .default({})
            .describe(
              'Named upgrade procedures of the rest of the stack (e.g. OpenClaw), each a list of commands.',
            ),
        })
        .strict()
        .prefault({})
        .describe('`self_upgrade` and /upgrade.'),
      shortcuts: z
        .record(z.string().min(1), z.union([shortcutSchema, z.literal(false)]))
        .default({})
        .describe(
          'Words answered with a tool call instead of a brain, added to the built-in ones; `false` removes a built-in one.',
        ),
    })
    .strict();
  return { toolsConfigSchema, shortcutSchema };
}

type Schemas = ReturnType<typeof toolsConfigSchemas>;

export type ToolsConfig = z.infer<Schemas['toolsConfigSchema']>;
export type ShortcutConfig = z.infer<Schemas['shortcutSchema']>;

/**
 * Parses a `tools` section: what is wrong in it (`tools.git.repoo: …`), for
 * loadConfig to name with the rest, or the section with its relative paths
 * resolved against the directory of the config file.
 */
export function parseToolsSection(
  tools: unknown,
  configPath: string,
): { ok: true; config: ToolsConfig } | { ok: false; problems: string[] } {
  const parsed = toolsConfigSchemas().toolsConfigSchema.safeParse(tools ?? {});
  if (!parsed.success) {
    return {
      ok: false,
      problems: parsed.error.issues.map((i) => `${['tools', ...i.path].join('.')}: ${i.message}`),
    };
  }
  const c = parsed.data;
  const base = path.dirname(configPath);
  const abs = (p: string | undefined) => (p === undefined ? undefined : path.resolve(base, p));
  const cmd = (x: ToolsConfig['tests']) => (x ? { ...x, cwd: abs(x.cwd) } : undefined);
  return {
    ok: true,
    config: {
      ...c,
      git: { ...c.git, repo: abs(c.git.repo) },
      make: { ...c.make, dir: abs(c.make.dir) },
      tests: cmd(c.tests),
      lint: cmd(c.lint),
      files: { ...c.files, roots: c.files.roots.map((r) => path.resolve(base, r)) },
      claudeCode: { ...c.claudeCode, cwd: abs(c.claudeCode.cwd) },
      selfUpgrade: { ...c.selfUpgrade, repo: abs(c.selfUpgrade.repo) },
    },
  };
}
